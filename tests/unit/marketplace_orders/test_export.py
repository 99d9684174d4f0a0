"""A marketplace order goes to MoySklad once, like a site order, naming its marketplace and id."""
from __future__ import annotations

from decimal import Decimal

import pytest

from integrations.marketplace_orders.machine import StatusMapper
from integrations.marketplace_orders.pull import order_upsert
from integrations.marketplace_orders.types import OrderIn, OrderLineIn
from integrations.models import OrderBinding
from integrations.moysklad.client import MoySkladClient
from integrations.moysklad.orders import OrderExportSession
from orders.models import ExportState, Order
from tests.orders_fixtures import ms_sandbox  # noqa: F401

pytestmark = pytest.mark.django_db


def _ozon_order(number: str) -> Order:
    order_in = OrderIn(source="ozon", source_order_id=number, status_keys=["awaiting_packaging"],
                       raw_status="awaiting_packaging",
                       lines=[OrderLineIn(sku="PHONE-1", quantity=Decimal(1), price=Decimal("1390.50"), external_sku="1"),
                              OrderLineIn(sku="NOPE-9", quantity=Decimal(2), price=Decimal("10"), external_sku="2")])
    order_upsert(order_in, mapper=StatusMapper())
    return Order.objects.get(source="ozon", source_order_id=number)


def test_exported_once_with_marketplace_and_id_in_the_description(ms_sandbox, shop, published):  # noqa: F811
    order = _ozon_order("0208245774-0029-1")
    with MoySkladClient() as client:
        assert OrderExportSession(client).export(order.pk) == "exported"
        assert OrderExportSession(client).export(order.pk) == "skipped"  # no longer pending
    book = ms_sandbox.moysklad.orders
    (remote,) = book.orders.values()
    assert "Ozon: заказ 0208245774-0029-1" in remote["description"]
    assert "Неизвестный SKU NOPE-9" in remote["description"]
    # the flagged line holds nothing and is not sent
    assert [p["_assortment"] for p in remote["_positions"]] == [shop.phone_ms_id]
    assert OrderBinding.objects.get(order=order).export_state == ExportState.EXPORTED
    (counterparty,) = book.counterparties.values()
    assert counterparty["name"] == "Покупатель Ozon"
    # a second marketplace order goes to the same buyer counterparty
    second = _ozon_order("0208245774-0030-1")
    with MoySkladClient() as client:
        OrderExportSession(client).export(second.pk)
    assert len(book.counterparties) == 1 and len(book.orders) == 2
