"""Job `marketplace-orders`: each configured marketplace's new and changed FBS orders into our
order table.

Record step (`order_upsert`, idempotent):

1. Map the marketplace status through `StatusMapping` (the first mapped key wins).
2. New order: resolve its lines to our offers (the channel's key in `ChannelOffer` — manual keys
   included — then our SKU, then a barcode, through `catalog.selectors.offer_match_external`); a
   line nobody matches is kept and flagged. `orders.services.order_create` then holds the stock at
   once (the same path as site orders: `stock_allocate` + `stock_holds_place`, whose stock-changed
   hook kicks the marketplace push) and queues the MoySklad export. An order first seen already
   cancelled is not created.
3. Known order: apply the channel's status when the machine allows it (never backwards: the
   warehouse may be ahead of the marketplace), recorded `by` the marketplace, so the outbox does
   not tell the marketplace what it told us. A marketplace-side cancellation releases the holds
   (`order_status_set`) and the outbox moves the MoySklad order to its cancelled state.

Pulling one order twice yields one order (unique source + source_order_id) with its changes.
"""
from __future__ import annotations

import logging
from datetime import timedelta
from decimal import Decimal
from typing import Callable

from django.db import transaction
from django.utils import timezone

from catalog.models import Offer
from catalog.selectors import offer_match_external
from integrations.http.errors import NotConfigured, UpstreamError
from integrations.models import ChannelOffer, System
from integrations.runs import JobContext
from orders import services as order_services
from orders.models import Order, OrderSource, OrderStatus

from . import machine
from .models import ChannelOrder
from .types import OrderIn

log = logging.getLogger("syncsite.marketplace_orders")

#: the first run (no cursor) looks this far back
FIRST_WINDOW = timedelta(days=7)
FINAL = (OrderStatus.CANCELLED, OrderStatus.COMPLETED, OrderStatus.RETURNED)
SYSTEM_OF = {OrderSource.OZON: System.OZON, OrderSource.WB: System.WILDBERRIES, OrderSource.YM: System.YANDEX_MARKET}
BUYER = {OrderSource.OZON: "Покупатель Ozon", OrderSource.WB: "Покупатель Wildberries",
         OrderSource.YM: "Покупатель Яндекс Маркета"}


# ------------------------------------------------------------------------------------------------
# Lines -> our offers
# ------------------------------------------------------------------------------------------------
def lines_resolve(order_in: OrderIn) -> list[order_services.LineRequest]:
    """The order's lines as order requests, keyed by our SKU where we know the offer (else by the
    channel's SKU, and `order_create(flag_unknown=True)` keeps them flagged). Two lines of one
    offer are merged (an order holds one line per SKU)."""
    system = SYSTEM_OF[order_in.source]
    channel_keys = [line.external_sku if order_in.source == OrderSource.WB else line.sku for line in order_in.lines]
    by_key = dict(ChannelOffer.objects.filter(channel__system=system, external_key__in=[k for k in channel_keys if k])
                  .values_list("external_key", "offer__sku"))
    left = [line for line, key in zip(order_in.lines, channel_keys) if key not in by_key and line.sku]
    matched = offer_match_external(skus=[line.sku for line in left],
                                   barcodes={line.sku: line.barcodes for line in left if line.barcodes})
    our_sku = dict(Offer.objects.filter(pk__in=[m.offer_id for m in matched.values()]).values_list("pk", "sku"))
    merged: dict[str, dict] = {}
    for line, key in zip(order_in.lines, channel_keys):
        if line.quantity <= 0:
            continue
        sku = by_key.get(key) or (our_sku.get(matched[line.sku].offer_id) if line.sku in matched else None)
        sku = sku or line.sku or f"{order_in.source}:{key}"
        row = merged.setdefault(sku, {"quantity": Decimal(0), "price": line.price, "name": line.name,
                                      "external_sku": line.external_sku})
        row["quantity"] += line.quantity
    return [order_services.LineRequest(sku=sku, quantity=row["quantity"], price=row["price"], name=row["name"],
                                       external_sku=row["external_sku"]) for sku, row in merged.items()]


def _channel_warehouses(source: str) -> list[int] | None:
    """Our warehouses this marketplace sells from (its admin setting); None = the default set."""
    from integrations.models import Channel

    ids = list(Channel.objects.filter(system=SYSTEM_OF[source]).values_list("warehouses__id", flat=True))
    ids = [i for i in ids if i is not None]
    return ids or None


