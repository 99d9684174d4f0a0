"""Catalog writes. Every importer (MoySklad today) maps its records and calls `products_write` /
`offers_write`; none writes catalog rows itself. These own the rules of a sellable unit:

* **SKU ownership**: a SKU belongs to one offer. A unit whose SKU another offer holds, or an
  earlier unit of the same batch, is rejected (returned, never raised); a product whose own unit
  is rejected is skipped whole, so nothing half-lands.
* **Barcodes**: the list is replaced only when it changed.
* **The variant rule**: a product that gained variants sells through them; its own offer retires.
  A variant with no price of its own sells at its product's and follows it.
* **Contested fields** (name, description) go to the newer side; every change, accepted or not,
  is kept in FieldChange. Site-owned fields (slug, SEO, images) are never touched here.
* **`updated_at` moves only on a real change**, so the storefront feed's `updated_since` and
  anything else keyed on it see only what changed.

Writes are bulk (a few statements a batch, never one per row): syncsite.bulk COPYs each batch and
lets the database keep what did not change.
"""
from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Sequence

from django.db import models, transaction
from django.db.models import Max, Min, Q, Subquery
from django.utils import timezone

from syncsite.bulk import Keys, bulk_insert, bulk_update, bulk_upsert, in_chunks

from .models import Barcode, Category, FieldChange, Offer, Product

CONTESTED_FIELDS = ("name", "description")


def contested_resolve(*, product: Product, field: str, upstream_value: str, upstream_changed_at: datetime | None,
                      last_upstream_value: str | None = None,
                      source: str = FieldChange.Source.MOYSKLAD) -> FieldChange | None:
    """Apply an upstream value of a contested field to `product` (in memory) unless the site's own
    edit is newer. Returns the history row to store (accepted or not), or None when nothing changed.

    `last_upstream_value` is the value upstream sent last time (see `contested_last_upstream`). When
    upstream still sends it, upstream did not edit this field: whatever the site holds stays, even
    if the upstream record changed for some other reason (a price) after the site's edit."""
    if product.pk is None:
        setattr(product, field, upstream_value)
        return None  # a new product has no history to speak of
    current = getattr(product, field)
    accepted = _contested(current, upstream_value, last_upstream_value, product.name_edited_at, upstream_changed_at)
    if accepted is None:
        return None
    if accepted:
        setattr(product, field, upstream_value)
    return FieldChange(product=product, field=field, old_value=current, new_value=upstream_value,
                       source=source, accepted=accepted, changed_at=upstream_changed_at or timezone.now())


def _contested(current: str, upstream_value: str, last_upstream_value: str | None, site_edited_at: datetime | None,
               upstream_changed_at: datetime | None) -> bool | None:
    """None: nothing to record (same value, or upstream did not touch the field and the difference
    is the site's edit). True: upstream's value wins. False: the site's newer edit stays."""
    if current == upstream_value:
        return None
    if last_upstream_value is not None and upstream_value == last_upstream_value:
        return None
    return not (site_edited_at and upstream_changed_at and site_edited_at > upstream_changed_at)


def contested_last_upstream(*, product_ids: list[int], source: str = FieldChange.Source.MOYSKLAD
                            ) -> dict[tuple[int, str], str]:
    """{(product id, field): the value upstream sent last}, in one query for a page of products.

    That is the newest upstream FieldChange (accepted or not); failing that, the value the site's
    first edit replaced (it came from upstream). Products the site never edited are absent: their
    current value is upstream's anyway."""
    if not product_ids:
        return {}
    base = FieldChange.objects.filter(product_id__in=product_ids, field__in=CONTESTED_FIELDS)
    newest_upstream = base.filter(source=source).values("product_id", "field").annotate(pick=Max("id")).values("pick")
    first_site = base.filter(source=FieldChange.Source.SITE).values("product_id", "field").annotate(
        pick=Min("id")).values("pick")
    out: dict[tuple[int, str], str] = {}
    for product_id, field, src, old, new in FieldChange.objects.filter(
            Q(id__in=Subquery(newest_upstream)) | Q(id__in=Subquery(first_site))).values_list(
            "product_id", "field", "source", "old_value", "new_value"):
        if src == source:
            out[(product_id, field)] = new
        else:
            out.setdefault((product_id, field), old)
    return out


