"""Storefront API: `POST /api/v1/cart/check` and `POST /api/v1/back-in-stock` (interfaces.md)."""
from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any, Literal

from django.http import HttpRequest
from django.utils import timezone
from ninja import Field, Router, Schema, Status
from django.core.exceptions import ValidationError as DjangoValidationError
from django.core.validators import validate_email
from pydantic import field_validator

from catalog.models import Offer
from syncsite.api_errors import ApiError, error_responses

from .backinstock import subscribe
from .cart import CartCheckUnavailable, cart_check

cart_router = Router(tags=["cart"])
back_in_stock_router = Router(tags=["back-in-stock"])

Quantity = int | float


def _quantity(value: Decimal) -> Quantity:
    return int(value) if value == value.to_integral_value() else float(value)


class CartCheckIn(Schema):
    sku: str = Field(min_length=1, max_length=255)
    quantity: int = Field(ge=1, le=1_000_000, description="Whole units wanted")


class CartCheckOut(Schema):
    sku: str
    requested: Quantity
    available: Quantity = Field(description="Available over all active warehouses (suppliers included)")
    ok: Literal[True]
    checked_at: datetime = Field(description="When the figures were read (the oldest, for a stale answer)")
    source: Literal["database", "live", "stale"] = Field(
        description="database: fresh figures; live: a supplier was asked just now; stale: a supplier figure "
                    "older than its freshness threshold that could not be refreshed")


@cart_router.post("/check", response={200: CartCheckOut,
                                      **error_responses("unknown_sku", "insufficient_stock", "supplier_unavailable",
                                                        body=True)},
                  operation_id="cart_check", summary="Is this quantity in stock now? (live supplier check)")
def cart_check_view(request: HttpRequest, payload: CartCheckIn) -> dict[str, Any]:
    try:
        answer = cart_check(sku=payload.sku, quantity=Decimal(payload.quantity))
    except CartCheckUnavailable as exc:
        raise ApiError(503, "supplier_unavailable", f"the supplier's stock could not be checked now: {exc}",
                       sku=payload.sku) from None
    if answer is None:
        raise ApiError(404, "unknown_sku", f"no product with SKU {payload.sku!r}", sku=payload.sku)
    if not answer.ok:
        raise ApiError(409, "insufficient_stock", f"{_quantity(answer.available)} available, "
                       f"{payload.quantity} requested", sku=answer.sku, line=0,
                       available=_quantity(answer.available), requested=payload.quantity, source=answer.source)
    return {"sku": answer.sku, "requested": payload.quantity, "available": _quantity(answer.available), "ok": True,
            "checked_at": timezone.localtime(answer.checked_at), "source": answer.source}


class BackInStockIn(Schema):
    sku: str = Field(min_length=1, max_length=255)
    email: str = Field(min_length=3, max_length=254)

    @field_validator("email")
    @classmethod
    def _email(cls, value: str) -> str:
        value = value.strip()
        try:
            validate_email(value)
        except DjangoValidationError:
            raise ValueError("not an e-mail address") from None
        return value


class BackInStockOut(Schema):
    sku: str
    email: str
    subscribed: bool = True


@back_in_stock_router.post("", response={201: BackInStockOut, **error_responses("unknown_sku", body=True)},
                           operation_id="back_in_stock_subscribe",
                           summary="E-mail me once when this product is back in stock")
def back_in_stock_view(request: HttpRequest, payload: BackInStockIn) -> Status:
    offer = Offer.objects.filter(sku=payload.sku).only("pk", "sku").first()
    if offer is None:
        raise ApiError(404, "unknown_sku", f"no product with SKU {payload.sku!r}", sku=payload.sku)
    subscribe(offer_id=offer.pk, email=str(payload.email))
    return Status(201, {"sku": offer.sku, "email": str(payload.email), "subscribed": True})
