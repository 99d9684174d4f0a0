"""The outbox of marketplace actions: each status change of a marketplace order that someone must
hear about runs exactly once.

Planning (`actions_plan`): every `OrderStatusChange` of a marketplace order gets one
`MarketplaceAction` row per target (unique (change, target): planning twice, or in two workers,
adds nothing). A change the marketplace itself told us is not sent back; one from MoySklad or the
admin is checked against the machine (illegal: a `refused` row with the reason, shown on the
order) and mapped through `ActionMapping`. A cancellation that did not come from MoySklad also
moves the MoySklad order to its cancelled state (target `moysklad`).

Running (`actions_run`): a row is taken under a lease (syncsite.leases), so two workers never
run one. Before a request is sent, `attempted_at` is stamped; a row stamped before (the answer
was lost: a timeout, a killed worker) first reads the marketplace back and is marked done if the
change is already there, so a retry never does it twice. Transient errors (timeouts, 5xx, 429 /
420 — the wait the marketplace asked for is kept) leave the row pending with `next_attempt_at`;
permanent ones (4xx) mark it failed with the marketplace's message, shown on the order; nothing
is marked done that the marketplace did not confirm. Yandex Market rows go out in batches of 30
per campaign (its status-update call batches).
"""
from __future__ import annotations

import logging
import random
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from typing import Iterable

from django.conf import settings
from django.db import IntegrityError, connection, transaction
from django.db.models import Exists, F, OuterRef, Q
from django.utils import timezone

from integrations.http.errors import (
    MappingError,
    MissingDependencyError,
    RateLimitedError,
    RejectedError,
    UpstreamError,
)
from integrations.models import OrderBinding, OrderStateMapping, System
from orders.models import Order, OrderSource, OrderStatus, OrderStatusChange
from syncsite.leases import Lease

from . import machine
from .models import Action, ActionState, ChannelOrder, MarketplaceAction, WbSupply

log = logging.getLogger("syncsite.marketplace_orders.outbox")

MARKETPLACES = (OrderSource.OZON, OrderSource.WB, OrderSource.YM)
#: changes older than this are not planned any more (a fresh install does not replay history)
PLAN_WINDOW = timedelta(days=7)
MAX_ATTEMPTS = 8
BACKOFF_BASE = 15.0
BACKOFF_MAX = 1800.0
YM_BATCH = 30
#: threads for a long queue of one-call actions, and the queue length from which they are used
PARALLEL = 4
PARALLEL_FROM = 16


class ActionDone(Exception):
    """Raised by a read-back: the marketplace already shows the change (a lost answer)."""


# ------------------------------------------------------------------------------------------------
# Planning
# ------------------------------------------------------------------------------------------------
def _moysklad_configured() -> bool:
    from integrations.moysklad.client import is_configured

    return is_configured()


def plan_change(change: OrderStatusChange, *, moysklad: bool | None = None) -> list[MarketplaceAction]:
    order = change.order
    rows: list[MarketplaceAction] = []
    base = dict(order=order, change=change, source=order.source, to_status=change.to_status)
    by = change.by or ""
    if not change.from_status:
        rows.append(MarketplaceAction(**base, target="marketplace", state=ActionState.SKIPPED))
    elif by == order.source:
        rows.append(MarketplaceAction(**base, target="marketplace", state=ActionState.SKIPPED,
                                      error="", result={"why": "the marketplace told us"}))
    elif not machine.allowed(change.from_status, change.to_status):
        try:
            machine.check(change.from_status, change.to_status)
        except machine.IllegalTransition as exc:
            message = f"not sent to {order.get_source_display()}: {exc} (changed by {by})"
        rows.append(MarketplaceAction(**base, target="marketplace", state=ActionState.REFUSED, error=message))
    else:
        action = machine.action_for(order.source, change.to_status)
        rows.append(MarketplaceAction(**base, target="marketplace", action=action,
                                      state=ActionState.PENDING if action else ActionState.SKIPPED))
    moysklad = _moysklad_configured() if moysklad is None else moysklad
    if change.to_status == OrderStatus.CANCELLED and moysklad and not by.startswith("moysklad"):
        rows.append(MarketplaceAction(**base, target="moysklad", action=Action.MOYSKLAD_STATE,
                                      state=ActionState.PENDING))
    created = []
    for row in rows:
        try:
            with transaction.atomic():
                row.save()
            created.append(row)
        except IntegrityError:
            pass  # planned by someone else meanwhile
    return created


