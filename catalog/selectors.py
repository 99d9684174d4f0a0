"""Catalog reads. The storefront feed lives here: one product per sellable Offer, keyed by SKU.

A product's `updated_at` in the feed is the newest of the offer's, its product's and its stock
levels' `updated_at`, so a storefront polling `updated_since` sees a stock change as well as a
price or name change. That value is computed in SQL (`feed_updated_at`) rather than stored,
because the sync writes offers, products and stock in bulk (`UPDATE`/upserts that bypass model
hooks) and a denormalised column could silently drift.

Every list query costs a constant number of statements: one for the page (offer + product via a
join, the stock timestamp as a correlated MAX subquery) and one prefetch for the stock levels
with their warehouses.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Iterable, Mapping

from django.db import connection
from django.db.models import DateTimeField, F, Max, OuterRef, Prefetch, Q, QuerySet, Subquery
from django.db.models.expressions import RawSQL
from django.db.models.functions import Coalesce, Greatest

from stock.models import StockLevel
from syncsite.bulk import in_chunks

from .models import Barcode, Category, Offer, ProductImage

DEFAULT_PAGE_SIZE = 100
MAX_PAGE_SIZE = 500

ZERO = Decimal(0)


@dataclass(frozen=True)
class WarehouseStock:
    code: str
    name: str
    available: Decimal


@dataclass(frozen=True)
class StorefrontProduct:
    """What the storefront sees of one sellable offer (domain values; the API formats them)."""

    offer_id: int
    sku: str
    name: str
    price: Decimal | None
    currency: str
    available: Decimal
    warehouses: tuple[WarehouseStock, ...]
    archived: bool
    updated_at: datetime
    # catalog fields, so a shop can render its pages from the API alone
    description: str = ""
    slug: str = ""
    seo_title: str = ""
    seo_description: str = ""
    category: "CategoryRef | None" = None
    images: tuple["ImageRef", ...] = ()
    group: "GroupRef | None" = None


@dataclass(frozen=True)
class CategoryRef:
    id: int
    path: str


@dataclass(frozen=True)
class ImageRef:
    url: str
    alt: str


@dataclass(frozen=True)
class GroupRef:
    """The product a variant belongs to, and what sets this variant apart."""

    id: int
    name: str
    slug: str
    characteristics: dict = field(default_factory=dict)


@dataclass(frozen=True)
class FeedPosition:
    """Where a page ended: the (updated_at, offer id) the next page starts after."""

    updated_at: datetime
    offer_id: int


@dataclass(frozen=True)
class StorefrontPage:
    items: list[StorefrontProduct]
    next: FeedPosition | None  # None: this was the last page


def _feed_queryset() -> QuerySet[Offer]:
    """Offers annotated with `feed_updated_at`, with what the representation needs pre-loaded."""
    newest_stock = Subquery(
        StockLevel.objects.filter(offer=OuterRef("pk"))
        .order_by()
        .values("offer")
        .annotate(newest=Max("updated_at"))
        .values("newest"),
        output_field=DateTimeField(),
    )
    # Coalesce: SQLite's MAX(a, b, NULL) is NULL (PostgreSQL's GREATEST skips NULLs); an offer
    # without stock rows must still get a timestamp on both.
    feed_updated_at = Greatest(
        F("updated_at"), F("product__updated_at"), Coalesce(newest_stock, F("updated_at")),
        output_field=DateTimeField(),
    )
    active_levels = (
        StockLevel.objects.filter(warehouse__archived=False)
        .select_related("warehouse")
        .only("offer", "available", "warehouse__code", "warehouse__name")
        .order_by("warehouse__name", "warehouse__code")
    )
    return (
        Offer.objects.select_related("product", "product__category")
        .only("sku", "name", "is_variant", "characteristics", "price", "currency", "archived", "updated_at",
              "product__name", "product__archived", "product__updated_at", "product__description",
              "product__slug", "product__seo_title", "product__seo_description",
              "product__category__path", "product__category__archived")
        .annotate(feed_updated_at=feed_updated_at, images_json=_images_json())
        .prefetch_related(Prefetch("stock_levels", queryset=active_levels, to_attr="active_levels"))
    )


def _images_json() -> RawSQL:
    """The product's images as one JSON array in the page's own query (no third statement)."""
    images = ProductImage._meta.db_table
    offers = Offer._meta.db_table
    if connection.vendor == "postgresql":
        sql = (f'SELECT COALESCE(json_agg(json_build_object(\'url\', i.url, \'alt\', i.alt) '
               f'ORDER BY i.position, i.id), \'[]\')::text FROM "{images}" i WHERE i.product_id = "{offers}".product_id')
    else:
        sql = (f'SELECT json_group_array(json_object(\'url\', url, \'alt\', alt)) FROM (SELECT url, alt FROM '
               f'"{images}" WHERE product_id = "{offers}".product_id ORDER BY position, id)')
    return RawSQL(sql, ())


def _changed_since(moment: datetime) -> Q:
    """`feed_updated_at >= moment`, spelled so each part can use its own index: the newest of three
    timestamps is at least `moment` exactly when one of them is (the offer, its product, or any
    of its stock rows). The database can test this before computing the annotation."""
    return (
        Q(updated_at__gte=moment)
        | Q(product__updated_at__gte=moment)
        | Q(pk__in=StockLevel.objects.filter(updated_at__gte=moment).values("offer_id"))
    )


def _to_storefront(offer: Offer) -> StorefrontProduct:
    levels = [
        WarehouseStock(code=level.warehouse.code, name=level.warehouse.name,
                       available=max(level.available, ZERO))
        for level in offer.active_levels  # type: ignore[attr-defined]  (prefetch to_attr)
    ]
    # A product without variants sells as its single offer: show the product's name, because that
    # is the contested field a manager may have edited on the site (the offer copy is MoySklad's).
    # A variant's own name carries its characteristics ("Shirt (red, XL)"), so it is kept.
    name = offer.name if offer.is_variant else offer.product.name
    product = offer.product
    category = product.category
    images = tuple(ImageRef(url=i.get("url") or "", alt=i.get("alt") or "")
                   for i in json.loads(getattr(offer, "images_json", None) or "[]"))
    return StorefrontProduct(
        offer_id=offer.pk,
        sku=offer.sku,
        name=name,
        price=offer.price,
        currency=offer.currency,
        available=sum((w.available for w in levels), ZERO),
        warehouses=tuple(levels),
        archived=offer.archived or offer.product.archived,
        updated_at=offer.feed_updated_at,  # type: ignore[attr-defined]  (annotation)
        description=product.description,
        slug=product.slug,
        seo_title=product.seo_title,
        seo_description=product.seo_description,
        category=CategoryRef(category.pk, category.path) if category is not None and not category.archived else None,
        images=images,
        group=(GroupRef(product.pk, product.name, product.slug, dict(offer.characteristics or {}))
               if offer.is_variant else None),
    )


def storefront_product_list(*, updated_since: datetime | None = None, after: FeedPosition | None = None,
                            limit: int = DEFAULT_PAGE_SIZE, category_id: int | None = None) -> StorefrontPage:
    """One page of the feed in (updated_at, offer id) order, archived offers included.

    Keyset paging: the next page starts strictly after `after`, so rows are neither skipped nor
    repeated while the catalog is still; an offer that changes mid-walk moves to the end and is
    served again there (which is what a delta consumer wants). Two statements whatever `limit`.
    """
    limit = max(1, min(limit, MAX_PAGE_SIZE))
    qs = _feed_queryset()
    if category_id is not None:
        qs = qs.filter(_in_category(category_id))
    lower = max((m for m in (updated_since, after.updated_at if after else None) if m is not None), default=None)
    if lower is not None:
        qs = qs.filter(_changed_since(lower))
    if after is not None:
        qs = qs.filter(Q(feed_updated_at__gt=after.updated_at)
                       | Q(feed_updated_at=after.updated_at, pk__gt=after.offer_id))
    rows = list(qs.order_by("feed_updated_at", "pk")[: limit + 1])
    items = [_to_storefront(offer) for offer in rows[:limit]]
    last = items[-1] if len(rows) > limit else None
    return StorefrontPage(items=items, next=FeedPosition(last.updated_at, last.offer_id) if last else None)


def _in_category(category_id: int) -> Q:
    """Products of this category and of every category below it (by the stored path)."""
    path = Category.objects.filter(pk=category_id).values_list("path", flat=True).first()
    if path is None:
        return Q(pk__in=[])
    return Q(product__category_id=category_id) | Q(product__category__path__startswith=path + "/")


@dataclass(frozen=True)
class StorefrontCategory:
    id: int
    name: str
    parent_id: int | None
    path: str


def storefront_categories() -> list[StorefrontCategory]:
    """Every live category, parents before children (ordered by path); one statement."""
    rows = Category.objects.filter(archived=False).order_by("path", "id").values_list("id", "name", "parent_id",
                                                                                    "path", "parent__archived")
    return [StorefrontCategory(pk, name, None if parent_archived else parent_id, path)
            for pk, name, parent_id, path, parent_archived in rows]


def storefront_product_get(*, sku: str) -> StorefrontProduct | None:
    """The feed entry for one SKU (exact match), or None when no offer has it."""
    offer = _feed_queryset().filter(sku=sku).first()
    return _to_storefront(offer) if offer else None


# ------------------------------------------------------------------------------------------------
# Matching another system's SKUs to our offers (suppliers, 1C, marketplaces' order lines)
# ------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class OfferMatch:
    offer_id: int
    by: str  # "sku", "barcode" or "mapping"


def offer_match_external(*, skus: Iterable[str], barcodes: Mapping[str, Iterable[str]] | None = None,
                         mapping: Mapping[str, int] | None = None) -> dict[str, OfferMatch]:
    """{external SKU: our offer} for the SKUs another system sends, never guessed:

    1. our SKU equal to theirs;
    2. else a barcode of ours equal to their SKU or to one of the barcodes they give for it
       (`barcodes`: {their SKU: [barcode, …]}) — only when exactly one offer of ours has it;
    3. else a manager's mapping row (`mapping`: {their SKU: our offer id}, kept by the caller).

    SKUs matched by none of these are absent from the answer (the caller lists them as unmapped).
    A bounded number of queries whatever the number of SKUs."""
    wanted = list(dict.fromkeys(s for s in skus if s))
    barcodes = barcodes or {}
    mapping = mapping or {}
    out: dict[str, OfferMatch] = {
        sku: OfferMatch(pk, "sku")
        for sku, pk in in_chunks(lambda chunk: Offer.objects.filter(sku__any=chunk).values_list("sku", "pk"), wanted)}
    left = [s for s in wanted if s not in out]
    if left:
        candidates: dict[str, list[str]] = {s: [s, *[b for b in barcodes.get(s, ()) if b]] for s in left}
        values = list(dict.fromkeys(v for vs in candidates.values() for v in vs))
        owners: dict[str, set[int]] = {}
        for value, offer_id in in_chunks(
                lambda chunk: Barcode.objects.filter(value__any=chunk).values_list("value", "offer_id"), values):
            owners.setdefault(value, set()).add(offer_id)
        for sku, vs in candidates.items():
            found = set().union(*(owners.get(v, set()) for v in vs))
            if len(found) == 1:
                out[sku] = OfferMatch(found.pop(), "barcode")
    manual = {s: mapping[s] for s in wanted if s not in out and s in mapping}
    if manual:
        existing = set(in_chunks(lambda chunk: Offer.objects.filter(pk__in=chunk).values_list("pk", flat=True),
                                 list(set(manual.values()))))
        out.update({s: OfferMatch(pk, "mapping") for s, pk in manual.items() if pk in existing})
    return out
