"""A sellable unit without a sale price is listed and keeps its stock, but cannot be ordered."""
from decimal import Decimal

import pytest

from catalog.models import Offer
from orders.models import Order
from stock.models import StockHold
from stock.models import StockLevel
from tests.factories import make_offer, make_stock
from tests.orders_fixtures import order_body, post_order

pytestmark = pytest.mark.django_db


@pytest.fixture
def unpriced(shop):
    offer = make_offer(sku="NOPRICE-1", name="Без цены", price=None)
    make_stock(offer=offer, warehouse=shop.warehouse, stock=7)
    return offer


def test_order_for_a_unit_without_a_price_is_400_naming_the_sku_and_touches_no_stock(api, shop, unpriced):
    response = post_order(api, order_body(("PHONE-1", 1), ("NOPRICE-1", 2)))
    assert response.status_code == 400, response.content
    body = response.json()
    assert body["error"] == "invalid"
    assert body["detail"][0]["loc"] == ["body", "items", 1, "sku"]
    assert "NOPRICE-1" in body["detail"][0]["msg"]
    assert not Order.objects.exists() and not StockHold.objects.exists()
    assert StockLevel.objects.get(offer=unpriced).available == 7
    assert StockLevel.objects.get(offer=shop.phone).available == 5


def test_a_price_of_zero_can_be_ordered(api, shop):
    free = make_offer(sku="GIFT-1", name="Подарок", price=Decimal("0"))
    make_stock(offer=free, warehouse=shop.warehouse, stock=3)
    response = post_order(api, order_body(("GIFT-1", 1)))
    assert response.status_code == 201, response.content
    assert response.json()["items"][0]["price"] == "0.00"


def test_a_unit_without_a_price_is_listed_with_price_null_and_its_stock(api, unpriced):
    response = api.get("/api/v1/products/NOPRICE-1")
    assert response.status_code == 200
    body = response.json()
    assert body["price"] is None and Decimal(str(body["available"])) == 7 and body["archived"] is False
    assert Offer.objects.get(sku="NOPRICE-1").price is None
