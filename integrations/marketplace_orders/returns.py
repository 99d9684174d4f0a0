"""Job `marketplace-returns`: Ozon and Yandex Market return lists, Wildberries buyer claims.

* Each return is recorded once (unique source + return id); a later read updates its status.
* Its units go back once, when the marketplace says they reached us (Ozon `ReceivedBySeller`,
  YM `PICKED`, a WB claim whose goods go back to the seller): the row is locked and its `restore`
  state moves from `waiting` exactly once. With MoySklad configured and the order in it, as a
  `salesreturn` against the order's shipment (demand) — MoySklad's figure rises and our stock
  sync follows; its externalCode is ours, so a create whose answer was lost is found, not
  repeated. Without MoySklad, straight into our stock levels through `stock.services`.
* A return for an order we do not know is recorded and flagged; no stock is touched.
* The manager is told in Telegram (one message per run listing the new returns; each return is
  claimed for the message once) and sees them in the admin's returns list.
"""
from __future__ import annotations

import logging
import uuid
from datetime import timedelta
from decimal import Decimal

from django.db import transaction
from django.utils import timezone

from integrations.http.errors import MissingDependencyError, NotConfigured, UpstreamError
from integrations.models import OfferBinding, OrderBinding, System
from integrations.runs import JobContext
from orders.models import Order, OrderLine, OrderSource
from stock import selectors as stock_selectors
from stock import services as stock_services
from stock.models import StockLevel

from .models import ChannelOrder, MarketplaceReturn
from .types import ReturnIn

log = logging.getLogger("syncsite.marketplace_orders.returns")

FIRST_WINDOW = timedelta(days=14)
NOTIFY_WINDOW = timedelta(days=2)
NOTIFY_MAX_LISTED = 20
R = MarketplaceReturn.Restore


# ------------------------------------------------------------------------------------------------
# Record
# ------------------------------------------------------------------------------------------------
def _order_for(ret: ReturnIn) -> Order | None:
    if not ret.source_order_id:
        return None
    if ret.source == OrderSource.WB:
        # Claims name the task by `srid` (= its `rid`); the task id also works.
        hit = ChannelOrder.objects.filter(source=OrderSource.WB, alt_id=ret.source_order_id).select_related("order").first()
        if hit:
            return hit.order
    return Order.objects.filter(source=ret.source, source_order_id=ret.source_order_id).first()


def return_record(ret: ReturnIn) -> str:
    """Record or update one return. Returns recorded, updated or unchanged."""
    if not ret.return_id:
        raise ValueError("a return without an id")
    with transaction.atomic():
        row = MarketplaceReturn.objects.select_for_update().filter(source=ret.source, return_id=ret.return_id).first()
        if row is None:
            order = _order_for(ret)
            lines = [line for line in ret.lines if line.get("sku") and int(line.get("quantity") or 0) > 0]
            if order is not None and not lines and ret.source == OrderSource.WB:
                # One WB task is one unit of its one line.
                lines = [{"sku": line.sku, "quantity": 1} for line in order.lines.all()[:1]]
            row = MarketplaceReturn(source=ret.source, return_id=ret.return_id[:128], order=order,
                                    source_order_id=ret.source_order_id[:128], kind=ret.kind[:64],
                                    marketplace_status=ret.status[:64], received=ret.received, lines=lines,
                                    amount=ret.amount, reason=ret.reason[:255], returned_at=ret.returned_at,
                                    raw=ret.raw)
            if order is None:
                row.flagged, row.flag_reason, row.restore = True, "unknown order: no stock touched", R.FLAGGED
            elif not lines:
                row.restore = R.NOTHING
            row.save()
            log.info("marketplace_orders.return.recorded source=%s id=%s order=%s flagged=%s", ret.source,
                     ret.return_id, order and order.number, row.flagged)
            return "recorded"
        fields = []
        if ret.status and row.marketplace_status != ret.status[:64]:
            row.marketplace_status = ret.status[:64]
            fields.append("marketplace_status")
        if ret.received and not row.received:
            row.received = True
            fields.append("received")
        if fields:
            row.raw = ret.raw
            row.save(update_fields=[*fields, "raw", "updated_at"])
            return "updated"
        return "unchanged"


