"""The data migration that turns active site reservations into stock holds: each active one becomes
a hold on its order line, ended ones are dropped, and the levels they sit on get available =
stock − reserve − holds."""
from decimal import Decimal

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

pytestmark = pytest.mark.django_db(transaction=True)

# Catalog is named too: its state must match the applied schema (Offer.price_from_product is NOT NULL).
BEFORE = [("orders", "0003_order_contact_snapshot"), ("stock", "0002_holds_changes_warehouse_source"),
          ("catalog", "0002_product_price_and_inherited_offer_price")]
AFTER = [("orders", "0004_reservations_to_stock_holds")]


def migrate(targets):
    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate(targets)
    return executor.loader.project_state(targets).apps


def test_active_reservations_become_holds_and_available_is_recomputed():
    old = migrate(BEFORE)
    Offer, Product = old.get_model("catalog", "Offer"), old.get_model("catalog", "Product")
    Warehouse, StockLevel = old.get_model("stock", "Warehouse"), old.get_model("stock", "StockLevel")
    Customer, Order = old.get_model("orders", "Customer"), old.get_model("orders", "Order")
    OrderLine, Reservation = old.get_model("orders", "OrderLine"), old.get_model("orders", "Reservation")
    offer = Offer.objects.create(product=Product.objects.create(name="p"), sku="M-1", name="m")
    w = Warehouse.objects.create(code="main", name="main")
    # A sync rewrote this level after the order (available 6, the hold lost): the migration fixes it.
    level = StockLevel.objects.create(offer=offer, warehouse=w, stock=8, reserve=2, available=6)
    order = Order.objects.create(customer=Customer.objects.create(name="c"), source="ozon", source_order_id="1")
    line = OrderLine.objects.create(order=order, offer=offer, sku="M-1", name="m", quantity=3, price=1)
    Reservation.objects.create(order_line=line, offer=offer, warehouse=w, quantity=3)
    Reservation.objects.create(order_line=line, offer=offer, warehouse=w, quantity=1, released_at="2026-01-01T00:00Z",
                               release_reason="exported")
    try:
        new = migrate(AFTER)
        StockHold = new.get_model("stock", "StockHold")
        (hold,) = StockHold.objects.all()
        assert (hold.ref, hold.quantity, hold.source, hold.released_at) == (f"orderline:{line.pk}", 3, "ozon", None)
        assert new.get_model("stock", "StockLevel").objects.get(pk=level.pk).available == Decimal(3)
    finally:
        migrate(MigrationExecutor(connection).loader.graph.leaf_nodes())
