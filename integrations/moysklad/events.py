"""MoySklad webhook events: store, process, sweep.

The webhook view only parses and calls `events_store` (one INSERT per notification, no upstream
calls). Processing runs in a worker, a batch at a time (one notification, or what the sweeper
re-signals):

* Claim. `events_process` takes the batch's rows on a short lease (`syncsite.leases`: one
  conditional UPDATE, renewed by a heartbeat while the batch runs), so a signal delivered twice is
  processed once, and rows whose worker died are free again within one lease.
* Every event is a hint, never an instruction: it only says "look at this document". Its link is
  checked against MOYSKLAD_BASE_URL (`hrefs.entity_ref`: scheme, host, port and path, parsed, no
  tricks) and only the id is taken from it; what MoySklad answers for that id decides what we do.
  A DELETE is acted on only when MoySklad confirms it: the id is gone (deleted: we unpublish, never
  delete) or comes back archived; a document that still exists un-archived is imported instead.
* Coalesced and fetched in bulk. Events are grouped by the document they name, so a thousand
  events about fifty products cost one request, and the documents are read a hundred ids per
  request (`filter=id=…;id=…`, well inside MoySklad's 8 KB URL limit) instead of a GET per event:
  a full notification of 1,000 events costs about 10 requests, not 1,000. Shipments lead to their
  orders, which are read together with the orders named directly; an order that is not ours is
  skipped without a request; the products of new variants are read before the variants.
* Capped. One notification may cause at most `MOYSKLAD_EVENT_REQUESTS_MAX` MoySklad requests
  (25 by default; a genuine notification never needs more than about 25). Events past the cap are
  marked ignored with the reason and left to the polls that cover them anyway: `moysklad-catalog`
  (every 10 minutes; deletions at the nightly full run) and `moysklad-order-statuses` (every 5).
  A stock notification runs the `moysklad-stock` job (its own lock and budget), outside the cap.
* Transport trouble (MoySklad down, 429) puts the rows back to `received`; the task retries it and
  the sweeper finds it anyway. A data problem marks the event `failed` with the error; an admin
  action re-queues it.
* `events_sweep` (beat, every minute) re-signals rows left `received` for over a minute (the
  broker was down, or the queue lost the task) and frees rows whose worker stopped renewing its
  lease (killed); when a lease is due to run out before the next minute, it looks again right then,
  so a dead worker's events are taken up again within about a minute. Redis can lose a task when
  a worker dies: the row is the record of work, the queue only a signal.
"""
from __future__ import annotations

import hashlib
import logging
from collections import defaultdict
from contextlib import nullcontext
from dataclasses import dataclass, field
from datetime import timedelta
from functools import lru_cache
from urllib.parse import parse_qs, urlsplit

from django.conf import settings
from django.db import InterfaceError, OperationalError, connections, router, transaction
from django.db.models import Case, F, Min, Q, TextField, Value, When
from django.db.models.functions import Now
from django.utils import timezone

from catalog.models import Offer
from catalog.services import catalog_archive
from integrations.http.errors import (
    MappingError,
    MissingDependencyError,
    NotConfigured,
    RateLimitedError,
    UpstreamError,
    UpstreamUnavailableError,
)
from integrations.models import InboundEvent, OfferBinding, OrderBinding, ProductBinding, System
from syncsite import publish as publisher
from syncsite.leases import Lease

try:   # our own infrastructure failing mid-batch: the database connection, Redis (the shared budgets)
    from psycopg import InterfaceError as _PgInterfaceError
    from psycopg import OperationalError as _PgOperationalError
except ImportError:   # SQLite only
    _PgInterfaceError = _PgOperationalError = OperationalError
from redis.exceptions import RedisError

#: Errors that say our database or Redis went away, not that the events are bad: the batch is
#: retried (or, when the database itself is gone, its lease runs out and the sweeper frees it).
INFRASTRUCTURE_ERRORS = (OperationalError, InterfaceError, _PgOperationalError, _PgInterfaceError, RedisError)

from . import jobs as catalog_jobs
from .client import MoySkladClient, is_configured
from .hrefs import entity_ref, href_relative
from .mapping import id_from_href
from .orders import StateMapper, customerorder_import_record

