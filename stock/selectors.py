"""Stock reads for the rest of the system (channels, storefront). Bounded IN lists, no per-row
queries."""
from __future__ import annotations

from collections import defaultdict
from decimal import Decimal
from typing import Iterable

from syncsite.bulk import in_chunks

from .models import StockHold, StockLevel, Warehouse

#: the upstream whose stores site orders reserve from (and are exported to)
ORDER_WAREHOUSE_SOURCE = "moysklad"


def stock_available_by_warehouse(*, offer_ids: Iterable[int]) -> dict[int, dict[int, Decimal]]:
    """{offer id: {warehouse id: available}} for the given offers (offers with no rows are absent)."""
    out: dict[int, dict[int, Decimal]] = defaultdict(dict)
    rows = in_chunks(lambda chunk: StockLevel.objects.filter(offer_id__in=chunk).values_list(
        "offer_id", "warehouse_id", "available"), list(offer_ids))
    for offer_id, warehouse_id, available in rows:
        out[offer_id][warehouse_id] = available
    return dict(out)


def warehouse_list_active_ids() -> set[int]:
    """Warehouses that are not archived (a channel drawing from "all" draws from these)."""
    return set(Warehouse.objects.filter(archived=False).values_list("pk", flat=True))


def reserved_by_open_orders(offer_ids: Iterable[int]) -> dict[int, Decimal]:
    """{offer id: units held by open site and marketplace orders that `StockLevel.available` does
    not count yet}, for the marketplace push to subtract.

    Empty, by design: MoySklad's reserve (orders it holds) is already out of `available`, and so
    is every active `StockHold` (stock.services subtracts holds whenever it writes a level, and
    placing or releasing one moves `updated_at` so the push sees it). Subtracting them here
    would count them twice."""
    return {}


def warehouse_list_for_orders() -> tuple[list[int], list[int]]:
    """(warehouses a site order may reserve from, those to try first): the active stores of the
    upstream orders are exported to, the shipping store first."""
    rows = list(Warehouse.objects.filter(archived=False, source=ORDER_WAREHOUSE_SOURCE)
                .values_list("pk", "ships_orders").order_by("pk"))
    return [pk for pk, _ in rows], [pk for pk, ships in rows if ships]


def stock_holds_list(*, refs: Iterable[str]) -> list[StockHold]:
    """Every hold (active or ended) of these refs, with offer and warehouse, oldest first."""
    return list(StockHold.objects.filter(ref__in=list(refs)).select_related("offer", "warehouse").order_by("id"))


def stock_hold_warehouse(*, refs: Iterable[str]) -> int | None:
    """The warehouse these refs hold their units in (the one holding most units if, exceptionally,
    there are several); None when they hold nothing."""
    totals: dict[int, Decimal] = defaultdict(Decimal)
    for warehouse_id, qty in StockHold.objects.filter(ref__in=list(refs)).values_list("warehouse_id", "quantity"):
        totals[warehouse_id] += qty
    return max(totals, key=lambda w: (totals[w], -w)) if totals else None