def product_contested_set_by_site(*, product: Product, field: str, value: str) -> FieldChange | None:
    """A manager edits a contested field in the admin: the site's edit becomes the newer one."""
    if field not in CONTESTED_FIELDS:
        raise ValueError(f"{field} is not a contested field")
    old = Product.objects.filter(pk=product.pk).values_list(field, flat=True).first()
    if old == value:
        return None
    now = timezone.now()
    with transaction.atomic():
        setattr(product, field, value)
        product.name_edited_at = now
        product.save(update_fields=[field, "name_edited_at", "updated_at"])
        return FieldChange.objects.create(product=product, field=field, old_value=old or "", new_value=value,
                                          source=FieldChange.Source.SITE, accepted=True, changed_at=now)


# ------------------------------------------------------------------------------------------------
# Products and sellable units, in bulk
# ------------------------------------------------------------------------------------------------
@dataclass(slots=True)
class UnitIn:
    """A sellable unit as an importer maps it. `id`: the offer the importer already holds for it
    (from its binding), None for a new one."""

    id: int | None
    sku: str
    name: str
    price: Decimal | None                 # None: no sale price (listed, not orderable)
    article: str = ""
    code: str = ""
    archived: bool = False
    is_variant: bool = False
    characteristics: dict = field(default_factory=dict)
    barcodes: Sequence[tuple[str, str]] = ()
    product_id: int | None = None         # a variant's product; a product's own unit gets it here
    price_from_product: bool = False      # a variant without a price of its own: `price` is its product's


@dataclass(slots=True)
class ProductIn:
    """A product as an importer maps it, with its own unit unless it sells through variants."""

    id: int | None
    name: str
    description: str = ""
    category_id: int | None = None
    archived: bool = False
    vat: int | None = None
    price: Decimal | None = None
    has_variants: bool = False
    changed_at: datetime | None = None    # when upstream changed it: decides the contested fields
    unit: UnitIn | None = None


@dataclass(frozen=True)
class SkuTaken:
    """A unit not written because its SKU is taken: by offer `holder_id`, or (`other_index` set)
    by an earlier unit of the same batch."""

    index: int
    sku: str
    holder_id: int | None
    other_index: int | None = None


@dataclass
class CatalogWrite:
    product_ids: list[int | None] = field(default_factory=list)   # per input product (None: skipped)
    offer_ids: list[int | None] = field(default_factory=list)     # per input unit (None: rejected)
    rejected: list[SkuTaken] = field(default_factory=list)
    products_created: int = 0
    products_changed: list[int] = field(default_factory=list)     # existing products really changed
    offers_created: int = 0
    offers_changed: list[int] = field(default_factory=list)       # existing offers really changed
    offers_retired: list[int] = field(default_factory=list)       # own offers of products that gained variants


PRODUCT_FIELDS = ["name", "description", "category_id", "archived", "vat", "price"]
OFFER_FIELDS = ["product_id", "sku", "name", "price", "price_from_product", "article", "code", "is_variant",
                "characteristics", "archived"]