log = logging.getLogger("syncsite.moysklad.events")
MS = System.MOYSKLAD
Status = InboundEvent.Status

MAX_ATTEMPTS = 8
SWEEP_AFTER = timedelta(minutes=1)       # a `received` row older than this lost its signal
SWEEP_EVERY = timedelta(minutes=1)       # the beat schedule of moysklad-events-sweep
# The account's sale price type changes rarely: webhook batches reuse a reading this fresh.
PRICE_TYPE_MAX_AGE = 600
STOCK_EVENT = ("webhookstock", "STOCK")
ID_CHUNK = 100                           # ids per `filter=id=…;id=…` request (44 URL bytes each)
INSERT_CHUNK = 1000                      # events per INSERT (a notification has at most 1,000)
#: seconds the webhook's signals gather into one message: each message costs the web ~1 ms of CPU,
#: so at 300 notifications/s 0.5 s costs ~8 % less CPU per request than 0.1 s (alternating runs);
#: the worker hears of an event at most this much later
SIGNAL_GATHER = 0.5
#: what each kind of event may ask for; anything else is ignored
HANDLED: dict[str, frozenset[str]] = {
    "product": frozenset({"CREATE", "UPDATE", "DELETE"}),
    "variant": frozenset({"CREATE", "UPDATE", "DELETE"}),
    "customerorder": frozenset({"CREATE", "UPDATE"}),  # created in MoySklad: ignored unless ours
    "demand": frozenset({"CREATE", "UPDATE"}),
    STOCK_EVENT[0]: frozenset({STOCK_EVENT[1]}),
}
#: what `moysklad_webhooks register` subscribes to (stock goes to webhookstock). Not customerorder
#: CREATE: our own creates are suppressed by DisableByPrefix, and orders made in MoySklad are not ours.
SUBSCRIPTIONS: tuple[tuple[str, str], ...] = (
    ("customerorder", "UPDATE"), ("demand", "CREATE"), ("demand", "UPDATE"),
    ("product", "CREATE"), ("product", "UPDATE"), ("product", "DELETE"),
    ("variant", "CREATE"), ("variant", "UPDATE"), ("variant", "DELETE"),
)


def requests_cap() -> int:
    return max(1, int(getattr(settings, "MOYSKLAD_EVENT_REQUESTS_MAX", 25)))


# ------------------------------------------------------------------------------------------------
# Parsing and storing (the web request)
# ------------------------------------------------------------------------------------------------
class InvalidNotification(ValueError):
    """The body is not a MoySklad notification: answer 400, store nothing."""


@dataclass(frozen=True)
class ParsedEvent:
    dedup_key: str
    request_id: str
    entity_type: str
    action: str
    href: str
    payload: dict


def notification_parse(data, *, request_id: str, raw: bytes) -> list[ParsedEvent]:
    """`{"events": [{meta: {type, href}, action, …}], auditContext}` or a stock notification
    `{reportUrl, stockType, reportType, accountId}`. Each event gets a dedup key from MoySklad's
    requestId (the same on its retries) and the event's place, action and document."""
    if not isinstance(data, dict):
        raise InvalidNotification("the body must be a JSON object")
    request_id = (request_id or "").strip()[:64]
    base = request_id or "body-" + hashlib.sha256(raw).hexdigest()[:40]
    if "reportUrl" in data and "events" not in data:
        url = data.get("reportUrl")
        if not isinstance(url, str) or not url.startswith(("http://", "https://")) or len(url) > 2048:
            raise InvalidNotification("reportUrl must be a URL")
        payload = {k: data.get(k) for k in ("accountId", "stockType", "reportType", "reportUrl")}
        return [ParsedEvent(f"{base}:stock", request_id, *STOCK_EVENT, url, payload)]
    events = data.get("events")
    if not isinstance(events, list) or not events:
        raise InvalidNotification("events must be a non-empty list")
    if len(events) > 1000:
        raise InvalidNotification("too many events in one notification")
    audit = data.get("auditContext") if isinstance(data.get("auditContext"), dict) else None
    out = []
    for i, event in enumerate(events):
        meta = event.get("meta") if isinstance(event, dict) else None
        if not isinstance(meta, dict):
            raise InvalidNotification(f"events[{i}].meta must be an object")
        href, entity_type, action = meta.get("href"), meta.get("type"), event.get("action")
        if not isinstance(href, str) or not href.startswith(("http://", "https://")) or len(href) > 2048:
            raise InvalidNotification(f"events[{i}].meta.href must be a URL")
        if not isinstance(entity_type, str) or not entity_type or len(entity_type) > 64:
            raise InvalidNotification(f"events[{i}].meta.type is required")
        if not isinstance(action, str) or not action or len(action) > 16:
            raise InvalidNotification(f"events[{i}].action is required")
        key = f"{base}:{i}:{action}:{entity_type}:{id_from_href(href)}"
        if len(key) > 255:
            key = f"{base}:{i}:" + hashlib.sha256(key.encode()).hexdigest()
        payload = {"event": event}
        if audit:
            payload["auditContext"] = audit
        out.append(ParsedEvent(key, request_id, entity_type, action.upper(), href, payload))
    return out


