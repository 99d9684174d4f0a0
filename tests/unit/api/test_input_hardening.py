"""Hostile and careless input to the storefront API gets a clear 4xx JSON error and changes
nothing — never a 500 from the database or the standard library. Run on PostgreSQL too: SQLite
stores NUL and wide offsets without complaint, PostgreSQL refuses them at insert."""
import base64
import copy
import json

import pytest

from orders.models import Customer, Order
from stock.models import StockHold
from tests.orders_fixtures import order_body, post_order, published, shop  # noqa: F401  (fixtures)

pytestmark = [pytest.mark.django_db, pytest.mark.security]

ORDERS = "/api/v1/orders"
PRODUCTS = "/api/v1/products"


@pytest.fixture(autouse=True)
def _shop(shop, published):
    return shop


def _nothing_written():
    assert not Order.objects.exists()
    assert not Customer.objects.exists()
    assert not StockHold.objects.exists()


def _error(response, status: int, code: str) -> dict:
    assert response.status_code == status, response.content
    assert response["Content-Type"].startswith("application/json")
    body = response.json()
    assert body["error"] == code
    return body


def _post_raw(api, data: bytes, content_type: str | None = "application/json", key: str = "checkout-1"):
    extra = {"HTTP_IDEMPOTENCY_KEY": key}
    if content_type is None:
        return api.generic("POST", ORDERS, data, **extra)
    return api.generic("POST", ORDERS, data, content_type=content_type, **extra)


# -- text the database cannot store -----------------------------------------------------------------
BODY_PATHS = [("customer", "name"), ("customer", "email"), ("customer", "phone"), ("items", 0, "sku"),
              ("shipping", "method"), ("shipping", "address"), ("comment",)]


def _with(body: dict, path: tuple, value: str) -> dict:
    body = copy.deepcopy(body)
    target = body
    for step in path[:-1]:
        target = target[step]
    target[path[-1]] = value
    return body


@pytest.mark.parametrize("path", BODY_PATHS, ids=lambda p: ".".join(map(str, p)))
@pytest.mark.parametrize("bad", ["a\u0000b", "a\ud800b"], ids=["nul", "lone-surrogate"])
def test_unstorable_text_anywhere_in_an_order_is_400(api, path, bad):
    base = order_body(("PHONE-1", 1), email="ivan@example.com")
    data = json.dumps(_with(base, path, bad)).encode()
    body = _error(_post_raw(api, data), 400, "invalid")
    assert "NUL" in json.dumps(body)
    _nothing_written()


def test_unstorable_text_in_a_key_is_400(api):
    body = order_body(("PHONE-1", 1))
    body["customer"]["na\u0000me"] = "x"
    answer = _error(_post_raw(api, json.dumps(body).encode()), 400, "invalid")
    assert "NUL" in json.dumps(answer)
    _nothing_written()


@pytest.mark.parametrize("url", [
    f"{PRODUCTS}/%00", f"{PRODUCTS}/A-%00-1", f"{ORDERS}/%00",
    f"{PRODUCTS}?updated_since=%00", f"{PRODUCTS}?cursor=%00", f"{PRODUCTS}?limit=%00", f"{PRODUCTS}?%00=1",
])
def test_nul_in_the_path_or_query_is_400(api, url):
    body = _error(api.get(url), 400, "invalid")
    assert "NUL" in json.dumps(body)


def test_a_phone_within_the_field_length_but_too_many_digits_is_400(api):
    body = _error(post_order(api, order_body(("PHONE-1", 1), phone="9" * 64)), 400, "invalid")
    assert body["detail"][0]["loc"] == ["body", "customer", "phone"]
    _nothing_written()


@pytest.mark.parametrize("key", ["ключ-1", "a\u0000b", "a b", "tab\there"])
def test_an_idempotency_key_that_is_not_printable_ascii_is_400(api, key):
    response = api.post(ORDERS, order_body(("PHONE-1", 1)), content_type="application/json",
                        HTTP_IDEMPOTENCY_KEY=key)
    body = _error(response, 400, "invalid")
    assert body["detail"][0]["loc"] == ["header", "Idempotency-Key"]
    _nothing_written()


# -- quantities are JSON integers -----------------------------------------------------------------
@pytest.mark.parametrize("quantity", [True, "2", 2.0, None, [2], {"n": 2}])
def test_a_quantity_that_is_not_a_json_integer_is_400_naming_the_line(api, quantity):
    body = order_body(("CASE-RED", 1), ("PHONE-1", 1))
    body["items"][1]["quantity"] = quantity
    detail = _error(post_order(api, body), 400, "invalid")["detail"]
    assert detail[0]["loc"] == ["body", "items", 1, "quantity"]
    _nothing_written()


# -- bodies that are not JSON or not standard JSON -------------------------------------------------
@pytest.mark.parametrize("content_type", [
    "text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x", "application/xml", None,
])
def test_a_body_that_is_not_declared_json_is_415(api, content_type):
    data = json.dumps(order_body(("PHONE-1", 1))).encode()
    body = _error(_post_raw(api, data, content_type=content_type), 415, "unsupported_media_type")
    assert "application/json" in body["detail"]
    _nothing_written()


def test_json_with_a_charset_is_accepted(api):
    data = json.dumps(order_body(("PHONE-1", 1))).encode()
    assert _post_raw(api, data, content_type="application/json; charset=utf-8").status_code == 201


def test_the_media_type_is_checked_after_the_token(client, settings):
    settings.STOREFRONT_API_TOKEN = "secret"
    response = client.generic("POST", ORDERS, b"x=1", content_type="text/plain")
    _error(response, 401, "unauthorized")


@pytest.mark.parametrize("raw", [
    b"[" * 1000 + b"]" * 1000,
    b'{"customer": ' * 50 + b"{}" + b"}" * 50,
    b'{"customer": {"name": NaN}}',
    b'{"comment": Infinity}',
    b'{"items": [{"sku": "PHONE-1", "quantity": ' + b"9" * 5000 + b"}]}",
    b"\xff\xfe not utf-8",
    b'{"unterminated": ',
])
def test_malformed_or_abusive_json_is_400(api, raw):
    body = _error(_post_raw(api, raw), 400, "invalid")
    assert body["detail"], "the answer says what is wrong"
    _nothing_written()


# -- cursors and times the database cannot hold -----------------------------------------------------
def _cursor(text: str) -> str:
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


@pytest.mark.parametrize("cursor", [_cursor("v1.999999999999999999.1"),
                                    _cursor("v1.-1.1"), "x" * 5000])
def test_a_cursor_out_of_range_is_400(api, cursor):
    body = _error(api.get(PRODUCTS, {"cursor": cursor}), 400, "invalid")
    assert body["detail"][0]["loc"][-1] == "cursor"


@pytest.mark.parametrize("moment", ["2026-11-20T10:00:00+23:59", "2026-11-20T10:00:00-23:59",
                                    "2026-11-20T10:00:00+05:30:15"])
def test_any_offset_python_reads_is_a_valid_updated_since(api, moment):
    response = api.get(PRODUCTS, {"updated_since": moment})
    assert response.status_code == 200, response.content


@pytest.mark.parametrize("moment", ["0001-01-01T00:00:00+23:59", "9999-12-31T23:59:59-23:59"])
def test_updated_since_beyond_the_calendar_in_utc_is_400(api, moment):
    body = _error(api.get(PRODUCTS, {"updated_since": moment}), 400, "invalid")
    assert "updated_since" in body["detail"][0]["loc"]