# ------------------------------------------------------------------------------------------------
# The record step
# ------------------------------------------------------------------------------------------------
def order_upsert(order_in: OrderIn, *, mapper: machine.StatusMapper) -> str:
    """Create or update one marketplace order. Returns created, changed, unchanged, stale,
    skipped_cancelled, skipped_fake or skipped_empty."""
    if order_in.data.get("fake"):
        return "skipped_fake"
    if not order_in.source_order_id:
        raise order_services.OrderInvalid("the order has no id")
    status = mapper.status_for(order_in.source, order_in.status_keys)
    existing = Order.objects.filter(source=order_in.source, source_order_id=order_in.source_order_id).first()
    if existing is None:
        if status == OrderStatus.CANCELLED:
            return "skipped_cancelled"
        items = lines_resolve(order_in)
        if not items:
            return "skipped_empty"
        result = order_services.order_create(
            customer=order_services.CustomerData(name=BUYER[order_in.source]), items=items,
            source=order_in.source, source_order_id=order_in.source_order_id, enforce_stock=False,
            require_contact=False, flag_unknown=True, shipping_method=order_in.shipping_method,
            shipping_address=order_in.shipping_address, comment=order_in.comment, by=order_in.source,
            warehouse_ids=_channel_warehouses(order_in.source), placed_at=order_in.placed_at,
            source_status=order_in.raw_status, source_updated_at=order_in.updated_at)
        order = result.order
        ChannelOrder.objects.update_or_create(order=order, defaults={
            "source": order_in.source, "alt_id": str(order_in.data.get("rid") or "")[:128], "data": order_in.data})
        if status and status != order.status and machine.allowed(order.status, status):
            order_services.order_status_set(order=order.pk, status=status, by=order_in.source,
                                            at=order_in.updated_at, notify=False)
        if result.created:
            log.info("marketplace_orders.created source=%s id=%s order=%s", order_in.source,
                     order_in.source_order_id, order.number)
            return "created"
        existing = order
    return _apply(existing, order_in, status)


def _apply(order: Order, order_in: OrderIn, status: str | None) -> str:
    with transaction.atomic():
        locked = Order.objects.select_for_update().get(pk=order.pk)
        if order_in.updated_at and locked.source_updated_at and order_in.updated_at < locked.source_updated_at:
            return "stale"
        fields = {}
        if order_in.raw_status and locked.source_status != order_in.raw_status[:64]:
            fields["source_status"] = order_in.raw_status[:64]
        if order_in.updated_at and locked.source_updated_at != order_in.updated_at:
            fields["source_updated_at"] = order_in.updated_at
        if fields:
            Order.objects.filter(pk=locked.pk).update(**fields, updated_at=timezone.now())
        if order_in.data:
            # Merged: what the actions learnt (a WB supply id) survives a later pull.
            known = ChannelOrder.objects.filter(order=locked).values_list("data", flat=True).first() or {}
            ChannelOrder.objects.update_or_create(order=locked, defaults={
                "source": order_in.source, "data": {**known, **order_in.data},
                **({"alt_id": str(order_in.data["rid"])[:128]} if order_in.data.get("rid") else {})})
        change = None
        if status and status != locked.status:
            if machine.allowed(locked.status, status):
                change = order_services.order_status_set(order=locked.pk, status=status, by=order_in.source,
                                                         at=order_in.updated_at, notify=False)
            else:
                log.info("marketplace_orders.status-behind source=%s id=%s ours=%s theirs=%s", order_in.source,
                         order_in.source_order_id, locked.status, status)
    return "changed" if (change or fields) else "unchanged"


def status_apply(*, source: str, source_order_id: str, keys: list[str], raw: str,
                 mapper: machine.StatusMapper) -> str:
    """A status read for an order we hold (WB's status batches carry nothing else)."""
    order = Order.objects.filter(source=source, source_order_id=source_order_id).first()
    if order is None:
        return "unknown"
    order_in = OrderIn(source=source, source_order_id=source_order_id, status_keys=keys, raw_status=raw, lines=[])
    return _apply(order, order_in, mapper.status_for(source, keys))