@lru_cache(maxsize=16)
def _insert_sql(vendor: str, rows: int) -> tuple[list, str]:
    """The fields and the statement for `rows` events (built once per size and database)."""
    connection = connections[router.db_for_write(InboundEvent)]
    qn = connection.ops.quote_name
    fields = [f for f in InboundEvent._meta.local_concrete_fields if not f.primary_key]
    placeholder = "(" + ", ".join(["%s"] * len(fields)) + ")"
    return fields, (f"INSERT INTO {qn(InboundEvent._meta.db_table)} ({', '.join(qn(f.column) for f in fields)}) "
                    f"VALUES {', '.join([placeholder] * rows)} ON CONFLICT DO NOTHING RETURNING {qn('id')}")


def _insert_new(rows: list[dict]) -> list[int]:
    """INSERT … ON CONFLICT DO NOTHING RETURNING id: one statement (in autocommit, its own
    transaction: no BEGIN/COMMIT round trips) stores the new events and names them; repeats of
    stored events are skipped. `rows` give some fields by attname; every other field takes its
    model default, prepared once per call (no model instance per event: the webhook's hot path)."""
    connection = connections[router.db_for_write(InboundEvent)]
    ids: list[int] = []
    for start in range(0, len(rows), INSERT_CHUNK):
        chunk = rows[start:start + INSERT_CHUNK]
        fields, sql = _insert_sql(connection.vendor, len(chunk))
        given = chunk[0].keys()
        defaults = {f.attname: f.get_db_prep_save(f.get_default(), connection) for f in fields if f.attname not in given}
        varying = [f for f in fields if f.attname in given and f.attname not in _PLAIN]
        params = []
        for row in chunk:
            prepared = {f.attname: f.get_db_prep_save(row[f.attname], connection) for f in varying}
            params += [prepared[f.attname] if f.attname in prepared else row[f.attname] if f.attname in row
                       else defaults[f.attname] for f in fields]
        with connection.cursor() as cursor:
            cursor.execute(sql, params)
            ids += [row[0] for row in cursor.fetchall()]
    return sorted(ids)


#: text fields whose Python value is already what the database takes (no preparation per event)
_PLAIN = frozenset({"system", "dedup_key", "request_id", "entity_type", "action", "entity_href"})


def _insert_reconnecting(rows: list[dict]) -> list[int]:
    """The INSERT without the per-request health check (CONN_HEALTH_CHECKS' `SELECT 1`, a round
    trip as long as the INSERT itself): a persistent connection that died meanwhile fails the
    INSERT instead, and it is retried once on a new connection. Retrying is safe: a row the first
    attempt did store is a conflict now, stored once (and the sweeper signals it)."""
    connection = connections[router.db_for_write(InboundEvent)]
    if connection.in_atomic_block:
        return _insert_new(rows)  # inside someone's transaction: theirs to retry
    connection.health_check_done = True  # checked by the INSERT itself, below
    try:
        return _insert_new(rows)
    except (OperationalError, InterfaceError):
        log.warning("moysklad.webhook.reconnect: the database connection was gone; retrying once")
        connection.close()
        return _insert_new(rows)


