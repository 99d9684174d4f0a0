from django.apps import AppConfig


class OnecConfig(AppConfig):
    name = "integrations.onec"
    label = "onec"
    verbose_name = "1C"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # The wing registers its own job: the registry never imports wings back.
        from integrations.jobs import register
        from integrations.runs import JobSpec

        from . import jobs

        register(JobSpec("onec-stock", jobs.stock_import, jobs.configured,
                         "1C stock per warehouse from its HTTP service (changedAfter; --full reads all and "
                         "zeroes what 1C no longer lists)", overlap=jobs.overlap()))
