"""GET /api/v1/orders: every channel's orders, filters, cursor pages, source_order_id."""
from __future__ import annotations

import pytest
import respx

from integrations.marketplace_orders import pull
from integrations.marketplace_orders.machine import StatusMapper
from orders.models import Order
from tests.orders_fixtures import order_body, post_order

from .conftest import OZON, YM
from .support import context, posting, postings_page, ym_order

pytestmark = pytest.mark.django_db


def _four_orders(api):
    assert post_order(api, order_body(("PHONE-1", 1)), key="k1").status_code == 201
    with respx.mock() as mock:
        mock.post(f"{OZON}/v4/posting/fbs/list").respond(json=postings_page(posting("1-1-1"), posting("1-1-2")))
        pull.ozon_pull(context(), StatusMapper())
        mock.post(f"{YM}/v1/businesses/10/orders").respond(json={"orders": [ym_order()]})
        pull.ym_pull(context(), StatusMapper())


def test_list_pages_every_channel_oldest_change_first(marketplaces, shop, published, api):
    _four_orders(api)
    seen, cursor, pages = [], None, 0
    while True:
        answer = api.get("/api/v1/orders", {"limit": 3, **({"cursor": cursor} if cursor else {})})
        assert answer.status_code == 200
        data = answer.json()
        seen += data["items"]
        pages += 1
        cursor = data["next"]
        if not cursor:
            break
    assert pages == 2 and len(seen) == 4
    assert {o["source"] for o in seen} == {"site", "ozon", "ym"}
    assert [o["updated_at"] for o in seen] == sorted(o["updated_at"] for o in seen)
    ozon = next(o for o in seen if o["source"] == "ozon")
    assert ozon["source_order_id"] in ("1-1-1", "1-1-2") and ozon["status"] == "confirmed"
    assert all(o["source_order_id"] for o in seen)


def test_list_filters_by_source_status_and_time(marketplaces, shop, published, api):
    _four_orders(api)
    assert len(api.get("/api/v1/orders", {"source": "ozon"}).json()["items"]) == 2
    assert [o["source"] for o in api.get("/api/v1/orders", {"status": "pending"}).json()["items"]] == ["site"]
    latest = Order.objects.order_by("-updated_at").first()
    items = api.get("/api/v1/orders", {"updated_since": latest.updated_at.isoformat()}).json()["items"]
    assert [o["id"] for o in items] == [str(latest.uid)]
    assert api.get("/api/v1/orders", {"source": "amazon"}).status_code == 400
    assert api.get("/api/v1/orders", {"cursor": "nonsense"}).json()["error"] == "invalid"


def test_detail_names_the_channel_order(marketplaces, shop, published, api):
    _four_orders(api)
    order = Order.objects.get(source_order_id="1-1-1")
    data = api.get(f"/api/v1/orders/{order.uid}").json()
    assert (data["source"], data["source_order_id"]) == ("ozon", "1-1-1")
    assert [h["status"] for h in data["history"]] == ["pending", "confirmed"]