def products_write(*, products: Sequence[ProductIn], source: str = FieldChange.Source.MOYSKLAD) -> CatalogWrite:
    """Create or update products and their own units in one transaction (see the module's doc)."""
    result = CatalogWrite(product_ids=[None] * len(products))
    indexed = [(i, p.unit) for i, p in enumerate(products) if p.unit is not None]
    result.rejected = _skus_taken(indexed)
    skipped = {r.index for r in result.rejected}
    keep = [i for i in range(len(products)) if i not in skipped]
    now = timezone.now()
    with transaction.atomic():
        old = [i for i in keep if products[i].id is not None]
        new = [i for i in keep if products[i].id is None]
        history = _resolve_contested([products[i] for i in old], source)
        if new:
            ids = bulk_insert(Product, [_product_row(products[i]) for i in new], fields=PRODUCT_FIELDS,
                              touch={"updated_at": now, "created_at": now})
            for i, pk in zip(new, ids):
                result.product_ids[i] = pk
            result.products_created = len(ids)
        if old:
            for i in old:
                result.product_ids[i] = products[i].id
            upserted = bulk_upsert(Product, [(products[i].id, *_product_row(products[i])) for i in old],
                                   fields=["id", *PRODUCT_FIELDS], unique_fields=["id"], update_fields=PRODUCT_FIELDS,
                                   touch={"updated_at": now})
            result.products_changed = [k[0] for k in upserted.updated]
        if history:
            FieldChange.objects.bulk_create(history, batch_size=1000)
        units = []
        for i in keep:
            unit = products[i].unit
            if unit is not None:
                unit.product_id = result.product_ids[i]
                units.append(unit)
        ids, created, changed = _units_write(units, now)
        result.offer_ids = ids
        result.offers_created, result.offers_changed = created, changed
        # A product that gained variants sells through them: retire its own offer.
        with_variants = [result.product_ids[i] for i in keep if products[i].has_variants and products[i].id]
        if with_variants:
            retired = list(in_chunks(lambda c: Offer.objects.filter(
                product_id__any=Keys(c), is_variant=False, archived=False).values_list("pk", flat=True), with_variants))
            if retired:
                for chunk in _chunks(retired):
                    Offer.objects.filter(pk__in=chunk).update(archived=True, updated_at=now)
                result.offers_retired = retired
        # Variants without a price of their own follow their product's.
        repriced = {products[i].id: products[i].price for i in old
                    if products[i].has_variants and products[i].id in set(result.products_changed)}
        if repriced:
            followers = list(in_chunks(lambda c: Offer.objects.filter(
                product_id__any=Keys(c), price_from_product=True).values_list("pk", "product_id"), list(repriced)))
            if followers:
                result.offers_changed += bulk_update(Offer, [(pk, repriced[product_id]) for pk, product_id in followers],
                                                     fields=["price"], touch={"updated_at": now})
    return result


def offers_write(*, offers: Sequence[UnitIn]) -> CatalogWrite:
    """Create or update sellable units of existing products (variants) in one transaction."""
    result = CatalogWrite(offer_ids=[None] * len(offers))
    result.rejected = _skus_taken(list(enumerate(offers)))
    skipped = {r.index for r in result.rejected}
    keep = [i for i in range(len(offers)) if i not in skipped]
    with transaction.atomic():
        ids, created, changed = _units_write([offers[i] for i in keep], timezone.now())
    for i, pk in zip(keep, ids):
        result.offer_ids[i] = pk
    result.offers_created, result.offers_changed = created, changed
    return result


def _chunks(seq: list, size: int = 1000):
    for start in range(0, len(seq), size):
        yield seq[start:start + size]


def _product_row(p: ProductIn) -> tuple:
    return (p.name, p.description, p.category_id, p.archived, p.vat, p.price)


def _unit_row(u: UnitIn) -> tuple:
    return (u.product_id, u.sku, u.name[:512], u.price, u.price_from_product, u.article, u.code, u.is_variant,
            u.characteristics, u.archived)


def _skus_taken(indexed: list[tuple[int, UnitIn]]) -> list[SkuTaken]:
    """SKU ownership: a unit may take a SKU no offer holds, or the one its own offer holds. Of two
    units of one batch after the same free SKU, the first gets it."""
    by_sku: dict[str, list[tuple[int, UnitIn]]] = defaultdict(list)
    for i, unit in indexed:
        by_sku[unit.sku].append((i, unit))
    holders = dict(in_chunks(lambda chunk: Offer.objects.filter(sku__any=Keys(chunk)).order_by().values_list("sku", "pk"), list(by_sku)))
    taken: list[SkuTaken] = []
    for sku, group in by_sku.items():
        holder = holders.get(sku)
        first: int | None = None
        for i, unit in group:
            if holder is not None and holder != unit.id:
                taken.append(SkuTaken(i, sku, holder))
            elif first is not None:
                taken.append(SkuTaken(i, sku, holder, other_index=first))
            else:
                first = i
    taken.sort(key=lambda t: t.index)
    return taken


