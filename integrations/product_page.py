"""Everything about one SKU on one page: stock per warehouse from every source, what each
marketplace shows and when it was sent, the stock change log, the product's field history (name,
description, price) and the order holds on it. A fixed number of queries, each bounded."""
from __future__ import annotations

from decimal import Decimal
from typing import Any



HISTORY = 50


def sku_overview(*, sku: str) -> dict[str, Any] | None:
    from catalog.models import FieldChange, Offer
    from stock.models import StockChange, StockHold, StockLevel

    from .models import ChannelOffer, OfferBinding, StockAlert

    offer = Offer.objects.select_related("product", "product__category").filter(sku=sku).first()
    if offer is None:
        return None
    levels = list(StockLevel.objects.filter(offer=offer).select_related("warehouse")
                  .order_by("warehouse__source", "warehouse__name"))
    totals = {"stock": Decimal(0), "reserve": Decimal(0), "available": Decimal(0)}
    for level in levels:
        if not level.warehouse.archived:
            for key in totals:
                totals[key] += getattr(level, key)
    holds = list(StockHold.objects.filter(offer=offer, released_at__isnull=True).select_related("warehouse")
                 .order_by("created_at", "id"))
    held = sum((h.quantity for h in holds), Decimal(0))
    channel_offers = list(ChannelOffer.objects.filter(offer=offer).select_related("channel").order_by("channel__system"))
    open_alerts = set(StockAlert.objects.filter(channel_offer__offer=offer, cleared_at__isnull=True)
                      .values_list("channel_offer_id", flat=True))
    changes = list(StockChange.objects.filter(offer=offer).select_related("warehouse").order_by("-at", "-id")[:HISTORY])
    field_changes = list(FieldChange.objects.filter(product_id=offer.product_id).order_by("-recorded_at", "-id")[:HISTORY])
    bindings = list(OfferBinding.objects.filter(offer=offer))
    return {
        "offer": offer, "product": offer.product, "levels": levels, "totals": totals, "holds": holds,
        "held": held, "channel_offers": [(co, co.pk in open_alerts) for co in channel_offers],
        "changes": changes, "field_changes": field_changes, "bindings": bindings, "history": HISTORY,
    }


