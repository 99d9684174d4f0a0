"""Pure translation between our stock lines and Ozon's stock update (no I/O)."""
from __future__ import annotations

from integrations.marketplaces.types import LineResult, StockLine

from .constants import RETRY_LATER_CODES, RETRY_LATER_MESSAGES


def stock_items(lines: list[StockLine]) -> list[dict]:
    """`stocks[]` for POST /v2/products/stocks, keyed by `offer_id` (our SKU unless edited)."""
    return [{"offer_id": line.key, "stock": line.quantity, "warehouse_id": int(line.warehouse)} for line in lines]


def _error_text(errors: list) -> tuple[str, bool]:
    """('CODE: message; …', retry_later) from an item's `errors[]`."""
    parts, later = [], False
    for err in errors:
        if not isinstance(err, dict):
            parts.append(str(err))
            continue
        code, message = str(err.get("code") or ""), str(err.get("message") or "")
        if code in RETRY_LATER_CODES or any(m in message.lower() for m in RETRY_LATER_MESSAGES) \
                or any(m in code.lower() for m in RETRY_LATER_MESSAGES):
            later = True
        parts.append(f"{code}: {message}" if code and message else code or message)
    return "; ".join(parts) or "not updated", later


def stock_results(lines: list[StockLine], rows: list[dict]) -> list[LineResult]:
    """Match Ozon's `result[]` to the lines by (offer_id, warehouse_id). An item Ozon did not
    report on is retried (pending), never assumed applied."""
    by_pair: dict[tuple[str, str], dict] = {}
    for row in rows:
        if isinstance(row, dict):
            by_pair[(str(row.get("offer_id", "")), str(row.get("warehouse_id", "")))] = row
    results = []
    for line in lines:
        row = by_pair.get((line.key, str(int(line.warehouse))))
        if row is None:
            results.append(LineResult.failed(line, "Ozon returned no result for this item", retry_later=True))
        elif row.get("updated") is True and not row.get("errors"):
            results.append(LineResult.accepted(line))
        else:
            text, later = _error_text(row.get("errors") or [])
            results.append(LineResult.failed(line, f"Ozon: {text}", retry_later=later))
    return results
