"""Pure functions: MoySklad records <-> our values. No I/O, no Django models: easy to test."""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timezone as dt_timezone
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation

import msgspec

from integrations.http.errors import MappingError, SyncError

from .constants import MSK
from .schemas import PRODUCT_PAGE, VARIANT_PAGE, ProductRow, VariantRow


# -- time: every MoySklad datetime is naive Moscow time ------------------------------------------
def parse_msk(value: str | None) -> datetime | None:
    """`YYYY-MM-DD HH:MM[:SS[.mmm]]` in Moscow time -> an aware datetime. fromisoformat is done in
    C (a full import parses 160,000 of these; strptime cost about a second of it)."""
    if not value:
        return None
    try:
        moment = datetime.fromisoformat(value) if isinstance(value, str) and len(value) >= 16 else None
    except ValueError:
        moment = None
    if moment is None or value[10] not in " T":
        raise MappingError(f"bad MoySklad datetime {value!r}")
    return moment.replace(tzinfo=MSK) if moment.tzinfo is None else moment


def to_msk_string(moment: datetime, *, millis: bool = True) -> str:
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt_timezone.utc)
    local = moment.astimezone(MSK)
    if millis:
        return local.strftime("%Y-%m-%d %H:%M:%S.") + f"{local.microsecond // 1000:03d}"
    return local.strftime("%Y-%m-%d %H:%M:%S")


# -- money: minor units (kopecks) as floats -----------------------------------------------------
def kopecks_to_rubles(value) -> Decimal:
    try:
        return (Decimal(str(value)) / 100).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)
    except (InvalidOperation, TypeError, ValueError) as exc:
        raise MappingError(f"bad price value {value!r}") from exc


def rubles_to_kopecks(value: Decimal) -> int:
    return int((Decimal(value) * 100).quantize(Decimal("1"), rounding=ROUND_HALF_UP))


def id_from_href(href: str) -> str:
    return href.rstrip("/").rsplit("/", 1)[-1].split("?", 1)[0]


def meta_id(obj: dict | None) -> str | None:
    if not obj:
        return None
    href = (obj.get("meta") or {}).get("href")
    return id_from_href(href) if href else None


class PriceTypeError(SyncError):
    """MOYSKLAD_PRICE_TYPE names no price type of the account: a setting to fix, not a record to skip."""


@dataclass(frozen=True)
class PriceType:
    """The sale price type the site sells at."""

    id: str
    name: str
    external_code: str = ""

    def matches(self, ref) -> bool:
        """Is a `salePrices[].priceType` reference this type? By id; by name where it has no id."""
        if ref is None:
            return False
        ref_id = ref.get("id") if isinstance(ref, dict) else ref.id
        if ref_id and self.id:
            return ref_id == self.id
        ref_name = ref.get("name") if isinstance(ref, dict) else ref.name
        return bool(ref_name) and ref_name == self.name

    def describe(self) -> str:
        return f"{self.name!r} (id {self.id}" + (f", externalCode {self.external_code}" if self.external_code else "") + ")"


def choose_price_type(types: list, configured: str = "") -> PriceType | None:
    """The price type to sell at, from the account's list (`context/companysettings/pricetype`):
    the one MOYSKLAD_PRICE_TYPE names by id, name or externalCode, else the account's first.
    None when the account has no price types at all (every price is then empty). A configured
    type the account does not have raises PriceTypeError naming the ones it has."""
    known = [PriceType(str(t.id or ""), str(t.name or ""), str(t.externalCode or "")) for t in types]
    wanted = (configured or "").strip()
    if not wanted:
        return known[0] if known else None
    for attr in ("id", "name", "external_code"):
        for pt in known:
            if getattr(pt, attr) == wanted:
                return pt
    available = ", ".join(pt.describe() for pt in known) or "none"
    raise PriceTypeError(f"MOYSKLAD_PRICE_TYPE {wanted!r} is not a price type of this MoySklad account; "
                         f"available: {available}")


def sale_price(record, price_type: PriceType | None) -> Decimal | None:
    """The sale price of `price_type` in rubles, or None when the record has none of that type (or
    its value is null). 0 is a price. A negative or unreadable value raises MappingError."""
    if price_type is None:
        return None
    prices = (record.get("salePrices") if isinstance(record, dict) else record.salePrices) or []
    for p in prices:
        if isinstance(p, dict):
            ref, value = p.get("priceType"), p.get("value")
        else:
            ref, value = p.priceType, p.value
        if not price_type.matches(ref):
            continue
        if value is None:
            return None
        price = kopecks_to_rubles(value)
        if price < 0:
            raise MappingError(f"negative price {price}")
        return price
    return None


def barcodes(record) -> list[tuple[str, str]]:
    """(kind, value) pairs, in upstream order, without repeats."""
    items = (record.get("barcodes") if isinstance(record, dict) else record.barcodes) or []
    out: dict[tuple[str, str], None] = {}
    for item in items:
        if isinstance(item, dict):
            for kind, value in item.items():
                if value:
                    out[(str(kind)[:16], str(value)[:64])] = None
    return list(out)


@dataclass
class FolderData:
    external_id: str
    name: str
    parent_external_id: str | None
    path: str
    archived: bool
    updated: datetime | None


