"""Stock reads for the rest of the system (channels, storefront). Bounded IN lists, no per-row
queries."""
from __future__ import annotations

from collections import defaultdict
from decimal import Decimal
from typing import Iterable

from syncsite.bulk import in_chunks

from .models import StockLevel, Warehouse


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

    Empty today, by design: MoySklad's reserve (orders it holds) is already out of `available`,
    and the orders app takes a new order's units out of `available` itself until MoySklad holds
    them (`orders.models.Reservation`, re-applied after each stock sync), moving `updated_at` so
    the push sees it. Subtracting those here would count them twice. The hook is where a hold
    that does not touch `available` would go."""
    return {}
