"""The data migration that moves the MoySklad export state from the order to its binding: every
order ends with exactly one MoySklad binding carrying its state, attempts, error, export time and
lease; a binding the exporter had already made keeps its link, a missing one is made with the
order's export code; and going back returns the state to the order."""
from datetime import datetime, timezone

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

pytestmark = pytest.mark.django_db(transaction=True)

BEFORE = [("orders", "0005_marketplace_orders"), ("integrations", "0007_labels")]
AFTER = [("orders", "0006_export_state_to_binding")]
AT = datetime(2026, 3, 1, 12, 0, tzinfo=timezone.utc)


def migrate(targets):
    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate(targets)
    return executor.loader.project_state(targets).apps


def state(row) -> tuple:
    return (row.export_state, row.export_attempts, row.export_error, row.exported_at, row.export_lease_owner,
            row.export_lease_until)


def test_export_state_moves_to_the_binding_and_back():
    old = migrate(BEFORE)
    Customer, Order = old.get_model("orders", "Customer"), old.get_model("orders", "Order")
    OrderBinding = old.get_model("integrations", "OrderBinding")
    customer = Customer.objects.create(name="c")
    exported = Order.objects.create(customer=customer, source="site", source_order_id="1", export_state="exported",
                                    exported_at=AT, export_attempts=1)
    failed = Order.objects.create(customer=customer, source="ozon", source_order_id="2", export_state="failed",
                                  export_attempts=10, export_error="412 agent")
    leased = Order.objects.create(customer=customer, source="wb", source_order_id="3", export_lease_owner="w:1",
                                  export_lease_until=AT)
    untouched = Order.objects.create(customer=customer, source="ym", source_order_id="4")
    # The exporter had made bindings for the first three (one still without its customerorder).
    OrderBinding.objects.create(system="moysklad", order=exported, external_id="co-1",
                                external_code=str(exported.uid), ui_url="https://online.moysklad.ru/x")
    OrderBinding.objects.create(system="moysklad", order=failed, external_id="", external_code=str(failed.uid))
    OrderBinding.objects.create(system="moysklad", order=leased, external_id="", external_code=str(leased.uid),
                                create_attempted_at=AT)
    try:
        new = migrate(AFTER)
        Binding = new.get_model("integrations", "OrderBinding")
        assert {f.name for f in new.get_model("orders", "Order")._meta.fields}.isdisjoint(
            {"export_state", "export_attempts", "export_error", "exported_at", "export_lease_owner",
             "export_lease_until"})
        rows = {b.order_id: b for b in Binding.objects.filter(system="moysklad")}
        assert sorted(rows) == sorted(o.pk for o in (exported, failed, leased, untouched))
        assert Binding.objects.count() == 4  # one binding per order, none doubled
        assert state(rows[exported.pk]) == ("exported", 1, "", AT, "", None)
        assert (rows[exported.pk].external_id, rows[exported.pk].ui_url) == ("co-1", "https://online.moysklad.ru/x")
        assert state(rows[failed.pk]) == ("failed", 10, "412 agent", None, "", None)
        assert state(rows[leased.pk]) == ("pending", 0, "", None, "w:1", AT)
        assert rows[leased.pk].create_attempted_at == AT  # the export resumes by its externalCode search
        assert state(rows[untouched.pk]) == ("pending", 0, "", None, "", None)
        assert (rows[untouched.pk].external_id, rows[untouched.pk].external_code) == ("", str(untouched.uid))

        Binding.objects.filter(pk=rows[untouched.pk].pk).update(export_state="exported", exported_at=AT)
        back = migrate(BEFORE)
        orders = {o.pk: o for o in back.get_model("orders", "Order").objects.all()}
        assert state(orders[failed.pk]) == ("failed", 10, "412 agent", None, "", None)
        assert state(orders[untouched.pk]) == ("exported", 0, "", AT, "", None)
    finally:
        migrate(MigrationExecutor(connection).loader.graph.leaf_nodes())