def actions_plan(*, limit: int = 2000) -> int:
    """Plan every recent change of a marketplace order that has no action row yet."""
    since = timezone.now() - PLAN_WINDOW
    # The first status of an order and what a marketplace told us need nothing, except a
    # marketplace-side cancellation (MoySklad follows it).
    changes = (OrderStatusChange.objects.filter(order__source__in=MARKETPLACES, recorded_at__gte=since)
               .exclude(from_status="").filter(~Q(by=F("order__source")) | Q(to_status=OrderStatus.CANCELLED))
               .filter(~Exists(MarketplaceAction.objects.filter(change=OuterRef("pk"))))
               .select_related("order").order_by("id")[:limit])
    moysklad = _moysklad_configured()
    planned = 0
    for change in changes:
        planned += len([r for r in plan_change(change, moysklad=moysklad) if r.state == ActionState.PENDING])
    return planned


# ------------------------------------------------------------------------------------------------
# Running
# ------------------------------------------------------------------------------------------------
def _lease() -> Lease:
    return Lease(MarketplaceAction, owner_field="lease_owner", until_field="lease_until")


def _due() -> Q:
    return Q(state=ActionState.PENDING) & (Q(next_attempt_at__isnull=True) | Q(next_attempt_at__lte=timezone.now()))


def _backoff(attempts: int) -> float:
    ceiling = min(BACKOFF_MAX, BACKOFF_BASE * 2 ** max(0, attempts - 1))
    return ceiling / 2 + random.uniform(0, ceiling / 2)


class Clients:
    """One client per marketplace for a run, opened when first needed."""

    def __init__(self, **given):
        self._clients = dict(given)
        self._own: list = []

    def get(self, name: str):
        if name not in self._clients:
            if name == "ozon":
                from integrations.ozon.orders import OzonOrdersClient as cls
            elif name == "wb":
                from integrations.wildberries.orders import WildberriesOrdersClient as cls
            elif name == "ym":
                from integrations.yandex_market.orders import YandexMarketOrdersClient as cls
            else:
                from integrations.moysklad.client import MoySkladClient as cls
            self._clients[name] = cls()
            self._own.append(self._clients[name])
        return self._clients[name]

    def close(self) -> None:
        for client in self._own:
            client.close()


def actions_run(*, limit: int = 500, clients: Clients | None = None) -> dict[str, int]:
    """Run the due actions (oldest first). Returns counts by outcome."""
    ids = list(MarketplaceAction.objects.filter(_due()).order_by("id").values_list("pk", flat=True)[:limit])
    counts: dict[str, int] = {}
    if not ids:
        return counts
    own = clients is None
    clients = clients or Clients()
    lease = _lease()
    try:
        lease.take(ids, _due())
        held = list(lease.keys)
        if not held:
            return counts
        with lease.kept_alive():
            rows = list(MarketplaceAction.objects.filter(pk__in=held).select_related("order").order_by("id"))
            ym = [r for r in rows if r.action in (Action.YM_READY_TO_SHIP, Action.YM_CANCEL)]
            wb_add = [r for r in rows if r.action == Action.WB_SUPPLY_ADD]
            for outcome, n in _run_wb_adds(wb_add, clients).items():
                counts[outcome] = counts.get(outcome, 0) + n
            single = [row for row in rows if row not in ym and row not in wb_add]
            for outcome in _run_singles(single, clients, lease):
                counts[outcome] = counts.get(outcome, 0) + 1
            for outcome, n in _run_ym(ym, clients).items():
                counts[outcome] = counts.get(outcome, 0) + n
    finally:
        lease.release()
        if own:
            clients.close()
    return counts


def _run_singles(rows: list[MarketplaceAction], clients: Clients, lease: Lease) -> list[str]:
    """One call per action (Ozon ship/cancel, WB deliver/cancel, MoySklad states). A long queue
    runs on PARALLEL threads (each marketplace's shared limiter still paces the calls: Ozon
    allows 50 a second, far more than one thread's round trips); a short one inline."""
    def one(row: MarketplaceAction) -> str:
        try:
            return _run_one(row, clients)
        finally:
            lease.release([row.pk])

    if len(rows) < PARALLEL_FROM:
        return [one(row) for row in rows]
    for name in {_CLIENT_OF.get(row.action, "") for row in rows} - {""}:
        clients.get(name)  # opened once, before the threads share it

    def threaded(row: MarketplaceAction) -> str:
        try:
            return one(row)
        finally:
            connection.close()  # this thread's own connection

    with ThreadPoolExecutor(max_workers=PARALLEL, thread_name_prefix="mp-action") as pool:
        return list(pool.map(threaded, rows))


