"""`POST /webhooks/moysklad/<token>/`: check, store, signal, answer.

MoySklad waits 1.5 s, retries three times back to back, then drops the notification for good,
and its payload is unsigned and carries only links. So this view does the minimum, in order:

1. The secret path token, compared in constant time. Until it is right, every request under
   `/webhooks/moysklad` gets the same JSON 404, whatever its method, size or body and whether the
   token is wrong, missing or unset: a prober learns nothing, not even that the route exists.
2. POST only (405), then the size limit (413: the declared length, then what was read).
3. The body: UTF-8 JSON that the database can store (`syncsite.safejson`: no NaN or Infinity, no
   `\\u0000`, no lone surrogates, no deep nesting) and the shape of a notification (400).
4. One INSERT of the events with a unique dedup key (a repeat is stored once) and, once it has
   committed, a signal to the worker handed to a background sender: the answer never waits for
   the broker (the sweeper re-signals whatever the broker did not take).

No upstream call happens here, and a request that fails a check writes nothing. The view is served
from a short path (`syncsite.middleware.WebhookShortCircuitMiddleware`): no sessions, auth, CSRF,
messages or URL resolving, none of which a machine-to-machine POST needs.
"""
from __future__ import annotations

import hashlib
import hmac
import logging
import re

from django.conf import settings
from django.http import HttpRequest, JsonResponse
from django.views.decorators.csrf import csrf_exempt

from syncsite import safejson
from syncsite.inbound import json_error, read_post_body

from .events import InvalidNotification, events_store, notification_parse

log = logging.getLogger("syncsite.moysklad.webhook")

PREFIX = "/webhooks/moysklad"
_REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{1,64}")


_error = json_error


def not_found() -> JsonResponse:
    """The one answer for everything under the prefix until the token is right."""
    return _error(404, "not_found", "no such webhook")


def _digest(value: str) -> bytes:
    # Compare digests, not the strings: equal lengths, so not even the token's length leaks.
    return hashlib.sha256(value.encode("utf-8", "surrogatepass")).digest()


def token_ok(token: str | None) -> bool:
    expected = settings.MOYSKLAD.get("WEBHOOK_TOKEN") or ""
    return hmac.compare_digest(_digest(token or ""), _digest(expected)) and bool(expected)


def path_token(path: str) -> str | None:
    """`/webhooks/moysklad/<token>/` -> token; any other path under the prefix -> None."""
    rest = path[len(PREFIX):] if path.startswith(PREFIX) else ""
    if len(rest) < 3 or not rest.startswith("/") or not rest.endswith("/") or "/" in rest[1:-1]:
        return None
    return rest[1:-1]


@csrf_exempt
def moysklad_webhook(request: HttpRequest, token: str | None = None) -> JsonResponse:
    if token is None:
        token = path_token(request.path_info)
    if not token_ok(token):
        log.warning("moysklad.webhook.bad-token from=%s", request.META.get("REMOTE_ADDR"))
        return not_found()
    raw = read_post_body(request)
    if isinstance(raw, JsonResponse):
        log.warning("moysklad.webhook.refused status=%s", raw.status_code)
        return raw
    request_id = request.GET.get("requestId", "")
    try:
        if request_id and not _REQUEST_ID.fullmatch(request_id):
            raise InvalidNotification("requestId must be up to 64 letters, digits, '.', '_', ':' or '-'")
        data = safejson.loads(raw)
        events = notification_parse(data, request_id=request_id, raw=raw)
    except ValueError as exc:  # UnsafeJSON and InvalidNotification
        log.warning("moysklad.webhook.invalid %s", exc)
        return _error(400, "invalid", str(exc)[:300])
    ids = events_store(events=events)
    return JsonResponse({"stored": len(events), "queued": len(ids)})
