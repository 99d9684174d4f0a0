"""Pure functions: MoySklad records <-> our values. No I/O, no Django models: easy to test."""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timezone as dt_timezone
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation

from integrations.http.errors import MappingError

from .constants import MSK


# -- time: every MoySklad datetime is naive Moscow time ------------------------------------------
def parse_msk(value: str | None) -> datetime | None:
    if not value:
        return None
    for fmt in ("%Y-%m-%d %H:%M:%S.%f", "%Y-%m-%d %H:%M:%S", "%Y-%m-%d %H:%M"):
        try:
            return datetime.strptime(value, fmt).replace(tzinfo=MSK)
        except ValueError:
            continue
    raise MappingError(f"bad MoySklad datetime {value!r}")


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


def sale_price(record: dict, price_type: str = "") -> Decimal:
    """The sale price in rubles, chosen by price type id or name (never by array position);
    without a configured type, the first sale price. Missing or null -> MappingError."""
    prices = record.get("salePrices") or []
    chosen = None
    if price_type:
        for p in prices:
            pt = p.get("priceType") or {}
            if price_type in (pt.get("id"), pt.get("name"), pt.get("externalCode")):
                chosen = p
                break
        if chosen is None:
            raise MappingError(f"no sale price of type {price_type!r}")
    elif prices:
        chosen = prices[0]
    if chosen is None or chosen.get("value") is None:
        raise MappingError("missing sale price")
    price = kopecks_to_rubles(chosen["value"])
    if price < 0:
        raise MappingError(f"negative price {price}")
    return price


def barcodes(record: dict) -> list[tuple[str, str]]:
    out = []
    for item in record.get("barcodes") or []:
        if isinstance(item, dict):
            for kind, value in item.items():
                if value:
                    out.append((str(kind)[:16], str(value)[:64]))
    return out


@dataclass
class FolderData:
    external_id: str
    name: str
    parent_external_id: str | None
    path: str
    archived: bool
    updated: datetime | None


@dataclass
class OfferData:
    """One sellable unit from a product without variants or from a variant."""

    external_id: str
    kind: str  # product | variant
    sku: str
    name: str
    price: Decimal
    article: str
    code: str
    archived: bool
    updated: datetime | None
    barcodes: list[tuple[str, str]] = field(default_factory=list)
    characteristics: dict = field(default_factory=dict)
    product_external_id: str = ""


@dataclass
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
    offer: OfferData | None  # None when the product sells through its variants


def _require_str(record: dict, key: str, limit: int = 255) -> str:
    value = record.get(key)
    if not isinstance(value, str) or not value.strip():
        raise MappingError(f"missing {key}")
    return value.strip()[:limit]


def map_folder(record: dict) -> FolderData:
    if not isinstance(record, dict) or not record.get("id"):
        raise MappingError("malformed folder row")
    name = _require_str(record, "name")
    path = record.get("pathName") or ""
    return FolderData(
        external_id=str(record["id"]), name=name, parent_external_id=meta_id(record.get("productFolder")),
        path=(f"{path}/{name}" if path else name)[:1024], archived=bool(record.get("archived")),
        updated=parse_msk(record.get("updated")),
    )


def product_sku(record: dict) -> str:
    """A product's SKU: its article, or its code where the article is empty."""
    sku = (record.get("article") or "").strip() or (record.get("code") or "").strip()
    if not sku:
        raise MappingError("no SKU: both article and code are empty")
    return sku[:255]


def map_product(record: dict, *, price_type: str = "") -> ProductData:
    if not isinstance(record, dict) or not record.get("id"):
        raise MappingError("malformed product row")
    name = _require_str(record, "name")
    has_variants = int(record.get("variantsCount") or 0) > 0
    updated = parse_msk(record.get("updated"))
    archived = bool(record.get("archived"))
    offer = None
    if not has_variants:
        offer = OfferData(
            external_id=str(record["id"]), kind="product", sku=product_sku(record), name=name,
            price=sale_price(record, price_type), article=(record.get("article") or "")[:255],
            code=(record.get("code") or "")[:255], archived=archived, updated=updated,
            barcodes=barcodes(record), product_external_id=str(record["id"]),
        )
    vat = record.get("effectiveVat", record.get("vat"))
    return ProductData(
        external_id=str(record["id"]), name=name, description=(record.get("description") or "")[:4096],
        folder_external_id=meta_id(record.get("productFolder")), archived=archived,
        vat=int(vat) if isinstance(vat, (int, float)) else None, updated=updated, has_variants=has_variants,
        external_code=(record.get("externalCode") or "")[:255], offer=offer,
    )


def map_variant(record: dict, *, price_type: str = "") -> OfferData:
    if not isinstance(record, dict) or not record.get("id"):
        raise MappingError("malformed variant row")
    name = _require_str(record, "name", 512)
    sku = (record.get("code") or "").strip()
    if not sku:
        raise MappingError("variant has no code (its SKU)")
    parent = meta_id(record.get("product"))
    if not parent:
        raise MappingError("variant has no product link")
    characteristics = {}
    for ch in record.get("characteristics") or []:
        if isinstance(ch, dict) and ch.get("name"):
            characteristics[str(ch["name"])] = str(ch.get("value", ""))
    return OfferData(
        external_id=str(record["id"]), kind="variant", sku=sku[:255], name=name,
        price=sale_price(record, price_type), article=(record.get("article") or "")[:255], code=sku[:255],
        archived=bool(record.get("archived")), updated=parse_msk(record.get("updated")),
        barcodes=barcodes(record), characteristics=characteristics, product_external_id=parent,
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
