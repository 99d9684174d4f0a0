"""Our order calls against the sandbox's Ozon, Wildberries and Yandex Market emulators over real
loopback sockets: orders pulled into one table, a shipment flowing back to each marketplace, a
return restoring stock once."""
from __future__ import annotations

import httpx
import pytest

from integrations.http import ratelimit
from integrations.marketplace_orders import outbox, pull, returns
from integrations.marketplace_orders.machine import status_change
from integrations.marketplace_orders.models import ActionState, MarketplaceAction, MarketplaceReturn
from integrations.sandbox.channels import settings_for
from integrations.sandbox.marketplace import sellable_items
from integrations.sandbox.server import SandboxServer
from orders.models import Order, OrderStatus
from tests.factories import make_offer, make_stock, make_warehouse

from .support import context

pytestmark = pytest.mark.django_db


@pytest.fixture
def sandbox():
    with SandboxServer(products=40, seed=5, rate_limit=False) as srv:
        yield srv


@pytest.fixture
def wired(sandbox, settings, published):
    env = settings_for(sandbox.url)
    settings.REDIS_URL = ""
    ratelimit._registry.clear()
    settings.OZON = {**settings.OZON, "BASE_URL": env["OZON_BASE_URL"], "CLIENT_ID": env["OZON_CLIENT_ID"],
                     "API_KEY": env["OZON_API_KEY"], "WAREHOUSE_ID": env["OZON_WAREHOUSE_ID"]}
    settings.WILDBERRIES = {**settings.WILDBERRIES, "BASE_URL": env["WB_BASE_URL"], "RETURNS_URL": env["WB_RETURNS_URL"],
                            "CONTENT_URL": env["WB_CONTENT_URL"], "TOKEN": env["WB_TOKEN"]}
    settings.YANDEX_MARKET = {**settings.YANDEX_MARKET, "BASE_URL": env["YM_BASE_URL"], "API_KEY": env["YM_API_KEY"],
                              "BUSINESS_ID": env["YM_BUSINESS_ID"], "CAMPAIGN_ID": env["YM_CAMPAIGN_ID"]}
    settings.MOYSKLAD = {**settings.MOYSKLAD, "TOKEN": "", "LOGIN": "", "PASSWORD": ""}
    settings.TELEGRAM = {**settings.TELEGRAM, "BOT_TOKEN": "", "CHAT_ID": ""}
    warehouse = make_warehouse(code="main")
    offers = []
    for item in list(sellable_items(sandbox.moysklad.catalog))[:5]:
        offer = make_offer(sku=item.sku, price=100)
        make_stock(offer=offer, warehouse=warehouse, stock=50)
        offers.append(offer)
    yield sandbox
    ratelimit._registry.clear()


def _control(sandbox, path, body=None):
    return httpx.post(f"{sandbox.url}/_sandbox/{path}", json=body or {}, timeout=10).json()


def test_orders_from_three_marketplaces_and_shipments_back(wired):
    sku = next(iter(sellable_items(wired.moysklad.catalog))).sku
    _control(wired, "ozon/orders/new", {"count": 3, "sku": sku})
    _control(wired, "wb/orders/new", {"count": 2, "sku": sku})
    _control(wired, "ym/orders/new", {"count": 2, "sku": sku, "quantity": 2})
    pull.orders_pull(context())
    pull.orders_pull(context())  # twice: nothing doubles
    assert dict((s, Order.objects.filter(source=s).count()) for s in ("ozon", "wb", "ym")) == {
        "ozon": 3, "wb": 2, "ym": 2}
    assert set(Order.objects.values_list("status", flat=True)) == {OrderStatus.CONFIRMED}

    for order in Order.objects.all():
        status_change(order=order, status="processing", by="moysklad")
    outbox.actions_flush()
    assert set(MarketplaceAction.objects.exclude(state=ActionState.SKIPPED).values_list("state", flat=True)) == {"done"}
    postings = _control_get(wired, "ozon/orders")["postings"]
    assert {p["status"] for p in postings} == {"awaiting_deliver"}
    assert {t["supplierStatus"] for t in _control_get(wired, "wb/orders")["orders"]} == {"confirm"}
    assert {o["substatus"] for o in _control_get(wired, "ym/orders")["orders"]} == {"READY_TO_SHIP"}

    for order in Order.objects.filter(source="wb"):
        status_change(order=order, status="shipped", by="moysklad")
    outbox.actions_flush()
    assert {t["supplierStatus"] for t in _control_get(wired, "wb/orders")["orders"]} == {"complete"}
    assert _control_get(wired, "wb/orders")["calls"]["supply_create"] == 1

    # the marketplaces move on; our orders follow
    _control(wired, "ozon/orders/advance")
    _control(wired, "ozon/orders/advance")
    pull.orders_pull(context())
    assert set(Order.objects.filter(source="ozon").values_list("status", flat=True)) == {OrderStatus.COMPLETED}

    # a return on each: recorded once, stock back once
    number = postings[0]["posting_number"]
    ym_id = _control_get(wired, "ym/orders")["orders"][0]["orderId"]
    wb_id = _control_get(wired, "wb/orders")["orders"][0]["id"]
    _control(wired, "ozon/returns/new", {"posting_number": number})
    _control(wired, "ym/returns/new", {"order_id": ym_id})
    _control(wired, "wb-returns/claims/new", {"task_id": wb_id})
    returns.returns_pull(context("marketplace-returns"))
    returns.returns_pull(context("marketplace-returns"))
    assert MarketplaceReturn.objects.count() == 3
    assert set(MarketplaceReturn.objects.values_list("restore", flat=True)) == {"restored"}


def _control_get(sandbox, path):
    return httpx.get(f"{sandbox.url}/_sandbox/{path}", timeout=10).json()