def events_store(*, events: list[ParsedEvent]) -> list[int]:
    """Store the events (a repeat of a stored one is ignored by the unique key) and, after commit,
    hand the signal to the background sender without waiting for the broker. Returns the ids of
    the events stored now (a repeat's events were signalled when they were first stored, and the
    sweeper re-signals any that are still waiting)."""
    now = timezone.now()
    rows = [{"system": MS.value, "dedup_key": e.dedup_key, "request_id": e.request_id, "entity_type": e.entity_type,
             "action": e.action, "entity_href": e.href, "payload": e.payload, "received_at": now} for e in events]
    with transaction.atomic() if len(rows) > INSERT_CHUNK else nullcontext():
        ids = _insert_reconnecting(rows)
    if ids:
        transaction.on_commit(lambda: events_signal(ids, wait=False), robust=True)
    return ids


def events_signal(ids: list[int], *, wait: bool = True) -> bool:
    """Signal the worker to process these events. `wait=False` (the webhook) neither waits for
    the broker nor sends a message per request: the ids join the one message this process sends
    for every notification of the next SIGNAL_GATHER seconds."""
    from .tasks import events_process_task

    if wait:
        return publisher.publish(events_process_task, list(ids))
    return publisher.publish(events_process_task, list(ids), wait=0, gather=SIGNAL_GATHER)


# ------------------------------------------------------------------------------------------------
# Processing (the worker)
# ------------------------------------------------------------------------------------------------
class EventContext:
    """What the catalog record functions expect of a job context, for a batch of events."""

    def __init__(self):
        self.counts: dict[str, int] = {}
        self.errors: list[str] = []
        self.errors_by_ref: dict[str, str] = {}
        self.total = None

    def count(self, key: str, n: int = 1) -> None:
        self.counts[key] = self.counts.get(key, 0) + n

    def error(self, ref: str, message: str) -> None:
        self.errors.append(f"{ref}: {message}")
        ref = str(ref)
        self.errors_by_ref[ref] = f"{self.errors_by_ref[ref]}; {message}" if ref in self.errors_by_ref else message

    def set_total(self, total) -> None:
        self.total = total

    def advance(self, n: int = 1) -> None:
        pass


@dataclass
class Work:
    client: MoySkladClient
    mapper: StateMapper | None
    entity_type: str
    action: str
    href: str
    payload: dict = field(default_factory=dict)


class Ignored(Exception):
    """Nothing for us in this event (not our order, a document without an order, …)."""


class StockJobBusy(UpstreamUnavailableError):
    """The stock job is running already; retry the event after it (it may have read too early)."""


def handle_stock(work: Work) -> str:
    """A stock notification says "stock changed since T". The `moysklad-stock` job reads exactly
    that (changedSince from its own cursor, which is older than T) and applies it the same way
    as every 5 minutes: one code path for stock, whoever triggers it."""
    url = work.href
    if not work.client.owns(url):
        raise Ignored("reportUrl is not under MOYSKLAD_BASE_URL; not followed")
    if not parse_qs(urlsplit(url).query).get("changedSince"):
        log.info("moysklad.event.stock-without-changedSince %s", url[:200])
    from integrations import jobs
    from integrations.models import JobRun
    from integrations.runs import run_job

    run = run_job(jobs.get("moysklad-stock"), trigger="event")
    if run.status == JobRun.Status.SKIPPED:
        raise StockJobBusy("moysklad-stock is running; this event is retried after it")
    return f"stock run {run.pk}: {run.status}"


def _href(obj) -> str | None:
    meta = obj.get("meta") if isinstance(obj, dict) else None
    return meta.get("href") if isinstance(meta, dict) else None