# ------------------------------------------------------------------------------------------------
# Restore (once)
# ------------------------------------------------------------------------------------------------
def _moysklad_configured() -> bool:
    from integrations.moysklad.client import is_configured

    return is_configured()


def _lines_to_offers(row: MarketplaceReturn, order: Order) -> list[tuple[OrderLine, Decimal]]:
    by_sku: dict[str, OrderLine] = {}
    for line in order.lines.all():
        by_sku.setdefault(line.sku, line)
        if line.external_sku:
            by_sku.setdefault(line.external_sku, line)
    out = []
    for item in row.lines:
        line = by_sku.get(str(item.get("sku") or ""))
        if line is None or line.offer_id is None:
            raise LookupError(f"return line {item.get('sku')!r} is not a known line of order {order.number}")
        out.append((line, min(Decimal(int(item.get("quantity") or 0)), line.quantity)))
    return [(line, qty) for line, qty in out if qty > 0]


def return_restore(*, return_id: int, client=None) -> str:
    """Put one received return's units back, at most once. Returns restored, not_received,
    already, flagged or waiting (MoySklad does not hold the order yet)."""
    with transaction.atomic():
        row = MarketplaceReturn.objects.select_for_update(of=("self",)).select_related("order").get(pk=return_id)
        if row.restore != R.WAITING:
            return "already" if row.restore == R.RESTORED else row.restore
        if not row.received:
            return "not_received"
        order = row.order
        if order is None:
            row.flagged, row.restore, row.flag_reason = True, R.FLAGGED, "unknown order: no stock touched"
            row.save(update_fields=["flagged", "restore", "flag_reason", "updated_at"])
            return "flagged"
        try:
            lines = _lines_to_offers(row, order)
        except LookupError as exc:
            row.flagged, row.restore, row.flag_reason = True, R.FLAGGED, str(exc)[:255]
            row.save(update_fields=["flagged", "restore", "flag_reason", "updated_at"])
            return "flagged"
        # Every order has its MoySklad binding from birth (the export outbox): with MoySklad on, the
        # return goes there, waiting (MissingDependencyError) until the order itself is exported.
        if _moysklad_configured() and OrderBinding.objects.filter(system=System.MOYSKLAD, order=order).exists():
            try:
                row.salesreturn_id = _salesreturn(row, order, lines, client=client)
            except MissingDependencyError as exc:
                MarketplaceReturn.objects.filter(pk=row.pk).update(restore_error=str(exc)[:4000])
                return "waiting"
            row.restored_via = "moysklad salesreturn"
        else:
            _stock_restore(order, lines, source=row.source)
            row.restored_via = "stock"
        row.restore, row.restored_at, row.restore_error = R.RESTORED, timezone.now(), ""
        row.save(update_fields=["restore", "restored_at", "restored_via", "salesreturn_id", "restore_error",
                                "updated_at"])
    log.info("marketplace_orders.return.restored source=%s id=%s via=%s", row.source, row.return_id, row.restored_via)
    return "restored"


