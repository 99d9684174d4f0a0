"""`marketplace-returns`: recorded once, units back once, unknown orders flagged, manager told."""
from __future__ import annotations

import json
from decimal import Decimal

import httpx
import pytest
import respx

from integrations.marketplace_orders import pull, returns
from integrations.marketplace_orders.machine import StatusMapper
from integrations.marketplace_orders.models import MarketplaceReturn
from integrations.models import OrderBinding, System
from orders.models import Order
from stock.models import StockChange, StockLevel

from .conftest import MS, OZON, TG, WB, WB_RETURNS, YM
from .support import context, posting, postings_page, wb_task, ym_order

pytestmark = pytest.mark.django_db


def ozon_return(return_id=1, number="0208245774-0029-1", status="ReceivedBySeller", offer="PHONE-1", qty=1):
    return {"id": return_id, "posting_number": number, "schema": "FBS", "type": "ClientReturn",
            "return_reason_name": "Не подошёл",
            "product": {"sku": 1904686181, "offer_id": offer, "quantity": qty, "price": {"price": 1390.5}},
            "visual": {"status": {"sys_name": status}, "change_moment": "2026-05-20T10:00:00Z"},
            "logistic": {"return_date": "2026-05-20T10:00:00Z"}}


def _shipped_ozon_order():
    with respx.mock() as mock:
        mock.post(f"{OZON}/v4/posting/fbs/list").mock(side_effect=[
            httpx.Response(200, json=postings_page(posting())),
            httpx.Response(200, json=postings_page(posting(status="delivered")))])
        pull.ozon_pull(context(), StatusMapper())
        pull.ozon_pull(context(), StatusMapper())
    return Order.objects.get(source="ozon")


def _level(shop):
    return StockLevel.objects.get(offer=shop.phone, warehouse=shop.warehouse)


def _pull_returns(mock, *rows):
    mock.post(f"{OZON}/v1/returns/list").respond(json={"returns": list(rows), "has_next": False})
    mock.get(f"{YM}/v2/campaigns/20/returns").respond(json={"result": {"returns": [], "paging": {}}})
    mock.get(f"{WB_RETURNS}/api/v1/claims").respond(json={"claims": [], "total": 0})
    ctx = context("marketplace-returns")
    returns.returns_pull(ctx)
    return ctx


def test_the_same_return_seen_twice_restores_stock_once(marketplaces, shop, published):
    _shipped_ozon_order()
    assert _level(shop).available == 5 and _level(shop).stock == 5
    with respx.mock() as mock:
        _pull_returns(mock, ozon_return())
        _pull_returns(mock, ozon_return())
    row = MarketplaceReturn.objects.get()
    assert row.restore == "restored" and row.restored_via == "stock" and not row.flagged
    assert _level(shop).stock == 6 and _level(shop).available == 6
    assert StockChange.objects.filter(offer=shop.phone, via="return").count() == 1


def test_units_come_back_only_once_received(marketplaces, shop, published):
    _shipped_ozon_order()
    with respx.mock() as mock:
        _pull_returns(mock, ozon_return(status="MovingToSeller"))
        assert _level(shop).stock == 5
        assert MarketplaceReturn.objects.get().restore == "waiting"
        _pull_returns(mock, ozon_return(status="ReceivedBySeller"))
    assert _level(shop).stock == 6


def test_a_return_for_an_unknown_order_is_flagged_and_touches_no_stock(marketplaces, shop, published):
    with respx.mock() as mock:
        _pull_returns(mock, ozon_return(number="9999-1"))
    row = MarketplaceReturn.objects.get()
    assert row.flagged and row.restore == "flagged" and row.order is None
    assert _level(shop).stock == 5
    assert not StockChange.objects.filter(via="return").exists()


def test_with_moysklad_a_salesreturn_is_made_once_against_the_shipment(marketplaces, shop, published):
    marketplaces.MOYSKLAD = {**marketplaces.MOYSKLAD, "BASE_URL": MS, "TOKEN": "t", "BUDGET_UNITS": 1000,
                             "REQUEST_WEIGHT": 1}
    order = _shipped_ozon_order()
    assert OrderBinding.objects.filter(system=System.MOYSKLAD, order=order).update(external_id="co-1") == 1  # exported
    demand = {"meta": {"href": f"{MS}/entity/demand/d-1", "type": "demand"}}
    with respx.mock() as mock:
        mock.get(f"{MS}/entity/salesreturn").respond(json={"rows": []})
        mock.get(f"{MS}/entity/customerorder/co-1").respond(json={
            "id": "co-1", "organization": {"meta": {"href": "org"}}, "agent": {"meta": {"href": "agent"}},
            "store": {"meta": {"href": "store"}}, "demands": [demand]})
        create = mock.post(f"{MS}/entity/salesreturn").respond(json={"id": "sr-1"})
        _pull_returns(mock, ozon_return())
        _pull_returns(mock, ozon_return())
    assert create.call_count == 1
    body = json.loads(create.calls[0].request.content)
    assert body["demand"] == demand and body["externalCode"] == "syncsite-return-ozon-1"
    assert body["positions"][0]["quantity"] == 1 and body["positions"][0]["price"] == 139050
    row = MarketplaceReturn.objects.get()
    assert (row.restore, row.salesreturn_id, row.restored_via) == ("restored", "sr-1", "moysklad salesreturn")
    assert _level(shop).stock == 5  # MoySklad's figure rises; our stock sync follows it