class Batch:
    """One claimed batch of events: sorted by the document each names, the documents read in
    bulk within the cap, and each event finished (its lease released) with its own outcome."""

    def __init__(self, lease: Lease, events: list[InboundEvent]):
        self.lease = lease
        self.events = events
        self.counts: dict[str, int] = {}
        self.client: MoySkladClient | None = None
        notifications = {e.request_id or e.dedup_key.split(":", 1)[0] for e in events}
        self.cap = requests_cap() * max(1, len(notifications))
        self._spent_before = 0
        self._open = {e.pk for e in events}
        self._outcomes: dict[tuple[str, str], list[int]] = defaultdict(list)

    # -- bookkeeping ------------------------------------------------------------------------------
    def finish(self, events: list[InboundEvent], status: str, note: str, outcome: str | None = None) -> None:
        """Record the outcome; `flush` writes it (one UPDATE per distinct outcome, not per event)."""
        ids = [e.pk for e in events if e.pk in self._open]
        if not ids:
            return
        self._open.difference_update(ids)
        self._outcomes[(status, note[:4000])] += ids
        key = outcome or status
        self.counts[key] = self.counts.get(key, 0) + len(ids)

    def flush(self) -> None:
        """Write the recorded outcomes and let go of those events' leases: one UPDATE per status,
        each event's own note chosen in it (a thousand distinct errors are one statement)."""
        outcomes, self._outcomes = self._outcomes, defaultdict(list)
        by_status: dict[str, dict[str, list[int]]] = defaultdict(dict)
        for (status, note), ids in outcomes.items():
            by_status[status][note] = ids
        now = timezone.now()
        for status, notes in by_status.items():
            extra = {} if status == Status.RECEIVED else {"processed_at": now}
            if len(notes) == 1:
                error = next(iter(notes))
            else:
                error = Case(*[When(pk__in=ids, then=Value(note)) for note, ids in notes.items()],
                             default=Value(""), output_field=TextField())
            self.lease.release([i for ids in notes.values() for i in ids], status=status, error=error, **extra)

    def done(self, events, outcome: str, note: str = "") -> None:
        self.finish(events, Status.DONE, note, outcome)

    def ignore(self, events, reason: str) -> None:
        self.finish(events, Status.IGNORED, reason, "ignored")

    def fail(self, events, error: str) -> None:
        self.finish(events, Status.FAILED, error, "failed")

    def unfinished(self, events=None) -> list[InboundEvent]:
        return [e for e in (self.events if events is None else events) if e.pk in self._open]

    def retry_later(self, events, exc: Exception) -> None:
        """Transport trouble: back to `received` for the task's retry (or the sweeper), until the
        event has had MAX_ATTEMPTS tries."""
        events = self.unfinished(events)
        self.fail([e for e in events if e.attempts >= MAX_ATTEMPTS], f"gave up after {MAX_ATTEMPTS} attempts: {exc}")
        self.finish([e for e in events if e.attempts < MAX_ATTEMPTS], Status.RECEIVED, str(exc), "retry")

    # -- the cap ----------------------------------------------------------------------------------
    def spent(self) -> int:
        return self.client.stats.requests - self._spent_before if self.client else 0

    def over_cap(self, events, poll: str) -> None:
        self.ignore(events, f"over the cap of {self.cap} MoySklad requests for one notification: "
                            f"left to the scheduled {poll}")

    def rows_by_id(self, entity: str, ids, *, expand: str | None = None,
                   archived: bool = False) -> tuple[dict[str, dict], set[str]]:
        """The rows of `entity` with these ids, a hundred ids per request while the cap allows.
        Returns (rows by id, the ids left unread for the cap). An id missing from the rows is not
        in MoySklad (deleted; with `archived`, archived rows are listed too)."""
        ids = sorted(set(ids))
        found: dict[str, dict] = {}
        for start in range(0, len(ids), ID_CHUNK):
            if self.spent() >= self.cap:
                return found, set(ids[start:])
            chunk = ids[start:start + ID_CHUNK]
            wanted = set(chunk)
            filters = [f"id={i}" for i in chunk] + (["archived=true", "archived=false"] if archived else [])
            for row in self.client.iter_rows(entity, filters=filters, limit=ID_CHUNK,
                                             extra={"expand": expand} if expand else None):
                if isinstance(row, dict) and row.get("id") in wanted:
                    found[row["id"]] = row
        return found, set()

    # -- the run ----------------------------------------------------------------------------------
    def run(self) -> None:
        if not is_configured():
            self.ignore(self.events, "MoySklad is not configured")
            return self.flush()
        try:
            client = MoySkladClient()
        except NotConfigured as exc:
            self.ignore(self.events, str(exc))
            return self.flush()
        base = client.base_url
        named: dict[str, dict[str, list[InboundEvent]]] = defaultdict(lambda: defaultdict(list))
        stock: list[InboundEvent] = []
        for event in self.events:
            if event.entity_type == STOCK_EVENT[0]:
                stock.append(event)
                continue
            if event.action not in HANDLED.get(event.entity_type, ()):
                self.ignore([event], f"{event.entity_type} {event.action} is not handled")
                continue
            ref = entity_ref(event.entity_href, base)
            if ref is None and href_relative(event.entity_href, base) is None:
                self.fail([event], f"refusing to follow {event.entity_href[:300]!r}: not under MOYSKLAD_BASE_URL")
            elif ref is None or ref[0] != event.entity_type:
                self.ignore([event], f"href does not point at a {event.entity_type}; not followed")
            else:
                named[event.entity_type][ref[1]].append(event)
        self.flush()
        self.client = client
        self._spent_before = client.stats.requests
        with client:
            for section, events in ((self.documents, [e for t in ("customerorder", "demand")
                                                      for evs in named[t].values() for e in evs]),
                                    (self.catalog, [e for t in ("product", "variant")
                                                    for evs in named[t].values() for e in evs]),
                                    (self.stock, stock)):
                if not events:
                    continue
                try:
                    section(named, events)
                except (UpstreamUnavailableError, RateLimitedError, MissingDependencyError) as exc:
                    # Worth another try later, and the rest of the batch would meet the same trouble.
                    log.warning("moysklad.event.retry %s", exc)
                    self.retry_later(None, exc)
                    return
                except (UpstreamError, MappingError) as exc:
                    log.warning("moysklad.event.failed %s", exc)
                    self.fail(self.unfinished(events), str(exc))
                except INFRASTRUCTURE_ERRORS as exc:
                    # Not a bug and not the events' fault (a killed database connection, Redis
                    # restarting): failing them would lose notifications we answered 2xx.
                    log.warning("moysklad.event.retry infrastructure %s: %s", exc.__class__.__name__, exc)
                    self.retry_later(None, exc)
                    return
                except Exception as exc:  # a bug: keep the rows for the admin, do not lose the batch
                    log.exception("moysklad.event.crashed")
                    self.fail(self.unfinished(events), f"{exc.__class__.__name__}: {exc}")
                finally:
                    self.flush()

    # -- orders and shipments ---------------------------------------------------------------------
    def documents(self, named, _events) -> None:
        order_events, demand_events = named["customerorder"], named["demand"]
        demands, unread = self.rows_by_id("demand", demand_events)
        order_of: dict[str, str] = {}
        for demand_id, events in demand_events.items():
            if demand_id in unread:
                self.over_cap(events, "moysklad-order-statuses poll (every 5 minutes)")
            elif demand_id not in demands:
                self.ignore(events, "shipment not found in MoySklad")
            else:
                ref = entity_ref(_href(demands[demand_id].get("customerOrder")), self.client.base_url)
                if ref is None or ref[0] != "customerorder":
                    self.ignore(events, "shipment without a customer order")
                else:
                    order_of[demand_id] = ref[1]
        wanted = set(order_events) | set(order_of.values())
        ours = set(OrderBinding.objects.filter(system=MS, external_id__in=wanted).values_list("external_id", flat=True))
        for order_id, events in order_events.items():
            if order_id not in ours:
                self.ignore(events, "not an order from the site")
        for demand_id, order_id in order_of.items():
            if order_id not in ours:
                self.ignore(demand_events[demand_id], "shipment of an order not from the site")
        by_order: dict[str, list[InboundEvent]] = defaultdict(list)
        for order_id in ours:
            by_order[order_id] += order_events.get(order_id, [])
        for demand_id, order_id in order_of.items():
            if order_id in ours:
                by_order[order_id] += demand_events[demand_id]
        rows, unread = self.rows_by_id("customerorder", by_order, expand="positions")
        mapper = StateMapper(self.client)
        for order_id in sorted(by_order):
            events = by_order[order_id]
            row = rows.get(order_id)
            positions = (row or {}).get("positions")
            needs_fetch = not (isinstance(positions, dict) and isinstance(positions.get("rows"), list))
            if order_id in unread or (row is not None and needs_fetch and self.spent() >= self.cap):
                self.over_cap(events, "moysklad-order-statuses poll (every 5 minutes)")
            elif row is None:
                self.ignore(events, "order not found in MoySklad")
            else:
                try:
                    outcome = customerorder_import_record(client=self.client, row=row, mapper=mapper, by="moysklad")
                except MappingError as exc:
                    self.fail(events, str(exc))
                else:
                    if outcome == "not_ours":
                        self.ignore(events, "not an order from the site")
                    else:
                        self.done(events, outcome, "" if len(events) == 1 else f"{len(events)} events, one fetch")

    # -- products and variants --------------------------------------------------------------------
    def catalog(self, named, _events) -> None:
        product_events, variant_events = named["product"], named["variant"]
        products, products_unread = self.rows_by_id("product", product_events, archived=True)
        variants, variants_unread = self.rows_by_id("variant", variant_events, archived=True)
        # Dependencies first: the products of variants we have not imported yet.
        parent_of = {}
        for vid, row in variants.items():
            ref = entity_ref(_href(row.get("product")), self.client.base_url)
            parent_of[vid] = ref[1] if ref and ref[0] == "product" else None
        parents = {p for p in parent_of.values() if p and p not in products}
        known = set(ProductBinding.objects.filter(system=MS, external_id__in=parents)
                    .values_list("external_id", flat=True))
        parent_rows, parents_unread = self.rows_by_id("product", parents - known, archived=True)
        ctx = EventContext()
        ready = [row for vid, row in variants.items() if parent_of[vid] not in parents_unread]
        price_type = (self.client.sale_price_type(max_age=PRICE_TYPE_MAX_AGE)
                      if products or parent_rows or ready else None)
        if products or parent_rows:
            catalog_jobs.products_import_page([*products.values(), *parent_rows.values()], ctx, price_type=price_type)
        if ready:
            catalog_jobs.variants_import_page(ready, ctx, price_type=price_type)
        gone = {"product": [i for i in product_events if i not in products and i not in products_unread],
                "variant": [i for i in variant_events if i not in variants and i not in variants_unread]}
        archived = self.archive_gone(products=gone["product"], variants=gone["variant"])
        poll = "moysklad-catalog delta (every 10 minutes; deletions at the nightly full run)"
        for entity, events_by_id, rows, unread in (("product", product_events, products, products_unread),
                                                   ("variant", variant_events, variants, variants_unread)):
            for ext_id, events in events_by_id.items():
                row = rows.get(ext_id)
                if ext_id in unread or (entity == "variant" and row is not None and parent_of[ext_id] in parents_unread):
                    self.over_cap(events, poll)
                elif row is not None and ext_id in ctx.errors_by_ref:
                    self.fail(events, ctx.errors_by_ref[ext_id])
                elif row is not None:
                    note = ""
                    if any(e.action == "DELETE" for e in events):
                        note = ("deletion confirmed: archived in MoySklad" if row.get("archived") else
                                f"not deleted: the {entity} is still in MoySklad, so it was imported instead")
                    self.done(events, "imported", note)
                elif ext_id in archived:
                    self.done(events, "archived", f"deletion confirmed: the {entity} is gone from MoySklad; unpublished here")
                else:
                    self.ignore(events, f"the {entity} is not in MoySklad and not ours")

    @staticmethod
    def archive_gone(*, products: list[str], variants: list[str]) -> set[str]:
        """MoySklad no longer has these (deleted upstream): unpublish (archive) ours, never delete.
        Returns the external ids that were ours."""
        if not products and not variants:
            return set()
        product_ids = dict(ProductBinding.objects.filter(system=MS, external_id__in=products)
                           .values_list("external_id", "product_id"))
        offer_ids = dict(OfferBinding.objects.filter(system=MS, external_id__in=[*products, *variants])
                         .values_list("external_id", "offer_id"))
        every_offer = set(offer_ids.values()) | set(
            Offer.objects.filter(product_id__in=list(product_ids.values())).values_list("pk", flat=True))
        catalog_archive(product_ids=list(product_ids.values()), offer_ids=sorted(every_offer))
        return set(product_ids) | set(offer_ids)

    # -- stock ------------------------------------------------------------------------------------
    def stock(self, _named, events) -> None:
        newest = events[-1]
        work = Work(client=self.client, mapper=None, entity_type=STOCK_EVENT[0], action=STOCK_EVENT[1],
                    href=newest.entity_href, payload=newest.payload)
        try:
            outcome = handle_stock(work)
        except Ignored as exc:
            self.ignore(events, str(exc))
        else:
            self.done(events, outcome, "" if len(events) == 1 else f"{len(events)} events, one stock run")


