"""Processing 1C webhook pushes in a worker, and the sweeper that finds lost signals.

A push row is the record of work; the queue only signals it. `push_process` claims the row with
one conditional UPDATE (so a signal delivered twice applies it once) and applies its items through
the one 1C stock path. The sweeper (beat, every minute) re-signals rows still `received` after a
minute (the broker was down when the webhook answered), frees rows whose worker died mid-way
(`processing` for longer than STALE), and does the same for CommerceML imports."""
from __future__ import annotations

import logging
from datetime import timedelta
from decimal import Decimal

from django.db.models import F, Q
from django.utils import timezone

from syncsite import publish as publisher

from .mapping import StockItem
from .models import StockPush
from .services import items_apply

log = logging.getLogger("syncsite.onec.pushes")
Status = StockPush.Status

SWEEP_AFTER = timedelta(minutes=1)
#: a push `processing` this long lost its worker (a push applies in seconds)
STALE = timedelta(minutes=10)
MAX_ATTEMPTS = 5


def push_signal(push_id: int, *, wait: float = 0.3) -> bool:
    from .tasks import push_process_task

    return publisher.publish(push_process_task, push_id, wait=wait)


def push_process(*, push_id: int) -> str:
    now = timezone.now()
    claimed = StockPush.objects.filter(pk=push_id).filter(
        Q(status=Status.RECEIVED) | Q(status=Status.PROCESSING, claimed_at__lt=now - STALE)).update(
        status=Status.PROCESSING, claimed_at=now, attempts=F("attempts") + 1)
    if not claimed:
        return "not-claimed"
    push = StockPush.objects.get(pk=push_id)
    items = [StockItem(i["sku"], Decimal(i["quantity"]), i.get("warehouse") or "") for i in push.items]
    try:
        result = items_apply(items=items, via="webhook", checked_at=push.received_at, newer_wins=True)
    except Exception as exc:
        failed = push.attempts >= MAX_ATTEMPTS
        StockPush.objects.filter(pk=push_id).update(
            status=Status.FAILED if failed else Status.RECEIVED, error=f"{exc.__class__.__name__}: {exc}"[:4000])
        log.exception("onec.push.failed id=%s", push_id)
        raise
    StockPush.objects.filter(pk=push_id).update(status=Status.DONE, processed_at=timezone.now(),
                                                counts=result.counts, error="")
    return "done"


def sweep() -> dict[str, int]:
    now = timezone.now()
    freed = StockPush.objects.filter(status=Status.PROCESSING, claimed_at__lt=now - STALE).update(
        status=Status.RECEIVED, error="requeued: the worker processing it stopped")
    ids = list(StockPush.objects.filter(status=Status.RECEIVED, received_at__lt=now - SWEEP_AFTER)
               .order_by("received_at").values_list("pk", flat=True)[:200])
    sent = 0
    for push_id in ids:
        if not push_signal(push_id):
            break  # broker still down: the next sweep tries again
        sent += 1
    from .exchange_import import imports_sweep

    imports = imports_sweep()
    if ids or freed or imports:
        log.info("onec.sweep pushes=%s freed=%s imports=%s", sent, freed, imports)
    return {"pushes": sent, "freed": freed, "imports": imports}

