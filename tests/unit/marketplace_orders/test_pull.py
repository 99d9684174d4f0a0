"""`marketplace-orders`: Ozon postings, WB tasks, YM orders into our order table."""
from __future__ import annotations

import json
from datetime import datetime, timezone as dt_timezone
from decimal import Decimal

import httpx
import pytest
import respx

from integrations.marketplace_orders import pull
from integrations.marketplace_orders.machine import StatusMapper
from integrations.marketplace_orders.models import ActionState, ChannelOrder, MarketplaceAction
from integrations.marketplace_orders.outbox import actions_plan
from integrations.models import Channel, ChannelOffer
from orders.models import Order, OrderStatus
from stock.models import StockHold, StockLevel

from .conftest import OZON, WB, YM
from .support import context, posting, postings_page, wb_task, ym_order

pytestmark = pytest.mark.django_db


def _available(offer, warehouse) -> Decimal:
    return StockLevel.objects.get(offer=offer, warehouse=warehouse).available


def test_ozon_posting_becomes_one_order_holding_stock_and_kicking_the_push(
        marketplaces, shop, published, kicks, django_capture_on_commit_callbacks):
    with respx.mock(assert_all_called=False) as mock:
        route = mock.post(f"{OZON}/v4/posting/fbs/list").respond(json=postings_page(posting()))
        with django_capture_on_commit_callbacks(execute=True):
            pull.ozon_pull(context(), StatusMapper())
    order = Order.objects.get(source="ozon")
    assert order.source_order_id == "0208245774-0029-1"
    assert order.status == OrderStatus.CONFIRMED
    assert order.source_status == "awaiting_packaging/posting_created"
    assert order.placed_at == datetime(2026, 5, 14, 8, 0, tzinfo=dt_timezone.utc)
    line = order.lines.get()
    assert (line.sku, line.quantity, line.price, line.external_sku) == ("PHONE-1", 2, Decimal("1390.50"), "1904686181")
    assert order.total == Decimal("2781.00")
    # held at once, through the same holds as site orders
    assert StockHold.objects.filter(ref=line.hold_ref, released_at__isnull=True).count() == 1
    assert _available(shop.phone, shop.warehouse) == 3
    assert [shop.phone.pk] in kicks
    assert "integrations.moysklad.order_export" in published.names()
    body = json.loads(route.calls[0].request.content)
    assert body["limit"] == 100 and body["filter"]["last_changed_status_date"]["from"]


def test_pulling_twice_gives_one_order_with_its_changes(marketplaces, shop, published):
    with respx.mock() as mock:
        mock.post(f"{OZON}/v4/posting/fbs/list").mock(side_effect=[
            httpx.Response(200, json=postings_page(posting())),
            httpx.Response(200, json=postings_page(posting(status="awaiting_deliver")))])
        pull.ozon_pull(context(), StatusMapper())
        pull.ozon_pull(context(), StatusMapper())
    order = Order.objects.get(source="ozon")
    assert Order.objects.filter(source="ozon").count() == 1
    assert order.status == OrderStatus.PROCESSING
    assert StockHold.objects.filter(released_at__isnull=True).count() == 1
    # what the marketplace told us is never sent back to it
    actions_plan()
    assert not MarketplaceAction.objects.filter(state=ActionState.PENDING).exists()


def test_ozon_cursor_pages_are_followed(marketplaces, shop, published):
    with respx.mock() as mock:
        route = mock.post(f"{OZON}/v4/posting/fbs/list").mock(side_effect=[
            httpx.Response(200, json=postings_page(posting("1-1-1"), cursor="c1", has_next=True)),
            httpx.Response(200, json={"result": postings_page(posting("1-1-2"))})])
        pull.ozon_pull(context(), StatusMapper())
    assert json.loads(route.calls[1].request.content)["cursor"] == "c1"
    assert set(Order.objects.values_list("source_order_id", flat=True)) == {"1-1-1", "1-1-2"}


def test_a_line_with_an_unknown_sku_is_kept_and_flagged(marketplaces, shop, published):
    products = [{"sku": 1, "offer_id": "PHONE-1", "name": "Телефон", "quantity": 1, "price": {"amount": "100"}},
                {"sku": 2, "offer_id": "NOPE-9", "name": "Неизвестно", "quantity": 3, "price": {"amount": "10"}}]
    with respx.mock() as mock:
        mock.post(f"{OZON}/v4/posting/fbs/list").respond(json=postings_page(posting(products=products)))
        pull.ozon_pull(context(), StatusMapper())
    order = Order.objects.get(source="ozon")
    assert order.flagged
    flagged = order.lines.get(flagged=True)
    assert (flagged.sku, flagged.offer_id, flagged.quantity, flagged.name) == ("NOPE-9", None, 3, "Неизвестно")
    assert StockHold.objects.filter(released_at__isnull=True).count() == 1  # only the known line holds


def test_an_order_first_seen_cancelled_is_not_created(marketplaces, shop, published):
    with respx.mock() as mock:
        mock.post(f"{OZON}/v4/posting/fbs/list").respond(json=postings_page(posting(status="cancelled")))
        ctx = context()
        pull.ozon_pull(ctx, StatusMapper())
    assert not Order.objects.exists()
    assert ctx.counts["skipped_cancelled"] == 1