def _resolve_contested(products: list[ProductIn], source: str) -> list[FieldChange]:
    """Settle name and description of existing products in place (the site's newer edit keeps its
    value) and return the history rows. Reads only the products whose values differ."""
    if not products:
        return []
    current = {pk: (name, description, edited) for pk, name, description, edited in in_chunks(
        lambda chunk: Product.objects.filter(pk__any=Keys(chunk)).order_by().values_list("pk", "name", "description", "name_edited_at"),
        [p.id for p in products])}
    differing = [p for p in products if p.id in current and (current[p.id][0], current[p.id][1]) != (p.name, p.description)]
    if not differing:
        return []
    last = contested_last_upstream(product_ids=[p.id for p in differing], source=source)
    history: list[FieldChange] = []
    for p in differing:
        name, description, edited = current[p.id]
        for fname, held in (("name", name), ("description", description)):
            upstream_value = getattr(p, fname)
            accepted = _contested(held, upstream_value, last.get((p.id, fname)), edited, p.changed_at)
            if accepted is None:
                setattr(p, fname, held)   # the site's value stays
                continue
            history.append(FieldChange(product_id=p.id, field=fname, old_value=held, new_value=upstream_value,
                                       source=source, accepted=accepted,
                                       changed_at=p.changed_at or timezone.now()))
            if not accepted:
                setattr(p, fname, held)
    return history


def _units_write(units: list[UnitIn], now: datetime) -> tuple[list[int], int, list[int]]:
    """Write units (SKUs already checked) and their barcodes. Returns (ids in order, how many were
    created, ids of existing offers that really changed)."""
    ids: list[int | None] = [u.id for u in units]
    new = [i for i, u in enumerate(units) if u.id is None]
    old = [i for i, u in enumerate(units) if u.id is not None]
    changed: list[int] = []
    if new:
        created = bulk_insert(Offer, [_unit_row(units[i]) for i in new], fields=OFFER_FIELDS,
                              touch={"updated_at": now})
        for i, pk in zip(new, created):
            ids[i] = pk
        bulk_insert(Barcode, [(pk, kind, value) for i, pk in zip(new, created)
                              for kind, value in _barcodes(units[i].barcodes)],
                    fields=["offer_id", "kind", "value"], keys=False)
    if old:
        upserted = bulk_upsert(Offer, [(units[i].id, *_unit_row(units[i])) for i in old], fields=["id", *OFFER_FIELDS],
                               unique_fields=["id"], update_fields=OFFER_FIELDS, touch={"updated_at": now})
        changed = [k[0] for k in upserted.updated]
        relabelled = _barcodes_replace({units[i].id: _barcodes(units[i].barcodes) for i in old})
        moved = set(changed)
        also = [pk for pk in relabelled if pk not in moved]
        if also:   # a new barcode list is a change of the unit
            for chunk in _chunks(also):
                Offer.objects.filter(pk__in=chunk).update(updated_at=now)
            changed += also
    return ids, len(new), changed


def _barcodes(pairs) -> list[tuple[str, str]]:
    """(kind, value) pairs with each value once (a value is unique per offer)."""
    seen: dict[str, str] = {}
    for kind, value in pairs:
        seen.setdefault(value, kind)
    return [(kind, value) for value, kind in seen.items()]


def _barcodes_replace(wanted: dict[int, list[tuple[str, str]]]) -> list[int]:
    """Replace the barcodes of the offers whose list differs from `wanted`; returns those offers."""
    held: dict[int, set] = defaultdict(set)
    for offer_id, kind, value in in_chunks(lambda chunk: Barcode.objects.filter(offer_id__any=Keys(chunk)).order_by().values_list(
            "offer_id", "kind", "value"), list(wanted)):
        held[offer_id].add((kind, value))
    differ = [pk for pk, pairs in wanted.items() if set(pairs) != held.get(pk, set())]
    if differ:
        for chunk in _chunks(differ):
            Barcode.objects.filter(offer_id__in=chunk).delete()
        bulk_insert(Barcode, [(pk, kind, value) for pk in differ for kind, value in wanted[pk]],
                    fields=["offer_id", "kind", "value"], keys=False)
    return differ


# ------------------------------------------------------------------------------------------------
# Categories, and unpublishing what vanished upstream
# ------------------------------------------------------------------------------------------------
@dataclass(slots=True)
class CategoryIn:
    id: int | None                     # ours, when the importer holds it already
    name: str
    path: str
    archived: bool = False
    parent_index: int | None = None    # position of its parent in the same batch (None: top level)


