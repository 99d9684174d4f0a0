from django.apps import AppConfig


class SuppliersConfig(AppConfig):
    name = "integrations.suppliers"
    label = "suppliers"
    verbose_name = "Dropshipping suppliers"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # The wing registers its own job: the registry never imports wings back.
        from integrations import jobs as registry
        from integrations.runs import JobSpec

        from . import jobs

        registry.register(JobSpec("supplier-stock", jobs.supplier_stock, jobs.configured,
                                  "Each active supplier's stock (API delta by updated_since; CSV and YML feeds "
                                  "read whole; --full reads every API page), one task per supplier",
                                  overlap=jobs.OVERLAP))
