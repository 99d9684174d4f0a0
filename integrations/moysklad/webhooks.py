"""`POST /webhooks/moysklad/<token>/`: check, store, signal, answer.

MoySklad waits 1.5 s, retries three times back to back, then drops the notification for good,
and its payload is unsigned and carries only links. So this view does the minimum, in order:
size limit (413), the secret path token compared in constant time (404 when wrong or unset, the
same answer as a path that does not exist), JSON and shape validation (400), one INSERT of the
events with a unique dedup key (a repeat is stored once), and a signal to the worker after
commit that never blocks on a dead broker (the sweeper re-signals what was not delivered).
No upstream call happens here; a request that fails a check writes nothing.
"""
from __future__ import annotations

import hmac
import json
import logging

from django.conf import settings
from django.http import HttpRequest, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from .events import InvalidNotification, events_store, notification_parse

log = logging.getLogger("syncsite.moysklad.webhook")


def _error(status: int, code: str, detail: str) -> JsonResponse:
    return JsonResponse({"error": code, "detail": detail}, status=status)


def _token_ok(token: str) -> bool:
    expected = settings.MOYSKLAD.get("WEBHOOK_TOKEN") or ""
    return bool(expected) and hmac.compare_digest(token.encode(), expected.encode())


@csrf_exempt
@require_POST
def moysklad_webhook(request: HttpRequest, token: str) -> JsonResponse:
    limit = settings.WEBHOOK_MAX_BODY
    try:
        declared = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        declared = 0
    if declared > limit:
        log.warning("moysklad.webhook.too-large length=%s", declared)
        return _error(413, "too_large", f"body over {limit} bytes")
    if not _token_ok(token):
        log.warning("moysklad.webhook.bad-token from=%s", request.META.get("REMOTE_ADDR"))
        return _error(404, "not_found", "no such webhook")
    raw = request.read(limit + 1)
    if len(raw) > limit:
        log.warning("moysklad.webhook.too-large read=%s", len(raw))
        return _error(413, "too_large", f"body over {limit} bytes")
    try:
        data = json.loads(raw)
        events = notification_parse(data, request_id=request.GET.get("requestId", ""), raw=raw)
    except (ValueError, UnicodeDecodeError, InvalidNotification) as exc:
        log.warning("moysklad.webhook.invalid %s", exc)
        return _error(400, "invalid", str(exc)[:300])
    ids = events_store(events=events)
    return JsonResponse({"stored": len(events), "queued": len(ids)})
