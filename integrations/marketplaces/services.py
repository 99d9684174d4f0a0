"""Marketplace stock: decide what each marketplace should show, send only what differs from what
it last accepted, in batches as full as its API allows, and record per offer what happened.

Work is found by a dirty-join, never by domain code calling a channel: a ChannelOffer is looked
at when a stock row of its offer, the offer itself, the channel's settings or a kick
(`integrations.marketplaces.kick`) is newer than its `synced_at`, or it is still pending.
Looking at an offer is cheap (no call); only a figure that differs is sent. A full run sends
every offer. Ozon's "one update per pair in 30 s" is kept by deferring such an offer to a
follow-up push instead of sending it to be refused."""
from __future__ import annotations

import logging
import threading
import time
from collections import defaultdict, deque
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal

from django.conf import settings
from django.db.models import Exists, F, OuterRef, Q, QuerySet
from django.utils import timezone

from integrations.http.errors import (
    AuthError,
    NotFoundError,
    RateLimitedError,
    RejectedError,
    UpstreamError,
    UpstreamUnavailableError,
)
from integrations.models import Channel, ChannelOffer, ChannelWarehouse, StockAudit
from integrations.runs import JobContext
from stock.models import StockLevel
from stock.policies import AbsurdQuantityError, BufferPolicy, PublishPolicy
from stock.selectors import reserved_by_open_orders, stock_available_by_warehouse, warehouse_list_active_ids
from stock.services import stock_quantity_to_publish
from syncsite.bulk import save_all

from .base import StockChannel
from .types import LineResult, StockLine

log = logging.getLogger("syncsite.marketplaces")

#: ChannelOffers looked at per page; lines wait across pages until a batch is full
PAGE = 2000
#: full batches handed to the sender and not answered yet, at most: how far our page work (read,
#: compare, write) runs ahead of the calls. Enough that the sender always has the next batch
#: ready while the limiter lets it go; few enough that memory stays flat and a failure leaves
#: little prepared in vain
AHEAD = 4
#: the state the push owns; manager-edited fields (key, enabled, buffers) and kicked_at are
#: never written back, so an edit or a kick during a run is not lost
STATE_FIELDS = ["published_qty", "published", "pushed_at", "synced_qty", "synced", "synced_at", "status",
                "error", "zero_since"]


@dataclass
class ChannelReport:
    """What one channel's part of a run did (counted on the run; the bench reads calls/seconds)."""

    system: str
    status: str = "ok"  # ok, not_configured, disabled, unhealthy, failed
    message: str = ""
    looked_at: int = 0
    in_sync: int = 0
    sent: int = 0
    accepted: int = 0
    errors: int = 0
    pending: int = 0
    deferred: int = 0
    refused: int = 0
    calls: int = 0
    seconds: float = 0.0
    keys_seconds: float = 0.0
    #: of `seconds`, how long our side waited for the marketplace's answers (and the limiter):
    #: the rest is our own work - reading, comparing, writing - done while calls were in flight
    wait_seconds: float = 0.0
    #: how long the calls took, one after another, and of that how long the limiter held them
    send_seconds: float = 0.0
    limiter_seconds: float = 0.0
    retry_in: float | None = None
    failure: UpstreamError | None = field(default=None, repr=False)

    def want_retry(self, seconds: float) -> None:
        self.retry_in = seconds if self.retry_in is None else min(self.retry_in, seconds)

    def counts(self) -> dict[str, int]:
        keys = ("looked_at", "in_sync", "sent", "accepted", "errors", "pending", "deferred", "refused", "calls")
        out = {f"{self.system}_{k}": int(getattr(self, k)) for k in keys}
        out[f"{self.system}_ms"] = int(self.seconds * 1000)
        out[f"{self.system}_keys_ms"] = int(self.keys_seconds * 1000)
        out[f"{self.system}_wait_ms"] = int(self.wait_seconds * 1000)
        out[f"{self.system}_send_ms"] = int(self.send_seconds * 1000)
        out[f"{self.system}_limiter_ms"] = int(self.limiter_seconds * 1000)
        return out


