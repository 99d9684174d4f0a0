"""MoySklad webhook events: store, process, sweep.

The webhook view only parses and calls `events_store` (one INSERT and one SELECT per
notification, no upstream calls). Processing runs in a worker:

* `events_process` claims each row with a conditional UPDATE (received -> processing), so a
  signal delivered twice, or a row re-queued by the sweeper while still queued, is processed once.
  Rows about the same document in one batch share one fetch.
* Each event is dispatched through `HANDLERS` by (entity type, action). A handler fetches what the
  event links to (only from MOYSKLAD_BASE_URL: `client.get_href` refuses any other host, so a
  forged event cannot make us call elsewhere) and calls the same record step the polling jobs use.
* Transport trouble (MoySklad down, 429) puts the row back to `received`; the task retries it
  and the sweeper finds it anyway. Anything else marks it `failed` with the error; an admin
  action re-queues it.
* `events_sweep` (beat, every minute) re-signals rows left `received` for over a minute (the
  broker was down, or the queue lost the task) and frees rows stuck in `processing` (a killed
  worker). Redis can lose a task when a worker dies: the row is the record of work, the queue
  only a signal.
"""
from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Callable
from urllib.parse import parse_qs, urlsplit

from django.conf import settings
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from catalog.models import Offer, Product
from integrations.http.errors import (
    MappingError,
    MissingDependencyError,
    NotConfigured,
    RateLimitedError,
    UpstreamError,
    UpstreamUnavailableError,
)
from integrations.models import InboundEvent, OfferBinding, ProductBinding, System
from syncsite import publish as publisher

from . import jobs as catalog_jobs
from .client import MoySkladClient, is_configured
from .mapping import id_from_href, meta_id
from .orders import StateMapper, customerorder_import_record

log = logging.getLogger("syncsite.moysklad.events")
MS = System.MOYSKLAD
Status = InboundEvent.Status

MAX_ATTEMPTS = 8
SWEEP_AFTER = timedelta(minutes=1)       # a `received` row older than this lost its signal
STUCK_AFTER = timedelta(minutes=15)      # a `processing` row older than this lost its worker
STOCK_EVENT = ("webhookstock", "STOCK")


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
        if not isinstance(url, str) or not url.startswith(("http://", "https://")):
            raise InvalidNotification("reportUrl must be a URL")
        payload = {k: data.get(k) for k in ("accountId", "stockType", "reportType", "reportUrl")}
        return [ParsedEvent(f"{base}:stock", request_id, *STOCK_EVENT, url[:2048], payload)]
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


def events_store(*, events: list[ParsedEvent]) -> list[int]:
    """Insert the events (a repeat of a stored one is ignored by the unique key) and signal
    processing after commit. Returns the ids signalled."""
    now = timezone.now()
    keys = [e.dedup_key for e in events]
    with transaction.atomic():
        InboundEvent.objects.bulk_create(
            [InboundEvent(system=MS, dedup_key=e.dedup_key, request_id=e.request_id, entity_type=e.entity_type,
                          action=e.action, entity_href=e.href, payload=e.payload, received_at=now)
             for e in events], ignore_conflicts=True)
        ids = list(InboundEvent.objects.filter(system=MS, dedup_key__in=keys, status=Status.RECEIVED)
                   .order_by("pk").values_list("pk", flat=True))
        if ids:
            transaction.on_commit(lambda: events_signal(ids), robust=True)
    return ids


def events_signal(ids: list[int]) -> bool:
    from .tasks import events_process_task

    return publisher.publish(events_process_task, list(ids))


# ------------------------------------------------------------------------------------------------
# Processing (the worker)
# ------------------------------------------------------------------------------------------------
class EventContext:
    """What the catalog record functions expect of a job context, for one event."""

    def __init__(self):
        self.counts: dict[str, int] = {}
        self.errors: list[str] = []
        self.total = None

    def count(self, key: str, n: int = 1) -> None:
        self.counts[key] = self.counts.get(key, 0) + n

    def error(self, ref: str, message: str) -> None:
        self.errors.append(f"{ref}: {message}")

    def set_total(self, total) -> None:
        self.total = total

    def advance(self, n: int = 1) -> None:
        pass


@dataclass
class Work:
    client: MoySkladClient
    mapper: StateMapper
    entity_type: str
    action: str
    href: str
    payload: dict = field(default_factory=dict)


class Ignored(Exception):
    """Nothing for us in this event (not our order, a document without an order, …)."""


# -- handlers -----------------------------------------------------------------------------------
def handle_customerorder(work: Work) -> str:
    row = work.client.get_href(_with_expand(work.href, "positions"))
    outcome = customerorder_import_record(client=work.client, row=row, mapper=work.mapper, by="moysklad")
    if outcome == "not_ours":
        raise Ignored("not an order from the site")
    return outcome


