"""`POST /webhooks/1c/stock/`: check, store, signal, answer.

1. `Authorization: Bearer ONEC_WEBHOOK_TOKEN`, compared in constant time (digests of equal
   length). Unset token: 404, as if the route did not exist; wrong or missing: 401.
2. POST only (405); the size limit (413: the declared length, then what was read).
3. The body: safe JSON (`syncsite.safejson`) shaped `{"stocks": [{"sku", "quantity", "warehouse"?}]}`.
   Any bad item (no SKU, a quantity that is not a whole number >= 0, a warehouse that is not a
   name) refuses the whole body: 400 listing every bad item, nothing stored or applied.
4. One row (`StockPush`) holding the checked items, and after commit a signal to the worker that
   never waits for the broker: a row the broker did not take is re-signalled by the sweeper.
   202 `{"accepted": N}`.
"""
from __future__ import annotations

import hashlib
import hmac
import logging

from django.conf import settings
from django.db import transaction
from django.http import HttpRequest, JsonResponse
from django.views.decorators.csrf import csrf_exempt

from syncsite import safejson
from syncsite.inbound import json_error, read_post_body

from .mapping import InvalidItems, items_parse
from .models import StockPush
from .pushes import push_signal

log = logging.getLogger("syncsite.onec.webhook")

#: items one push may carry (the body limit bounds it too)
MAX_ITEMS = 50_000


_error = json_error


def _digest(value: str) -> bytes:
    return hashlib.sha256(value.encode("utf-8", "surrogatepass")).digest()


def bearer_ok(header: str) -> bool:
    expected = settings.ONEC.get("WEBHOOK_TOKEN") or ""
    scheme, _, token = (header or "").partition(" ")
    given = token.strip() if scheme.lower() == "bearer" else ""
    return hmac.compare_digest(_digest(given), _digest(expected)) and bool(expected) and bool(given)


@csrf_exempt
def onec_stock_webhook(request: HttpRequest) -> JsonResponse:
    if not settings.ONEC.get("WEBHOOK_TOKEN"):
        return _error(404, "not_found", "no such webhook")
    if not bearer_ok(request.META.get("HTTP_AUTHORIZATION", "")):
        log.warning("onec.webhook.bad-token from=%s", request.META.get("REMOTE_ADDR"))
        response = _error(401, "unauthorized", "Authorization: Bearer ONEC_WEBHOOK_TOKEN required")
        response["WWW-Authenticate"] = 'Bearer realm="1c"'
        return response
    raw = read_post_body(request)
    if isinstance(raw, JsonResponse):
        return raw
    try:
        data = safejson.loads(raw)
        items, bad = items_parse(data)
    except InvalidItems as exc:
        return _error(400, "invalid", exc.bad[0]["error"], items=exc.bad)
    except ValueError as exc:
        return _error(400, "invalid", f"the body is not JSON we accept: {str(exc)[:200]}")
    if bad:
        log.warning("onec.webhook.bad-items count=%s", len(bad))
        return _error(400, "invalid", f"{len(bad)} bad items; nothing was applied", items=bad[:1000])
    if len(items) > MAX_ITEMS:
        return _error(400, "invalid", f"at most {MAX_ITEMS} items per request")
    if not items:
        return JsonResponse({"accepted": 0}, status=202)
    with transaction.atomic():
        push = StockPush.objects.create(
            items=[{"sku": i.sku, "quantity": int(i.quantity), "warehouse": i.warehouse} for i in items],
            item_count=len(items))
        transaction.on_commit(lambda: push_signal(push.pk, wait=False), robust=True)
    return JsonResponse({"accepted": len(items)}, status=202)
