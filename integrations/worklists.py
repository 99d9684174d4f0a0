"""Work lists: what needs a manager, each with the action that fixes it.

Every list shows a bounded page (LIMIT rows, the oldest problems first) and its total, so the page
costs the same number of queries whatever the size of the tables. Every action takes the rows as
the manager saw them (id and a version stamp) and acts only on those still in that state: a row
that changed meanwhile (another manager fixed it, a job ran) is reported, never acted on twice.
Actions call the existing services (export re-queue and kick, marketplace push, event reprocessing).
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any, Iterable

from django.db.models import Count
from django.utils.translation import gettext as _

LIMIT = 50


def version_of(obj: Any, fields: Iterable[str]) -> str:
    """A short stamp of the fields that matter for an action: it changes when any of them does."""
    raw = "|".join(str(getattr(obj, f)) for f in fields)
    return hashlib.sha1(raw.encode()).hexdigest()[:12]


#: an order row carries its MoySklad binding's export fields (orders.selectors.order_with_export)
ORDER_FIELDS = ("export_state", "export_attempts", "export_error", "updated_at")
OFFER_FIELDS = ("status", "error", "synced_at", "kicked_at")
EVENT_FIELDS = ("status", "attempts", "error", "processed_at")


@dataclass
class ActionResult:
    done: list[str] = field(default_factory=list)
    changed: list[str] = field(default_factory=list)
    gone: list[str] = field(default_factory=list)

    def messages(self, verb: str) -> list[tuple[str, str]]:
        """(level, text) lines for the admin's message area."""
        out = []
        if self.done:
            out.append(("success", _("%(verb)s: %(items)s.") % {"verb": verb, "items": ", ".join(self.done)}))
        if self.changed:
            out.append(("warning", _("Changed meanwhile, left as it is (reload to see it now): %(items)s.")
                        % {"items": ", ".join(self.changed)}))
        if self.gone:
            out.append(("warning", _("No longer exists: %(items)s.") % {"items": ", ".join(self.gone)}))
        if not (self.done or self.changed or self.gone):
            out.append(("warning", _("Nothing was selected.")))
        return out


def parse_picks(values: Iterable[str]) -> dict[int, str]:
    """Form values "ID:VERSION" -> {id: version}; malformed ones are dropped."""
    picks = {}
    for value in values:
        pk, _sep, version = str(value).partition(":")
        if pk.isdigit():
            picks[int(pk)] = version
    return picks


def _split(rows: dict[int, Any], picks: dict[int, str], fields: Iterable[str], still, label) -> tuple[
        list[Any], ActionResult]:
    result = ActionResult()
    fields = tuple(fields)
    fresh = []
    for pk, version in picks.items():
        row = rows.get(pk)
        if row is None:
            result.gone.append(f"#{pk}")
        elif version_of(row, fields) != version or not still(row):
            result.changed.append(label(row))
        else:
            fresh.append(row)
    return fresh, result


# ------------------------------------------------------------------------------------------------
# Orders that failed to export
# ------------------------------------------------------------------------------------------------
def failed_orders() -> tuple[list, int]:
    """Orders whose MoySklad binding says the export failed, each carrying the binding's export
    state, attempts and error (joined in: one query for the page)."""
    from orders import selectors as order_selectors
    from orders.models import ExportState, Order

    qs = order_selectors.order_with_export(Order.objects.all()).filter(export_state=ExportState.FAILED)
    return list(qs.order_by("created_at", "id")[:LIMIT]), qs.count()


def orders_retry_export(*, picks: dict[int, str]) -> ActionResult:
    """Put the chosen failed orders back in the export outbox and export each now (the same kick a
    new order gets); `orders-export` picks up any the kick misses."""
    from orders import selectors as order_selectors
    from orders import services as order_services
    from orders.models import ExportState, Order

    from . import jobs
    from .models import OrderBinding, System

    rows = order_selectors.order_with_export(Order.objects.all()).in_bulk(list(picks))
    fresh, result = _split(rows, picks, ORDER_FIELDS, lambda o: o.export_state == ExportState.FAILED,
                           lambda o: o.number or f"#{o.pk}")
    ids = [o.pk for o in fresh]
    requeued = set(OrderBinding.objects.filter(system=System.MOYSKLAD, order_id__in=ids,
                                               export_state=ExportState.FAILED).values_list("order_id", flat=True))
    order_services.order_export_requeue(order_ids=list(requeued))
    for order in fresh:
        if order.pk in requeued:
            jobs.order_created(order.pk)
            result.done.append(order.number or f"#{order.pk}")
        else:
            result.changed.append(order.number or f"#{order.pk}")
    return result