def events_process(*, event_ids: list[int]) -> dict[str, int]:
    """Process the given events (those still `received`, or `processing` under a lease that ran
    out). Returns counts per outcome; `retry` is how many went back to `received` for a transport
    problem."""
    lease = Lease(InboundEvent)
    ids = sorted({int(i) for i in event_ids})
    if not lease.take(ids, Q(status__in=[Status.RECEIVED, Status.PROCESSING]), status=Status.PROCESSING,
                      claimed_at=Now(), attempts=F("attempts") + 1):
        return {}
    batch = Batch(lease, list(InboundEvent.objects.filter(pk__in=lease.keys).order_by("received_at", "id")))
    try:
        with lease.kept_alive():
            batch.run()
    finally:
        if lease.keys:  # interrupted (a time limit, a shutdown): the next signal or sweep resumes them
            lease.release(status=Status.RECEIVED)
    return batch.counts


# ------------------------------------------------------------------------------------------------
# Sweeper and admin
# ------------------------------------------------------------------------------------------------
def events_sweep(*, batch: int = 500, follow_up: bool = True) -> dict[str, int]:
    """Re-signal events whose signal was lost; free events whose worker stopped renewing its lease
    (it died). Also re-signals customer e-mails that are owed but unsent (same failure, same cure).

    A lease that runs out before the next scheduled sweep gets one extra sweep at that moment
    (`follow_up`; the extra sweep schedules none itself), so a dead worker's events wait at most
    about a minute, not a lease plus a minute."""
    now = timezone.now()
    freed = InboundEvent.objects.filter(status=Status.PROCESSING).filter(
        Q(lease_until__isnull=True) | Q(lease_until__lt=Now())).update(
        status=Status.RECEIVED, lease_owner="", lease_until=None,
        error="requeued: the worker processing it stopped renewing its lease")
    ids = list(InboundEvent.objects.filter(status=Status.RECEIVED, received_at__lt=now - SWEEP_AFTER)
               .order_by("received_at", "id").values_list("pk", flat=True)[:batch])
    for start in range(0, len(ids), 50):
        if not events_signal(ids[start:start + 50]):
            break  # broker still down: the next sweep tries again
    from orders.services import status_emails_requeue

    mails = status_emails_requeue(older_than_seconds=int(SWEEP_AFTER.total_seconds()))
    if follow_up:
        due = InboundEvent.objects.filter(status=Status.PROCESSING, lease_until__isnull=False).aggregate(
            first=Min("lease_until"))["first"]
        if due is not None and due - now < SWEEP_EVERY:
            from .tasks import events_sweep_task

            publisher.publish(events_sweep_task, follow_up=False,
                              options={"countdown": max(0.0, (due - now).total_seconds()) + 1})
    if ids or freed or mails:
        log.info("moysklad.events.swept requeued=%s freed=%s mails=%s", len(ids), freed, mails)
    return {"requeued": len(ids), "freed": freed, "mails": mails}


def events_reprocess(*, event_ids: list[int]) -> int:
    """Admin action: process these events again (whatever their status), now."""
    ids = list(InboundEvent.objects.filter(pk__in=list(event_ids)).exclude(status=Status.PROCESSING)
               .values_list("pk", flat=True))
    InboundEvent.objects.filter(pk__in=ids).update(status=Status.RECEIVED, attempts=0, error="", processed_at=None)
    if ids:
        transaction.on_commit(lambda: events_signal(ids), robust=True)
    return len(ids)


def webhook_url() -> str:
    """Where MoySklad should POST: SITE_URL + /webhooks/moysklad/<token>/."""
    token = settings.MOYSKLAD.get("WEBHOOK_TOKEN") or ""
    return f"{settings.SITE_URL.rstrip('/')}/webhooks/moysklad/{token}/"
