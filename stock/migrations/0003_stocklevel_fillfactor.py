"""Leave room in each stock_stocklevel page (PostgreSQL): a stock read stamps `checked_at` on every
level it saw unchanged, and with free space on the page that update stays on the page and touches
no index (a heap-only tuple), instead of moving the row and updating its five indexes."""
from django.db import migrations


def fillfactor(value: int):
    def apply(apps, schema_editor):
        if schema_editor.connection.vendor == "postgresql":
            schema_editor.execute(f"ALTER TABLE stock_stocklevel SET (fillfactor = {value})")
    return apply


class Migration(migrations.Migration):

    dependencies = [("stock", "0002_holds_changes_warehouse_source")]

    operations = [migrations.RunPython(fillfactor(70), fillfactor(100))]
