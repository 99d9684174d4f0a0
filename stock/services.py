"""Stock computations other parts of the system rely on. The quantity a sales channel may publish
is domain logic (how much we can sell), so it lives here; the channels only carry it out."""
from __future__ import annotations

from decimal import Decimal
from typing import Mapping

from .policies import PublishPolicy


def stock_quantity_to_publish(*, available_by_warehouse: Mapping[int, Decimal],
                              groups: Mapping[str, frozenset[int]], policy: PublishPolicy,
                              reserved: Decimal | int = 0, enabled: bool = True) -> dict[str, int]:
    """{channel warehouse key: whole units to publish} for one offer.

    `groups` maps each warehouse the channel publishes to onto the set of our warehouses that
    feed it; `available_by_warehouse` is the offer's available (stock − reserve) per warehouse of
    ours. Units held by open orders that the stock figures do not count yet (`reserved`) come off
    the largest pile first, so a single-warehouse channel simply loses them. Each pile then goes
    through the policy (buffer, floor, cap, API maximum); an absurd figure raises
    `AbsurdQuantityError` for the caller to record instead of publishing."""
    piles = {key: sum((Decimal(available_by_warehouse.get(w, 0)) for w in warehouses), Decimal(0))
             for key, warehouses in groups.items()}
    remaining = Decimal(reserved or 0)
    for key in sorted(piles, key=lambda k: piles[k], reverse=True):
        if remaining <= 0:
            break
        taken = min(max(piles[key], Decimal(0)), remaining)
        piles[key] -= taken
        remaining -= taken
    return {key: policy.quantity(qty, enabled=enabled) for key, qty in piles.items()}