def _stock_restore(order: Order, lines: list[tuple[OrderLine, Decimal]], *, source: str) -> None:
    """Without MoySklad: the units go back on the shelf they were held on (else the shipping
    store), through the one stock write path. The level keeps its owner and its last read time,
    so this write is never taken for a fresh upstream read."""
    warehouse_id = stock_selectors.stock_hold_warehouse(refs=[line.hold_ref for line, _ in lines])
    if warehouse_id is None:
        candidates, preferred = stock_selectors.warehouse_list_for_orders()
        warehouse_id = (preferred or candidates or [None])[0]
    if warehouse_id is None:
        raise MissingDependencyError("no warehouse to put the returned units in")
    levels = {lv.offer_id: lv for lv in StockLevel.objects.select_for_update().filter(
        warehouse_id=warehouse_id, offer_id__in=[line.offer_id for line, _ in lines])}
    by_owner: dict[tuple[str, object], dict[int, tuple[Decimal, Decimal]]] = {}
    for line, qty in lines:
        level = levels.get(line.offer_id)
        stock, reserve = (level.stock, level.reserve) if level else (Decimal(0), Decimal(0))
        owner = (level.source if level else f"return:{source}",
                 (level.checked_at if level and level.checked_at else timezone.now() - timedelta(days=3650)))
        by_owner.setdefault(owner, {})[line.offer_id] = (stock + qty, reserve)
    for (owner, checked_at), figures in by_owner.items():
        stock_services.stock_levels_set(warehouse_id=warehouse_id, figures=figures, source=owner, via="return",
                                        checked_at=checked_at)


def _salesreturn(row: MarketplaceReturn, order: Order, lines, *, client=None) -> str:
    """A MoySklad `salesreturn` for the returned units, against the order's shipment (the demand
    of its customerorder) when there is one. Exactly once: looked up by our externalCode first,
    created with a syncId derived from it."""
    from integrations.moysklad.client import MoySkladClient
    from integrations.moysklad.mapping import rubles_to_kopecks

    own = client is None
    client = client or MoySkladClient()
    try:
        code = row.sync_code
        found = client.find_first("salesreturn", [f"externalCode={client.filter_value(code)}"])
        if found and found.get("id"):
            return found["id"]
        binding = OrderBinding.objects.filter(system=System.MOYSKLAD, order=order).exclude(external_id="").first()
        if binding is None:
            raise MissingDependencyError("the order is not in MoySklad yet")
        customerorder = client.customerorder_get(binding.external_id, expand=None)
        bound = {b["offer_id"]: b for b in OfferBinding.objects.filter(
            system=System.MOYSKLAD, offer_id__in=[line.offer_id for line, _ in lines]).values("offer_id", "external_id",
                                                                                              "kind")}
        positions = []
        for line, qty in lines:
            b = bound.get(line.offer_id)
            if b is None:
                raise MissingDependencyError(f"{line.sku} is not linked to a MoySklad product")
            kind = "variant" if b["kind"] == "variant" else "product"
            positions.append({"assortment": client.meta(kind, b["external_id"]), "quantity": float(qty),
                              "price": rubles_to_kopecks(line.price)})
        body = {"externalCode": code, "syncId": str(uuid.uuid5(uuid.NAMESPACE_URL, code)),
                "organization": customerorder.get("organization"), "agent": customerorder.get("agent"),
                "store": customerorder.get("store"), "positions": positions,
                "description": (f"Возврат {row.get_source_display()} {row.return_id} по заказу {order.number} "
                                f"({order.get_source_display()} {order.source_order_id})")[:4096]}
        demands = [d for d in customerorder.get("demands") or [] if isinstance(d, dict) and d.get("meta")]
        if demands:
            body["demand"] = {"meta": demands[0]["meta"]}
        created = client.request("POST", "/entity/salesreturn", json=body, headers=client.write_headers(),
                                 retry=True).json()
        if not created.get("id"):
            raise UpstreamError("MoySklad answered a salesreturn create without an id", system="moysklad")
        return created["id"]
    finally:
        if own:
            client.close()


def returns_restore(ctx: JobContext | None = None, *, client=None) -> dict[str, int]:
    counts: dict[str, int] = {}
    ids = list(MarketplaceReturn.objects.filter(restore=R.WAITING, received=True).values_list("pk", flat=True)[:1000])
    for pk in ids:
        outcome = return_restore(return_id=pk, client=client)
        counts[outcome] = counts.get(outcome, 0) + 1
        if ctx is not None:
            ctx.count(f"restore_{outcome}")
    return counts


