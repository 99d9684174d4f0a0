"""Storefront API: orders (`POST /api/v1/orders`, `GET /api/v1/orders`, `GET /api/v1/orders/{id}`).

Thin views: parse, call `orders.services.order_create` or a selector, format. `Idempotency-Key`
is required on create: the storefront generates one per checkout and sends it again on every
retry; the same key always answers the same order (201 the first time, 200 after), so a timeout
on the storefront's side never makes a second order. Errors (interfaces.md):
400 `invalid` with `detail` as a list of `{loc, msg}` naming the line (`["body", "items", 2,
"quantity"]`), 409 `insufficient_stock` with `sku`, `line`, `available` and `requested`,
404 `unknown_order`.

The list is every channel's orders (site, Ozon, Wildberries, Yandex Market), oldest change first,
by an opaque cursor: follow `next` until it is null; to poll afterwards pass `updated_since` = the
largest `updated_at` seen minus a few seconds.
"""
from __future__ import annotations

import base64
import binascii
import re
from datetime import datetime, timedelta, timezone as dt_timezone
from decimal import Decimal
from typing import Any

from django.http import HttpRequest
from django.utils import timezone
from ninja import Field, Header, Query, Router, Schema, Status
from pydantic import StrictInt

from syncsite.api_errors import ApiError, error_responses, invalid_param

from catalog.api import AwareIso

from . import selectors, services
from .models import Order, OrderSource, OrderStatus

router = Router(tags=["orders"])

IDEMPOTENCY_KEY = re.compile(r"^[\x21-\x7e]+$")
EXAMPLE_KEY = "3f0c8a52-8d7e-4c1b-9a51-2f6d0e4b7c11"

Quantity = int | float


# -- input --------------------------------------------------------------------------------------
class CustomerIn(Schema):
    name: str = Field("", max_length=255)
    email: str = Field("", max_length=254)
    phone: str = Field("", max_length=64)


class ItemIn(Schema):
    sku: str = Field(max_length=255)
    # A JSON integer and nothing else: true, "2" and 2.0 are refused, not read as numbers.
    quantity: StrictInt = Field(description="Whole units, at least 1 (a JSON integer)")


class ShippingIn(Schema):
    method: str = Field("", max_length=64, description="Free text: courier, pickup, …")
    address: str = Field("", max_length=2000)


class OrderIn(Schema):
    customer: CustomerIn
    items: list[ItemIn]
    shipping: ShippingIn = Field(default_factory=ShippingIn)
    comment: str = Field("", max_length=4000)


# -- output -------------------------------------------------------------------------------------
class ItemOut(Schema):
    sku: str
    name: str
    quantity: Quantity
    shipped: Quantity
    price: str = Field(examples=["1499.00"])
    total: str = Field(examples=["2998.00"])


class HistoryOut(Schema):
    status: str
    at: datetime


class OrderOut(Schema):
    id: str = Field(description="The order's public id (a UUID)")
    number: str = Field(examples=["S-000123"])
    source: str = Field(examples=["site"], description="site, ozon, wb or ym")
    source_order_id: str = Field(description="The order's id in its channel: Ozon posting number, WB task id, "
                                             "YM order id (site orders: their public id)")
    status: str = Field(description="pending, confirmed, processing, partially_shipped, shipped, completed, "
                                    "cancelled or returned")
    items: list[ItemOut]
    total: str = Field(examples=["2998.00"])
    currency: str = Field(examples=["RUB"])
    customer: CustomerIn
    shipping: ShippingIn
    comment: str
    created_at: datetime
    updated_at: datetime
    history: list[HistoryOut]


class OrderPageOut(Schema):
    items: list[OrderOut]
    next: str | None = Field(description="Pass as `cursor` for the next page; null on the last page")


class OrderListParams(Schema):
    source: OrderSource | None = Field(None, description="site, ozon, wb or ym")
    status: OrderStatus | None = Field(None, description="A unified status")
    updated_since: AwareIso | None = Field(None, description="Only orders changed at or after this moment (ISO 8601 "
                                                             "with offset)")
    cursor: str | None = Field(None, description="The `next` value of the previous page (opaque)")
    limit: int = Field(selectors.DEFAULT_PAGE_SIZE, ge=1, le=selectors.MAX_PAGE_SIZE, description="Page size")


# Opaque to clients: base64url of "o1.<updated_at as UTC epoch microseconds>.<order id>".
_EPOCH = datetime(1970, 1, 1, tzinfo=dt_timezone.utc)
_CURSOR = re.compile(r"o1\.(\d{1,18})\.(\d{1,18})")


def encode_cursor(position: tuple) -> str:
    updated_at, order_id = position
    micros = (updated_at - _EPOCH) // timedelta(microseconds=1)
    return base64.urlsafe_b64encode(f"o1.{micros}.{order_id}".encode()).decode().rstrip("=")


