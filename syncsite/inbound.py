"""The edge every inbound webhook shares (MoySklad, 1C, suppliers): one JSON error shape, POST
only, and a body read with a hard size limit (WEBHOOK_MAX_BODY) before anything parses it.

    body = read_post_body(request)
    if isinstance(body, JsonResponse):
        return body        # 405 or 413, already shaped
"""
from __future__ import annotations

from django.conf import settings
from django.http import HttpRequest, JsonResponse


def json_error(status: int, code: str, detail: str, **extra) -> JsonResponse:
    """`{"error": CODE, "detail": ...}` like the storefront API's errors."""
    return JsonResponse({"error": code, "detail": detail, **extra}, status=status)


def method_not_allowed() -> JsonResponse:
    response = json_error(405, "method_not_allowed", "POST only")
    response["Allow"] = "POST"
    return response


def too_large(limit: int) -> JsonResponse:
    return json_error(413, "too_large", f"body over {limit} bytes")


def read_post_body(request: HttpRequest, *, limit: int | None = None) -> bytes | JsonResponse:
    """The raw body of a POST, or the error to answer: 405 for another method, 413 when the
    declared or the actual length passes `limit` (default WEBHOOK_MAX_BODY; never more than
    limit + 1 bytes are read, whatever Content-Length says)."""
    if request.method != "POST":
        return method_not_allowed()
    limit = settings.WEBHOOK_MAX_BODY if limit is None else limit
    try:
        declared = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        declared = 0
    if declared > limit:
        return too_large(limit)
    raw = request.read(limit + 1)
    if len(raw) > limit:
        return too_large(limit)
    return raw
