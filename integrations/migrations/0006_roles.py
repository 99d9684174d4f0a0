"""The "manager" and "read-only" groups (integrations/roles.py says what each may do)."""
from django.db import migrations


def forwards(apps, schema_editor):
    from integrations.roles import create_permissions_now, roles_sync

    create_permissions_now(apps)
    roles_sync(apps)


def backwards(apps, schema_editor):
    apps.get_model("auth", "Group").objects.filter(name__in=["manager", "read-only"]).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("auth", "0012_alter_user_first_name_max_length"),
        ("contenttypes", "0002_remove_content_type_name"),
        ("django_celery_beat", "0019_alter_periodictasks_options"),
        ("catalog", "0003_external_sku"),
        ("stock", "0004_stocklevel_offer_index_in_unique"),
        ("orders", "0004_reservations_to_stock_holds"),
        ("integrations", "0005_inboundevent_lease"),
    ]

    operations = [migrations.RunPython(forwards, backwards)]