def handle_demand(work: Work) -> str:
    demand = work.client.get_href(work.href)
    order_href = ((demand.get("customerOrder") or {}).get("meta") or {}).get("href")
    if not order_href:
        raise Ignored("shipment without a customer order")
    row = work.client.get_href(_with_expand(order_href, "positions"))
    outcome = customerorder_import_record(client=work.client, row=row, mapper=work.mapper, by="moysklad")
    if outcome == "not_ours":
        raise Ignored("shipment of an order not from the site")
    return outcome


def handle_product(work: Work) -> str:
    row = work.client.get_href(work.href)
    ctx = EventContext()
    catalog_jobs.products_import_page([row], ctx, price_type=work.client.conf.get("PRICE_TYPE", ""))
    if ctx.errors:
        raise MappingError("; ".join(ctx.errors)[:2000])
    return "up_to_date" if ctx.counts.get("up_to_date") else "imported"


def handle_variant(work: Work) -> str:
    row = work.client.get_href(work.href)
    parent = meta_id(row.get("product")) if isinstance(row, dict) else None
    ctx = EventContext()
    price_type = work.client.conf.get("PRICE_TYPE", "")
    if parent and not ProductBinding.objects.filter(system=MS, external_id=parent).exists():
        # Dependency first: a variant of a product we have not imported yet.
        catalog_jobs.products_import_page([work.client.get_href(row["product"]["meta"]["href"])], ctx,
                                          price_type=price_type)
    catalog_jobs.variants_import_page([row], ctx, price_type=price_type)
    if ctx.errors:
        raise MappingError("; ".join(ctx.errors)[:2000])
    return "up_to_date" if ctx.counts.get("up_to_date") else "imported"


def handle_catalog_delete(work: Work) -> str:
    """Deleted upstream: the href can no longer be fetched. Unpublish (archive), never delete."""
    external_id = id_from_href(work.href)
    now = timezone.now()
    archived = 0
    with transaction.atomic():
        if work.entity_type == "product":
            product_ids = list(ProductBinding.objects.filter(system=MS, external_id=external_id)
                               .values_list("product_id", flat=True))
            archived += Product.objects.filter(pk__in=product_ids, archived=False).update(archived=True, updated_at=now)
            archived += Offer.objects.filter(product_id__in=product_ids, archived=False).update(
                archived=True, updated_at=now)
        offer_ids = list(OfferBinding.objects.filter(system=MS, external_id=external_id)
                         .values_list("offer_id", flat=True))
        archived += Offer.objects.filter(pk__in=offer_ids, archived=False).update(archived=True, updated_at=now)
    if not archived:
        raise Ignored("nothing of ours to archive")
    return "archived"


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


def handle_ignore(work: Work) -> str:
    raise Ignored(f"{work.entity_type} {work.action} is not handled")


def handle_mismatch(work: Work) -> str:
    raise Ignored(f"href does not point at a {work.entity_type}; not followed")


HANDLERS: dict[tuple[str, str], Callable[[Work], str]] = {
    ("customerorder", "UPDATE"): handle_customerorder,
    ("customerorder", "CREATE"): handle_customerorder,  # created in MoySklad: ignored unless ours
    ("demand", "CREATE"): handle_demand,
    ("demand", "UPDATE"): handle_demand,
    ("product", "CREATE"): handle_product,
    ("product", "UPDATE"): handle_product,
    ("product", "DELETE"): handle_catalog_delete,
    ("variant", "CREATE"): handle_variant,
    ("variant", "UPDATE"): handle_variant,
    ("variant", "DELETE"): handle_catalog_delete,
    STOCK_EVENT: handle_stock,
}

#: What `moysklad_webhooks register` subscribes to (stock goes to webhookstock). Not customerorder
#: CREATE: our own creates are suppressed by DisableByPrefix, and orders made in MoySklad are not ours.
SUBSCRIPTIONS: tuple[tuple[str, str], ...] = (
    ("customerorder", "UPDATE"), ("demand", "CREATE"), ("demand", "UPDATE"),
    ("product", "CREATE"), ("product", "UPDATE"), ("product", "DELETE"),
    ("variant", "CREATE"), ("variant", "UPDATE"), ("variant", "DELETE"),
)


def _with_expand(href: str, expand: str) -> str:
    return href + ("&" if "?" in href else "?") + f"expand={expand}"


