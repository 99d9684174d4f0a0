"""What a hostile or careless client can send to the MoySklad webhook: the same 404 until the token
is right, bodies that used to end in a 500 at insert, and links that must never be followed. Every
refused request stores nothing and signals nothing. Our MoySklad is the sandbox's, in-process
(`ms_respx`)."""
import json

import pytest

from catalog.models import Offer, Product
from integrations.models import InboundEvent, ProductBinding
from tests.orders_fixtures import MS_BASE, WEBHOOK_TOKEN, deliver, notification, process_all

pytestmark = [pytest.mark.django_db, pytest.mark.security]
BASE = MS_BASE


def nothing_stored(published) -> bool:
    return not InboundEvent.objects.exists() and not published.calls


# -- one answer until the token is right -------------------------------------------------------------
def _probes():
    body = json.dumps(notification(("product", "p1", "UPDATE"))).encode()
    big = b'{"events": [' + b" " * 5000 + b"]}"
    return [
        ("POST", "/webhooks/moysklad/wrong-token/", body, {}),
        ("POST", "/webhooks/moysklad/", body, {}),                              # token missing
        ("POST", "/webhooks/moysklad", body, {}),                               # no slash at all
        ("POST", "/webhooks/moysklad//", body, {}),                             # empty token
        ("POST", f"/webhooks/moysklad/{WEBHOOK_TOKEN}x/", body, {}),            # token with a suffix
        ("POST", f"/webhooks/moysklad/{WEBHOOK_TOKEN[:-1]}/", body, {}),        # token cut short
        ("POST", f"/webhooks/moysklad/{WEBHOOK_TOKEN}/extra/", body, {}),       # right token, other path
        ("POST", f"/webhooks/moysklad/{WEBHOOK_TOKEN}", body, {}),              # right token, no slash
        ("POST", "/webhooks/moysklad/wrong-token/", big, {}),                   # oversized, wrong token
        ("POST", "/webhooks/moysklad/wrong-token/", b"", {"CONTENT_LENGTH": "99999999"}),  # declared huge
        ("POST", "/webhooks/moysklad/wrong-token/", b"{not json", {}),          # malformed, wrong token
        ("GET", "/webhooks/moysklad/wrong-token/", b"", {}),
        ("PUT", "/webhooks/moysklad/wrong-token/", body, {}),
        ("GET", "/webhooks/moysklad/", b"", {}),
    ]


@pytest.mark.parametrize("method,path,raw,extra", _probes())
def test_every_request_is_the_same_json_404_until_the_token_is_right(client, ms_respx, published, settings,
                                                                     method, path, raw, extra):
    settings.WEBHOOK_MAX_BODY = 1000
    reference = client.generic("POST", "/webhooks/moysklad/some-wrong-token/", b"{}", content_type="application/json")
    response = client.generic(method, path, raw, content_type="application/json", **extra)
    assert response.status_code == 404
    assert response.content == reference.content == b'{"error": "not_found", "detail": "no such webhook"}'
    assert response["Content-Type"] == reference["Content-Type"] == "application/json"
    assert nothing_stored(published)


@pytest.mark.parametrize("path", ["/webhooks/moysklad/anything/", "/webhooks/moysklad/"])
def test_unset_token_answers_the_same_404(client, ms_respx, published, settings, path):
    settings.MOYSKLAD = {**settings.MOYSKLAD, "WEBHOOK_TOKEN": ""}
    response = deliver(client, notification(("product", "p1", "UPDATE")), token="") if path.endswith("moysklad/") \
        else client.generic("POST", path, b"{}", content_type="application/json")
    assert response.status_code == 404 and response.json() == {"error": "not_found", "detail": "no such webhook"}
    assert nothing_stored(published)


def test_after_the_right_token_oversize_is_413_a_bad_body_400_and_other_methods_405(client, ms_respx, published,
                                                                                       settings):
    settings.WEBHOOK_MAX_BODY = 1000
    url = f"/webhooks/moysklad/{WEBHOOK_TOKEN}/"
    big = client.generic("POST", url, b'{"events": [' + b" " * 5000 + b"]}", content_type="application/json")
    assert big.status_code == 413 and big.json()["error"] == "too_large"
    declared = client.generic("POST", url, b"{}", content_type="application/json", CONTENT_LENGTH="99999999")
    assert declared.status_code == 413
    assert client.generic("POST", url, b"{not json", content_type="application/json").status_code == 400
    get = client.get(url)
    assert get.status_code == 405 and get.json()["error"] == "method_not_allowed" and get["Allow"] == "POST"
    assert nothing_stored(published)


