"""Storefront API: products (`GET /api/v1/products`, `GET /api/v1/products/{sku}`) and the category
tree (`GET /api/v1/categories`): enough to render a shop's pages from the API alone.

Thin views: parse the query, call a selector in `catalog/selectors.py`, format. Formatting rules
(interfaces.md): money is a decimal string in rubles ("1499.00", null without a price); times are
ISO 8601 with an offset (rendered in the site's time zone). `available` is a JSON number: an integer
for whole quantities (5), a fraction only for goods sold by weight or length (2.5).

Paging is by an opaque cursor. Walk a full catalog by following `next` until it is null; to poll
for changes afterwards, pass `updated_since` = the largest `updated_at` seen minus a few seconds
(rows committed late by a long transaction can carry a slightly older timestamp).
"""
from __future__ import annotations

import base64
import binascii
import re
from datetime import datetime, timedelta, timezone as dt_timezone
from decimal import Decimal
from typing import Annotated, Any

from django.http import HttpRequest
from django.utils import timezone
from ninja import Field, Query, Router, Schema
from pydantic import BeforeValidator

from syncsite.api_errors import ApiError, error_responses, invalid_param

from .selectors import (
    DEFAULT_PAGE_SIZE,
    MAX_PAGE_SIZE,
    FeedPosition,
    StorefrontProduct,
    storefront_categories,
    storefront_product_get,
    storefront_product_list,
)

router = Router(tags=["products"])
categories_router = Router(tags=["categories"])

ISO_EXAMPLE = "2026-11-20T10:00:00+03:00"


# -- input --------------------------------------------------------------------------------------
def parse_aware_iso(value: Any) -> datetime:
    """ISO 8601 with a UTC offset ("Z" or "+03:00"). A naive time is refused: the client's zone is
    unknown and guessing would shift a delta window by hours."""
    if isinstance(value, datetime):
        moment = value
    elif isinstance(value, str):
        text = value.strip()
        if "T" in text and " " in text:
            # An unencoded "+" in a query string arrives as a space: "…T10:00:00 03:00".
            text = text.replace(" ", "+")
        try:
            moment = datetime.fromisoformat(text)
        except ValueError:
            raise ValueError(f"not an ISO 8601 date-time; expected e.g. {ISO_EXAMPLE}") from None
    else:
        raise ValueError(f"not an ISO 8601 date-time; expected e.g. {ISO_EXAMPLE}")
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError(f"needs a UTC offset (Z or +03:00); expected e.g. {ISO_EXAMPLE}")
    # In UTC from here on: an offset Python allows (up to ±23:59) may be one the database does not
    # (PostgreSQL stops at ±15:59), and a moment at the calendar's edge may not exist in UTC at all.
    try:
        return moment.astimezone(dt_timezone.utc)
    except OverflowError:
        raise ValueError("date-time out of range") from None


AwareIso = Annotated[datetime, BeforeValidator(parse_aware_iso)]


class ProductListParams(Schema):
    updated_since: AwareIso | None = Field(
        None, description="Only products whose updated_at is at or after this moment (ISO 8601 with offset)",
        examples=[ISO_EXAMPLE])
    cursor: str | None = Field(None, description="The `next` value of the previous page (opaque)")
    limit: int = Field(DEFAULT_PAGE_SIZE, ge=1, le=MAX_PAGE_SIZE, description="Page size")
    category: int | None = Field(None, ge=1, le=2**63 - 1,
                                 description="Only products of this category id and the categories below it")


# -- cursor -------------------------------------------------------------------------------------
# Opaque to clients: base64url of "v1.<updated_at as UTC epoch microseconds>.<offer id>". Integer
# microseconds round-trip exactly on both databases, so the keyset comparison never drifts.
_EPOCH = datetime(1970, 1, 1, tzinfo=dt_timezone.utc)
_CURSOR = re.compile(r"v1\.(\d{1,18})\.(\d{1,18})")


def encode_cursor(position: FeedPosition) -> str:
    micros = (position.updated_at - _EPOCH) // timedelta(microseconds=1)
    raw = f"v1.{micros}.{position.offer_id}".encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(value: str) -> FeedPosition:
    try:
        raw = base64.urlsafe_b64decode(value + "=" * (-len(value) % 4)).decode("ascii")
    except (binascii.Error, ValueError):
        raw = ""
    match = _CURSOR.fullmatch(raw)
    if not match:
        raise invalid_param(("query", "cursor"), "malformed cursor: pass the `next` value of a previous page unchanged")
    micros, offer_id = (int(g) for g in match.groups())
    try:
        updated_at = _EPOCH + timedelta(microseconds=micros)
    except OverflowError:  # past year 9999: no page of ours ever ended there
        raise invalid_param(("query", "cursor"), "malformed cursor: pass the `next` value of a previous page "
                                                 "unchanged") from None
    return FeedPosition(updated_at=updated_at, offer_id=offer_id)


