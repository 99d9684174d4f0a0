from django.apps import AppConfig
from django.db.models.signals import post_migrate
from django.utils.translation import gettext_lazy as _


class IntegrationsConfig(AppConfig):
    name = "integrations"
    verbose_name = _("Integrations")

    def ready(self) -> None:
        from . import roles

        # After every migrate: models added since (a new wing's) join the manager and read-only roles.
        post_migrate.connect(roles.on_post_migrate, dispatch_uid="integrations.roles")
