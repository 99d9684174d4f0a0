"""Where a site order's units are held until MoySklad reserves them (see orders/models.py)."""
from decimal import Decimal

import pytest

from orders import services
from orders.models import OrderStatus, Reservation
from orders.selectors import reservation_pending_totals
from stock.models import StockLevel

pytestmark = pytest.mark.django_db


def place(qty=2, sku="PHONE-1", key="k"):
    return services.order_create(customer=services.CustomerData(name="Иван", email="ivan@example.com"),
                                 items=[services.LineRequest(sku=sku, quantity=qty)], idempotency_key=key).order


def level(offer) -> StockLevel:
    return StockLevel.objects.get(offer=offer)


def test_cancel_before_export_gives_the_units_back(shop, published):
    order = place(2)
    assert level(shop.phone).available == 3
    assert services.order_status_set(order=order, status=OrderStatus.CANCELLED, by="admin:boss")
    assert level(shop.phone).available == 5
    assert set(Reservation.objects.values_list("release_reason", flat=True)) == {"cancelled"}
    assert not reservation_pending_totals()


def test_cancel_after_export_leaves_stock_to_moysklad(shop, published):
    order = place(2)
    services.order_exported_mark(order=order)
    services.order_status_set(order=order, status=OrderStatus.CANCELLED, by="moysklad")
    assert level(shop.phone).available == 3  # MoySklad drops its reserve; the stock sync brings it back


def test_stock_sync_rewrite_before_export_is_lowered_again(shop, published):
    """A stock sync wrote MoySklad's figures (stock − reserve) over our lowered figure before the
    order reached MoySklad: reapplying subtracts the pending reservation again."""
    place(2)
    StockLevel.objects.filter(offer=shop.phone).update(stock=6, reserve=0, available=6)  # what the sync writes
    assert services.reservations_reapply() == 1
    assert level(shop.phone).available == 4
    assert services.reservations_reapply() == 0  # idempotent


def test_reapply_never_raises_available(shop, published):
    order = place(2)
    services.order_exported_mark(order=order)  # released: MoySklad's reserve will count it
    assert services.reservations_reapply() == 0
    assert level(shop.phone).available == 3


def test_no_double_count_once_moysklad_reserved_the_order(shop, published):
    order = place(2)
    services.order_exported_mark(order=order)
    # The next stock sync reads MoySklad's reserve, which now includes our 2 units.
    StockLevel.objects.filter(offer=shop.phone).update(stock=5, reserve=2, available=3)
    services.reservations_reapply()
    assert level(shop.phone).available == 3


def test_pending_totals_per_offer_and_warehouse(shop, published):
    place(2, key="a")
    place(1, sku="CASE-RED", key="b")
    totals = reservation_pending_totals(offer_ids=[shop.phone.pk])
    assert totals == {(shop.phone.pk, shop.warehouse.pk): Decimal(2)}


def test_marketplace_order_already_sold_never_fails_for_stock(shop, published):
    result = services.order_create(customer=services.CustomerData(name="Ozon", email="orders@ozon.example"),
                                   items=[services.LineRequest(sku="CASE-RED", quantity=5, price=Decimal("300"))],
                                   source="ozon", source_order_id="OZ-1", enforce_stock=False)
    assert result.created and result.order.number.startswith("OZ-")
    assert level(shop.case).available == 0
    again = services.order_create(customer=services.CustomerData(name="Ozon", email="orders@ozon.example"),
                                  items=[services.LineRequest(sku="CASE-RED", quantity=5)], source="ozon",
                                  source_order_id="OZ-1", enforce_stock=False)
    assert not again.created and again.order.pk == result.order.pk
    assert result.order.lines.get().price == Decimal("300.00")
