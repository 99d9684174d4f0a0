"""The add-to-cart stock check (`POST /api/v1/cart/check`).

Our figures answer when they are fresh. A supplier's figure older than its freshness threshold
(`CART_CHECK_STALE_SECONDS` unless set per supplier) is asked again live when the supplier allows
it (integrations.suppliers.live, bounded by `CART_CHECK_TIMEOUT`); if the supplier is slow or
down, the last figure answers with `source: "stale"`, or the check fails with
`CartCheckUnavailable` when `CART_CHECK_ON_FAILURE=refuse`.

`source`: "database" (every figure fresh), "live" (a supplier was asked just now), "stale"
(some figure is older than its threshold and could not be refreshed)."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal

from django.conf import settings
from django.utils import timezone

from catalog.models import Offer

from .models import StockLevel

ZERO = Decimal(0)


class CartCheckUnavailable(Exception):
    pass


@dataclass(frozen=True)
class CartCheck:
    sku: str
    requested: Decimal
    available: Decimal
    checked_at: datetime
    source: str

    @property
    def ok(self) -> bool:
        return self.available >= self.requested


def _levels(offer_id: int) -> list[StockLevel]:
    return list(StockLevel.objects.filter(offer_id=offer_id, warehouse__archived=False)
                .select_related("warehouse").only("available", "checked_at", "updated_at", "source",
                                                   "warehouse__code", "warehouse_id"))


def cart_check(*, sku: str, quantity: Decimal) -> CartCheck | None:
    """None when no offer has this SKU."""
    offer = Offer.objects.filter(sku=sku).only("pk", "sku").first()
    if offer is None:
        return None
    now = timezone.now()
    levels = _levels(offer.pk)
    source = "database"
    supplier_levels = [lv for lv in levels if lv.source.startswith("supplier:")]
    if supplier_levels:
        from integrations.suppliers.live import fresh_seconds, levels_refresh, suppliers_for

        suppliers = suppliers_for([lv.source for lv in supplier_levels])
        stale = []
        for level in supplier_levels:
            supplier = suppliers.get(level.source)
            if supplier is None:
                continue
            seen = level.checked_at or level.updated_at
            if seen is None or now - seen > timedelta(seconds=fresh_seconds(supplier)):
                stale.append((supplier, level.warehouse_id))
        if stale:
            refresh = levels_refresh(offer_id=offer.pk, offer_sku=offer.sku, stale=stale)
            if refresh.failed and settings.CART_CHECK_ON_FAILURE == "refuse":
                raise CartCheckUnavailable(f"{refresh.failed} supplier(s) did not answer")
            if refresh.failed or refresh.stale_only:
                source = "stale"
            elif refresh.refreshed:
                source = "live"
            if refresh.refreshed:
                levels = _levels(offer.pk)
    available = sum((max(lv.available, ZERO) for lv in levels), ZERO)
    times = [lv.checked_at or lv.updated_at for lv in levels if (lv.checked_at or lv.updated_at)]
    checked_at = now if source in ("database", "live") or not times else min(times)
    return CartCheck(sku=offer.sku, requested=quantity, available=available, checked_at=checked_at, source=source)
