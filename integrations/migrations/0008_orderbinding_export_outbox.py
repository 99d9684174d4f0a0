"""The MoySklad export state (the outbox) moves from the order to its MoySklad binding, so one row
says everything about "this order in MoySklad". Every order gets a binding (our stable code, the
order's UUID, as external_code, when it had none), carrying the order's state, attempts, error,
export time and lease; orders 0006 then drops the columns from the order."""
from django.db import migrations, models

MOYSKLAD = "moysklad"
FIELDS = ("export_state", "export_attempts", "export_error", "exported_at", "export_lease_until",
          "export_lease_owner")
BATCH = 1000


def state_to_binding(apps, schema_editor):
    Order = apps.get_model("orders", "Order")
    OrderBinding = apps.get_model("integrations", "OrderBinding")
    last = 0
    while True:
        orders = list(Order.objects.filter(pk__gt=last).order_by("pk").values("pk", "uid", *FIELDS)[:BATCH])
        if not orders:
            return
        last = orders[-1]["pk"]
        bound = {b.order_id: b for b in OrderBinding.objects.filter(system=MOYSKLAD,
                                                                   order_id__in=[o["pk"] for o in orders])}
        changed, new = [], []
        for row in orders:
            state = {name: row[name] for name in FIELDS}
            binding = bound.get(row["pk"])
            if binding is None:
                new.append(OrderBinding(system=MOYSKLAD, order_id=row["pk"], external_id="",
                                        external_code=str(row["uid"]), **state))
            else:
                for name, value in state.items():
                    setattr(binding, name, value)
                changed.append(binding)
        OrderBinding.objects.bulk_create(new)
        OrderBinding.objects.bulk_update(changed, FIELDS)


def state_to_order(apps, schema_editor):
    """Reverse: the order takes its binding's export state back (bindings stay)."""
    Order = apps.get_model("orders", "Order")
    OrderBinding = apps.get_model("integrations", "OrderBinding")
    rows = OrderBinding.objects.filter(system=MOYSKLAD).values("order_id", *FIELDS)
    for start in range(0, rows.count(), BATCH):
        orders = []
        for row in rows.order_by("pk")[start:start + BATCH]:
            order = Order(pk=row.pop("order_id"))
            for name, value in row.items():
                setattr(order, name, value)
            orders.append(order)
        Order.objects.bulk_update(orders, FIELDS)


class Migration(migrations.Migration):

    dependencies = [
        ('integrations', '0007_labels'),
        ('orders', '0005_marketplace_orders'),
    ]

    operations = [
        migrations.AddField(
            model_name='orderbinding',
            name='export_attempts',
            field=models.PositiveIntegerField(default=0, verbose_name='export attempts'),
        ),
        migrations.AddField(
            model_name='orderbinding',
            name='export_error',
            field=models.TextField(blank=True, verbose_name='export error'),
        ),
        migrations.AddField(
            model_name='orderbinding',
            name='export_lease_owner',
            field=models.CharField(blank=True, max_length=128, verbose_name='export lease owner'),
        ),
        migrations.AddField(
            model_name='orderbinding',
            name='export_lease_until',
            field=models.DateTimeField(blank=True, help_text='An exporter holds this order until then', null=True, verbose_name='export lease until'),
        ),
        migrations.AddField(
            model_name='orderbinding',
            name='export_state',
            field=models.CharField(choices=[('pending', 'Waiting to export'), ('exported', 'In MoySklad'), ('failed', 'Failed (needs a manager)')], default='pending', max_length=16, verbose_name='export state'),
        ),
        migrations.AddField(
            model_name='orderbinding',
            name='exported_at',
            field=models.DateTimeField(blank=True, null=True, verbose_name='exported at'),
        ),
        migrations.AddIndex(
            model_name='orderbinding',
            index=models.Index(fields=['export_state', 'id'], name='orderbinding_export_outbox'),
        ),
        migrations.RunPython(state_to_binding, state_to_order),
    ]