def test_wb_new_tasks_and_status_batches(marketplaces, shop, published):
    channel = Channel.objects.create(system="wildberries")
    ChannelOffer.objects.create(channel=channel, offer=shop.case, external_key="987654321")
    with respx.mock() as mock:
        mock.get(f"{WB}/api/v3/orders/new").mock(side_effect=[
            httpx.Response(200, json={"orders": [wb_task()]}), httpx.Response(200, json={"orders": []})])
        status = mock.post(f"{WB}/api/v3/orders/status").mock(side_effect=[
            httpx.Response(200, json={"orders": [{"id": 13833711, "supplierStatus": "new", "wbStatus": "waiting"}]}),
            httpx.Response(200, json={"orders": [{"id": 13833711, "supplierStatus": "cancel", "wbStatus": "canceled"}]})])
        pull.wb_pull(context(), StatusMapper())
        order = Order.objects.get(source="wb")
        assert order.status == OrderStatus.CONFIRMED
        line = order.lines.get()
        assert (line.sku, line.quantity, line.price) == ("CASE-RED", 1, Decimal("250.50"))  # kopecks -> rubles
        assert ChannelOrder.objects.get(order=order).alt_id == "rid-13833711"
        assert _available(shop.case, shop.warehouse) == 2
        pull.wb_pull(context(), StatusMapper())
    assert json.loads(status.calls[1].request.content) == {"orders": [13833711]}
    order.refresh_from_db()
    assert order.status == OrderStatus.CANCELLED      # marketplace-side cancellation
    assert _available(shop.case, shop.warehouse) == 3  # stock released


def test_wb_task_matched_by_barcode_when_no_size_key_is_known(marketplaces, shop, published):
    from catalog.models import Barcode

    Barcode.objects.create(offer=shop.phone, value="4600000000009")
    with respx.mock() as mock:
        mock.get(f"{WB}/api/v3/orders/new").respond(json={"orders": [wb_task(article="their-art", barcodes=("4600000000009",))]})
        mock.post(f"{WB}/api/v3/orders/status").respond(json={"orders": []})
        pull.wb_pull(context(), StatusMapper())
    assert Order.objects.get(source="wb").lines.get().offer_id == shop.phone.pk


def test_ym_moscow_times_are_the_same_instant_and_line_totals_become_unit_prices(marketplaces, shop, published):
    with respx.mock() as mock:
        route = mock.post(f"{YM}/v1/businesses/10/orders").mock(side_effect=[
            httpx.Response(200, json={"orders": [ym_order()], "paging": {"nextPageToken": "p2"}}),
            httpx.Response(200, json={"orders": [ym_order(order_id=2, items=[])], "paging": {}})])
        pull.ym_pull(context(), StatusMapper())
    assert route.calls[1].request.url.params["pageToken"] == "p2"
    order = Order.objects.get(source="ym", source_order_id="123456789")
    assert order.placed_at == datetime(2026, 5, 14, 8, 0, tzinfo=dt_timezone.utc)
    assert order.status == OrderStatus.CONFIRMED
    line = order.lines.get()
    assert (line.quantity, line.price) == (2, Decimal("250.50"))
    assert not Order.objects.filter(source_order_id="2").exists()  # no lines: nothing to hold


def test_ym_fake_orders_never_reach_the_table(marketplaces, shop, published):
    with respx.mock() as mock:
        mock.post(f"{YM}/v1/businesses/10/orders").respond(json={"orders": [{**ym_order(), "fake": True}]})
        pull.ym_pull(context(), StatusMapper())
    assert not Order.objects.exists()


def test_a_failing_marketplace_does_not_stop_the_others(marketplaces, shop, published):
    with respx.mock() as mock:
        mock.post(f"{OZON}/v4/posting/fbs/list").respond(json=postings_page(posting()))
        mock.get(f"{WB}/api/v3/orders/new").respond(status_code=503)
        mock.post(f"{YM}/v1/businesses/10/orders").respond(json={"orders": [ym_order()]})
        with pytest.raises(pull.PullFailed, match="wb"):
            pull.orders_pull(context())
    assert set(Order.objects.values_list("source", flat=True)) == {"ozon", "ym"}


def test_an_unmapped_marketplace_status_is_listed_for_the_manager(marketplaces, shop, published):
    from integrations.marketplace_orders.models import StatusMapping

    with respx.mock() as mock:
        mock.post(f"{OZON}/v4/posting/fbs/list").respond(json=postings_page(posting(status="brand_new_status")))
        pull.ozon_pull(context(), StatusMapper())
    assert StatusMapping.objects.get(source="ozon", marketplace_status="brand_new_status").status == ""
    assert Order.objects.get().status == OrderStatus.PENDING


def test_a_429_on_a_list_is_waited_out_and_the_read_goes_on(marketplaces, shop, published):
    with respx.mock() as mock:
        route = mock.post(f"{OZON}/v4/posting/fbs/list").mock(side_effect=[
            httpx.Response(429, json={"code": 8, "message": "You have reached request rate limit per second"},
                           headers={"Retry-After": "0.01"}),
            httpx.Response(200, json=postings_page(posting()))])
        pull.ozon_pull(context(), StatusMapper())
    assert route.call_count == 2
    assert Order.objects.filter(source="ozon").count() == 1


def test_ym_420_on_the_order_list_is_waited_out(marketplaces, shop, published):
    with respx.mock() as mock:
        route = mock.post(f"{YM}/v1/businesses/10/orders").mock(side_effect=[
            httpx.Response(420, json={"status": "ERROR", "errors": [{"code": "HIT_RATE_LIMIT", "message": "x"}]}),
            httpx.Response(200, json={"orders": [ym_order()]})])
        pull.ym_pull(context(), StatusMapper())
    assert route.call_count == 2 and Order.objects.filter(source="ym").count() == 1