# -- bodies that used to fail at insert (500) are refused with 400 -------------------------------------
def _event_with(extra: str) -> bytes:
    """A valid notification whose event carries `extra` (raw JSON text) as an extra field."""
    return ('{"events": [{"meta": {"type": "product", "href": "' + BASE + '/entity/product/p1"}, '
            '"action": "UPDATE", "extra": ' + extra + '}]}').encode()


@pytest.mark.parametrize("raw", [
    _event_with("[" * 1000 + "]" * 1000),                                   # RecursionError in the parser
    _event_with("[" * 100 + "]" * 100),                                     # parses, too deep to keep
    b'{"events": ' + b"[" * 5000 + b"]" * 5000 + b"}",
    _event_with("NaN"),
    _event_with("Infinity"),
    _event_with("-Infinity"),
    _event_with("1e400"),                                                   # reads as infinity
    _event_with('"a\\u0000b"'),                                             # NUL: PostgreSQL refuses it
    _event_with('{"k\\u0000": 1}'),                                         # ... in a key
    ('{"events": [{"meta": {"type": "product", "href": "' + BASE + '/entity/product/p\\u00001"}, '
     '"action": "UPDATE"}]}').encode(),                                     # ... in the href
    _event_with('"\\ud800"'),                                               # lone high surrogate
    _event_with('"\\udc00x"'),                                              # lone low surrogate
    _event_with('{"\\udfff": 1}'),                                          # ... in a key
    ('{"auditContext": {"uid": "\\ud83d"}, "events": [{"meta": {"type": "product", "href": "' + BASE
     + '/entity/product/p1"}, "action": "UPDATE"}]}').encode(),             # ... in the audit context
    _event_with("1" * 5000),                                                # an integer Python refuses
    b"\xff\xfe" + '{"events": []}'.encode("utf-16-le"),                     # not UTF-8
    b"\xef\xbb\xbf" + _event_with("1"),                                     # a byte-order mark
    _event_with('"x"').replace(b'"x"', b'"\xff"'),                          # a latin-1 byte in a string
])
def test_bodies_that_cannot_be_stored_are_400_and_nothing_is_stored(client, ms_respx, published, raw):
    response = deliver(client, None, raw=raw)
    assert response.status_code == 400 and response.json()["error"] == "invalid"
    assert nothing_stored(published)


@pytest.mark.parametrize("request_id", ["a%00b", "x" * 65, "%FF%FE", "a%20b", "%E2%80%AE", "a%0Ab"])
def test_a_request_id_that_cannot_be_stored_is_400(client, ms_respx, published, request_id):
    response = deliver(client, notification(("product", "p1", "UPDATE")), request_id=request_id)
    assert response.status_code == 400 and response.json()["error"] == "invalid"
    assert nothing_stored(published)


def test_what_may_be_stored_still_is(client, ms_respx, published):
    """Not over-refusing: an astral character written as a surrogate pair, deep-enough nesting,
    large finite numbers and a UUID requestId are fine."""
    raw = _event_with('{"emoji": "\\ud83d\\ude00", "deep": ' + "[" * 20 + "1.5e300" + "]" * 20 + "}")
    response = deliver(client, None, raw=raw, request_id="75c896d0-db16-11eb-c0a8-800d00000004")
    assert response.status_code == 200, response.content
    assert InboundEvent.objects.get().payload["event"]["extra"]["emoji"] == "😀"