# ------------------------------------------------------------------------------------------------
# Telling the manager
# ------------------------------------------------------------------------------------------------
def returns_notify(*, transport=None) -> int:
    """One Telegram message listing the returns nobody was told about yet (recent ones). Each is
    claimed before sending; a failed send gives them back for the next run."""
    from integrations.telegram.client import is_configured
    from integrations.telegram.messages import send_manager_message

    if not is_configured():
        return 0
    now = timezone.now()
    ids = list(MarketplaceReturn.objects.filter(notified_at__isnull=True, created_at__gte=now - NOTIFY_WINDOW)
               .order_by("id").values_list("pk", flat=True)[:200])
    if not ids:
        return 0
    claimed = MarketplaceReturn.objects.filter(pk__in=ids, notified_at__isnull=True)
    ids = list(claimed.values_list("pk", flat=True))
    MarketplaceReturn.objects.filter(pk__in=ids, notified_at__isnull=True).update(notified_at=now)
    rows = list(MarketplaceReturn.objects.filter(pk__in=ids, notified_at=now).select_related("order").order_by("id"))
    if not rows:
        return 0
    text = [f"Возвраты с маркетплейсов: {len(rows)}"]
    for row in rows[:NOTIFY_MAX_LISTED]:
        what = ", ".join(f"{line.get('sku')} × {line.get('quantity')}" for line in row.lines) or "—"
        order = row.order.number if row.order else f"неизвестный заказ {row.source_order_id}"
        flag = " ⚠ нужен менеджер" if row.flagged else ""
        text.append(f"• {row.get_source_display()} {row.return_id}: {order}; {what}{flag}")
    if len(rows) > NOTIFY_MAX_LISTED:
        text.append(f"… и ещё {len(rows) - NOTIFY_MAX_LISTED} (список в админке)")
    try:
        send_manager_message("\n".join(text), transport=transport)
    except (UpstreamError, NotConfigured) as exc:
        MarketplaceReturn.objects.filter(pk__in=[r.pk for r in rows]).update(notified_at=None)
        log.warning("marketplace_orders.return.notify-failed %s", exc)
        return 0
    return len(rows)


# ------------------------------------------------------------------------------------------------
# The job
# ------------------------------------------------------------------------------------------------
def _record_all(ctx: JobContext, rows) -> None:
    for ret in rows:
        try:
            ctx.count(return_record(ret))
        except ValueError as exc:
            ctx.error(f"{ret.source} return {ret.return_id}", str(exc))


def returns_pull(ctx: JobContext) -> None:
    from integrations.ozon.client import is_configured as ozon_ok
    from integrations.wildberries.client import is_configured as wb_ok
    from integrations.yandex_market.client import is_configured as ym_ok

    if not (ozon_ok() or wb_ok() or ym_ok()):
        raise NotConfigured("no marketplace is configured")
    since = ctx.since or (timezone.now() - FIRST_WINDOW)
    failed = []
    if ozon_ok():
        from integrations.ozon.orders import OzonOrdersClient, return_to_record

        try:
            with OzonOrdersClient() as client:
                for page in client.iter_return_pages(changed_from=since):
                    _record_all(ctx, [return_to_record(r) for r in page])
        except UpstreamError as exc:
            failed.append(f"ozon: {exc}")
    if ym_ok():
        from integrations.yandex_market.orders import YandexMarketOrdersClient, return_to_record as ym_record

        try:
            with YandexMarketOrdersClient() as client:
                if client.campaign_id:
                    for page in client.iter_return_pages(campaign_id=client.campaign_id, from_date=since):
                        _record_all(ctx, [ym_record(r) for r in page])
        except UpstreamError as exc:
            failed.append(f"ym: {exc}")
    if wb_ok():
        from integrations.wildberries.orders import WildberriesReturnsClient, claim_to_return

        try:
            with WildberriesReturnsClient() as client:
                for page in client.iter_claim_pages():
                    _record_all(ctx, [claim_to_return(c) for c in page])
        except UpstreamError as exc:
            failed.append(f"wb: {exc}")
    returns_restore(ctx)
    ctx.count("notified", returns_notify())
    if failed:
        raise UpstreamError("; ".join(failed))
