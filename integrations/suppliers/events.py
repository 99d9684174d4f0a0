"""Signed stock webhooks: store (the view), then apply (the worker). The row is the record of
work; the queue message is only a signal, and the sweeper re-signals rows whose signal was lost."""
from __future__ import annotations

import logging
from datetime import timedelta

from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils import timezone

from syncsite import publish as publisher

from .feeds import Record
from .models import Supplier, SupplierEvent
from .sync import ReadResult, records_apply

log = logging.getLogger("syncsite.suppliers.events")

#: a `received` row older than this lost its signal; a `processing` one older than STUCK its worker
RESIGNAL_AFTER = timedelta(seconds=60)
STUCK = timedelta(minutes=10)
MAX_ATTEMPTS = 5


class Replayed(Exception):
    pass


def event_store(*, supplier: Supplier, signature: str, signed_at, payload: dict, items: int) -> SupplierEvent:
    """Store one verified webhook; a signature stored before raises Replayed (nothing stored).
    Once committed, the worker is signalled without waiting for the broker."""
    try:
        with transaction.atomic():
            event = SupplierEvent.objects.create(supplier=supplier, signature=signature, signed_at=signed_at,
                                                 payload=payload, items=items)
    except IntegrityError:
        raise Replayed(signature) from None
    transaction.on_commit(lambda: events_signal([event.pk], wait=0), robust=True)
    return event


def events_signal(ids: list[int], *, wait: float = publisher.WAIT_SECONDS) -> bool:
    from .tasks import supplier_events_task

    return publisher.publish(supplier_events_task, list(ids), wait=wait)


def events_process(*, event_ids: list[int]) -> dict:
    counts: dict[str, int] = {}
    for event_id in sorted(event_ids):
        now = timezone.now()
        claimed = SupplierEvent.objects.filter(
            pk=event_id, status=SupplierEvent.Status.RECEIVED).update(
            status=SupplierEvent.Status.PROCESSING, attempts=F("attempts") + 1, processed_at=now)
        if not claimed:
            counts["skipped"] = counts.get("skipped", 0) + 1
            continue
        event = SupplierEvent.objects.select_related("supplier").get(pk=event_id)
        result = ReadResult()
        try:
            records = [Record(str(i["sku"]).strip(), int(i["stock"])) for i in event.payload.get("items", [])]
            records_apply(event.supplier, [records], via="webhook", complete=False, checked_at=event.received_at,
                          result=result)
        except Exception as exc:
            failed = event.attempts >= MAX_ATTEMPTS
            SupplierEvent.objects.filter(pk=event_id).update(
                status=SupplierEvent.Status.FAILED if failed else SupplierEvent.Status.RECEIVED,
                error=f"{exc.__class__.__name__}: {exc}"[:2000])
            log.exception("suppliers.event-failed id=%s", event_id)
            counts["failed"] = counts.get("failed", 0) + 1
            continue
        SupplierEvent.objects.filter(pk=event_id).update(status=SupplierEvent.Status.DONE, counts=result.counts,
                                                         processed_at=timezone.now(), error="")
        counts["done"] = counts.get("done", 0) + 1
    return counts


def events_sweep() -> dict:
    now = timezone.now()
    SupplierEvent.objects.filter(status=SupplierEvent.Status.PROCESSING, processed_at__lt=now - STUCK).update(
        status=SupplierEvent.Status.RECEIVED)
    ids = list(SupplierEvent.objects.filter(status=SupplierEvent.Status.RECEIVED,
                                            received_at__lt=now - RESIGNAL_AFTER)
               .order_by("received_at", "id").values_list("pk", flat=True)[:1000])
    if ids:
        events_signal(ids)
    return {"resignalled": len(ids)}

