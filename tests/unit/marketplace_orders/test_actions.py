"""The status machine and the outbox: each marketplace action once per transition."""
from __future__ import annotations

import json
from datetime import timedelta

import httpx
import pytest
import respx
from django.utils import timezone

from integrations.http import ratelimit
from integrations.marketplace_orders import machine, outbox, pull
from integrations.marketplace_orders.machine import StatusMapper
from integrations.marketplace_orders.models import ActionState, MarketplaceAction, WbSupply
from integrations.models import OrderBinding, OrderStateMapping, System
from orders import services as order_services
from orders.models import Order, OrderStatus

from .conftest import MS, OZON, WB, YM
from .support import context, posting, postings_page, wb_task, ym_order

pytestmark = pytest.mark.django_db


def _ozon_order(number="0208245774-0029-1"):
    with respx.mock() as mock:
        mock.post(f"{OZON}/v4/posting/fbs/list").respond(json=postings_page(posting(number)))
        pull.ozon_pull(context(), StatusMapper())
    return Order.objects.get(source="ozon", source_order_id=number)


class OutboxClients:
    @staticmethod
    def limiter_paused(name: str) -> bool:
        return any(key.startswith(f"{name}:") and limiter.paused_for() > 0
                   for key, limiter in ratelimit._registry.items())


def _run() -> dict:
    return outbox.actions_flush()


# -- the machine ---------------------------------------------------------------------------------
@pytest.mark.parametrize("current,target,ok", [
    ("pending", "confirmed", True), ("confirmed", "shipped", True), ("shipped", "processing", False),
    ("processing", "cancelled", True), ("shipped", "cancelled", False), ("shipped", "returned", True),
    ("cancelled", "confirmed", False), ("returned", "completed", False), ("pending", "returned", False),
])
def test_allowed_transitions(current, target, ok):
    assert machine.allowed(current, target) is ok


def test_an_illegal_manual_change_is_refused_with_a_message(marketplaces, shop, published):
    order = _ozon_order()
    machine.status_change(order=order, status="shipped", by="admin:anna")
    with pytest.raises(machine.IllegalTransition, match="cannot go from shipped to processing"):
        machine.status_change(order=order, status="processing", by="admin:anna")
    order.refresh_from_db()
    assert order.status == OrderStatus.SHIPPED


def test_an_illegal_change_from_moysklad_is_not_sent_and_shown(marketplaces, shop, published):
    order = _ozon_order()
    order_services.order_status_set(order=order.pk, status="shipped", by="admin:x")
    order_services.order_status_set(order=order.pk, status="confirmed", by="moysklad")
    outbox.actions_plan()
    refused = MarketplaceAction.objects.get(state=ActionState.REFUSED)
    assert "cannot go from shipped to confirmed" in refused.error


# -- Ozon ----------------------------------------------------------------------------------------
def test_a_manual_change_ships_on_ozon_exactly_once(marketplaces, shop, published):
    order = _ozon_order()
    machine.status_change(order=order, status="processing", by="admin:anna")
    with respx.mock() as mock:
        ship = mock.post(f"{OZON}/v4/posting/fbs/ship").respond(json={"result": [order.source_order_id]})
        _run()
        _run()
        outbox.actions_plan()
    assert ship.call_count == 1
    body = json.loads(ship.calls[0].request.content)
    assert body["packages"] == [{"products": [{"product_id": 1904686181, "quantity": 2}]}]
    action = MarketplaceAction.objects.get(action="ozon_ship")
    assert action.state == ActionState.DONE and action.done_at


def test_a_marketplace_error_is_shown_and_nothing_is_marked_done(marketplaces, shop, published):
    order = _ozon_order()
    machine.status_change(order=order, status="processing", by="admin:anna")
    with respx.mock() as mock:
        mock.post(f"{OZON}/v4/posting/fbs/ship").respond(
            400, json={"code": 3, "message": "EXEMPLAR_INFO_NOT_FILLED_COMPLETELY", "details": []})
        _run()
    action = MarketplaceAction.objects.get(action="ozon_ship")
    assert action.state == ActionState.FAILED
    assert "EXEMPLAR_INFO_NOT_FILLED_COMPLETELY" in action.error
    assert action.done_at is None


