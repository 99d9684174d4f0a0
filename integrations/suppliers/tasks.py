"""Celery tasks of the suppliers wing; the work is in sync.py, events.py and backinstock."""
from __future__ import annotations

import logging

from celery import shared_task

from integrations.http.errors import RateLimitedError, UpstreamUnavailableError

log = logging.getLogger("syncsite.suppliers")

#: waits before the 1st, 2nd and 3rd retry of a failed read (then the next scheduled run)
RETRY_DELAYS = (60, 300, 900)


@shared_task(name="suppliers.read", bind=True, acks_late=True, max_retries=len(RETRY_DELAYS))
def supplier_read_task(self, slug: str, full: bool = False) -> dict:
    from .models import Supplier
    from .sync import SupplierBusy, supplier_read

    supplier = Supplier.objects.filter(slug=slug, active=True).first()
    if supplier is None:
        return {"status": "inactive"}
    try:
        result = supplier_read(supplier, full=full)
    except SupplierBusy:
        return {"status": "busy"}  # the running read covers this one
    except (UpstreamUnavailableError, RateLimitedError) as exc:
        if self.request.retries >= len(RETRY_DELAYS):
            log.warning("suppliers.read-gave-up supplier=%s %s", slug, exc)
            return {"status": "failed", "error": str(exc)[:500]}
        raise self.retry(exc=exc, countdown=RETRY_DELAYS[self.request.retries])
    except Exception as exc:  # data or configuration trouble: retrying would not help
        return {"status": "failed", "error": f"{exc.__class__.__name__}: {exc}"[:500]}
    return {"status": "ok", "counts": result.counts}


@shared_task(name="suppliers.events_process", acks_late=True, ignore_result=True)
def supplier_events_task(event_ids: list[int]) -> dict:
    from .events import events_process

    return events_process(event_ids=event_ids)


@shared_task(name="suppliers.events_sweep", acks_late=True, ignore_result=True)
def supplier_events_sweep_task() -> dict:
    from .events import events_sweep

    return events_sweep()