def _finish(row: MarketplaceAction, outcome: str, *, error: str = "", result: dict | None = None,
            delay: float | None = None) -> str:
    """Record what happened. done/failed are final; `retry` keeps the row pending."""
    now = timezone.now()
    updates: dict = {"error": error[:4000]}
    if result is not None:
        updates["result"] = result
    if outcome == "done":
        updates.update(state=ActionState.DONE, done_at=now)
    elif outcome == "failed":
        updates.update(state=ActionState.FAILED)
    else:
        attempts = row.attempts
        if attempts >= MAX_ATTEMPTS:
            updates.update(state=ActionState.FAILED, error=f"gave up after {attempts} attempts: {error}"[:4000])
            outcome = "failed"
        else:
            wait = delay if delay is not None else _backoff(attempts)
            updates.update(next_attempt_at=now + timedelta(seconds=wait))
    MarketplaceAction.objects.filter(pk=row.pk).update(**updates)
    level = logging.WARNING if outcome == "failed" else logging.INFO
    log.log(level, "marketplace_orders.action.%s order=%s action=%s %s", outcome, row.order_id, row.action, error)
    return outcome


def _attempt(row: MarketplaceAction) -> bool:
    """Count the attempt; True when an earlier one may have reached the marketplace."""
    earlier = row.attempted_at is not None
    row.attempts += 1
    row.attempted_at = timezone.now()
    MarketplaceAction.objects.filter(pk=row.pk).update(attempts=row.attempts, attempted_at=row.attempted_at)
    return earlier


def _run_one(row: MarketplaceAction, clients: Clients) -> str:
    handler = HANDLERS.get(row.action)
    if handler is None:
        return _finish(row, "failed", error=f"no handler for action {row.action!r}")
    try:
        result = handler(row, clients)
    except ActionDone as done:
        return _finish(row, "done", result={"read_back": str(done) or "already applied"})
    except RateLimitedError as exc:
        return _finish(row, "retry", error=str(exc), delay=max(exc.retry_after or 0, 1.0) if exc.retry_after else None)
    except MissingDependencyError as exc:
        return _finish(row, "retry", error=str(exc))
    except (RejectedError, MappingError) as exc:
        return _finish(row, "failed", error=str(exc))
    except UpstreamError as exc:
        if exc.retryable:
            return _finish(row, "retry", error=str(exc))
        return _finish(row, "failed", error=str(exc))
    return _finish(row, "done", result=result or {})


# ------------------------------------------------------------------------------------------------
# Ozon
# ------------------------------------------------------------------------------------------------
def _ozon_products(order: Order) -> list[dict]:
    products = []
    for line in order.lines.filter(flagged=False).order_by("position"):
        if not str(line.external_sku).isdigit():
            raise MappingError(f"line {line.sku} has no Ozon SKU to ship it by")
        products.append({"product_id": int(line.external_sku), "quantity": int(line.quantity)})
    if not products:
        raise MappingError("nothing to ship")
    return products


def ozon_ship(row: MarketplaceAction, clients: Clients) -> dict:
    from integrations.ozon.orders import SHIPPED_OR_LATER, error_names

    client = clients.get("ozon")
    number = row.order.source_order_id
    if _attempt(row):
        posting = client.posting_get(number)
        if posting and posting.get("status") in SHIPPED_OR_LATER:
            raise ActionDone(f"posting is {posting.get('status')}")
    try:
        result = client.ship(number, _ozon_products(row.order))
    except RejectedError as exc:
        if "POSTING_ALREADY_SHIPPED" in error_names(exc):
            raise ActionDone("POSTING_ALREADY_SHIPPED") from None
        raise
    return {"postings": result}


def ozon_cancel(row: MarketplaceAction, clients: Clients) -> dict:
    from integrations.ozon.orders import error_names

    client = clients.get("ozon")
    number = row.order.source_order_id
    if _attempt(row):
        posting = client.posting_get(number)
        if posting and str(posting.get("status") or "").startswith("cancelled"):
            raise ActionDone("posting is cancelled")
    try:
        client.cancel(number)
    except RejectedError as exc:
        if "POSTING_ALREADY_CANCELLED" in error_names(exc):
            raise ActionDone("POSTING_ALREADY_CANCELLED") from None
        raise
    return {"cancelled": True}


