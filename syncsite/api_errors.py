"""The storefront API's one error shape: `{"error": CODE, "detail": ...}` (interfaces.md).

Routers raise `ApiError`; `syncsite/api.py` turns it, ninja's own errors and anything unexpected
into that shape. This module is separate from `syncsite/api.py` so an app's router can import it
without importing the API object that mounts the router (which would be a circular import).
"""
from __future__ import annotations

from typing import Any, Literal, Union

from django.urls import register_converter
from ninja import Schema
from pydantic import ConfigDict, create_model


class AnyTextConverter:
    """A path segment that may hold anything, "/" and line breaks included (Django's `path`
    converter stops at a newline). A SKU or an order id that exists nowhere then reaches its view
    and gets that route's own 404 (`unknown_sku`), never the generic one. Used as `{text:name}`."""

    regex = r"[\s\S]+"

    def to_python(self, value: str) -> str:
        return value

    def to_url(self, value: str) -> str:
        return value


register_converter(AnyTextConverter, "text")


class ApiError(Exception):
    """An expected failure the client can act on, named by a stable code.

    `extra` keys are merged into the body beside `error` and `detail`: e.g. 409
    `insufficient_stock` carries `available` and `requested` (interfaces.md).
    """

    def __init__(self, status: int, code: str, detail: Any = None, **extra: Any) -> None:
        super().__init__(f"{status} {code}: {detail}")
        self.status = status
        self.code = code
        self.detail = detail
        self.extra = extra

    def body(self) -> dict[str, Any]:
        return {"error": self.code, "detail": self.detail, **self.extra}


def invalid_param(loc: tuple[str, ...], msg: str) -> ApiError:
    """A 400 `invalid` shaped like ninja's own validation errors, so clients parse one format
    whether pydantic or our code rejected the value."""
    return ApiError(400, "invalid", [{"type": "value_error", "loc": list(loc), "msg": msg}])


class ErrorOut(Schema):
    """Documents the error body in the OpenAPI schema (some codes add keys, hence extra=allow)."""

    model_config = ConfigDict(extra="allow")

    error: str
    detail: Any = None


# ---- What each route documents --------------------------------------------------------------------
# Every error code the API answers: (HTTP status, what it means, extra keys beside error/detail).
ERROR_CODES: dict[str, tuple[int, str, dict[str, Any]]] = {
    "invalid": (400, "The request is malformed; `detail` lists `{loc, msg}` naming the field (and line)", {}),
    "unauthorized": (401, "No or a wrong `Authorization: Bearer` token, or the API is off on the server", {}),
    "unknown_sku": (404, "No product with that SKU", {"sku": (str, None)}),
    "unknown_order": (404, "No order with that id", {}),
    "insufficient_stock": (409, "Not enough stock for one line; nothing was reserved",
                           {"sku": (str, ...), "line": (int, ...), "available": (int | float, ...),
                            "requested": (int | float, ...)}),
    "too_large": (413, "The request body is over the size limit", {}),
    "unsupported_media_type": (415, "A body that is not `Content-Type: application/json`", {}),
    "idempotency_mismatch": (422, "This Idempotency-Key was used for a different request; the stored "
                                  "order is not shown", {}),
    "rate_limited": (429, "Over the call budget of this token or address (API_RATE_LIMIT, API_RATE_LIMIT_PER_IP, "
                          "API_AUTH_FAILURE_LIMIT); `Retry-After` says when to call again", {}),
    "server_error": (500, "Unexpected; it was logged (no details are sent)", {}),
    "supplier_unavailable": (503, "A supplier's stock could not be checked live and the server is set to refuse "
                                  "(CART_CHECK_ON_FAILURE=refuse)", {"sku": (str, None)}),
}
#: what every authenticated route may answer besides its own codes
COMMON_ERRORS = ("invalid", "unauthorized", "rate_limited", "server_error")
#: and every route that takes a JSON body
BODY_ERRORS = ("too_large", "unsupported_media_type")

_schemas: dict[str, type[Schema]] = {}


def _error_schema(code: str) -> type[Schema]:
    """One OpenAPI component per code, its `error` fixed to that code (`InsufficientStockError`)."""
    if code not in _schemas:
        status, meaning, extra = ERROR_CODES[code]
        name = "".join(part.title() for part in code.split("_"))
        name = name if name.endswith("Error") else f"{name}Error"
        fields: dict[str, Any] = {"error": (Literal[code], ...), "detail": (Any, None)}
        fields.update(extra)
        _schemas[code] = create_model(name, __base__=Schema, __doc__=f"{status} `{code}`: {meaning}.", **fields)
    return _schemas[code]


def error_responses(*codes: str, body: bool = False) -> dict[int, Any]:
    """`response=` entries documenting each error a route answers, grouped by status (a status with
    two codes documents either)."""
    wanted = [*COMMON_ERRORS, *(BODY_ERRORS if body else ()), *codes]
    by_status: dict[int, list[type[Schema]]] = {}
    for code in dict.fromkeys(wanted):
        by_status.setdefault(ERROR_CODES[code][0], []).append(_error_schema(code))
    return {status: schemas[0] if len(schemas) == 1 else Union[tuple(schemas)]
            for status, schemas in sorted(by_status.items())}
