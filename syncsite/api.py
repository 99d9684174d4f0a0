"""The storefront API: one NinjaAPI at `/api/v1/` (interfaces.md, "Storefront API").

Three things every endpoint gets from here, so routers only describe their own calls:
- Bearer auth against `STOREFRONT_API_TOKEN`, compared in constant time. With no token configured
  every call answers 401: an API left open by a missing setting would leak stock and orders.
- One error shape, `{"error": CODE, "detail": ...}`: ninja's validation errors become 400
  `invalid`, auth failures 401 `unauthorized`, routers raise `syncsite.api_errors.ApiError` for
  their own codes (404 `unknown_sku`, 409 `insufficient_stock`, ...), and anything unexpected is
  logged and answered 500 `server_error` without a traceback.
- The OpenAPI schema at `/api/v1/openapi.json` and the docs at `/api/v1/docs`, both public (they
  describe the calls, not the data).

Adding endpoints: write a ninja Router in `<app>/api.py` (raise ApiError for failures) and add a
line to ROUTERS below. Routers must be mounted before `api.urls` is read (ninja refuses later).
"""
from __future__ import annotations

import hmac
import json
import logging
import re
from functools import wraps
from inspect import iscoroutinefunction
from typing import Any, Callable

from django.conf import settings
from django.core.exceptions import RequestDataTooBig, SuspiciousOperation
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseNotAllowed, JsonResponse
from django.urls import URLPattern
from django.views.decorators.csrf import csrf_exempt
from ninja import NinjaAPI, Router
from ninja.errors import AuthenticationError, HttpError, ValidationError
from ninja.parser import Parser
from ninja.security import HttpBearer

from catalog.api import categories_router
from catalog.api import router as catalog_router
from orders.api import router as orders_router
from stock.api import back_in_stock_router, cart_router

from . import api_limits
from .api_errors import ApiError

log = logging.getLogger("syncsite.api")


class ApiOff(AuthenticationError):
    """Raised for every call while STOREFRONT_API_TOKEN is unset."""


class StorefrontBearer(HttpBearer):
    """`Authorization: Bearer <STOREFRONT_API_TOKEN>`. The setting is read per request so tests and
    a reloaded environment see the current value."""

    def __call__(self, request: HttpRequest) -> Any:
        if not settings.STOREFRONT_API_TOKEN:
            raise ApiOff(message="the storefront API is off: STOREFRONT_API_TOKEN is not set on the server")
        api_limits.check_address(request)   # 429 before the token is even compared
        found = super().__call__(request)   # no or malformed header -> None -> 401
        if found is None:
            api_limits.record_auth_failure(request)
        return found

    def authenticate(self, request: HttpRequest, token: str) -> str | None:
        expected = settings.STOREFRONT_API_TOKEN
        # Bytes: compare_digest refuses non-ASCII str, and a header may carry anything.
        if expected and hmac.compare_digest(token.encode(), expected.encode()):
            api_limits.check_token(token)
            return "storefront"
        return None


# ---- Input that can be stored --------------------------------------------------------------------
# PostgreSQL text cannot hold NUL, and a lone surrogate (JSON "\ud800") cannot be encoded as UTF-8:
# either would reach the database and fail there. They are refused at the edge, in every string of
# a body, the path and the query.
UNSTORABLE = re.compile("[\x00\ud800-\udfff]")
#: deepest nesting a request body may have (ours nest three levels; this is generous)
MAX_BODY_DEPTH = 32
UNSTORABLE_DETAIL = "text may not contain NUL characters or unpaired surrogates"


class BodyRejected(Exception):
    """A request body refused before validation; the error handler answers `status` / `code`."""

    def __init__(self, status: int, code: str, detail: str):
        super().__init__(detail)
        self.status, self.code, self.detail = status, code, detail