def test_ym_and_wb_returns_link_to_their_orders(marketplaces, shop, published):
    with respx.mock() as mock:
        mock.get(f"{WB}/api/v3/orders/new").respond(json={"orders": [wb_task(article="PHONE-1")]})
        mock.post(f"{WB}/api/v3/orders/status").respond(json={"orders": []})
        pull.wb_pull(context(), StatusMapper())
        mock.post(f"{YM}/v1/businesses/10/orders").respond(json={"orders": [ym_order()]})
        pull.ym_pull(context(), StatusMapper())
        mock.post(f"{OZON}/v1/returns/list").respond(json={"returns": [], "has_next": False})
        mock.get(f"{YM}/v2/campaigns/20/returns").respond(json={"result": {"returns": [
            {"id": 77, "orderId": 123456789, "returnType": "RETURN", "shipmentStatus": "PICKED",
             "updateDate": "2026-05-20T10:00:00+03:00", "amount": {"value": 250.5},
             "items": [{"shopSku": "CASE-RED", "count": 1}]}], "paging": {}}})
        mock.get(f"{WB_RETURNS}/api/v1/claims").respond(json={"claims": [
            {"id": "fe3e", "claim_type": 1, "status": 2, "status_ex": 10, "srid": "rid-13833711", "price": 157,
             "dt": "2024-03-26T17:06:12", "dt_update": "2024-03-26T17:06:12"}], "total": 1})
        returns.returns_pull(context("marketplace-returns"))
    ym = MarketplaceReturn.objects.get(source="ym")
    wb = MarketplaceReturn.objects.get(source="wb")
    assert ym.order.source_order_id == "123456789" and ym.restore == "restored"
    assert wb.order.source_order_id == "13833711" and wb.lines == [{"sku": "PHONE-1", "quantity": 1}]
    assert wb.restore == "restored"
    assert wb.returned_at.isoformat() == "2024-03-26T14:06:12+00:00"  # Moscow time without an offset


def test_the_manager_is_told_in_telegram_once(marketplaces, shop, published):
    marketplaces.TELEGRAM = {**marketplaces.TELEGRAM, "BOT_TOKEN": "123:abc", "CHAT_ID": "-100"}
    _shipped_ozon_order()
    with respx.mock() as mock:
        send = mock.post(f"{TG}/bot123:abc/sendMessage").respond(json={"ok": True, "result": {"message_id": 1}})
        _pull_returns(mock, ozon_return(), ozon_return(return_id=2, number="9999-1"))
        _pull_returns(mock, ozon_return(), ozon_return(return_id=2, number="9999-1"))
    assert send.call_count == 1
    text = json.loads(send.calls[0].request.content)["text"]
    assert "Ozon 1" in text and "неизвестный заказ 9999-1" in text and "нужен менеджер" in text
    assert MarketplaceReturn.objects.filter(notified_at__isnull=True).count() == 0


def test_a_failed_telegram_send_is_tried_again_next_run(marketplaces, shop, published):
    marketplaces.TELEGRAM = {**marketplaces.TELEGRAM, "BOT_TOKEN": "123:abc", "CHAT_ID": "-100"}
    with respx.mock() as mock:
        send = mock.post(f"{TG}/bot123:abc/sendMessage").mock(side_effect=[
            httpx.Response(500, json={"ok": False, "description": "down"}),
            httpx.Response(200, json={"ok": True, "result": {}})])
        _pull_returns(mock, ozon_return(number="9999-1"))
        assert MarketplaceReturn.objects.get().notified_at is None
        _pull_returns(mock, ozon_return(number="9999-1"))
    assert send.call_count == 2
    assert MarketplaceReturn.objects.get().notified_at is not None


def test_return_amounts_are_rubles(marketplaces, shop, published):
    with respx.mock() as mock:
        _pull_returns(mock, ozon_return(qty=2))
    assert MarketplaceReturn.objects.get().amount == Decimal("2781.00")
