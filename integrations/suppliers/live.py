"""The live add-to-cart check of supplier stock, and its circuit breaker.

`levels_refresh` is given an offer's supplier levels whose figure is older than the supplier's
freshness threshold; for each supplier with live check on (and not skipped by the breaker) it asks
`GET {url}/stock/{sku}` with `CART_CHECK_TIMEOUT`, all suppliers at once, and stores what came
back through the stock write service (`via="live"`, logged like any change). What did not answer
in time is reported as failed: the caller answers from the last figure (`source: "stale"`) or
refuses, as `CART_CHECK_ON_FAILURE` says.

The circuit breaker is the one every upstream client has (integrations.http: kept with the
limiter, so shared by every worker through Redis or the shared files): after
CART_CHECK_BREAKER_FAILURES failures in a row the supplier is not asked for
CART_CHECK_BREAKER_SECONDS (carts stay fast while it is down), then a trial call decides.
"""
from __future__ import annotations

import logging
import threading
import time
from concurrent.futures import ThreadPoolExecutor, wait
from dataclasses import dataclass
from decimal import Decimal

from django.conf import settings

from stock.services import stock_levels_set

from .client import live_breaker, live_client
from .models import Supplier, SupplierSku

log = logging.getLogger("syncsite.suppliers.live")

ZERO = Decimal(0)


_pool: ThreadPoolExecutor | None = None
_pool_lock = threading.Lock()


def _executor() -> ThreadPoolExecutor:
    global _pool
    with _pool_lock:
        if _pool is None:
            _pool = ThreadPoolExecutor(max_workers=64, thread_name_prefix="live-check")  # they wait on the network
        return _pool


@dataclass
class Refresh:
    asked: int = 0
    refreshed: int = 0
    failed: int = 0      # live on, but no answer (slow, down, error, breaker open)
    stale_only: int = 0  # live off: the stale figure is all there is


def fresh_seconds(supplier: Supplier) -> int:
    return supplier.fresh_seconds or settings.CART_CHECK_STALE_SECONDS


def suppliers_for(codes: list[str]) -> dict[str, Supplier]:
    slugs = [c.split(":", 1)[1] for c in codes if c.startswith("supplier:")]
    return {s.source: s for s in Supplier.objects.filter(slug__in=slugs)}


def levels_refresh(*, offer_id: int, offer_sku: str, stale: list[tuple[Supplier, int]]) -> Refresh:
    """`stale`: (supplier, warehouse id) pairs whose figure for this offer is stale."""
    out = Refresh()
    ask: list[tuple[Supplier, int, str]] = []
    for supplier, warehouse_id in stale:
        if not (supplier.live_check and supplier.active and supplier.kind == Supplier.Kind.API):
            out.stale_only += 1
            continue
        if live_breaker(supplier).circuit_open_for() > 0:
            out.failed += 1   # the breaker is open: not asked, the last figure answers
            continue
        their = (SupplierSku.objects.filter(supplier=supplier, offer_id=offer_id).order_by("-seen_at")
                 .values_list("sku", flat=True).first()) or offer_sku
        ask.append((supplier, warehouse_id, their))
    if not ask:
        return out
    timeout = float(settings.CART_CHECK_TIMEOUT)
    out.asked = len(ask)
    started = time.monotonic()
    futures = {_executor().submit(_ask, supplier, sku, timeout): (supplier, warehouse_id)
               for supplier, warehouse_id, sku in ask}
    done, _pending = wait(futures, timeout=timeout + 0.02)
    for future, (supplier, warehouse_id) in futures.items():
        breaker = live_breaker(supplier)
        if future not in done or future.exception() is not None:
            failures, _until = breaker.circuit_failed(settings.CART_CHECK_BREAKER_FAILURES,
                                                      settings.CART_CHECK_BREAKER_SECONDS)
            if failures == settings.CART_CHECK_BREAKER_FAILURES:
                log.warning("suppliers.live.breaker-open supplier=%s failures=%s", supplier.slug, failures)
            out.failed += 1
            error = future.exception() if future in done else "timed out"
            log.warning("suppliers.live.failed supplier=%s offer=%s %s %.0fms", supplier.slug, offer_id, error,
                        (time.monotonic() - started) * 1000)
            continue
        if breaker.circuit()[0]:
            breaker.circuit_succeeded()
        stock_levels_set(warehouse_id=warehouse_id, figures={offer_id: (Decimal(future.result()), ZERO)},
                         source=supplier.source, via="live")
        out.refreshed += 1
    return out


def _ask(supplier: Supplier, sku: str, timeout: float) -> int:
    return live_client(supplier, timeout=timeout).stock_one(sku)
