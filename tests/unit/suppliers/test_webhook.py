import json
import time

import pytest

from integrations.suppliers.events import events_process, events_sweep
from integrations.suppliers.models import SupplierEvent
from integrations.suppliers.webhooks import sign
from stock.models import StockChange, StockLevel
from tests.factories import make_offer

from .conftest import make_supplier

pytestmark = pytest.mark.django_db

SECRET = "whsec-test"
URL = "/webhooks/suppliers/acme/stock/"


@pytest.fixture
def supplier():
    return make_supplier(webhook_secret=SECRET)


def post(client, body: bytes, *, ts=None, secret=SECRET, signature=None, url=URL, headers=True):
    ts = str(int(time.time()) if ts is None else ts)
    extra = {}
    if headers:
        extra = {"HTTP_X_TIMESTAMP": ts, "HTTP_X_SIGNATURE": signature or sign(secret, ts, body)}
    return client.post(url, data=body, content_type="application/json", **extra)


BODY = json.dumps({"items": [{"sku": "A-1", "stock": 4}, {"sku": "NOPE", "stock": 1}]}).encode()


def test_signed_webhook_stored_queued_202_then_applied(client, supplier, published, django_capture_on_commit_callbacks):
    offer = make_offer(sku="A-1")
    with django_capture_on_commit_callbacks(execute=True):
        response = post(client, BODY)
    assert response.status_code == 202 and response.json() == {"accepted": 2}
    event = SupplierEvent.objects.get()
    assert published.names() == ["suppliers.events_process"] and published.calls[0][1] == ([event.pk],)
    counts = events_process(event_ids=[event.pk])
    assert counts == {"done": 1}
    assert StockLevel.objects.get(offer=offer, warehouse__code="supplier:acme").stock == 4
    assert StockChange.objects.get(offer=offer).via == "webhook"
    assert events_process(event_ids=[event.pk]) == {"skipped": 1}   # processed once


def test_replayed_signature_accepted_once(client, supplier, published):
    ts = int(time.time())
    assert post(client, BODY, ts=ts).status_code == 202
    again = post(client, BODY, ts=ts)
    assert again.status_code == 409 and again.json()["error"] == "replayed"
    assert SupplierEvent.objects.count() == 1


@pytest.mark.parametrize("case", ["bad_signature", "wrong_secret", "missing_headers", "missing_signature",
                                  "stale", "future", "malformed_ts", "malformed_sig", "unknown_slug", "bad_body",
                                  "bad_stock", "no_secret_configured"])
def test_refused_requests_store_nothing(client, supplier, published, case):
    now = int(time.time())
    kwargs = {}
    body = BODY
    if case == "bad_signature":
        kwargs["signature"] = "sha256=" + "0" * 64
    elif case == "wrong_secret":
        kwargs["secret"] = "other"
    elif case == "missing_headers":
        kwargs["headers"] = False
    elif case == "stale":
        kwargs["ts"] = now - 301
    elif case == "future":
        kwargs["ts"] = now + 400
    elif case == "malformed_sig":
        kwargs["signature"] = "md5=abc"
    elif case == "unknown_slug":
        kwargs["url"] = "/webhooks/suppliers/nobody/stock/"
    elif case == "bad_body":
        body = b'{"items": "no"}'
    elif case == "bad_stock":
        body = json.dumps({"items": [{"sku": "A-1", "stock": -3}]}).encode()
    elif case == "no_secret_configured":
        supplier.webhook_secret = ""
        supplier.save()
    if case == "missing_signature":
        response = client.post(URL, data=body, content_type="application/json", HTTP_X_TIMESTAMP=str(now))
    elif case == "malformed_ts":
        response = client.post(URL, data=body, content_type="application/json", HTTP_X_TIMESTAMP="yesterday",
                               HTTP_X_SIGNATURE=sign(SECRET, "yesterday", body))
    else:
        response = post(client, body, **kwargs)
    assert 400 <= response.status_code < 500
    assert response["Content-Type"].startswith("application/json") and "error" in response.json()
    assert not SupplierEvent.objects.exists() and published.calls == []


def test_tampered_body_refused(client, supplier, published):
    ts = str(int(time.time()))
    signature = sign(SECRET, ts, BODY)
    tampered = BODY.replace(b"4", b"9")
    response = client.post(URL, data=tampered, content_type="application/json", HTTP_X_TIMESTAMP=ts,
                           HTTP_X_SIGNATURE=signature)
    assert response.status_code == 401 and not SupplierEvent.objects.exists()


def test_get_is_405(client, supplier):
    assert client.get(URL).status_code == 405


def test_sweep_resignals_lost_events(client, supplier, published):
    from datetime import timedelta

    from django.utils import timezone

    post(client, BODY)
    SupplierEvent.objects.update(received_at=timezone.now() - timedelta(minutes=5))
    published.calls.clear()
    assert events_sweep() == {"resignalled": 1}
    assert published.names() == ["suppliers.events_process"]