def _is_json(media_type: str) -> bool:
    return media_type == "application/json" or (media_type.startswith("application/") and media_type.endswith("+json"))


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _check_text(data: Any) -> None:
    """Walks a parsed body (iteratively: depth is what is being checked) for strings the database
    cannot store and for nesting deeper than MAX_BODY_DEPTH."""
    stack = [(data, 1)]
    while stack:
        value, depth = stack.pop()
        if isinstance(value, str):
            if UNSTORABLE.search(value):
                raise BodyRejected(400, "invalid", UNSTORABLE_DETAIL)
        elif isinstance(value, (dict, list)):
            if depth > MAX_BODY_DEPTH:
                raise BodyRejected(400, "invalid", f"the body is nested deeper than {MAX_BODY_DEPTH} levels")
            items = value.items() if isinstance(value, dict) else enumerate(value)
            for key, item in items:
                if isinstance(key, str) and UNSTORABLE.search(key):
                    raise BodyRejected(400, "invalid", UNSTORABLE_DETAIL)
                stack.append((item, depth + 1))


class StrictJsonParser(Parser):
    """Bodies are JSON only (415 for any other content type), standard JSON (no NaN or Infinity),
    with only storable text. Ninja calls this after authentication, only for routes with a body."""

    def parse_body(self, request: HttpRequest) -> Any:
        if not _is_json(request.content_type or ""):
            raise BodyRejected(415, "unsupported_media_type",
                               f"send the body as JSON (Content-Type: application/json), not "
                               f"{request.content_type or 'without a content type'}")
        data = json.loads(request.body, parse_constant=_refuse_constant)
        _check_text(data)
        return data


api = NinjaAPI(
    title="SyncSite storefront API",
    version="1",
    description=(
        "Products, stock, cart checks and orders for the storefront. Send "
        "`Authorization: Bearer <STOREFRONT_API_TOKEN>`. Errors are `{\"error\": CODE, \"detail\": ...}`. "
        "Money is a decimal string in rubles; times are ISO 8601 with an offset."
    ),
    urls_namespace="api",
    docs_url="/docs",
    openapi_url="/openapi.json",
    auth=StorefrontBearer(),
    parser=StrictJsonParser(),
)

# ---- Routers ------------------------------------------------------------------------------------
# (prefix, router): one line per endpoint group. Each inherits the auth and error handling above.
ROUTERS: list[tuple[str, Router]] = [
    ("/products", catalog_router),  # GET /products, GET /products/{sku}
    ("/categories", categories_router),  # GET /categories
    ("/cart", cart_router),  # POST /cart/check
    ("/orders", orders_router),  # POST /orders, GET /orders/{id}
    ("/back-in-stock", back_in_stock_router),  # POST /back-in-stock
]
for _prefix, _router in ROUTERS:
    api.add_router(_prefix, _router)


# ---- Errors -------------------------------------------------------------------------------------
# Codes for ninja's HttpError by status (e.g. a body that is not JSON is ninja's 400).
HTTP_ERROR_CODES = {400: "invalid", 401: "unauthorized", 403: "forbidden", 404: "not_found",
                    405: "method_not_allowed", 413: "too_large", 415: "unsupported_media_type",
                    422: "unprocessable", 429: "rate_limited"}


def error_response(status: int, code: str, detail: Any = None, **extra: Any) -> JsonResponse:
    return JsonResponse({"error": code, "detail": detail, **extra}, status=status)


@api.exception_handler(ApiError)
def _api_error(request: HttpRequest, exc: ApiError) -> HttpResponse:
    return JsonResponse(exc.body(), status=exc.status)


@api.exception_handler(api_limits.RateLimited)
def _rate_limited(request: HttpRequest, exc: api_limits.RateLimited) -> HttpResponse:
    response = error_response(429, "rate_limited", f"too many calls ({exc.what}); retry in {exc.retry_after} s")
    response["Retry-After"] = str(exc.retry_after)
    return response


@api.exception_handler(ValidationError)
def _validation_error(request: HttpRequest, exc: ValidationError) -> HttpResponse:
    # Ninja puts the body parameter's name in `loc` (["body", "payload", "items", 1, "quantity"]);
    # each route has one body, so `loc` reads as the client wrote it: ["body", "items", 1, ...],
    # the same shape our own checks answer.
    errors = [{**error, "loc": ["body", *error["loc"][2:]]}
              if isinstance(error, dict) and list(error.get("loc", ())[:2]) == ["body", "payload"] else error
              for error in exc.errors]
    return error_response(400, "invalid", errors)


