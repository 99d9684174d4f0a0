"""What every marketplace's order calls hand the shared logic: orders and returns in one shape,
money in rubles (Decimal), times aware in UTC."""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from decimal import Decimal, InvalidOperation

MSK = timezone(timedelta(hours=3), "MSK")


@dataclass
class OrderLineIn:
    sku: str                      # our SKU when the channel keys lines by it, else the channel's article
    quantity: Decimal
    price: Decimal                # unit price in rubles
    name: str = ""
    external_sku: str = ""        # the channel's own key (Ozon sku, WB chrtId, YM offerId)
    barcodes: tuple[str, ...] = ()


@dataclass
class OrderIn:
    source: str
    source_order_id: str
    status_keys: list[str]        # mapping keys, most specific first
    raw_status: str               # shown to people
    lines: list[OrderLineIn]
    placed_at: datetime | None = None
    updated_at: datetime | None = None
    shipping_method: str = ""
    shipping_address: str = ""
    comment: str = ""
    currency: str = "RUB"
    data: dict = field(default_factory=dict)   # what the actions need later (Ozon SKUs, WB warehouse, YM campaign)


@dataclass
class ReturnIn:
    source: str
    return_id: str
    source_order_id: str
    kind: str
    status: str
    received: bool
    lines: list[dict]             # [{"sku", "quantity"}]
    amount: Decimal | None = None
    reason: str = ""
    returned_at: datetime | None = None
    raw: dict = field(default_factory=dict)


def parse_time(value, *, naive_tz=timezone.utc) -> datetime | None:
    """ISO 8601 (with `Z`, an offset, or none: then `naive_tz`) or `DD-MM-YYYY HH:MM:SS` (YM's old
    shape, Moscow time) -> aware UTC; None when empty or unreadable."""
    if not value or not isinstance(value, str):
        return None
    text = value.strip()
    try:
        if len(text) >= 19 and text[2] == "-" and text[5] == "-":
            parsed = datetime.strptime(text[:19], "%d-%m-%Y %H:%M:%S").replace(tzinfo=MSK)
        else:
            parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
            if parsed.tzinfo is None:
                parsed = parsed.replace(tzinfo=naive_tz)
    except ValueError:
        return None
    return parsed.astimezone(timezone.utc)


def money(value, *, minor_units: bool = False) -> Decimal:
    """A money field as Decimal rubles: strings and numbers alike, kopecks when `minor_units`."""
    if value is None or value == "":
        return Decimal("0.00")
    try:
        amount = Decimal(str(value))
    except (InvalidOperation, ValueError):
        return Decimal("0.00")
    if minor_units:
        amount = amount / 100
    return amount.quantize(Decimal("0.01"))
