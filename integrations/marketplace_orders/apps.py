from django.apps import AppConfig


class MarketplaceOrdersConfig(AppConfig):
    name = "integrations.marketplace_orders"
    label = "marketplace_orders"
    verbose_name = "Marketplace orders"

    def ready(self) -> None:
        # The wing registers its own jobs: the registry never imports them back.
        from . import jobs

        jobs.register_all()
