"""The storefront API's one error shape: `{"error": CODE, "detail": ...}` (interfaces.md).

Routers raise `ApiError`; `syncsite/api.py` turns it, ninja's own errors and anything unexpected
into that shape. This module is separate from `syncsite/api.py` so an app's router can import it
without importing the API object that mounts the router (which would be a circular import).
"""
from __future__ import annotations

from typing import Any

from ninja import Schema
from pydantic import ConfigDict


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