# ------------------------------------------------------------------------------------------------
# Channel settings and health
# ------------------------------------------------------------------------------------------------
def channel_get(system: str) -> Channel:
    """The channel's settings row, created with the public defaults on first use."""
    channel, _ = Channel.objects.get_or_create(system=system)
    return channel


def channel_health_set(*, channel: Channel, ok: bool, message: str = "") -> None:
    """Record whether the marketplace accepts us; only a change is written."""
    health = Channel.Health.OK if ok else Channel.Health.UNHEALTHY
    message = "" if ok else message[:2000]
    if channel.health == health and channel.health_message == message:
        return
    now = timezone.now()
    Channel.objects.filter(pk=channel.pk).update(health=health, health_message=message, health_changed_at=now)
    channel.health, channel.health_message, channel.health_changed_at = health, message, now
    if ok:
        log.info("%s.stock.healthy", channel.system)
    else:
        log.warning("%s.stock.unhealthy %s", channel.system, message)


def channel_policy(channel: Channel, adapter: StockChannel) -> PublishPolicy:
    return PublishPolicy(buffer=BufferPolicy(absolute=channel.buffer_absolute, percent=channel.buffer_percent),
                         cap=channel.cap, ceiling=adapter.ceiling,
                         sanity_max=settings.MARKETPLACES["SANITY_MAX"])


def channel_groups(channel: Channel, adapter: StockChannel) -> tuple[dict[str, frozenset[int]], list[str]]:
    """{marketplace warehouse id: our warehouses feeding it}, and what is wrong with the setup.
    The channel draws from the warehouses chosen in the admin (none chosen: every active one);
    each goes to its mapped marketplace warehouse, or else to the one configured in settings."""
    draws = set(channel.warehouses.values_list("pk", flat=True)) or warehouse_list_active_ids()
    mapped = dict(ChannelWarehouse.objects.filter(channel=channel).values_list("warehouse_id", "external_id"))
    default = adapter.default_warehouse()
    groups: dict[str, set[int]] = defaultdict(set)
    problems: list[str] = []
    unrouted = 0
    for warehouse_id in draws:
        target = (mapped.get(warehouse_id) or default or "").strip()
        if not target:
            unrouted += 1
            continue
        problem = adapter.warehouse_error(target)
        if problem:
            problems.append(problem)
            continue
        groups[target].add(warehouse_id)
    if unrouted:
        problems.append(f"{unrouted} of our warehouses have no marketplace warehouse: set "
                        f"{_setting_name(adapter)} or map them in the admin")
    return {k: frozenset(v) for k, v in groups.items()}, problems


def _setting_name(adapter: StockChannel) -> str:
    return {"OZON": "OZON_WAREHOUSE_ID", "WILDBERRIES": "WB_WAREHOUSE_ID",
            "YANDEX_MARKET": "YM_WAREHOUSE_ID"}.get(adapter.settings_name, "the warehouse id")


# ------------------------------------------------------------------------------------------------
# Finding work
# ------------------------------------------------------------------------------------------------
def channel_offers_to_check(channel: Channel, *, full: bool) -> QuerySet:
    """The dirty-join: offers whose stock, offer row, channel settings or kick is newer than the
    last reconciliation, never reconciled, or pending. A full run checks them all."""
    qs = ChannelOffer.objects.filter(channel=channel)
    if full:
        return qs
    newer_stock = StockLevel.objects.filter(offer_id=OuterRef("offer_id"), updated_at__gt=OuterRef("synced_at"))
    stale = (Q(synced_at__isnull=True) | Q(status=ChannelOffer.Status.PENDING) | Q(kicked_at__gt=F("synced_at"))
             | Q(offer__updated_at__gt=F("synced_at")) | Exists(newer_stock))
    if channel.settings_changed_at:
        stale |= Q(synced_at__lt=channel.settings_changed_at)
    return qs.filter(stale)


