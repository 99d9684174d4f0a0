from django.apps import AppConfig
from django.db.models.signals import post_migrate
from django.utils.translation import gettext_lazy as _


class IntegrationsConfig(AppConfig):
    name = "integrations"
    verbose_name = _("Integrations")

    def ready(self) -> None:
        from django.db.backends.signals import connection_created

        from syncsite.bulk import tune_planner

        from . import roles

        connection_created.connect(tune_planner, dispatch_uid="syncsite.bulk.tune_planner")

        # After every migrate: models added since (a new wing's) join the manager and read-only roles.
        post_migrate.connect(roles.on_post_migrate, dispatch_uid="integrations.roles")
