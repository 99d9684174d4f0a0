"""An order's stock holds through its life: placed with the order, kept through stock syncs,
handed over to MoySklad by the export, ended by a cancellation or a shipment — and every change
of what we can sell kicks the marketplaces."""
from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from orders import services
from orders.models import OrderStatus
from stock.models import StockChange, StockHold, StockLevel
from stock.services import stock_levels_set

pytestmark = pytest.mark.django_db


def place(qty=2, sku="PHONE-1", key="k"):
    return services.order_create(customer=services.CustomerData(name="Иван", email="ivan@example.com"),
                                 items=[services.LineRequest(sku=sku, quantity=qty)], idempotency_key=key).order


def level(offer) -> StockLevel:
    return StockLevel.objects.get(offer=offer)


@pytest.fixture
def kicks(monkeypatch):
    """Offer ids the marketplaces were kicked for, one list per kick."""
    calls: list[list[int]] = []
    monkeypatch.setattr("integrations.marketplaces.kick", lambda offer_ids, **kw: calls.append(sorted(offer_ids)))
    return calls


def test_a_site_order_and_its_cancellation_kick_the_marketplaces(shop, published, kicks,
                                                                 django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        order = place(2)
    assert level(shop.phone).available == 3
    assert kicks == [[shop.phone.pk]]
    with django_capture_on_commit_callbacks(execute=True):
        services.order_status_set(order=order, status=OrderStatus.CANCELLED, by="admin:boss")
    assert level(shop.phone).available == 5
    assert kicks == [[shop.phone.pk], [shop.phone.pk]]
    assert list(StockChange.objects.order_by("id").values_list("via", "previous_available", "new_available")) == [
        ("order", 5, 3), ("cancel", 3, 5)]


def test_cancel_before_export_gives_the_units_back(shop, published):
    order = place(2)
    assert services.order_status_set(order=order, status=OrderStatus.CANCELLED, by="admin:boss")
    assert level(shop.phone).available == 5
    assert set(StockHold.objects.values_list("release_reason", flat=True)) == {"cancelled"}


def test_cancel_after_export_keeps_the_hold_until_moysklad_is_read(shop, published):
    order = place(2)
    services.order_exported_mark(order=order)
    services.order_status_set(order=order, status=OrderStatus.CANCELLED, by="moysklad")
    assert level(shop.phone).available == 3  # MoySklad's reserve counted it until its next read
    stock_levels_set(warehouse_id=shop.warehouse.pk, figures={shop.phone.pk: (Decimal(5), Decimal(0))},
                     source="moysklad", checked_at=timezone.now() + timedelta(seconds=1))
    assert level(shop.phone).available == 5
    assert StockHold.objects.get().release_reason == "synced"


def test_a_stock_sync_before_the_export_keeps_the_hold(shop, published):
    place(2)
    stock_levels_set(warehouse_id=shop.warehouse.pk, figures={shop.phone.pk: (Decimal(6), Decimal(0))},
                     source="moysklad")
    assert level(shop.phone).available == 4  # 6 − 0 − 2 held


def test_after_the_export_only_a_read_started_later_trusts_moysklads_reserve(shop, published):
    order = place(2)
    handed = timezone.now()
    services.order_exported_mark(order=order, counted_from=handed)
    # A read that started before the hand-over: MoySklad's reserve may not count our units yet.
    stock_levels_set(warehouse_id=shop.warehouse.pk, figures={shop.phone.pk: (Decimal(5), Decimal(0))},
                     source="moysklad", checked_at=handed - timedelta(seconds=1))
    assert level(shop.phone).available == 3
    # A later read: its reserve counts them, the hold ends, nothing is counted twice.
    stock_levels_set(warehouse_id=shop.warehouse.pk, figures={shop.phone.pk: (Decimal(5), Decimal(2))},
                     source="moysklad", checked_at=handed + timedelta(seconds=1))
    assert level(shop.phone).available == 3
    assert not StockHold.objects.filter(released_at__isnull=True).exists()


def test_shipping_ends_holds_no_upstream_took_over(shop, published):
    order = place(2)
    services.order_status_set(order=order, status=OrderStatus.SHIPPED, by="admin:boss")
    assert StockHold.objects.get().release_reason == "shipped"


def test_marketplace_order_already_sold_never_fails_for_stock(shop, published):
    result = services.order_create(customer=services.CustomerData(name="Ozon", email="orders@ozon.example"),
                                   items=[services.LineRequest(sku="CASE-RED", quantity=5, price=Decimal("300"))],
                                   source="ozon", source_order_id="OZ-1", enforce_stock=False)
    assert result.created and result.order.number.startswith("OZ-")
    assert level(shop.case).available == 0
    assert StockHold.objects.get().quantity == 5  # owed in full: a restock serves it first
    again = services.order_create(customer=services.CustomerData(name="Ozon", email="orders@ozon.example"),
                                  items=[services.LineRequest(sku="CASE-RED", quantity=5)], source="ozon",
                                  source_order_id="OZ-1", enforce_stock=False)
    assert not again.created and again.order.pk == result.order.pk
    assert result.order.lines.get().price == Decimal("300.00")
    stock_levels_set(warehouse_id=shop.warehouse.pk, figures={shop.case.pk: (Decimal(7), Decimal(0))},
                     source="moysklad")
    assert level(shop.case).available == 2


def test_a_channel_can_name_the_warehouses_its_orders_come_from(shop, published):
    from tests.factories import make_stock, make_warehouse

    fbs = make_warehouse(code="fbs", source="supplier:acme")
    make_stock(offer=shop.case, warehouse=fbs, stock=4)
    order = services.order_create(customer=services.CustomerData(name="WB", email="orders@wb.example"),
                                  items=[services.LineRequest(sku="CASE-RED", quantity=4, price=Decimal("300"))],
                                  source="wb", source_order_id="WB-1", warehouse_ids=[shop.warehouse.pk, fbs.pk],
                                  preferred_warehouse_ids=[fbs.pk]).order
    assert StockHold.objects.get(ref=order.lines.get().hold_ref).warehouse_id == fbs.pk
    assert StockLevel.objects.get(offer=shop.case, warehouse=fbs).available == 0
    assert StockLevel.objects.get(offer=shop.case, warehouse=shop.warehouse).available == 3