# ------------------------------------------------------------------------------------------------
# Wildberries: supply create / add / deliver, cancel
# ------------------------------------------------------------------------------------------------
def _wb_task(row: MarketplaceAction) -> int:
    try:
        return int(row.order.source_order_id)
    except ValueError:
        raise MappingError(f"not a Wildberries task id: {row.order.source_order_id!r}") from None


def _wb_status(client, task_id: int) -> dict:
    return client.orders_status([task_id]).get(task_id) or {}


def _wb_supply(client, order: Order) -> WbSupply:
    """The open supply for this task's warehouse and cargo type, opened once: our deterministic
    name is looked up among WB's open supplies before a create (a lost answer does not open a
    second one)."""
    data = getattr(getattr(order, "channel_order", None), "data", None) or {}
    warehouse = str(data.get("warehouse_id") or settings.WILDBERRIES.get("WAREHOUSE_ID") or "")
    cargo = int(data.get("cargo_type") or 1)
    day = timezone.localdate().isoformat()
    name = f"SyncSite {day} wh{warehouse or '-'} c{cargo}"
    supply, _ = WbSupply.objects.get_or_create(name=name, defaults={"warehouse_id": warehouse, "cargo_type": cargo})
    if supply.done:
        name = f"{name} #{WbSupply.objects.filter(name__startswith=name).count() + 1}"
        supply, _ = WbSupply.objects.get_or_create(name=name, defaults={"warehouse_id": warehouse, "cargo_type": cargo})
    if not supply.supply_id:
        found = next((s for s in client.supplies_open() if s.get("name") == supply.name), None)
        supply_id = str(found.get("id")) if found else client.supply_create(supply.name)
        if not supply_id:
            raise MappingError("Wildberries answered a supply create without an id")
        WbSupply.objects.filter(pk=supply.pk).update(supply_id=supply_id)
        supply.supply_id = supply_id
    return supply


def _wb_add(client, row: MarketplaceAction, task_id: int) -> WbSupply | None:
    status = _wb_status(client, task_id)
    if status.get("supplierStatus") in ("confirm", "complete"):
        return None
    if status.get("supplierStatus") in ("cancel", "cancel_carrier"):
        raise RejectedError(f"Wildberries task {task_id} is cancelled ({status.get('wbStatus')})", system="wildberries")
    supply = _wb_supply(client, row.order)
    client.supply_add(supply.supply_id, [task_id])
    _remember_supply(row.order, supply.supply_id)
    return supply


def _remember_supply(order: Order, supply_id: str) -> None:
    channel_order = ChannelOrder.objects.filter(order=order).first()
    if channel_order is not None:
        channel_order.data = {**(channel_order.data or {}), "supply_id": supply_id}
        channel_order.save(update_fields=["data", "pulled_at"])


def wb_supply_add(row: MarketplaceAction, clients: Clients) -> dict:
    client = clients.get("wb")
    task_id = _wb_task(row)
    _attempt(row)
    supply = _wb_add(client, row, task_id)
    if supply is None:
        raise ActionDone("task already in a supply")
    return {"supply": supply.supply_id}