# -- links: followed only under MOYSKLAD_BASE_URL, and a delete only when MoySklad confirms it --------
_FORGED_AT_MS_TEST = [
    "https://169.254.169.254/api/remap/1.2/entity/product/p1",
    "http://ms.test/api/remap/1.2/entity/product/p1",
    "https://ms.test:8443/api/remap/1.2/entity/product/p1",
    "https://ms.test.evil.test/api/remap/1.2/entity/product/p1",
    "https://ms.test@evil.test/api/remap/1.2/entity/product/p1",
    "https://evil.test\\@ms.test/api/remap/1.2/entity/product/p1",
    "https://user:pw@ms.test/api/remap/1.2/entity/product/p1",
    "https://ms.test/api/remap/1.2/entity/product/../../../admin/p1",
    "https://ms.test/api/remap/1.2/entity/product/%2e%2e/%2e%2e/p1",
    "https://ms.test/api/remap/1.2/entity/product/%2E%2E%2Fp1",
    "https://ms.test/api/remap/1.2/entity/product/..%252f..%252fp1",
    "https://ms.test/api/remap/1.2/entity/product\\..\\p1",
    "https://ms.test/api/remap/1.2evil/entity/product/p1",
    "https://ms.test/api/remap/1.1/entity/product/p1",
]
# The same tricks played on our MOYSKLAD_BASE_URL (the sandbox's, https://sandbox.test/moysklad/...).
FORGED = [h.replace("ms.test", "sandbox.test").replace("/api/remap/", "/moysklad/api/remap/")
          for h in _FORGED_AT_MS_TEST]


@pytest.mark.parametrize("href", FORGED)
def test_a_forged_delete_is_never_followed_and_archives_nothing(client, ms_respx, shop, published, href):
    ProductBinding.objects.create(product=shop.phone.product, external_id="p1")
    body = notification(("product", "p1", "DELETE"))
    body["events"][0]["meta"]["href"] = href
    assert deliver(client, body).status_code == 200
    process_all()
    event = InboundEvent.objects.get()
    assert event.status in ("failed", "ignored")
    assert "not followed" in event.error or "refusing to follow" in event.error
    assert not ms_respx.moysklad.logged()
    assert not Product.objects.get(pk=shop.phone.product_id).archived
    assert not Offer.objects.filter(archived=True).exists()


def test_a_stale_delete_of_a_product_that_still_exists_imports_it_instead(client, ms_respx, shop, published):
    ProductBinding.objects.create(product=shop.phone.product, external_id=shop.phone_ms_id)
    ms_respx.moysklad.update_product(shop.phone_ms_id, name="Телефон", article="PHONE-1", archived=False,
                                    productFolder=None)
    deliver(client, notification(("product", shop.phone_ms_id, "DELETE")))
    assert process_all() == {"imported": 1}
    assert not Product.objects.get(pk=shop.phone.product_id).archived
    assert not Offer.objects.get(sku="PHONE-1").archived
    event = InboundEvent.objects.get()
    assert event.status == "done" and "still in MoySklad" in event.error


def test_a_delete_that_comes_back_archived_is_archived(client, ms_respx, shop, published):
    ProductBinding.objects.create(product=shop.phone.product, external_id=shop.phone_ms_id)
    ms_respx.moysklad.update_product(shop.phone_ms_id, name="Телефон", article="PHONE-1", archived=True,
                                    productFolder=None)
    deliver(client, notification(("product", shop.phone_ms_id, "DELETE")))
    assert process_all() == {"imported": 1}
    assert Product.objects.get(pk=shop.phone.product_id).archived
    assert "archived in MoySklad" in InboundEvent.objects.get().error


def test_a_delete_is_not_acted_on_while_moysklad_cannot_confirm_it(client, ms_respx, shop, published):
    ProductBinding.objects.create(product=shop.phone.product, external_id=shop.phone_ms_id)
    deliver(client, notification(("product", shop.phone_ms_id, "DELETE")))
    ms_respx.moysklad.faults.add(status=503, count=10)
    assert process_all() == {"retry": 1}
    assert not Product.objects.get(pk=shop.phone.product_id).archived
    assert InboundEvent.objects.get().status == "received"


def test_an_id_cannot_smuggle_filter_conditions(client, ms_respx, shop, published):
    """The id goes into `filter=id=…`: one carrying `;` or `=` is not an id, and is not followed."""
    body = notification(("product", "x;archived=true", "DELETE"))
    deliver(client, body)
    process_all()
    assert not ms_respx.moysklad.logged()
    assert InboundEvent.objects.get().status in ("failed", "ignored")