def statistics_refresh(*models_) -> list[str]:
    """PostgreSQL: ANALYZE the push's tables whose planner statistics are missing or stale
    (changed rows since the last ANALYZE above a fifth of the table), as autovacuum would if it
    keeps up - it may not, right after a first sync created 100,000 channel offers, or not at all
    where it is switched off. With stale statistics the planner believes a channel has a few
    hundred offers and answers each page's `channel = X AND id > last ORDER BY id LIMIT 2000` by
    reading, joining and sorting every remaining offer: the push goes quadratic (measured: 1.4 s
    a page at 100,000 offers, 40 ms once analyzed). ANALYZE samples a bounded number of rows.
    Returns the tables analyzed; nothing happens on other databases."""
    from django.db import connection

    if connection.vendor != "postgresql":
        return []
    tables = [m._meta.db_table for m in models_]
    with connection.cursor() as cursor:
        cursor.execute("SELECT relname, n_live_tup, n_mod_since_analyze, COALESCE(last_analyze, last_autoanalyze) "
                       "FROM pg_stat_user_tables WHERE relname = ANY(%s)", [tables])
        stale = [name for name, live, changed, analyzed_at in cursor.fetchall()
                 if analyzed_at is None or changed > max(1_000, live // 5)]
        for name in stale:
            cursor.execute(f"ANALYZE {connection.ops.quote_name(name)}")
    return stale


def _pages(qs: QuerySet):
    last = 0
    while True:
        page = list(qs.filter(pk__gt=last).select_related("offer").order_by("pk")[:PAGE])
        if not page:
            return
        yield page
        last = page[-1].pk


# ------------------------------------------------------------------------------------------------
# Comparing figures
# ------------------------------------------------------------------------------------------------
def _normalised(figures: dict, groups: dict[str, frozenset[int]]) -> dict[str, int]:
    """A warehouse we no longer publish to only matters while it still shows stock."""
    return {str(k): int(v) for k, v in figures.items() if str(k) in groups or int(v) != 0}


def _desired(co: ChannelOffer, raw: dict[str, int], groups) -> dict[str, int]:
    """What to send: the computed figures, plus 0 for a warehouse we stopped using that still
    shows stock."""
    desired = dict(raw)
    for key, qty in (co.synced or {}).items():
        if key not in groups and int(qty) != 0:
            desired[key] = 0
    return desired


def _in_sync(desired: dict[str, int], co: ChannelOffer, groups) -> bool:
    return _normalised(desired, groups) == _normalised(co.synced or {}, groups)


def _track_zero(co: ChannelOffer, desired: dict[str, int], at: datetime) -> None:
    """Alert bookkeeping: since when the marketplace shows 0 while we want to show stock."""
    if sum(desired.values()) > 0 and co.synced_qty == 0:
        co.zero_since = co.zero_since or at
    else:
        co.zero_since = None


# ------------------------------------------------------------------------------------------------
# Sending
# ------------------------------------------------------------------------------------------------
@dataclass
class _Entry:
    co: ChannelOffer
    desired: dict[str, int]
    read_at: datetime
    waiting: int
    results: list[LineResult] = field(default_factory=list)


class _NotSent(Exception):
    """A batch queued behind one that stopped the channel: never sent."""


class _Sender:
    """Sends the batches one after another in a thread of its own, so that our work on the next
    page (reading it, comparing figures, writing the last answers) overlaps the call in flight
    and the limiter's waits, instead of adding to them. Calls stay in order, one at a time,
    through the same client and limiter as before. Only HTTP happens in that thread (an
    adapter's push is endpoints and mapping); everything touching the database stays in the
    caller's. After a call fails with an error that stops the channel (credentials, rate limit,
    outage), the batches queued behind it are not sent."""

    def __init__(self, adapter: StockChannel, client, system: str):
        self.adapter, self.client = adapter, client
        self.pending: deque[tuple[list[StockLine], Future]] = deque()
        self.busy = 0.0  # seconds spent in calls (written by the sender thread only)
        self._stopped = threading.Event()
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"stock-push-{system}")

    def submit(self, batch: list[StockLine]) -> None:
        self.pending.append((batch, self._pool.submit(self._send, batch)))

    def _send(self, batch: list[StockLine]) -> tuple[datetime, list[LineResult], bool]:
        """(when sent, a result per line, whether the marketplace took the call)."""
        if self._stopped.is_set():
            raise _NotSent()
        at = timezone.now()
        started = time.monotonic()
        try:
            return at, self.adapter.push(self.client, batch, at=at), True
        except (RejectedError, NotFoundError) as exc:
            # The whole batch was refused: our request (or a setting such as the warehouse id) is
            # wrong. Each line carries the error; the next batch still goes.
            return at, [LineResult.failed(line, f"{exc}") for line in batch], False
        except BaseException:
            self._stopped.set()
            raise
        finally:
            self.busy += time.monotonic() - started

    def stop(self) -> None:
        self._stopped.set()

    def close(self) -> None:
        """No more sends; wait for the one in flight (the client is closed after this)."""
        self._stopped.set()
        self._pool.shutdown(wait=True, cancel_futures=True)


class _Batcher:
    """Collects lines across pages and sends them in full batches (the last one may be short):
    calls per channel = ceil(lines / batch maximum), per batch group. Batches go to the sender
    as soon as they are full; their answers are recorded here, in the order sent."""

    def __init__(self, *, adapter: StockChannel, client, channel: Channel, ctx: JobContext,
                 report: ChannelReport, groups, source: str):
        self.adapter, self.client, self.channel, self.ctx = adapter, client, channel, ctx
        self.report, self.groups, self.source = report, groups, source
        self.queues: dict[str, list[StockLine]] = defaultdict(list)
        self.entries: dict[int, _Entry] = {}
        self.to_write: list[ChannelOffer] = []
        self.audits: list[StockAudit] = []
        self.sender = _Sender(adapter, client, channel.system)

    def add(self, co: ChannelOffer, desired: dict[str, int], read_at: datetime) -> None:
        lines = [StockLine(co.pk, co.external_key, wh, qty) for wh, qty in sorted(desired.items())]
        self.entries[co.pk] = _Entry(co, desired, read_at, len(lines))
        for line in lines:
            self.queues[self.adapter.batch_group(line)].append(line)

    def touch(self, co: ChannelOffer) -> None:
        """A row whose state changed without a call (in sync, refused, error kept)."""
        self.to_write.append(co)

    def flush(self, *, final: bool) -> None:
        """Hand full batches (with `final`, every line left) to the sender, record the answers
        that are in - waiting only when the sender is AHEAD batches behind, or with `final` for
        all of them - and write what changed."""
        size = self.adapter.batch_max
        for queue in self.queues.values():
            while queue and (len(queue) >= size or final):
                batch, queue[:] = queue[:size], queue[size:]
                self.report.sent += len(batch)
                self.sender.submit(batch)
        self.collect(keep=0 if final else AHEAD)
        self.write()

    def collect(self, *, keep: int) -> None:
        """Record answered batches in the order sent; wait for the oldest while more than `keep`
        are outstanding. A channel-stopping error of a call is raised here."""
        pending = self.sender.pending
        while pending:
            batch, future = pending[0]
            if len(pending) <= keep and not future.done():
                return
            pending.popleft()
            started = time.monotonic()
            at, results, took = future.result()
            self.report.wait_seconds += time.monotonic() - started
            self._record(batch, results, at, took=took)

    def _record(self, batch: list[StockLine], results: list[LineResult], at: datetime, *, took: bool) -> None:
        if took:
            channel_health_set(channel=self.channel, ok=True)
        seen = set()
        for result in results:
            entry = self.entries.get(result.ref)
            if entry is None or (result.ref, result.warehouse) in seen:
                continue
            seen.add((result.ref, result.warehouse))
            entry.results.append(result)
            entry.waiting -= 1
            if entry.waiting == 0:
                self._finish(entry, at)
        for line in batch:  # an adapter that forgot a line: never assume it applied
            if (line.ref, line.warehouse) not in seen and line.ref in self.entries:
                entry = self.entries[line.ref]
                entry.results.append(LineResult.failed(line, "no answer for this item", retry_later=True))
                entry.waiting -= 1
                if entry.waiting == 0:
                    self._finish(entry, at)

    def _finish(self, entry: _Entry, at: datetime) -> None:
        co, report = entry.co, self.report
        self.entries.pop(co.pk, None)
        accepted = {r.warehouse: entry.desired[r.warehouse] for r in entry.results if r.ok}
        hard = [r for r in entry.results if not r.ok and not r.retry_later]
        later = [r for r in entry.results if not r.ok and r.retry_later]
        old = co.synced_qty
        synced = dict(co.synced or {})
        synced.update(accepted)
        synced = {k: v for k, v in synced.items() if k in self.groups or v != 0}
        co.synced = synced
        co.synced_qty = sum(synced.values()) if synced else None
        co.published, co.published_qty, co.pushed_at = dict(entry.desired), sum(entry.desired.values()), at
        report.accepted += len(accepted)
        if hard:
            co.status, co.synced_at = ChannelOffer.Status.ERROR, entry.read_at
            co.error = "; ".join(dict.fromkeys(r.error for r in hard + later))[:2000]
            report.errors += 1
            self.ctx.error(f"{self.channel.system}:{co.offer.sku}", co.error)
        elif later:
            co.status = ChannelOffer.Status.PENDING
            co.error = "; ".join(dict.fromkeys(r.error for r in later))[:2000]
            report.pending += 1
            report.want_retry(max(self.adapter.pair_interval, settings.MARKETPLACES["DEBOUNCE_SECONDS"]))
        else:
            co.status, co.error, co.synced_at = ChannelOffer.Status.OK, "", entry.read_at
        _track_zero(co, entry.desired, entry.read_at)
        if accepted and co.synced_qty != old:
            self.audits.append(StockAudit(channel_offer=co, old=old, new=co.synced_qty or 0, source=self.source,
                                          run=self.ctx.run, at=at))
        self.to_write.append(co)

    def abort(self, reason: str) -> None:
        """The channel stops (credentials, rate limit, outage): answers to calls that went out
        before the failure are recorded; whatever was not answered stays pending and is looked
        at again on the next run."""
        self.sender.stop()
        while self.sender.pending:
            batch, future = self.sender.pending.popleft()
            try:
                at, results, took = future.result()
            except Exception:  # noqa: BLE001 - not sent, or the failure itself: stays pending
                continue
            self._record(batch, results, at, took=took)
        for queue in self.queues.values():
            queue.clear()
        for entry in list(self.entries.values()):
            co = entry.co
            co.status, co.error = ChannelOffer.Status.PENDING, f"not sent: {reason}"[:2000]
            self.report.pending += 1
            self.to_write.append(co)
        self.entries.clear()
        self.write()

    def write(self) -> None:
        if self.to_write:
            save_all(ChannelOffer, self.to_write, fields=STATE_FIELDS)
            self.to_write = []
        if self.audits:
            StockAudit.objects.bulk_create(self.audits, batch_size=1000)
            self.audits = []


# ------------------------------------------------------------------------------------------------
# One channel
# ------------------------------------------------------------------------------------------------
def channel_stock_push(*, adapter: StockChannel, ctx: JobContext, full: bool, source: str) -> ChannelReport:
    """Bring one marketplace in line with what we can sell. Credentials refused -> the channel
    is marked unhealthy and this returns (other channels carry on); rate limit or outage after
    the client's own waits -> unsent offers stay pending and `report.failure` is set for the job
    to raise once every channel had its turn."""
    report = ChannelReport(adapter.system)
    if not adapter.configured():
        report.status, report.message = "not_configured", "not configured: no credentials"
        return report
    channel = channel_get(adapter.system)
    if not channel.enabled:
        report.status, report.message = "disabled", "switched off in the admin"
        return report
    groups, problems = channel_groups(channel, adapter)
    if not groups:
        message = "; ".join(problems) or "no marketplace warehouse to publish to"
        channel_health_set(channel=channel, ok=False, message=message)
        report.status, report.message = "unhealthy", message
        ctx.error(adapter.system, message)
        return report
    for problem in problems:
        ctx.error(adapter.system, problem)
    policy = channel_policy(channel, adapter)
    client = None
    limiter = None
    limiter_before = 0.0
    batcher = None
    started = time.monotonic()
    try:
        adapter.offers_sync(channel, ctx, full=full)
        report.keys_seconds = time.monotonic() - started
        started = time.monotonic()  # `seconds` is the push alone: what the rate-limit bound is about
        statistics_refresh(ChannelOffer, StockLevel)
        client = adapter.open()
        limiter = getattr(client, "limiter", None)
        limiter_before = limiter.stats.waited_seconds if limiter is not None else 0.0
        batcher = _Batcher(adapter=adapter, client=client, channel=channel, ctx=ctx, report=report,
                           groups=groups, source=source)
        for page in _pages(channel_offers_to_check(channel, full=full)):
            _check_page(page, adapter=adapter, groups=groups, policy=policy, full=full, batcher=batcher,
                        report=report)
            batcher.flush(final=False)
            ctx.advance(len(page))
        batcher.flush(final=True)
    except AuthError as exc:
        channel_health_set(channel=channel, ok=False, message=str(exc))
        report.status, report.message = "unhealthy", str(exc)
        ctx.error(adapter.system, str(exc))
        if batcher:
            batcher.abort("the marketplace refused our credentials")
    except (RateLimitedError, UpstreamUnavailableError) as exc:
        report.status, report.message, report.failure = "failed", str(exc), exc
        retry = getattr(exc, "retry_after", None)
        report.want_retry(max(float(retry or 0), 30.0))
        ctx.error(adapter.system, str(exc))
        if batcher:
            batcher.abort(str(exc))
    finally:
        if batcher is not None:
            batcher.sender.close()
            report.send_seconds = batcher.sender.busy
        if client is not None:
            report.calls = client.stats.requests
            if limiter is not None:
                report.limiter_seconds = limiter.stats.waited_seconds - limiter_before
            client.close()
        report.seconds = time.monotonic() - started
    log.info("%s.stock.pushed looked_at=%s sent=%s calls=%s errors=%s pending=%s deferred=%s %.1fs",
             adapter.system, report.looked_at, report.sent, report.calls, report.errors, report.pending,
             report.deferred, report.seconds)
    return report


def _check_page(page: list[ChannelOffer], *, adapter: StockChannel, groups, policy: PublishPolicy, full: bool,
                batcher: _Batcher, report: ChannelReport) -> None:
    read_at = timezone.now()  # before reading: a change after this moment is newer than synced_at
    offer_ids = [co.offer_id for co in page]
    available = stock_available_by_warehouse(offer_ids=offer_ids)
    reserved = reserved_by_open_orders(offer_ids)
    now = timezone.now()
    for co in page:
        report.looked_at += 1
        enabled = co.enabled and not co.offer.archived
        offer_policy = PublishPolicy(
            buffer=policy.buffer.overridden(absolute=co.buffer_absolute, percent=co.buffer_percent),
            cap=policy.cap, ceiling=policy.ceiling, sanity_max=policy.sanity_max)
        try:
            raw = stock_quantity_to_publish(available_by_warehouse=available.get(co.offer_id, {}), groups=groups,
                                            policy=offer_policy, reserved=reserved.get(co.offer_id, Decimal(0)),
                                            enabled=enabled)
        except AbsurdQuantityError as exc:
            _refuse(co, f"not published: {exc}", read_at, batcher, report)
            continue
        key_problem = adapter.key_error(co.external_key)
        if key_problem:
            _refuse(co, key_problem, read_at, batcher, report)
            continue
        desired = _desired(co, raw, groups)
        in_sync = _in_sync(desired, co, groups)
        recently = (adapter.pair_interval and co.pushed_at
                    and (now - co.pushed_at).total_seconds() < adapter.pair_interval)
        if (in_sync and (not full or recently)) or (
                not full and co.status == ChannelOffer.Status.ERROR and co.published == desired):
            # Nothing to send: equal to what the marketplace holds, or the same figure it already
            # refused (sent again when the figure, the key or the setup changes, or on --full).
            if in_sync:
                co.status, co.error = ChannelOffer.Status.OK, ""
            co.synced_at = read_at
            _track_zero(co, desired, read_at)
            batcher.touch(co)
            report.in_sync += 1
            continue
        if recently:
            report.deferred += 1
            report.want_retry(adapter.pair_interval - (now - co.pushed_at).total_seconds() + 0.5)
            continue
        batcher.add(co, desired, read_at)


def _refuse(co: ChannelOffer, reason: str, read_at: datetime, batcher: _Batcher, report: ChannelReport) -> None:
    """A figure or key that must not leave the system: recorded on the offer, nothing sent."""
    changed = co.status != ChannelOffer.Status.ERROR or co.error != reason
    co.status, co.error, co.synced_at = ChannelOffer.Status.ERROR, reason[:2000], read_at
    batcher.touch(co)
    report.refused += 1
    if changed:
        batcher.ctx.error(f"{batcher.channel.system}:{co.offer.sku}", reason)


# ------------------------------------------------------------------------------------------------
# Edits from the admin (no upstream calls: they mark rows and schedule the push)
# ------------------------------------------------------------------------------------------------
def channel_settings_changed(*, channel: Channel) -> None:
    """Buffers, cap, warehouses or the warehouse map changed: every offer of the channel is
    re-checked by the next push (only figures that now differ are sent), scheduled right away."""
    now = timezone.now()
    Channel.objects.filter(pk=channel.pk).update(settings_changed_at=now)
    channel.settings_changed_at = now
    from .debounce import schedule_push

    schedule_push()


def channel_offers_push_now(*, ids: list[int]) -> int:
    """"Push now" for chosen offers: sent within seconds even if we believe the marketplace
    already shows the figure (what it accepted is forgotten, so the comparison cannot skip it)."""
    now = timezone.now()
    n = ChannelOffer.objects.filter(pk__in=ids).update(kicked_at=now, status=ChannelOffer.Status.PENDING,
                                                         synced={})
    from .debounce import schedule_push

    schedule_push(countdown=0)
    return n


def channel_offer_edited(*, channel_offer: ChannelOffer, key_changed: bool) -> None:
    """A manager changed an offer's key, switch or buffer: a typed key is kept from now on
    (matching never overwrites it) and the offer goes out with the next push."""
    updates = {"kicked_at": timezone.now(), "status": ChannelOffer.Status.PENDING}
    if key_changed:
        updates["key_source"] = ChannelOffer.KeySource.MANUAL
    ChannelOffer.objects.filter(pk=channel_offer.pk).update(**updates)
    for name, value in updates.items():
        setattr(channel_offer, name, value)
    from .debounce import schedule_push

    schedule_push()