def _run_wb_adds(rows: list[MarketplaceAction], clients: Clients) -> dict[str, int]:
    """Supply additions in batches: one status read per 1,000 tasks, one PATCH per 100 tasks of
    one supply (tasks already confirmed are read back as done)."""
    counts: dict[str, int] = {}

    def note(outcome: str) -> None:
        counts[outcome] = counts.get(outcome, 0) + 1

    if not rows:
        return counts
    client = clients.get("wb")
    by_task: dict[int, MarketplaceAction] = {}
    for row in rows:
        _attempt(row)
        try:
            by_task[_wb_task(row)] = row
        except MappingError as exc:
            note(_finish(row, "failed", error=str(exc)))
    try:
        statuses = client.orders_status(list(by_task))
    except UpstreamError as exc:
        for row in by_task.values():
            note(_finish(row, "retry" if exc.retryable else "failed", error=str(exc),
                         delay=getattr(exc, "retry_after", None)))
        return counts
    groups: dict[tuple, list[int]] = {}
    for task_id, row in by_task.items():
        supplier = (statuses.get(task_id) or {}).get("supplierStatus")
        if supplier in ("confirm", "complete"):
            note(_finish(row, "done", result={"read_back": f"task is {supplier}"}))
        elif supplier in ("cancel", "cancel_carrier"):
            note(_finish(row, "failed", error=f"Wildberries task {task_id} is cancelled"))
        else:
            data = ChannelOrder.objects.filter(order=row.order).values_list("data", flat=True).first() or {}
            groups.setdefault((str(data.get("warehouse_id") or ""), int(data.get("cargo_type") or 1)), []).append(task_id)
    for task_ids in groups.values():
        try:
            supply = _wb_supply(client, by_task[task_ids[0]].order)
            for start in range(0, len(task_ids), 100):
                chunk = task_ids[start:start + 100]
                client.supply_add(supply.supply_id, chunk)
                for task_id in chunk:
                    _remember_supply(by_task[task_id].order, supply.supply_id)
                    note(_finish(by_task[task_id], "done", result={"supply": supply.supply_id}))
        except UpstreamError as exc:
            for task_id in task_ids:
                row = by_task[task_id]
                if MarketplaceAction.objects.filter(pk=row.pk, state=ActionState.PENDING).exists():
                    note(_finish(row, "retry" if exc.retryable else "failed", error=str(exc),
                                 delay=getattr(exc, "retry_after", None)))
        except MappingError as exc:
            for task_id in task_ids:
                note(_finish(by_task[task_id], "failed", error=str(exc)))
    return counts


def wb_deliver(row: MarketplaceAction, clients: Clients) -> dict:
    client = clients.get("wb")
    task_id = _wb_task(row)
    _attempt(row)
    status = _wb_status(client, task_id)
    if status.get("supplierStatus") == "complete":
        raise ActionDone("task is complete (supply handed over)")
    if status.get("supplierStatus") != "confirm":
        _wb_add(client, row, task_id)
    data = ChannelOrder.objects.filter(order=row.order).values_list("data", flat=True).first() or {}
    supply_id = data.get("supply_id")
    if not supply_id:
        raise MappingError("the task's supply is not known: add it to a supply first")
    client.supply_deliver(supply_id)
    WbSupply.objects.filter(supply_id=supply_id).update(done=True)
    return {"supply": supply_id, "delivered": True}


def wb_cancel(row: MarketplaceAction, clients: Clients) -> dict:
    client = clients.get("wb")
    task_id = _wb_task(row)
    if _attempt(row):
        if _wb_status(client, task_id).get("supplierStatus") in ("cancel", "cancel_carrier"):
            raise ActionDone("task is cancelled")
    client.order_cancel(task_id)
    return {"cancelled": True}


# ------------------------------------------------------------------------------------------------
# Yandex Market: status updates in batches of 30 per campaign
# ------------------------------------------------------------------------------------------------
YM_TARGET = {Action.YM_READY_TO_SHIP: {"status": "PROCESSING", "substatus": "READY_TO_SHIP"},
             Action.YM_CANCEL: {"status": "CANCELLED", "substatus": "SHOP_FAILED"}}


def _ym_reached(action: str, row: dict) -> bool:
    status, substatus = row.get("status"), row.get("substatus")
    if action == Action.YM_CANCEL:
        return status == "CANCELLED"
    return (status == "PROCESSING" and substatus in ("READY_TO_SHIP", "SHIPPED")) or status in (
        "DELIVERY", "PICKUP", "DELIVERED")


