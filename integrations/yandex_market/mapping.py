"""Pure translation between our stock lines and Yandex Market's business-level stock update."""
from __future__ import annotations

from datetime import datetime

from integrations.marketplaces.types import LineResult, StockLine

#: fields an error item may use to name the offer it is about (assumed; see docs/api-notes.md)
_SKU_FIELDS = ("sku", "offerId", "shopSku")


def stock_items(lines: list[StockLine], *, at: datetime) -> list[dict]:
    """`skuItems[]`: `sku` is the offerId (our SKU, exact: leading zeros matter), `updatedAt` the
    moment we read the stock (Market keeps the newest)."""
    stamp = at.isoformat(timespec="seconds")
    return [{"sku": line.key, "partnerWarehouseId": int(line.warehouse), "count": line.quantity,
             "updatedAt": stamp} for line in lines]


def rejected_results(lines: list[StockLine], errors: list) -> tuple[list[LineResult], list[StockLine]]:
    """A 400 fails the whole call. If its `errors[]` name offers, those lines failed and the rest
    go again without them; otherwise every line carries the error (our request is wrong)."""
    by_key: dict[str, list[StockLine]] = {}
    for line in lines:
        by_key.setdefault(line.key, []).append(line)
    failed: dict[int, LineResult] = {}
    general = []
    for err in errors or []:
        if not isinstance(err, dict):
            general.append(str(err))
            continue
        text = f"Yandex Market: {err.get('code') or 'ERROR'}: {err.get('message') or ''}".rstrip(": ")
        keys = [str(err[f]) for f in _SKU_FIELDS if err.get(f) is not None]
        named = [line for key in keys for line in by_key.get(key, [])]
        if not named:
            general.append(text)
        for line in named:
            failed[id(line)] = LineResult.failed(line, text)
    if general or not failed:
        text = "; ".join(general) or "Yandex Market refused the request"
        return [failed.get(id(line)) or LineResult.failed(line, text) for line in lines], []
    return list(failed.values()), [line for line in lines if id(line) not in failed]