# ------------------------------------------------------------------------------------------------
# Per marketplace
# ------------------------------------------------------------------------------------------------
def _record(ctx: JobContext, ref: str, step: Callable[[], str]) -> None:
    try:
        ctx.count(step())
    except (order_services.OrderInvalid, ValueError) as exc:
        ctx.error(ref, str(exc))


def ozon_pull(ctx: JobContext, mapper: machine.StatusMapper, *, client=None) -> None:
    from integrations.ozon.orders import OzonOrdersClient, posting_to_order

    since = ctx.since or (timezone.now() - FIRST_WINDOW)
    own = client is None
    client = client or OzonOrdersClient()
    try:
        for page in client.iter_posting_pages(changed_from=since):
            for posting in page:
                order_in = posting_to_order(posting)
                _record(ctx, f"ozon {order_in.source_order_id}", lambda: order_upsert(order_in, mapper=mapper))
            ctx.advance(len(page))
        ctx.count("ozon_requests", client.stats.requests)
    finally:
        if own:
            client.close()


def wb_pull(ctx: JobContext, mapper: machine.StatusMapper, *, client=None) -> None:
    """New tasks (all of them: the list has no filters), then one status batch for those and every
    task we still hold open."""
    from integrations.wildberries.orders import WildberriesOrdersClient, status_keys, task_to_order

    own = client is None
    client = client or WildberriesOrdersClient()
    try:
        new = {int(t["id"]): t for t in client.orders_new() if t.get("id") is not None}
        open_ids = [int(i) for i in Order.objects.filter(source=OrderSource.WB).exclude(status__in=FINAL)
                    .values_list("source_order_id", flat=True) if str(i).isdigit()]
        statuses = client.orders_status(sorted(set(new) | set(open_ids))) if (new or open_ids) else {}
        for task_id, task in new.items():
            order_in = task_to_order(task, statuses.get(task_id))
            _record(ctx, f"wb {task_id}", lambda: order_upsert(order_in, mapper=mapper))
        for task_id in open_ids:
            if task_id in new or task_id not in statuses:
                continue
            keys, raw = status_keys(statuses[task_id])
            _record(ctx, f"wb {task_id}", lambda: status_apply(source=OrderSource.WB, source_order_id=str(task_id),
                                                               keys=keys, raw=raw, mapper=mapper))
        ctx.advance(len(new) + len(open_ids))
        ctx.count("wb_requests", client.stats.requests)
    finally:
        if own:
            client.close()


def ym_pull(ctx: JobContext, mapper: machine.StatusMapper, *, client=None) -> None:
    from integrations.yandex_market.orders import YandexMarketOrdersClient, order_to_order

    since = ctx.since or (timezone.now() - FIRST_WINDOW)
    own = client is None
    client = client or YandexMarketOrdersClient()
    try:
        for page in client.iter_order_pages(updated_from=since):
            for row in page:
                order_in = order_to_order(row)
                _record(ctx, f"ym {order_in.source_order_id}", lambda: order_upsert(order_in, mapper=mapper))
            ctx.advance(len(page))
        ctx.count("ym_requests", client.stats.requests)
    finally:
        if own:
            client.close()


def _configured() -> dict[str, Callable]:
    from integrations.ozon.client import is_configured as ozon_ok
    from integrations.wildberries.client import is_configured as wb_ok
    from integrations.yandex_market.client import is_configured as ym_ok

    pullers = {}
    if ozon_ok():
        pullers[OrderSource.OZON] = ozon_pull
    if wb_ok():
        pullers[OrderSource.WB] = wb_pull
    if ym_ok():
        pullers[OrderSource.YM] = ym_pull
    return pullers


def configured() -> bool:
    return bool(_configured())


def orders_pull(ctx: JobContext) -> None:
    """Job `marketplace-orders`. One marketplace failing does not stop the others; the run then
    fails (the cursor stays, the next run reads the window again: every step is idempotent)."""
    pullers = _configured()
    if not pullers:
        raise NotConfigured("no marketplace is configured")
    mapper = machine.StatusMapper()
    failed: list[str] = []
    for source, pull in pullers.items():
        try:
            pull(ctx, mapper)
        except UpstreamError as exc:
            failed.append(f"{source}: {exc}")
            log.warning("marketplace_orders.pull-failed source=%s %s", source, exc)
    from .outbox import kick

    kick()
    if failed:
        raise PullFailed("; ".join(failed))


class PullFailed(UpstreamError):
    retryable = True