@dataclass(slots=True)
class OfferData:
    """One sellable unit from a product without variants or from a variant."""

    external_id: str
    kind: str  # product | variant
    sku: str
    name: str
    price: Decimal | None          # None: no sale price of the chosen type
    article: str
    code: str
    archived: bool
    updated: datetime | None
    barcodes: list[tuple[str, str]] = field(default_factory=list)
    characteristics: dict = field(default_factory=dict)
    product_external_id: str = ""
    own_price: bool = True         # False: a variant with no price of its own (its product's applies)


@dataclass(slots=True)
class ProductData:
    external_id: str
    name: str
    description: str
    folder_external_id: str | None
    archived: bool
    vat: int | None
    updated: datetime | None
    has_variants: bool
    external_code: str
    price: Decimal | None          # the product's own sale price (its variants fall back to it)
    offer: OfferData | None        # None when the product sells through its variants


def _text(value, key: str, limit: int = 255) -> str:
    if not isinstance(value, str) or not value.strip():
        raise MappingError(f"missing {key}")
    return value.strip()[:limit]


def map_folder(record: dict) -> FolderData:
    if not isinstance(record, dict) or not record.get("id"):
        raise MappingError("malformed folder row")
    name = _text(record.get("name"), "name")
    path = record.get("pathName") or ""
    return FolderData(
        external_id=str(record["id"]), name=name, parent_external_id=meta_id(record.get("productFolder")),
        path=(f"{path}/{name}" if path else name)[:1024], archived=bool(record.get("archived")),
        updated=parse_msk(record.get("updated")),
    )


def product_sku(record) -> str:
    """A product's SKU: its article, or its code where the article is empty."""
    if isinstance(record, dict):
        article, code = record.get("article"), record.get("code")
    else:
        article, code = record.article, record.code
    sku = (article or "").strip() or (code or "").strip()
    if not sku:
        raise MappingError("no SKU: both article and code are empty")
    return sku[:255]


def _ref_id(ref) -> str | None:
    href = ref.meta.href if ref is not None and ref.meta is not None else ""
    return id_from_href(href) if href else None


def as_product_row(record) -> ProductRow:
    """A product row as its typed view (rows from a page already are); MappingError if it does not fit."""
    if isinstance(record, ProductRow):
        return record
    if not isinstance(record, dict) or not record.get("id"):
        raise MappingError("malformed product row")
    try:
        return PRODUCT_PAGE.convert(record)
    except msgspec.ValidationError as exc:
        raise MappingError(f"malformed product row: {exc}") from None


def as_variant_row(record) -> VariantRow:
    if isinstance(record, VariantRow):
        return record
    if not isinstance(record, dict) or not record.get("id"):
        raise MappingError("malformed variant row")
    try:
        return VARIANT_PAGE.convert(record)
    except msgspec.ValidationError as exc:
        raise MappingError(f"malformed variant row: {exc}") from None


def map_product(record, *, price_type: PriceType | None = None) -> ProductData:
    """A product row (typed or a dict) -> our values. The product's own sale price of
    `price_type` (None if it has none) also serves its variants that have no price of their own."""
    row = as_product_row(record)
    name = _text(row.name, "name")
    has_variants = (row.variantsCount or 0) > 0
    updated = parse_msk(row.updated)
    archived = bool(row.archived)
    ext = row.id
    price = sale_price(row, price_type)
    offer = None
    if not has_variants:
        offer = OfferData(
            external_id=ext, kind="product", sku=product_sku(row), name=name, price=price,
            article=(row.article or "")[:255], code=(row.code or "")[:255], archived=archived, updated=updated,
            barcodes=barcodes(row), product_external_id=ext,
        )
    vat = row.effectiveVat if row.effectiveVat is not None else row.vat
    return ProductData(
        external_id=ext, name=name, description=(row.description or "")[:4096],
        folder_external_id=_ref_id(row.productFolder), archived=archived,
        vat=int(vat) if vat is not None else None, updated=updated, has_variants=has_variants,
        external_code=(row.externalCode or "")[:255], price=price, offer=offer,
    )


def map_variant(record, *, price_type: PriceType | None = None) -> OfferData:
    """A variant row -> one sellable unit. Without a price of `price_type` of its own the unit
    has `own_price=False` and no price yet: the importer gives it its product's."""
    row = as_variant_row(record)
    name = _text(row.name, "name", 512)
    sku = (row.code or "").strip()
    if not sku:
        raise MappingError("variant has no code (its SKU)")
    parent = _ref_id(row.product)
    if not parent:
        raise MappingError("variant has no product link")
    characteristics = {}
    for ch in row.characteristics or ():
        if ch.name:
            characteristics[str(ch.name)] = "" if ch.value is None else str(ch.value)
    price = sale_price(row, price_type)
    return OfferData(
        external_id=row.id, kind="variant", sku=sku[:255], name=name, price=price,
        article=(row.article or "")[:255], code=sku[:255], archived=bool(row.archived),
        updated=parse_msk(row.updated), barcodes=barcodes(row), characteristics=characteristics,
        product_external_id=parent, own_price=price is not None,
    )


def stock_quantity(row: dict, key: str) -> Decimal:
    value = row.get(key)
    if value is None:
        return Decimal(0)
    try:
        quantity = Decimal(str(value))
    except InvalidOperation as exc:
        raise MappingError(f"bad {key} {value!r}") from exc
    if isinstance(value, bool) or not quantity.is_finite():
        raise MappingError(f"bad {key} {value!r}")
    return quantity
