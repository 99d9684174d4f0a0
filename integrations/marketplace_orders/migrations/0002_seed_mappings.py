"""The default status and action mappings (managers edit them in the admin)."""
from django.db import migrations


def seed(apps, schema_editor):
    from integrations.marketplace_orders.machine import DEFAULT_ACTION_MAP, DEFAULT_STATUS_MAP
    from orders.models import OrderStatus

    StatusMapping = apps.get_model("marketplace_orders", "StatusMapping")
    ActionMapping = apps.get_model("marketplace_orders", "ActionMapping")
    for source, table in DEFAULT_STATUS_MAP.items():
        StatusMapping.objects.bulk_create([StatusMapping(source=str(source), marketplace_status=k, status=str(v))
                                           for k, v in table.items()], ignore_conflicts=True)
    for source, table in DEFAULT_ACTION_MAP.items():
        ActionMapping.objects.bulk_create([ActionMapping(source=str(source), status=s, action=str(table.get(s, "")))
                                           for s in OrderStatus.values], ignore_conflicts=True)


class Migration(migrations.Migration):
    dependencies = [("marketplace_orders", "0001_initial")]
    operations = [migrations.RunPython(seed, migrations.RunPython.noop)]