@api.exception_handler(AuthenticationError)
def _unauthorized(request: HttpRequest, exc: AuthenticationError) -> HttpResponse:
    detail = exc.message if isinstance(exc, ApiOff) else "missing or invalid bearer token"
    response = error_response(401, "unauthorized", detail)
    response["WWW-Authenticate"] = 'Bearer realm="storefront"'
    return response


@api.exception_handler(HttpError)
def _http_error(request: HttpRequest, exc: HttpError) -> HttpResponse:
    if isinstance(exc.__cause__, BodyRejected):  # ninja wraps every parser error in a 400
        cause = exc.__cause__
        return error_response(cause.status, cause.code, cause.detail)
    code = HTTP_ERROR_CODES.get(exc.status_code, "error")
    return error_response(exc.status_code, code, exc.message)


@api.exception_handler(RequestDataTooBig)
def _too_large(request: HttpRequest, exc: RequestDataTooBig) -> HttpResponse:
    return error_response(413, "too_large", f"request body over {settings.DATA_UPLOAD_MAX_MEMORY_SIZE} bytes")


@api.exception_handler(SuspiciousOperation)
def _suspicious(request: HttpRequest, exc: SuspiciousOperation) -> HttpResponse:
    # Django's own 400 family (malformed multipart, too many fields, ...): the client's fault.
    return error_response(400, "invalid", str(exc) or exc.__class__.__name__)


@api.exception_handler(Http404)
def _not_found(request: HttpRequest, exc: Http404) -> HttpResponse:
    return error_response(404, "not_found", str(exc) or "not found")


@api.exception_handler(Exception)
def _server_error(request: HttpRequest, exc: Exception) -> HttpResponse:
    # The traceback goes to the log, never to the client.
    log.exception("api.server-error %s %s", request.method, request.path)
    return error_response(500, "server_error", "unexpected error; it was logged")


def _json_edges(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    """The two answers ninja gives outside its exception handlers: a plain-text 405, and the 404 of
    its root view (`/api/v1/` itself). Both get the JSON shape here, and a path or query holding
    text the database cannot store is refused before any view sees it. Every API view is exempt from
    Django's CSRF check: callers authenticate with a bearer token, never a cookie, so there is no
    cross-site request to forge (and an HTML 403 page is no answer for an API client)."""

    @csrf_exempt
    @wraps(view)
    def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        if UNSTORABLE.search(request.path) or any(
                UNSTORABLE.search(k) or any(UNSTORABLE.search(v) for v in values)
                for k, values in request.GET.lists()):
            return error_response(400, "invalid", f"path or query: {UNSTORABLE_DETAIL}")
        try:
            response = view(request, *args, **kwargs)
        except Http404:
            return endpoint_not_found(request)
        if isinstance(response, HttpResponseNotAllowed):
            allowed = response["Allow"]
            response = error_response(405, "method_not_allowed", f"{request.method} is not allowed; use {allowed}")
            response["Allow"] = allowed
        return response

    return wrapper


def api_urls() -> tuple[list, str, str]:
    """`api.urls` with every view wrapped by `_json_edges` (ninja offers no hook for these)."""
    patterns, app_name, namespace = api.urls
    for pattern in patterns:
        if isinstance(pattern, URLPattern) and not iscoroutinefunction(pattern.callback):
            pattern.callback = _json_edges(pattern.callback)
    return patterns, app_name, namespace


@csrf_exempt
def endpoint_not_found(request: HttpRequest, rest: str = "") -> HttpResponse:
    """Mounted after `api.urls` for all of /api/ so an unknown path answers JSON (whatever the
    method), not an HTML page."""
    return error_response(404, "not_found", f"no endpoint {request.method} {request.path}; see /api/v1/docs")