def decode_cursor(value: str) -> tuple:
    try:
        raw = base64.urlsafe_b64decode(value + "=" * (-len(value) % 4)).decode("ascii")
    except (binascii.Error, ValueError):
        raw = ""
    match = _CURSOR.fullmatch(raw)
    if not match:
        raise invalid_param(("query", "cursor"), "malformed cursor: pass the `next` value of a previous page unchanged")
    micros, order_id = (int(g) for g in match.groups())
    try:
        return _EPOCH + timedelta(microseconds=micros), order_id
    except OverflowError:
        raise invalid_param(("query", "cursor"), "malformed cursor: pass the `next` value of a previous page "
                                                 "unchanged") from None


def _money(value: Decimal) -> str:
    return str(value.quantize(Decimal("0.01")))


def _quantity(value: Decimal) -> Quantity:
    return int(value) if value == value.to_integral_value() else float(value)


def order_out(order: Order) -> dict[str, Any]:
    return {
        "id": str(order.uid),
        "number": order.number,
        "source": order.source,
        "source_order_id": order.source_order_id,
        "status": order.status,
        "items": [{"sku": line.sku, "name": line.name, "quantity": _quantity(line.quantity),
                   "shipped": _quantity(line.shipped_quantity), "price": _money(line.price),
                   "total": _money(line.total)} for line in order.lines.all()],
        "total": _money(order.total),
        "currency": order.currency,
        "customer": {"name": order.customer_name, "email": order.customer_email, "phone": order.customer_phone},
        "shipping": {"method": order.shipping_method, "address": order.shipping_address},
        "comment": order.comment,
        "created_at": timezone.localtime(order.placed_at or order.created_at),
        "updated_at": timezone.localtime(order.updated_at),
        "history": [{"status": change.to_status, "at": timezone.localtime(change.at)}
                    for change in order.status_changes.all()],
    }


# -- views --------------------------------------------------------------------------------------
@router.post("", response={200: OrderOut, 201: OrderOut,
                           **error_responses("insufficient_stock", "idempotency_mismatch", body=True)},
             summary="Place an order (reserves stock)")
def order_create(request: HttpRequest, payload: OrderIn,
                 idempotency_key: str = Header(..., alias="Idempotency-Key", min_length=1, max_length=255,
                                               pattern=IDEMPOTENCY_KEY.pattern, examples=[EXAMPLE_KEY],
                                               description="One per checkout (a UUID, say), sent again on every "
                                                           "retry of it: printable ASCII, at most 255 characters")):
    key = idempotency_key
    try:
        result = services.order_create(
            customer=services.CustomerData(name=payload.customer.name, email=payload.customer.email,
                                           phone=payload.customer.phone),
            items=[services.LineRequest(sku=item.sku, quantity=item.quantity) for item in payload.items],
            shipping_method=payload.shipping.method, shipping_address=payload.shipping.address,
            comment=payload.comment, idempotency_key=key,
            request_fingerprint=services.request_hash(payload.dict()), by="site")
    except services.OrderInvalid as exc:
        if exc.line is not None:
            raise invalid_param(("body", "items", exc.line, exc.field or "sku"), exc.detail) from None
        raise invalid_param(("body", *(exc.field or "body").split(".")), exc.detail) from None
    except services.IdempotencyMismatch as exc:
        raise ApiError(422, "idempotency_mismatch",
                       f"{exc}: send a new Idempotency-Key for a new checkout, the same body to retry") from None
    except services.InsufficientStock as exc:
        raise ApiError(409, "insufficient_stock", str(exc), sku=exc.sku, line=exc.line,
                       available=_quantity(exc.available), requested=_quantity(exc.requested)) from None
    order = selectors.order_get(order_id=result.order.pk)
    return Status(201 if result.created else 200, order_out(order))


@router.get("", response={200: OrderPageOut, **error_responses()}, operation_id="order_list",
            summary="Every channel's orders, oldest change first, one page at a time")
def order_list(request: HttpRequest, params: Query[OrderListParams]) -> dict[str, Any]:
    after = decode_cursor(params.cursor) if params.cursor else None
    items, following = selectors.order_list_changed(
        source=params.source.value if params.source else None, status=params.status.value if params.status else None,
        updated_since=params.updated_since, after=after, limit=params.limit)
    return {"items": [order_out(order) for order in items], "next": encode_cursor(following) if following else None}


@router.get("/{text:order_id}", response={200: OrderOut, **error_responses("unknown_order")},
            summary="An order with its status history")
def order_detail(request: HttpRequest, order_id: str):
    order = selectors.order_get_by_public_id(public_id=order_id)
    if order is None:
        raise ApiError(404, "unknown_order", f"no order {order_id}")
    return order_out(order)