# -- output -------------------------------------------------------------------------------------
Quantity = int | float


class WarehouseOut(Schema):
    code: str
    name: str
    available: Quantity


class CategoryRefOut(Schema):
    id: int
    path: str = Field(description='Full path, e.g. "Посуда/Чайники"')


class SeoOut(Schema):
    title: str
    description: str


class ImageOut(Schema):
    url: str
    alt: str


class GroupOut(Schema):
    id: int = Field(description="The product's id: variants sharing it are one product page")
    name: str
    slug: str
    characteristics: dict[str, Any] = Field(description='What sets this variant apart, e.g. {"Цвет": "красный"}')


class CategoryOut(Schema):
    id: int
    name: str
    parent_id: int | None
    path: str


class CategoryListOut(Schema):
    items: list[CategoryOut]


class ProductOut(Schema):
    sku: str
    name: str
    price: str | None = Field(description='Rubles as a decimal string, e.g. "1499.00"; null without a price',
                              examples=["1499.00"])
    currency: str = Field(examples=["RUB"])
    available: Quantity = Field(description="Available (stock − reserve) over all active warehouses")
    warehouses: list[WarehouseOut]
    archived: bool = Field(description="Archived or deleted upstream: unpublish it")
    updated_at: datetime = Field(description="Newest change of the offer, its product or its stock")
    description: str = Field(description="The product's description (HTML or text, as the manager wrote it)")
    category: CategoryRefOut | None = Field(description="The product's category (null: none or archived)")
    slug: str = Field(description="URL slug set in the admin (may be empty)")
    seo: SeoOut
    images: list[ImageOut] = Field(description="In display order")
    group: GroupOut | None = Field(description="For a variant: the product it belongs to and its characteristics; "
                                               "null for a product sold without variants")


class ProductPageOut(Schema):
    items: list[ProductOut]
    next: str | None = Field(description="Cursor for the next page; null on the last page")


def _money(value: Decimal | None) -> str | None:
    return None if value is None else str(value.quantize(Decimal("0.01")))


def _quantity(value: Decimal) -> Quantity:
    """5.000 -> 5 and 2.500 -> 2.5: JSON numbers without a trailing fraction for whole units."""
    return int(value) if value == value.to_integral_value() else float(value)


def product_out(product: StorefrontProduct) -> dict[str, Any]:
    return {
        "sku": product.sku,
        "name": product.name,
        "price": _money(product.price),
        "currency": product.currency,
        "available": _quantity(product.available),
        "warehouses": [{"code": w.code, "name": w.name, "available": _quantity(w.available)}
                       for w in product.warehouses],
        "archived": product.archived,
        "updated_at": timezone.localtime(product.updated_at),
        "description": product.description,
        "category": {"id": product.category.id, "path": product.category.path} if product.category else None,
        "slug": product.slug,
        "seo": {"title": product.seo_title, "description": product.seo_description},
        "images": [{"url": i.url, "alt": i.alt} for i in product.images],
        "group": ({"id": product.group.id, "name": product.group.name, "slug": product.group.slug,
                   "characteristics": product.group.characteristics} if product.group else None),
    }


# -- views --------------------------------------------------------------------------------------
@router.get("", response={200: ProductPageOut, **error_responses()},
            operation_id="product_list", summary="Products, oldest change first, one page at a time")
def product_list(request: HttpRequest, params: Query[ProductListParams]) -> dict[str, Any]:
    after = decode_cursor(params.cursor) if params.cursor else None
    page = storefront_product_list(updated_since=params.updated_since, after=after, limit=params.limit,
                                   category_id=params.category)
    return {"items": [product_out(p) for p in page.items],
            "next": encode_cursor(page.next) if page.next else None}


# `text:` so a SKU containing "/" (MoySklad articles may) or anything else still resolves.
@router.get("/{text:sku}", response={200: ProductOut, **error_responses("unknown_sku")},
            operation_id="product_get", summary="One product by SKU")
def product_get(request: HttpRequest, sku: str) -> dict[str, Any]:
    product = storefront_product_get(sku=sku)
    if product is None:
        raise ApiError(404, "unknown_sku", f"no product with SKU {sku!r}", sku=sku)
    return product_out(product)


@categories_router.get("", response={200: CategoryListOut, **error_responses()},
                       operation_id="category_list", summary="The category tree (parents before children)")
def category_list(request: HttpRequest) -> dict[str, Any]:
    return {"items": [{"id": c.id, "name": c.name, "parent_id": c.parent_id, "path": c.path}
                      for c in storefront_categories()]}