# ------------------------------------------------------------------------------------------------
# Marketplace offers in error, open desync alerts
# ------------------------------------------------------------------------------------------------
def offers_in_error() -> tuple[list, int, list[dict]]:
    from .models import ChannelOffer

    qs = ChannelOffer.objects.filter(status=ChannelOffer.Status.ERROR)
    per_channel = list(qs.order_by().values("channel__system").annotate(n=Count("pk")).order_by("channel__system"))
    return (list(qs.select_related("channel", "offer").order_by("synced_at", "id")[:LIMIT]), sum(r["n"] for r in per_channel),
            per_channel)


def open_alerts() -> tuple[list, int]:
    from .models import StockAlert

    qs = StockAlert.objects.filter(cleared_at__isnull=True)
    return list(qs.select_related("channel_offer__channel", "channel_offer__offer")
                .order_by("opened_at", "id")[:LIMIT]), qs.count()


def channel_offers_push(*, picks: dict[int, str], require_error: bool = True) -> ActionResult:
    """Push the chosen channel offers now (the marketplace kick), if they are as the manager saw them."""
    from .marketplaces.services import channel_offers_push_now
    from .models import ChannelOffer

    rows = ChannelOffer.objects.select_related("offer").in_bulk(list(picks))
    still = (lambda co: co.status == ChannelOffer.Status.ERROR) if require_error else (lambda co: True)
    fresh, result = _split(rows, picks, OFFER_FIELDS, still, lambda co: f"{co.offer.sku} ({co.channel_id})")
    if fresh:
        channel_offers_push_now(ids=[co.pk for co in fresh])
        result.done.extend(f"{co.offer.sku}" for co in fresh)
    return result


# ------------------------------------------------------------------------------------------------
# Unmapped SKUs
# ------------------------------------------------------------------------------------------------
def unmapped_skus() -> dict[str, Any]:
    """Unmapped supplier / 1C SKUs per source, and marketplace offers with no key, per channel."""
    from catalog.models import ExternalSku

    from .models import ChannelOffer

    per_source = list(ExternalSku.objects.filter(offer__isnull=True).order_by().values("source")
                      .annotate(n=Count("pk")).order_by("source"))
    no_key = list(ChannelOffer.objects.filter(external_key="").order_by().values("channel__system", "channel_id")
                  .annotate(n=Count("pk")).order_by("channel__system"))
    top = list(ExternalSku.objects.filter(offer__isnull=True).order_by("-seen_count", "source", "sku")[:10])
    return {"per_source": per_source, "no_key": no_key, "top": top}


# ------------------------------------------------------------------------------------------------
# Inbound events that failed
# ------------------------------------------------------------------------------------------------
def failed_events() -> tuple[list, int]:
    from .models import InboundEvent

    qs = InboundEvent.objects.filter(status=InboundEvent.Status.FAILED).defer("payload")
    return list(qs.order_by("received_at", "id")[:LIMIT]), qs.count()


def events_reprocess_picked(*, picks: dict[int, str]) -> ActionResult:
    from .models import InboundEvent
    from .moysklad.events import events_reprocess

    rows = InboundEvent.objects.defer("payload").in_bulk(list(picks))
    fresh, result = _split(rows, picks, EVENT_FIELDS, lambda e: e.status == InboundEvent.Status.FAILED,
                           lambda e: f"#{e.pk} {e.entity_type}")
    if fresh:
        events_reprocess(event_ids=[e.pk for e in fresh])
        result.done.extend(f"#{e.pk} {e.entity_type}" for e in fresh)
    return result


def worklist_counts() -> dict[str, int]:
    """The totals the dashboard links to (one query each)."""
    from catalog.models import ExternalSku
    from orders.models import ExportState

    from .models import ChannelOffer, InboundEvent, OrderBinding, StockAlert, System

    return {
        "orders": OrderBinding.objects.filter(system=System.MOYSKLAD, export_state=ExportState.FAILED).count(),
        "offers": ChannelOffer.objects.filter(status=ChannelOffer.Status.ERROR).count(),
        "skus": ExternalSku.objects.filter(offer__isnull=True).count(),
        "alerts": StockAlert.objects.filter(cleared_at__isnull=True).count(),
        "events": InboundEvent.objects.filter(status=InboundEvent.Status.FAILED).count(),
    }

