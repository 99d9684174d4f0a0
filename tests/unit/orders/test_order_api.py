"""POST /api/v1/orders and GET /api/v1/orders/{id}: idempotency, validation naming the line,
stock reservation and the 409, the order's public shape."""
from decimal import Decimal

import pytest

from orders.models import Customer, Order, OrderLine, OrderStatusChange
from stock.models import StockHold, StockLevel
from tests.orders_fixtures import order_body, post_order

pytestmark = pytest.mark.django_db


def _available(offer) -> Decimal:
    return StockLevel.objects.get(offer=offer).available


def _nothing_written():
    assert not Order.objects.exists()
    assert not OrderLine.objects.exists()
    assert not StockHold.objects.exists()
    assert not Customer.objects.exists()


def test_create_order_reserves_stock_and_answers_201(api, shop, published, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        response = post_order(api, order_body(("PHONE-1", 2), ("CASE-RED", 1)))
    assert response.status_code == 201, response.content
    data = response.json()
    assert data["status"] == "pending" and data["source"] == "site"
    assert data["number"].startswith("S-")
    assert data["total"] == "3248.50"
    assert [(i["sku"], i["quantity"], i["price"]) for i in data["items"]] == [("PHONE-1", 2, "1499.00"),
                                                                           ("CASE-RED", 1, "250.50")]
    assert [h["status"] for h in data["history"]] == ["pending"]
    assert _available(shop.phone) == 3 and _available(shop.case) == 2
    assert StockHold.objects.filter(released_at__isnull=True).count() == 2
    # The export is kicked after commit (one greppable call into integrations).
    assert published.names() == ["integrations.moysklad.order_export"]


def test_same_idempotency_key_answers_same_order_with_200(api, shop, published):
    first = post_order(api, order_body(("PHONE-1", 1)), key="k-42")
    again = post_order(api, order_body(("PHONE-1", 1)), key="k-42")
    assert (first.status_code, again.status_code) == (201, 200)
    assert first.json()["id"] == again.json()["id"]
    assert Order.objects.count() == 1
    assert _available(shop.phone) == 4  # reserved once


def test_missing_idempotency_key_is_400(api, shop):
    response = post_order(api, order_body(("PHONE-1", 1)), key=None)
    assert response.status_code == 400
    assert response.json()["error"] == "invalid"
    assert "Idempotency-Key" in str(response.json()["detail"])
    _nothing_written()


def test_unknown_sku_is_400_naming_the_line(api, shop):
    response = post_order(api, order_body(("PHONE-1", 1), ("NO-SUCH", 1)))
    assert response.status_code == 400
    body = response.json()
    assert body["error"] == "invalid"
    assert body["detail"][0]["loc"] == ["body", "items", 1, "sku"]
    assert "NO-SUCH" in body["detail"][0]["msg"]
    _nothing_written()
    assert _available(shop.phone) == 5


@pytest.mark.parametrize("quantity", [0, -3])
def test_zero_or_negative_quantity_is_400_naming_the_line(api, shop, quantity):
    response = post_order(api, order_body(("PHONE-1", 1), ("CASE-RED", quantity)))
    assert response.status_code == 400
    detail = response.json()["detail"][0]
    assert detail["loc"] == ["body", "items", 1, "quantity"]
    assert "line 1" in detail["msg"]
    _nothing_written()


def test_fractional_quantity_is_400(api, shop):
    response = post_order(api, order_body(("PHONE-1", 1.5)))
    assert response.status_code == 400
    _nothing_written()


def test_empty_items_and_missing_contact_are_400(api, shop):
    assert post_order(api, order_body()).status_code == 400
    assert post_order(api, order_body(("PHONE-1", 1), email="", phone=""), key="k2").status_code == 400
    assert post_order(api, order_body(("PHONE-1", 1), email="not-an-email"), key="k3").status_code == 400
    _nothing_written()


def test_insufficient_stock_is_409_with_available_and_requested(api, shop):
    response = post_order(api, order_body(("PHONE-1", 1), ("CASE-RED", 4)))
    assert response.status_code == 409
    body = response.json()
    assert body["error"] == "insufficient_stock"
    assert (body["sku"], body["available"], body["requested"], body["line"]) == ("CASE-RED", 3, 4, 1)
    _nothing_written()
    assert _available(shop.phone) == 5  # the first line's reservation was rolled back too


def test_last_unit_goes_to_the_first_order(api, shop, published):
    assert post_order(api, order_body(("CASE-RED", 3)), key="a").status_code == 201
    second = post_order(api, order_body(("CASE-RED", 1)), key="b")
    assert second.status_code == 409 and second.json()["available"] == 0
    assert _available(shop.case) == 0


def test_an_order_is_held_in_one_warehouse_never_split(api, shop, published):
    from tests.factories import make_stock, make_warehouse

    make_stock(offer=shop.case, warehouse=make_warehouse(code="second"), stock=2)
    response = post_order(api, order_body(("CASE-RED", 5)))
    assert response.status_code == 409
    body = response.json()
    assert (body["available"], body["requested"]) == (3, 5)  # the warehouse holding the most of it
    assert "no single warehouse holds the whole order" in body["detail"]
    _nothing_written()
    assert sorted(StockLevel.objects.filter(offer=shop.case).values_list("available", flat=True)) == [2, 3]


def test_archived_offer_is_unknown(api, shop):
    shop.phone.archived = True
    shop.phone.save()
    response = post_order(api, order_body(("PHONE-1", 1)))
    assert response.status_code == 400 and response.json()["detail"][0]["loc"] == ["body", "items", 0, "sku"]


def test_get_order_shows_items_total_and_history(api, shop, published):
    created = post_order(api, order_body(("PHONE-1", 2))).json()
    response = api.get(f"/api/v1/orders/{created['id']}")
    assert response.status_code == 200
    data = response.json()
    assert {k: data[k] for k in ("id", "number", "source", "status", "total")} == {
        "id": created["id"], "number": created["number"], "source": "site", "status": "pending", "total": "2998.00"}
    assert data["items"][0]["sku"] == "PHONE-1"
    assert data["history"][0]["status"] == "pending" and "+" in data["history"][0]["at"]


def test_get_unknown_order_is_404(api, db):
    for ref in ("00000000-0000-0000-0000-000000000000", "12", "not-a-uuid"):
        response = api.get(f"/api/v1/orders/{ref}")
        assert response.status_code == 404 and response.json()["error"] == "unknown_order"


def test_orders_need_the_bearer_token(client, shop, settings):
    settings.STOREFRONT_API_TOKEN = "secret"
    response = post_order(client, order_body(("PHONE-1", 1)))
    assert response.status_code == 401
    _nothing_written()


def test_returning_customer_is_matched_by_email_or_phone(api, shop, published):
    post_order(api, order_body(("PHONE-1", 1)), key="a")
    post_order(api, order_body(("PHONE-1", 1), email="IVAN@example.com"), key="b")
    post_order(api, order_body(("PHONE-1", 1), email="", phone="8 926 123 45 67"), key="c")
    assert Customer.objects.count() == 1
    assert OrderStatusChange.objects.count() == 3
