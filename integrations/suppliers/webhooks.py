"""`POST /webhooks/suppliers/{slug}/stock/`: verify, store, signal, answer 202.

Authentication is a timestamped HMAC: `X-Timestamp` (unix seconds, within ±300 s of our clock)
and `X-Signature: sha256=HEX`, HEX = HMAC-SHA256(the supplier's webhook secret,
timestamp + "." + raw body), compared in constant time. The signature is stored with the event
under a unique key, so the same signed request replayed inside the window is refused (409) and
applied once. Every refusal is JSON 4xx and writes nothing; the figures are applied by the worker.
"""
from __future__ import annotations

import hashlib
import hmac
import logging
import re
import time
from datetime import datetime, timezone as dt_timezone

from django.http import HttpRequest, JsonResponse
from django.views.decorators.csrf import csrf_exempt

from syncsite import safejson
from syncsite.inbound import json_error, read_post_body

from .events import Replayed, event_store
from .feeds import clean_sku, whole_number
from .models import Supplier

log = logging.getLogger("syncsite.suppliers.webhook")

WINDOW_SECONDS = 300
MAX_ITEMS = 10_000
_TIMESTAMP = re.compile(r"\d{1,12}")
_SIGNATURE = re.compile(r"sha256=([0-9a-fA-F]{64})")


_error = json_error


def sign(secret: str, timestamp: str | int, body: bytes) -> str:
    """The `X-Signature` value for a body (what a supplier computes; the sandbox sender uses it)."""
    message = str(timestamp).encode() + b"." + body
    return "sha256=" + hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


def parse_items(data) -> list[dict]:
    if not isinstance(data, dict) or not isinstance(data.get("items"), list):
        raise ValueError('the body must be {"items": [{"sku": ..., "stock": ...}]}')
    items = data["items"]
    if len(items) > MAX_ITEMS:
        raise ValueError(f"at most {MAX_ITEMS} items per request")
    out = []
    for n, item in enumerate(items):
        if not isinstance(item, dict):
            raise ValueError(f"items[{n}] is not an object")
        sku, stock = clean_sku(item.get("sku")), whole_number(item.get("stock"))
        if sku is None:
            raise ValueError(f"items[{n}].sku is missing or not a string")
        if stock is None:
            raise ValueError(f"items[{n}].stock is not a whole number >= 0")
        out.append({"sku": sku, "stock": stock})
    return out


@csrf_exempt
def supplier_stock_webhook(request: HttpRequest, slug: str) -> JsonResponse:
    supplier = Supplier.objects.filter(slug=slug, active=True).exclude(webhook_secret="").first()
    if supplier is None:
        return _error(404, "unknown_supplier", "no such supplier webhook")
    raw = read_post_body(request)
    if isinstance(raw, JsonResponse):
        return raw
    timestamp = request.headers.get("X-Timestamp", "").strip()
    signature = request.headers.get("X-Signature", "").strip()
    if not timestamp or not signature:
        return _error(401, "missing_signature", "send X-Timestamp and X-Signature: sha256=HEX")
    match = _SIGNATURE.fullmatch(signature)
    if not _TIMESTAMP.fullmatch(timestamp) or not match:
        return _error(401, "bad_signature", "X-Timestamp must be unix seconds and X-Signature sha256=<64 hex>")
    if abs(time.time() - int(timestamp)) > WINDOW_SECONDS:
        log.warning("suppliers.webhook.stale supplier=%s ts=%s", slug, timestamp)
        return _error(401, "stale_timestamp", f"X-Timestamp is more than {WINDOW_SECONDS} s from the server's clock")
    expected = sign(supplier.webhook_secret, timestamp, raw)
    if not hmac.compare_digest(expected.encode(), ("sha256=" + match.group(1).lower()).encode()):
        log.warning("suppliers.webhook.bad-signature supplier=%s", slug)
        return _error(401, "bad_signature", "the signature does not match the body")
    try:
        items = parse_items(safejson.loads(raw))
    except ValueError as exc:
        return _error(400, "invalid", str(exc)[:300])
    try:
        event_store(supplier=supplier, signature=match.group(1).lower(),
                    signed_at=datetime.fromtimestamp(int(timestamp), tz=dt_timezone.utc),
                    payload={"items": items}, items=len(items))
    except Replayed:
        return _error(409, "replayed", "this signed request was already accepted")
    return JsonResponse({"accepted": len(items)}, status=202)