def _run_ym(rows: list[MarketplaceAction], clients: Clients) -> dict[str, int]:
    counts: dict[str, int] = {}

    def note(outcome: str) -> None:
        counts[outcome] = counts.get(outcome, 0) + 1

    if not rows:
        return counts
    client = clients.get("ym")
    by_campaign: dict[str, list[MarketplaceAction]] = {}
    for row in rows:
        data = ChannelOrder.objects.filter(order=row.order).values_list("data", flat=True).first() or {}
        campaign = str(data.get("campaign_id") or client.conf.get("CAMPAIGN_ID") or "")
        by_campaign.setdefault(campaign, []).append(row)
    for campaign, group in by_campaign.items():
        for start in range(0, len(group), YM_BATCH):
            batch = group[start:start + YM_BATCH]
            if not campaign:
                for row in batch:
                    note(_finish(row, "failed", error="no Yandex Market campaign: set YM_CAMPAIGN_ID"))
                continue
            try:
                retried = [row for row in batch if _attempt(row)]
                if retried:
                    # An earlier batch may have reached Market before its answer was lost.
                    now = client.orders_by_id([r.order.source_order_id for r in retried])
                    for row in retried:
                        current = now.get(row.order.source_order_id)
                        if current and _ym_reached(row.action, current):
                            note(_finish(row, "done", result={"read_back": current.get("status")}))
                            batch = [r for r in batch if r.pk != row.pk]
                if not batch:
                    continue
                answer = client.status_update(campaign, [{"id": int(r.order.source_order_id)
                                                          if r.order.source_order_id.isdigit() else r.order.source_order_id,
                                                          **YM_TARGET[r.action]} for r in batch])
            except RateLimitedError as exc:
                for row in batch:
                    note(_finish(row, "retry", error=str(exc), delay=exc.retry_after))
                continue
            except UpstreamError as exc:
                for row in batch:
                    note(_finish(row, "retry" if exc.retryable else "failed", error=str(exc)))
                continue
            for row in batch:
                got = answer.get(str(row.order.source_order_id))
                if got is None:
                    note(_finish(row, "retry", error="Yandex Market did not answer for this order"))
                elif got.get("updateStatus") == "OK":
                    note(_finish(row, "done", result=got))
                else:
                    note(_finish(row, "failed", error=f"Yandex Market: {got.get('errorDetails') or got}"))
    return counts


# ------------------------------------------------------------------------------------------------
# MoySklad: the customerorder follows a marketplace-side cancellation
# ------------------------------------------------------------------------------------------------
def moysklad_state(row: MarketplaceAction, clients: Clients) -> dict:
    binding = OrderBinding.objects.filter(system=System.MOYSKLAD, order=row.order).exclude(external_id="").first()
    if binding is None:
        raise MissingDependencyError("the order is not in MoySklad yet (waiting for its export)")
    state_id = (OrderStateMapping.objects.filter(system=System.MOYSKLAD, status=row.to_status)
                .order_by("-seeded", "id").values_list("state_id", flat=True).first())
    if not state_id:
        raise MappingError(f"no MoySklad state is mapped to {row.to_status} (admin: order state mapping)")
    client = clients.get("moysklad")
    _attempt(row)
    body = {"state": client.meta("customerorder/metadata/states", state_id, "state")}
    client.request("PUT", f"/entity/customerorder/{binding.external_id}", json=body,
                   headers=client.write_headers(), retry=True)
    return {"state": state_id}


_CLIENT_OF = {Action.OZON_SHIP: "ozon", Action.OZON_CANCEL: "ozon", Action.WB_DELIVER: "wb", Action.WB_CANCEL: "wb",
              Action.MOYSKLAD_STATE: "moysklad"}

HANDLERS = {Action.OZON_SHIP: ozon_ship, Action.OZON_CANCEL: ozon_cancel, Action.WB_SUPPLY_ADD: wb_supply_add,
            Action.WB_DELIVER: wb_deliver, Action.WB_CANCEL: wb_cancel, Action.MOYSKLAD_STATE: moysklad_state}


# ------------------------------------------------------------------------------------------------
# Entry points
# ------------------------------------------------------------------------------------------------
def actions_flush(*, clients: Clients | None = None) -> dict[str, int]:
    """Plan, then run what is due (the task and the job call this)."""
    planned = actions_plan()
    counts = actions_run(clients=clients)
    if planned:
        counts["planned"] = planned
    return counts


_last_kick = 0.0
#: a burst of changes (a pull of many orders) sends one task a second at most from this process
KICK_EVERY = 1.0


def kick() -> None:
    """Run the outbox soon (after the current transaction commits). Never raises for a dead
    broker: the every-minute job catches up."""
    from syncsite import publish as publisher

    from .tasks import actions_flush_task

    def send() -> None:
        global _last_kick
        now = time.monotonic()
        if now - _last_kick < KICK_EVERY:
            return
        _last_kick = now
        publisher.publish(actions_flush_task, options={"countdown": KICK_EVERY})

    transaction.on_commit(send, robust=True)


def last_actions(order_ids: Iterable[int]) -> dict[int, MarketplaceAction]:
    """The latest action row per order (the admin's "last action" column)."""
    out: dict[int, MarketplaceAction] = {}
    for row in MarketplaceAction.objects.filter(order_id__in=list(order_ids)).exclude(
            state=ActionState.SKIPPED).order_by("id"):
        out[row.order_id] = row
    return out