def events_process(*, event_ids: list[int]) -> dict[str, int]:
    """Process the given events (those still `received`). Returns counts per outcome; `retry` is
    how many went back to `received` for a transport problem."""
    counts: dict[str, int] = {}
    claimed = []
    now = timezone.now()
    for event_id in sorted(set(event_ids)):
        if InboundEvent.objects.filter(pk=event_id, status=Status.RECEIVED).update(
                status=Status.PROCESSING, claimed_at=now, attempts=F("attempts") + 1) == 1:
            claimed.append(event_id)
    if not claimed:
        return counts
    events = list(InboundEvent.objects.filter(pk__in=claimed).order_by("received_at", "id"))
    if not is_configured():
        _finish([e.pk for e in events], Status.IGNORED, "MoySklad is not configured")
        counts["ignored"] = len(events)
        return counts
    groups: dict[tuple[str, str, str], list[InboundEvent]] = {}
    for event in events:
        action = "STOCK" if event.entity_type == STOCK_EVENT[0] else event.action
        href = "" if event.entity_type == STOCK_EVENT[0] else event.entity_href
        groups.setdefault((event.entity_type, action, href), []).append(event)
    try:
        client = MoySkladClient()
    except NotConfigured as exc:
        _finish([e.pk for e in events], Status.IGNORED, str(exc))
        return {"ignored": len(events)}
    with client:
        mapper = StateMapper(client)
        for (entity_type, action, _href), group in groups.items():
            ids = [e.pk for e in group]
            first = group[-1]  # the newest event for this document
            handler = HANDLERS.get((entity_type, action), handle_ignore)
            if entity_type != STOCK_EVENT[0] and f"/entity/{entity_type}/" not in first.entity_href:
                handler = handle_mismatch  # the link does not point at what the event says it is
            work = Work(client=client, mapper=mapper, entity_type=entity_type, action=action,
                        href=first.entity_href, payload=first.payload)
            try:
                outcome = handler(work)
            except Ignored as exc:
                _finish(ids, Status.IGNORED, str(exc))
                counts["ignored"] = counts.get("ignored", 0) + len(ids)
            except (UpstreamUnavailableError, RateLimitedError, MissingDependencyError) as exc:
                # Worth another try later; give up after MAX_ATTEMPTS.
                worn = [e.pk for e in group if e.attempts >= MAX_ATTEMPTS]
                again = [i for i in ids if i not in worn]
                _finish(worn, Status.FAILED, f"gave up after {MAX_ATTEMPTS} attempts: {exc}")
                InboundEvent.objects.filter(pk__in=again).update(status=Status.RECEIVED, error=str(exc)[:4000])
                for key, n in (("retry", len(again)), ("failed", len(worn))):
                    if n:
                        counts[key] = counts.get(key, 0) + n
                log.warning("moysklad.event.retry %s %s %s", entity_type, action, exc)
            except (UpstreamError, MappingError) as exc:
                _finish(ids, Status.FAILED, str(exc))
                counts["failed"] = counts.get("failed", 0) + len(ids)
                log.warning("moysklad.event.failed %s %s %s", entity_type, action, exc)
            except Exception as exc:  # a bug: keep the row for the admin, do not lose the batch
                _finish(ids, Status.FAILED, f"{exc.__class__.__name__}: {exc}")
                counts["failed"] = counts.get("failed", 0) + len(ids)
                log.exception("moysklad.event.crashed %s %s", entity_type, action)
            else:
                _finish(ids, Status.DONE, "" if len(ids) == 1 else f"{len(ids)} events, one fetch: {outcome}")
                counts[outcome] = counts.get(outcome, 0) + len(ids)
    return counts


def _finish(ids: list[int], status: str, error: str) -> None:
    if ids:
        InboundEvent.objects.filter(pk__in=ids).update(status=status, error=error[:4000], processed_at=timezone.now())


# ------------------------------------------------------------------------------------------------
# Sweeper and admin
# ------------------------------------------------------------------------------------------------
def events_sweep(*, batch: int = 500) -> dict[str, int]:
    """Re-signal events whose signal was lost; free events whose worker died. Also re-signals
    customer e-mails that are owed but unsent (same failure, same cure)."""
    now = timezone.now()
    freed = InboundEvent.objects.filter(status=Status.PROCESSING, claimed_at__lt=now - STUCK_AFTER).update(
        status=Status.RECEIVED, error="requeued: the worker processing it disappeared")
    ids = list(InboundEvent.objects.filter(status=Status.RECEIVED, received_at__lt=now - SWEEP_AFTER)
               .order_by("received_at", "id").values_list("pk", flat=True)[:batch])
    for start in range(0, len(ids), 50):
        if not events_signal(ids[start:start + 50]):
            break  # broker still down: the next sweep tries again
    from orders.services import status_emails_requeue

    mails = status_emails_requeue(older_than_seconds=int(SWEEP_AFTER.total_seconds()))
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