def test_a_timeout_after_ozon_applied_the_ship_is_not_repeated(marketplaces, shop, published):
    order = _ozon_order()
    machine.status_change(order=order, status="processing", by="admin:anna")
    with respx.mock() as mock:
        ship = mock.post(f"{OZON}/v4/posting/fbs/ship").mock(side_effect=httpx.ReadTimeout("lost"))
        get = mock.post(f"{OZON}/v3/posting/fbs/get").respond(
            json={"result": {"posting_number": order.source_order_id, "status": "awaiting_deliver"}})
        _run()
        action = MarketplaceAction.objects.get(action="ozon_ship")
        assert action.state == ActionState.PENDING and action.attempted_at and "timed out" in action.error
        MarketplaceAction.objects.filter(pk=action.pk).update(next_attempt_at=timezone.now())
        _run()
    assert ship.call_count == 1 and get.call_count == 1
    action.refresh_from_db()
    assert action.state == ActionState.DONE and action.result["read_back"] == "posting is awaiting_deliver"


def test_ozon_429_is_waited_out_as_ozon_asks(marketplaces, shop, published):
    order = _ozon_order()
    machine.status_change(order=order, status="cancelled", by="admin:anna")
    with respx.mock() as mock:
        mock.post(f"{OZON}/v2/posting/fbs/cancel").mock(side_effect=[
            httpx.Response(429, json={"code": 8, "message": "You have reached request rate limit per second"},
                           headers={"Retry-After": "30"}),
            httpx.Response(200, json={"result": True})])
        before = timezone.now()
        _run()
        action = MarketplaceAction.objects.get(action="ozon_cancel")
        assert action.state == ActionState.PENDING
        assert action.next_attempt_at >= before + timedelta(seconds=29)
        _run()  # not due yet: nothing is sent
        assert mock.calls.call_count == 1
        # the shared limiter holds every Ozon call for the 30 s Ozon asked; here they have passed
        assert OutboxClients.limiter_paused("ozon")
        ratelimit._registry.clear()
        MarketplaceAction.objects.filter(pk=action.pk).update(next_attempt_at=timezone.now())
        mock.post(f"{OZON}/v3/posting/fbs/get").respond(json={"result": {"status": "awaiting_packaging"}})
        _run()
    action.refresh_from_db()
    assert action.state == ActionState.DONE


# -- marketplace-side cancellation -> MoySklad -------------------------------------------------------
def test_a_marketplace_cancellation_moves_the_moysklad_order_to_cancelled(marketplaces, shop, published):
    marketplaces.MOYSKLAD = {**marketplaces.MOYSKLAD, "BASE_URL": MS, "TOKEN": "t", "BUDGET_UNITS": 1000,
                             "REQUEST_WEIGHT": 1}
    order = _ozon_order()
    assert OrderBinding.objects.filter(system=System.MOYSKLAD, order=order).update(external_id="co-1") == 1  # exported
    OrderStateMapping.objects.create(system=System.MOYSKLAD, state_id="st-cancel", name="Отменен", status="cancelled")
    with respx.mock() as mock:
        mock.post(f"{OZON}/v4/posting/fbs/list").respond(json=postings_page(posting(status="cancelled")))
        pull.ozon_pull(context(), StatusMapper())
        put = mock.put(f"{MS}/entity/customerorder/co-1").respond(json={"id": "co-1"})
        _run()
        _run()
    order.refresh_from_db()
    assert order.status == OrderStatus.CANCELLED
    assert put.call_count == 1
    assert json.loads(put.calls[0].request.content)["state"]["meta"]["href"].endswith("/states/st-cancel")
    assert not MarketplaceAction.objects.filter(action="ozon_cancel").exists()  # Ozon is not told its own news


# -- Wildberries -----------------------------------------------------------------------------------
def _wb_order():
    with respx.mock() as mock:
        mock.get(f"{WB}/api/v3/orders/new").respond(json={"orders": [wb_task()]})
        mock.post(f"{WB}/api/v3/orders/status").respond(
            json={"orders": [{"id": 13833711, "supplierStatus": "new", "wbStatus": "waiting"}]})
        pull.wb_pull(context(), StatusMapper())
    return Order.objects.get(source="wb")


def test_wb_supply_is_opened_once_filled_and_delivered(marketplaces, shop, published):
    order = _wb_order()
    machine.status_change(order=order, status="processing", by="moysklad")
    statuses = iter([{"supplierStatus": "new"}, {"supplierStatus": "confirm"}])
    with respx.mock() as mock:
        mock.post(f"{WB}/api/v3/orders/status").mock(
            side_effect=lambda req: httpx.Response(200, json={"orders": [{"id": 13833711, **next(statuses)}]}))
        mock.get(f"{WB}/api/v3/supplies").respond(json={"supplies": [], "next": 0})
        create = mock.post(f"{WB}/api/v3/supplies").respond(201, json={"id": "WB-GI-1"})
        add = mock.patch(f"{WB}/api/marketplace/v3/supplies/WB-GI-1/orders").respond(204)
        deliver = mock.patch(f"{WB}/api/v3/supplies/WB-GI-1/deliver").respond(204)
        _run()
        machine.status_change(order=order, status="shipped", by="moysklad")
        _run()
    assert (create.call_count, add.call_count, deliver.call_count) == (1, 1, 1)
    assert json.loads(add.calls[0].request.content) == {"orders": [13833711]}
    assert WbSupply.objects.get().done
    assert set(MarketplaceAction.objects.exclude(state=ActionState.SKIPPED).values_list("state", flat=True)) == {"done"}


