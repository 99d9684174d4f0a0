"""One Idempotency-Key, one request: a retry of the same body answers the same order; another body
under that key is refused with 422 and learns nothing of the stored order."""
import json

import pytest

from orders.models import Order
from stock.models import StockLevel
from tests.orders_fixtures import order_body, post_order

pytestmark = pytest.mark.django_db


def _raw(api, text: str, key: str):
    return api.generic("POST", "/api/v1/orders", text.encode(), content_type="application/json",
                       HTTP_IDEMPOTENCY_KEY=key)


def test_same_key_with_another_body_is_422_and_reveals_nothing(api, shop, published):
    first = post_order(api, order_body(("PHONE-1", 1)), key="k-1")
    assert first.status_code == 201
    other = order_body(("CASE-RED", 2), name="Чужой", email="someone@example.net", phone="+7 900 111 22 33")
    response = post_order(api, other, key="k-1")
    assert response.status_code == 422
    body = response.json()
    assert body["error"] == "idempotency_mismatch"
    text = response.content.decode()
    for secret in (first.json()["id"], first.json()["number"], "Иван", "ivan@example.com", "Примерная", "PHONE-1"):
        assert secret not in text
    assert Order.objects.count() == 1
    assert StockLevel.objects.get(offer=shop.case).available == 3  # nothing reserved for the refused body


def test_changed_quantity_alone_is_a_mismatch(api, shop, published):
    assert post_order(api, order_body(("PHONE-1", 1)), key="k-1").status_code == 201
    assert post_order(api, order_body(("PHONE-1", 2)), key="k-1").status_code == 422


def test_the_same_body_resent_in_another_form_is_a_replay(api, shop, published):
    body = order_body(("PHONE-1", 1), comment="")
    first = _raw(api, json.dumps(body), "k-1")
    assert first.status_code == 201
    # Other key order, whitespace, escaped non-ASCII and the default comment left out.
    body.pop("comment")
    again = _raw(api, json.dumps(dict(reversed(list(body.items()))), indent=4, ensure_ascii=True), "k-1")
    assert again.status_code == 200, again.content
    assert again.json()["id"] == first.json()["id"]
    assert Order.objects.count() == 1
