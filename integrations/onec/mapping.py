"""Pure functions: 1C's stock items (HTTP service, webhook) checked and turned into our values."""
from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

SOURCE = "1c"            # StockLevel.source, ExternalSku.source
MAX_SKU = 255
MAX_WAREHOUSE = 200


@dataclass(frozen=True)
class StockItem:
    sku: str
    quantity: Decimal
    warehouse: str       # 1C's warehouse name; "" when it gave none


class InvalidItems(ValueError):
    """Some items are not usable: `bad` lists each with its index, SKU and what is wrong."""

    def __init__(self, bad: list[dict]):
        self.bad = bad
        super().__init__(f"{len(bad)} bad items: " + "; ".join(f"#{b['index']} {b['error']}" for b in bad[:5]))


def warehouse_code(name: str) -> str:
    """Our warehouse code for a 1C warehouse name: `1c:{name}`, or `1c` when 1C names none."""
    name = " ".join((name or "").split())
    return f"{SOURCE}:{name}"[:64] if name else SOURCE


def whole_quantity(value) -> Decimal | None:
    """A whole number ≥ 0 (an int, or a float/Decimal with no fraction); None otherwise. Strings,
    booleans, NaN, negatives and fractions are refused."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return Decimal(value) if value >= 0 else None
    if isinstance(value, float):
        if value != value or value in (float("inf"), float("-inf")) or value < 0 or not value.is_integer():
            return None
        return Decimal(int(value))
    if isinstance(value, Decimal):
        if not value.is_finite() or value < 0 or value != value.to_integral_value():
            return None
        return Decimal(int(value))
    return None


def item_parse(raw, index: int) -> tuple[StockItem | None, dict | None]:
    """One `{"sku", "quantity", "warehouse"?}` -> (item, None) or (None, what is wrong)."""
    if not isinstance(raw, dict):
        return None, {"index": index, "sku": None, "error": "an item must be an object"}
    sku = raw.get("sku")
    sku_out = sku if isinstance(sku, (str, int)) and not isinstance(sku, bool) else None
    if isinstance(sku, int) and not isinstance(sku, bool):
        sku = str(sku)
    if not isinstance(sku, str) or not sku.strip():
        return None, {"index": index, "sku": sku_out, "error": "sku is missing"}
    sku = sku.strip()
    if len(sku) > MAX_SKU:
        return None, {"index": index, "sku": sku[:40], "error": f"sku is longer than {MAX_SKU} characters"}
    if "quantity" not in raw:
        return None, {"index": index, "sku": sku, "error": "quantity is missing"}
    quantity = whole_quantity(raw.get("quantity"))
    if quantity is None:
        return None, {"index": index, "sku": sku,
                      "error": f"quantity must be a whole number >= 0, got {str(raw.get('quantity'))[:40]!r}"}
    warehouse = raw.get("warehouse")
    if warehouse is None:
        warehouse = ""
    if not isinstance(warehouse, str) or len(warehouse) > MAX_WAREHOUSE:
        return None, {"index": index, "sku": sku, "error": "warehouse must be a name (text) or absent"}
    return StockItem(sku, quantity, " ".join(warehouse.split())), None


def items_parse(data, *, key: str = "stocks") -> tuple[list[StockItem], list[dict]]:
    """`{"stocks": [...]}` -> (good items, bad items). The caller decides whether a bad item
    refuses the whole body (the webhook) or is only reported (the poll)."""
    if not isinstance(data, dict) or not isinstance(data.get(key), list):
        raise InvalidItems([{"index": None, "sku": None, "error": f'the body must be {{"{key}": [...]}}'}])
    good, bad = [], []
    for i, raw in enumerate(data[key]):
        item, problem = item_parse(raw, i)
        if problem:
            bad.append(problem)
        else:
            good.append(item)
    return good, bad
