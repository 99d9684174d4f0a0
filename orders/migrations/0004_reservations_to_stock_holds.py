"""Site reservations become stock holds (stock.StockHold), kept by the stock write service.

Active reservations are carried over as active holds referring to their order line, and the
levels they sit on get available = max(stock − reserve − active holds, 0), as every write keeps
it from now on. Ended reservations are history the order admin no longer needs."""
from decimal import Decimal

from django.db import migrations
from django.utils import timezone


def forwards(apps, schema_editor):
    Reservation = apps.get_model("orders", "Reservation")
    StockHold = apps.get_model("stock", "StockHold")
    StockLevel = apps.get_model("stock", "StockLevel")
    active = list(Reservation.objects.filter(released_at__isnull=True).select_related("order_line__order")
                  .order_by("id"))
    if not active:
        return
    StockHold.objects.bulk_create([
        StockHold(offer_id=r.offer_id, warehouse_id=r.warehouse_id, quantity=r.quantity,
                  ref=f"orderline:{r.order_line_id}", source=r.order_line.order.source, created_at=r.created_at)
        for r in active], batch_size=1000)
    held: dict[tuple[int, int], Decimal] = {}
    for r in active:
        held[(r.offer_id, r.warehouse_id)] = held.get((r.offer_id, r.warehouse_id), Decimal(0)) + r.quantity
    now = timezone.now()
    for (offer_id, warehouse_id), qty in held.items():
        level = StockLevel.objects.filter(offer_id=offer_id, warehouse_id=warehouse_id).first()
        if level is None:
            continue
        available = max(level.stock - level.reserve - qty, Decimal(0))
        if available != level.available:
            StockLevel.objects.filter(pk=level.pk).update(available=available, updated_at=now)


class Migration(migrations.Migration):

    dependencies = [
        ("orders", "0003_order_contact_snapshot"),
        ("stock", "0002_holds_changes_warehouse_source"),
    ]

    operations = [
        migrations.RunPython(forwards, migrations.RunPython.noop),
        migrations.DeleteModel(name="Reservation"),
    ]
