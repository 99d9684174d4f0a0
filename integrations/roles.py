"""The back office's two roles, as auth groups:

- "read-only": may see every page of the shop's data (view permission on every model of the
  project's apps and the schedules), and nothing else: actions and saves answer 403.
- "manager": everything read-only may, plus add and change on the same models (map SKUs, edit
  channels and schedules, retry exports, push offers, reprocess events, "sync now": starting a
  run is the "add job run" permission). Never delete: rows are archived upstream or cancelled.

Django's own models (users, groups, sessions, the admin log) are in neither role. The groups are
created by a data migration and kept up to date after every `migrate` (post_migrate), so models a
later migration adds (a new wing's) join the roles without another migration. Only permissions
are ever added to the groups here; one an administrator removed by hand comes back on the next
migrate (the roles are defined here, not in the database).
"""
from __future__ import annotations

READ_ONLY = "read-only"
MANAGER = "manager"
#: app labels whose models the roles never cover
EXCLUDED_APPS = {"auth", "contenttypes", "sessions", "admin"}


def roles_sync(apps=None, **_kwargs) -> None:
    """Create both groups and give them their permissions (idempotent)."""
    if apps is None:
        from django.apps import apps as global_apps

        apps = global_apps
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    perms = Permission.objects.exclude(content_type__app_label__in=EXCLUDED_APPS).select_related("content_type")
    view, edit = [], []
    for perm in perms:
        action = perm.codename.split("_", 1)[0]
        if action == "view":
            view.append(perm)
        elif action in ("add", "change"):
            edit.append(perm)
    read_only, _ = Group.objects.get_or_create(name=READ_ONLY)
    manager, _ = Group.objects.get_or_create(name=MANAGER)
    read_only.permissions.add(*view)
    manager.permissions.add(*view, *edit)


def create_permissions_now(apps) -> None:
    """In a migration, permissions exist only after post_migrate: create them first."""
    from django.contrib.auth.management import create_permissions

    for app_config in apps.get_app_configs():
        app_config.models_module = True
        create_permissions(app_config, apps=apps, verbosity=0)
        app_config.models_module = None


def on_post_migrate(sender, using="default", **kwargs) -> None:
    """post_migrate is sent once per app, each time after that app's permissions were created:
    act on the last app's, when every model has its permissions."""
    from django.apps import apps
    from django.contrib.auth.models import Group
    from django.db import router

    if sender.label != list(apps.get_app_configs())[-1].label or not router.allow_migrate_model(using, Group):
        return
    roles_sync()