def test_wb_supply_create_whose_answer_was_lost_is_found_by_name(marketplaces, shop, published):
    order = _wb_order()
    machine.status_change(order=order, status="processing", by="moysklad")
    with respx.mock() as mock:
        mock.post(f"{WB}/api/v3/orders/status").respond(json={"orders": [{"id": 13833711, "supplierStatus": "new"}]})
        mock.get(f"{WB}/api/v3/supplies").respond(json={"supplies": [], "next": 0})
        create = mock.post(f"{WB}/api/v3/supplies").mock(side_effect=httpx.ReadTimeout("lost"))
        _run()
        name = WbSupply.objects.get().name
        mock.get(f"{WB}/api/v3/supplies").respond(json={"supplies": [{"id": "WB-GI-7", "name": name, "done": False}],
                                                       "next": 0})
        add = mock.patch(f"{WB}/api/marketplace/v3/supplies/WB-GI-7/orders").respond(204)
        MarketplaceAction.objects.update(next_attempt_at=timezone.now())
        _run()
    assert create.call_count == 1 and add.call_count == 1


def test_wb_429_waits_x_ratelimit_retry(marketplaces, shop, published):
    order = _wb_order()
    machine.status_change(order=order, status="cancelled", by="admin:anna")
    with respx.mock() as mock:
        mock.patch(f"{WB}/api/v3/orders/13833711/cancel").respond(
            429, json={"title": "too many requests"}, headers={"X-Ratelimit-Retry": "12"})
        before = timezone.now()
        _run()
    action = MarketplaceAction.objects.get(action="wb_cancel")
    assert action.state == ActionState.PENDING and action.next_attempt_at >= before + timedelta(seconds=11)


# -- Yandex Market ---------------------------------------------------------------------------------
def test_ym_status_updates_go_in_batches_of_30(marketplaces, shop, published):
    with respx.mock() as mock:
        mock.post(f"{YM}/v1/businesses/10/orders").respond(
            json={"orders": [ym_order(order_id=1000 + i) for i in range(35)]})
        pull.ym_pull(context(), StatusMapper())
    for order in Order.objects.filter(source="ym"):
        machine.status_change(order=order, status="processing", by="moysklad")

    def answer(request):
        ids = [o["id"] for o in json.loads(request.content)["orders"]]
        return httpx.Response(200, json={"status": "OK", "result": {"orders": [
            {"id": i, "status": "PROCESSING", "substatus": "READY_TO_SHIP",
             "updateStatus": "OK" if i != 1003 else "ERROR", "errorDetails": "bad boxes" if i == 1003 else None}
            for i in ids]}})

    with respx.mock() as mock:
        route = mock.post(f"{YM}/v2/campaigns/20/orders/status-update").mock(side_effect=answer)
        _run()
        _run()
    assert route.call_count == 2
    assert [len(json.loads(c.request.content)["orders"]) for c in route.calls] == [30, 5]
    first = json.loads(route.calls[0].request.content)["orders"][0]
    assert first["status"] == "PROCESSING" and first["substatus"] == "READY_TO_SHIP"
    assert MarketplaceAction.objects.filter(state=ActionState.DONE).count() == 34
    failed = MarketplaceAction.objects.get(state=ActionState.FAILED)
    assert "bad boxes" in failed.error


def test_ym_420_is_waited_out_until_the_resource_reopens(marketplaces, shop, published):
    with respx.mock() as mock:
        mock.post(f"{YM}/v1/businesses/10/orders").respond(json={"orders": [ym_order()]})
        pull.ym_pull(context(), StatusMapper())
    machine.status_change(order=Order.objects.get(source="ym"), status="cancelled", by="admin:a")
    until = (timezone.now() + timedelta(seconds=40)).strftime("%a, %d %b %Y %H:%M:%S GMT")
    with respx.mock() as mock:
        mock.post(f"{YM}/v2/campaigns/20/orders/status-update").respond(
            420, json={"status": "ERROR", "errors": [{"code": "HIT_RATE_LIMIT", "message": "Hit rate limit"}]},
            headers={"X-RateLimit-Resource-Until": until})
        _run()
    action = MarketplaceAction.objects.get(action="ym_cancel")
    assert action.state == ActionState.PENDING
    assert action.next_attempt_at >= timezone.now() + timedelta(seconds=30)
