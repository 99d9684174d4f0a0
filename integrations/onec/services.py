"""Applying 1C stock, whichever route brought it (HTTP service poll, webhook push, CommerceML
exchange): SKUs matched the one way (catalog.services.external_skus_match: SKU, barcode, a
manager's mapping; the rest listed as unmapped), warehouses `1c:{name}` / `1c`
(stock.services.warehouse_ensure), figures written only by stock.services.stock_levels_set, which
logs each change and kicks the marketplace push after commit."""
from __future__ import annotations

import logging
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Iterable, Mapping

from django.db.models import Q

from catalog.services import external_skus_match
from stock.models import StockLevel, Warehouse
from stock.services import stock_levels_set, warehouse_ensure

from .mapping import SOURCE, StockItem, warehouse_code

log = logging.getLogger("syncsite.onec")

ZERO = Decimal(0)
#: figures per stock_levels_set call: well below its whole-warehouse read threshold, so a batch reads
#: only its own levels
WRITE_BATCH = 5_000


@dataclass
class ApplyResult:
    counts: dict[str, int] = field(default_factory=dict)
    unmatched: list[str] = field(default_factory=list)

    def add(self, key: str, n: int = 1) -> None:
        if n:
            self.counts[key] = self.counts.get(key, 0) + n


def warehouse_for(name: str) -> Warehouse:
    code = warehouse_code(name)
    return warehouse_ensure(code=code, name=f"1C: {name}" if name else "1C", source=SOURCE)


def figures_write(*, warehouse_id: int, figures: Mapping[int, Decimal], via: str, checked_at: datetime,
                  result: ApplyResult, complete: bool = False) -> None:
    """Write {offer id: stock} of one warehouse (1C has no reserve of its own: 0), in batches
    unless `complete` (a complete read must be one call: what it omits becomes 0)."""
    items = list(figures.items())
    batches = [items] if complete else [items[i:i + WRITE_BATCH] for i in range(0, len(items), WRITE_BATCH)]
    for batch in batches:
        written = stock_levels_set(warehouse_id=warehouse_id, figures={o: (q, ZERO) for o, q in batch},
                                   source=SOURCE, via=via, complete=complete, checked_at=checked_at)
        result.add("changed", len(written.changed))
        result.add("restocked", len(written.restocked))
        result.add("unchanged", written.unchanged)


def items_apply(*, items: Iterable[StockItem], via: str, checked_at: datetime, complete: bool = False,
                newer_wins: bool = False, result: ApplyResult | None = None) -> ApplyResult:
    """Apply 1C stock items. A later item for the same SKU and warehouse replaces an earlier one;
    several of 1C's SKUs mapped to one offer of ours add up. `complete=True` (a complete full
    read): in each warehouse 1C listed, what it omitted becomes 0, and 1C warehouses it no longer
    lists at all become 0. `newer_wins=True` (pushes, which a worker may apply out of order): a
    level read from 1C after `checked_at` is left as it is."""
    result = result or ApplyResult()
    by_warehouse: dict[str, dict[str, Decimal]] = defaultdict(dict)
    for item in items:
        by_warehouse[item.warehouse][item.sku] = item.quantity
    skus = list(dict.fromkeys(sku for figures in by_warehouse.values() for sku in figures))
    matched = external_skus_match(source=SOURCE, skus=skus) if skus else {}
    unmatched = [s for s in skus if s not in matched]
    result.unmatched.extend(unmatched)
    result.add("items", sum(len(f) for f in by_warehouse.values()))
    result.add("unmatched", len(unmatched))
    seen: set[int] = set()
    for name, figures in by_warehouse.items():
        warehouse = warehouse_for(name)
        seen.add(warehouse.pk)
        per_offer: dict[int, Decimal] = defaultdict(Decimal)
        for sku, quantity in figures.items():
            offer_id = matched.get(sku)
            if offer_id is not None:
                per_offer[offer_id] += quantity
        if newer_wins and per_offer:
            newer = set(StockLevel.objects.filter(warehouse_id=warehouse.pk, offer_id__in=list(per_offer),
                                                  checked_at__gt=checked_at).values_list("offer_id", flat=True))
            for offer_id in newer:
                del per_offer[offer_id]
            result.add("superseded", len(newer))
        figures_write(warehouse_id=warehouse.pk, figures=per_offer, via=via, checked_at=checked_at,
                      result=result, complete=complete)
    if complete:
        for warehouse in Warehouse.objects.filter(source=SOURCE).exclude(pk__in=seen):
            figures_write(warehouse_id=warehouse.pk, figures={}, via=via, checked_at=checked_at,
                          result=result, complete=True)
    return result


def levels_not_read_since(*, warehouse_id: int, checked_at: datetime) -> list[int]:
    """Offers with 1C stock in this warehouse that no read since `checked_at` has confirmed (their
    level was neither written nor stamped): what a complete document no longer lists."""
    return list(StockLevel.objects.filter(warehouse_id=warehouse_id, source=SOURCE)
                .filter(Q(checked_at__lt=checked_at) | Q(checked_at__isnull=True))
                .exclude(stock=0, reserve=0).values_list("offer_id", flat=True))


def missing_zero(*, warehouse_id: int, checked_at: datetime, via: str, result: ApplyResult) -> None:
    """After a complete document written in batches: set to 0 what it did not list."""
    gone = levels_not_read_since(warehouse_id=warehouse_id, checked_at=checked_at)
    if gone:
        result.add("zeroed", len(gone))
        figures_write(warehouse_id=warehouse_id, figures={o: ZERO for o in gone}, via=via,
                      checked_at=checked_at, result=result)
