"""Push notifications from Ozon and Yandex Market: a hint to pull now, never the state.

    POST /webhooks/marketplaces/<MARKETPLACE_PUSH_TOKEN>/ozon/               (Ozon's push service)
    POST /webhooks/marketplaces/<MARKETPLACE_PUSH_TOKEN>/ym/notification     (YM API notifications)

Neither marketplace signs its notifications (onec-and-feeds.md §5), so the secret path segment
(compared in constant time; 404 when wrong or unset) is what keeps strangers out, and even a
genuine body is never trusted: it only queues a `marketplace-orders` run (or `marketplace-returns`
for a return event), at most one per marketplace every few seconds, and the job reads the orders
through the API. The answer is immediate (Ozon waits 5 s, YM 10 s, 1 s for a PING) in the shape
each marketplace expects. Wildberries has no notifications for a shop's own integration.
"""
from __future__ import annotations

import hmac
import json
import logging

from django.conf import settings
from django.core.cache import cache
from django.http import HttpRequest, JsonResponse
from django.utils import timezone
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

log = logging.getLogger("syncsite.marketplace_orders.webhooks")

BODY_MAX = 64 * 1024
#: one queued run per marketplace and job in this many seconds, however many notifications come
COALESCE_SECONDS = 5
RETURN_EVENTS = {"ORDER_RETURN_CREATED", "ORDER_RETURN_STATUS_UPDATED"}


def _token_ok(token: str) -> bool:
    expected = (settings.MARKETPLACES.get("PUSH_TOKEN") or "").encode()
    return bool(expected) and hmac.compare_digest(token.encode(), expected)


def _trigger(source: str, job: str) -> bool:
    """Queue `job` unless one was queued for this marketplace moments ago. A broker outage is
    logged, not answered with an error: the every-2-minutes run catches up."""
    if not cache.add(f"marketplace-push:{source}:{job}", 1, timeout=COALESCE_SECONDS):
        return False
    from integrations.services import job_enqueue

    try:
        job_enqueue(job=job, trigger="event")
    except Exception as exc:  # the broker is down: polling covers it
        log.warning("marketplace_orders.push.enqueue-failed source=%s job=%s %s", source, job, exc)
        return False
    return True


def _hello() -> dict:
    return {"version": "1.0", "name": "SyncSite", "time": timezone.now().strftime("%Y-%m-%dT%H:%M:%SZ")}


def _body(request: HttpRequest) -> dict | None:
    if len(request.body) > BODY_MAX:
        return None
    try:
        data = json.loads(request.body or b"null")
    except ValueError:
        return None
    return data if isinstance(data, dict) else None


@csrf_exempt
@require_POST
def ozon_push(request: HttpRequest, token: str) -> JsonResponse:
    if not _token_ok(token):
        return JsonResponse({"error": {"code": "ERROR_UNKNOWN", "message": "not found", "details": None}}, status=404)
    data = _body(request)
    if data is None or not isinstance(data.get("message_type"), str):
        return JsonResponse({"error": {"code": "ERROR_PARAMETER_VALUE_MISSED", "message": "message_type is required",
                                       "details": None}}, status=400)
    kind = data["message_type"]
    if kind == "TYPE_PING":
        return JsonResponse(_hello())
    if kind.startswith(("TYPE_NEW_POSTING", "TYPE_POSTING_CANCELLED", "TYPE_STATE_CHANGED", "TYPE_CUTOFF_DATE",
                        "TYPE_DELIVERY_DATE")):
        _trigger("ozon", "marketplace-orders")
    return JsonResponse({"result": True})


@csrf_exempt
@require_POST
def ym_push(request: HttpRequest, token: str) -> JsonResponse:
    if not _token_ok(token):
        return JsonResponse({"error": {"type": "UNKNOWN", "message": "not found"}}, status=404)
    data = _body(request)
    if data is None or not isinstance(data.get("notificationType"), str):
        return JsonResponse({"error": {"type": "WRONG_EVENT_FORMAT", "message": "notificationType is required"}},
                            status=400)
    kind = data["notificationType"]
    if kind in RETURN_EVENTS:
        _trigger("ym", "marketplace-returns")
    elif kind.startswith("ORDER_"):
        _trigger("ym", "marketplace-orders")
    return JsonResponse(_hello())