def categories_write(*, categories: Sequence[CategoryIn]) -> list[int]:
    """Create or update a whole folder tree (parents given by position in the batch); `updated_at`
    moves only for categories that really changed. Returns their ids, in order."""
    now = timezone.now()
    ids: list[int | None] = [c.id for c in categories]
    fields = ["name", "path", "archived"]
    with transaction.atomic():
        new = [i for i, c in enumerate(categories) if c.id is None]
        if new:
            for i, pk in zip(new, bulk_insert(Category, [(categories[i].name, categories[i].path,
                                                         categories[i].archived) for i in new],
                                              fields=fields, touch={"updated_at": now})):
                ids[i] = pk
        old = [i for i, c in enumerate(categories) if c.id is not None]
        if old:
            bulk_upsert(Category, [(categories[i].id, categories[i].name, categories[i].path, categories[i].archived)
                                   for i in old], fields=["id", *fields], unique_fields=["id"], update_fields=fields,
                        touch={"updated_at": now})
        parents = [(pk, ids[c.parent_index] if c.parent_index is not None else None) for pk, c in zip(ids, categories)]
        if parents:
            bulk_update(Category, parents, fields=["parent_id"], touch={"updated_at": now})
    return ids


@dataclass(frozen=True)
class Archived:
    products: int
    offers: int
    categories: int


def catalog_archive(*, product_ids: Sequence[int] = (), offer_ids: Sequence[int] = (),
                    category_ids: Sequence[int] = ()) -> Archived:
    """Unpublish (archive, never delete) what an upstream no longer has; counts what really changed."""
    now = timezone.now()
    with transaction.atomic():
        counts = [sum(model.objects.filter(pk__in=chunk, archived=False).update(archived=True, updated_at=now)
                      for chunk in _chunks(list(ids)))
                  for model, ids in ((Product, product_ids), (Offer, offer_ids), (Category, category_ids))]
    return Archived(*counts)


# ------------------------------------------------------------------------------------------------
# Another system's SKUs (suppliers, 1C): matched to our offers, the rest listed for a manager
# ------------------------------------------------------------------------------------------------
def external_skus_match(*, source: str, skus: Sequence[str], barcodes: dict[str, Sequence[str]] | None = None,
                        names: dict[str, str] | None = None, by: dict[str, str] | None = None) -> dict[str, int]:
    """{their SKU: our offer id} for the SKUs `source` sent: equal SKU, else a barcode of ours,
    else a manager's ExternalSku row (catalog.selectors.offer_match_external). SKUs none of these
    match are recorded as unmapped ExternalSku rows of `source` (seen count and last seen move; a
    manager maps them in the admin). A bounded number of statements whatever the number of SKUs.
    `by`, when given, is filled with how each SKU matched ("sku", "barcode" or "mapping")."""
    from .models import ExternalSku
    from .selectors import offer_match_external

    wanted = list(dict.fromkeys(s for s in skus if s))
    if not wanted:
        return {}
    mapping = dict(in_chunks(lambda chunk: ExternalSku.objects.filter(
        source=source, sku__any=chunk, offer__isnull=False).values_list("sku", "offer_id"), wanted))
    found = offer_match_external(skus=wanted, barcodes=barcodes, mapping=mapping)
    unmapped = [s for s in wanted if s not in found]
    if unmapped:
        now = timezone.now()
        names = names or {}
        seen = dict(in_chunks(lambda chunk: ExternalSku.objects.filter(
            source=source, sku__any=chunk).values_list("sku", "seen_count"), unmapped))
        with transaction.atomic():
            new = [s for s in unmapped if s not in seen]
            if new:
                # An upsert: a webhook of the same source may record the same SKU meanwhile.
                bulk_upsert(ExternalSku, [(source, s, (names.get(s) or "")[:255], 1, now, now) for s in new],
                            fields=["source", "sku", "name", "seen_count", "first_seen_at", "last_seen_at"],
                            unique_fields=["source", "sku"], update_fields=["last_seen_at"])
            old = [s for s in unmapped if s in seen]
            for chunk in _chunks(old):
                ExternalSku.objects.filter(source=source, sku__any=chunk).update(
                    seen_count=models.F("seen_count") + 1, last_seen_at=now)
    if by is not None:   # how each matched: "sku", "barcode" or "mapping"
        by.update({sku: m.by for sku, m in found.items()})
    return {sku: m.offer_id for sku, m in found.items()}
