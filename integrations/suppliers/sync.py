"""Reading one supplier and writing its figures.

`supplier_read` is the whole of one read: take the supplier's own lock (a lease on the
`supplier-stock:{slug}` JobState row, so two reads of one supplier never overlap while different
suppliers run side by side), read every record into a spool (download, parse, page), and only
then map and write them through `stock.services.stock_levels_set` in batches. A read that fails
anywhere before the write changes nothing.

Full reads (`via="full"`) of a supplier with zero-missing set what it no longer lists to 0 — only
after a complete read. Small reads go to the stock service in one call with `complete=True`;
larger ones are written in batches and the missing offers are then set to 0 explicitly (the
same rule, without holding the whole feed in memory).
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Iterable

from django.conf import settings
from django.utils import timezone

from catalog.models import Offer
from catalog.services import external_skus_match
from integrations.runs import acquire_lock
from stock.models import StockLevel
from stock.services import stock_levels_set
from syncsite.bulk import bulk_upsert, chunked

from . import feeds
from .client import SupplierClient, feed_headers
from .feeds import Record, Spool
from .models import Supplier, SupplierSku

log = logging.getLogger("syncsite.suppliers")

ZERO = Decimal(0)
#: records mapped per statement group
BATCH = 5_000
#: up to this many figures a full read is written in one call (complete=True does the zeroing)
SINGLE_WRITE_MAX = 50_000
MAX_ERRORS = 100
_DECIMALS = [Decimal(i) for i in range(1001)]


def _dec(n: int) -> Decimal:
    return _DECIMALS[n] if n <= 1000 else Decimal(n)


def lock_name(slug: str) -> str:
    return f"supplier-stock:{slug}"


@dataclass
class ReadResult:
    counts: dict = field(default_factory=dict)
    errors: list = field(default_factory=list)
    error_count: int = 0
    restocked: list = field(default_factory=list)

    def count(self, key: str, n: int = 1) -> None:
        self.counts[key] = self.counts.get(key, 0) + n

    def reject(self, ref: str, message: str) -> None:
        self.error_count += 1
        self.count("rejected")
        if len(self.errors) < MAX_ERRORS:
            self.errors.append({"ref": str(ref)[:200], "error": str(message)[:300]})


class SupplierBusy(Exception):
    """Another read of this supplier holds its lock."""


def supplier_read(supplier: Supplier, *, full: bool, result: ReadResult | None = None) -> ReadResult:
    """One read of one supplier under its lock; updates the supplier's bookkeeping. Raises what
    the read raised (the task decides on retries) after recording it on the supplier."""
    from integrations.models import JobState

    result = result or ReadResult()
    name = lock_name(supplier.slug)
    owner = f"{supplier.slug}:{timezone.now().timestamp()}"
    JobState.objects.get_or_create(job=name)
    lease = acquire_lock(name, owner)
    if lease is None:
        raise SupplierBusy(f"a read of {supplier.slug} is already running")
    started = timezone.now()
    try:
        supplier.refresh_from_db()  # the cursor and settings as they are now, under the lock
        with lease.kept_alive():
            _read(supplier, full=full, started=started, result=result)
    except Exception as exc:
        Supplier.objects.filter(pk=supplier.pk).update(
            last_status="failed", last_message=f"{exc.__class__.__name__}: {exc}"[:2000],
            last_counts=result.counts, last_sync_at=started)
        log.warning("suppliers.read-failed supplier=%s full=%s %s", supplier.slug, full, exc)
        raise
    finally:
        lease.release()
    updates = dict(last_status="ok" if not result.error_count else "partial", last_counts=result.counts,
                   last_sync_at=started, delta_cursor=started,
                   last_message=f"{result.error_count} rows rejected" if result.error_count else "ok")
    if full:
        updates["last_full_at"] = started
    Supplier.objects.filter(pk=supplier.pk).update(**updates)
    log.info("suppliers.read supplier=%s full=%s counts=%s", supplier.slug, full, result.counts)
    return result


def _read(supplier: Supplier, *, full: bool, started: datetime, result: ReadResult) -> None:
    overlap = getattr(settings, "SUPPLIER_DELTA_OVERLAP_SECONDS", 120)
    # Feeds are always whole files: every CSV or YML read is a full one.
    full = full or supplier.kind != Supplier.Kind.API or supplier.delta_cursor is None
    since = None if full else supplier.delta_cursor - timedelta(seconds=overlap)
    with Spool() as spool:
        if supplier.kind == Supplier.Kind.API:
            client = SupplierClient(supplier, timeout=settings.SUPPLIER_TIMEOUT)
            try:
                for records in client.stock_pages(since=since, reject=result.reject):
                    for record in records:
                        spool.add(record)
            finally:
                client.close()
        else:
            with feeds.download(supplier.url, headers=feed_headers(supplier), timeout=settings.SUPPLIER_TIMEOUT) as raw:
                result.count("bytes", feeds.file_size(raw))
                if supplier.kind == Supplier.Kind.CSV:
                    parsed = feeds.parse_csv(raw, sku_column=supplier.csv_sku_column,
                                             stock_column=supplier.csv_stock_column,
                                             delimiter=supplier.csv_delimiter, encoding=supplier.csv_encoding,
                                             reject=result.reject)
                else:
                    parsed = feeds.parse_yml(raw, sku_source=supplier.yml_sku_source,
                                             in_stock_quantity=supplier.yml_in_stock_quantity, reject=result.reject)
                for record in parsed:
                    spool.add(record)
        result.count("read", spool.count)
        # The read is complete: from here on, write.
        records_apply(supplier, spool.batches(BATCH), via="full" if full else "sync",
                      complete=full and supplier.zero_missing, checked_at=started, result=result,
                      single=spool.count <= SINGLE_WRITE_MAX)


def records_apply(supplier: Supplier, batches: Iterable[list[Record]], *, via: str, complete: bool,
                  checked_at: datetime | None, result: ReadResult, single: bool = True) -> None:
    """Map and write records. `complete`: a complete full read of a zero-missing supplier (what it
    no longer lists goes to 0). `single`: gather everything into one stock write."""
    warehouse = supplier.warehouse()
    source = supplier.source
    gathered: dict[int, tuple[Decimal, Decimal]] = {}
    seen: set[int] = set()
    for batch in batches:
        figures = _map(supplier, batch, result)
        if single:
            gathered.update(figures)
            continue
        seen.update(figures)
        _write(warehouse.pk, figures, source=source, via=via, complete=False, checked_at=checked_at, result=result)
    if single:
        _write(warehouse.pk, gathered, source=source, via=via, complete=complete, checked_at=checked_at, result=result)
        return
    if complete:
        missing = [o for o in StockLevel.objects.filter(warehouse_id=warehouse.pk, source=source)
                   .exclude(stock=0).values_list("offer_id", flat=True).iterator(chunk_size=10_000) if o not in seen]
        for chunk in chunked(missing, BATCH):
            _write(warehouse.pk, {o: (ZERO, ZERO) for o in chunk}, source=source, via=via, complete=False,
                   checked_at=checked_at, result=result)


def _map(supplier: Supplier, batch: list[Record], result: ReadResult) -> dict[int, tuple[Decimal, Decimal]]:
    skus = [r.sku for r in batch]
    barcodes = {r.sku: list(r.barcodes) for r in batch if r.barcodes}
    names = {r.sku: r.name for r in batch if r.name}
    matched = external_skus_match(source=supplier.source, skus=skus, barcodes=barcodes or None, names=names or None)
    figures: dict[int, tuple[Decimal, Decimal]] = {}
    mapped = 0
    for record in batch:
        offer_id = matched.get(record.sku)
        if offer_id is None:
            result.count("unmapped")
            continue
        figures[offer_id] = (_dec(record.stock), ZERO)
        mapped += 1
    result.count("mapped", mapped)
    _remember(supplier, {r.sku: matched[r.sku] for r in batch if r.sku in matched})
    return figures


def _remember(supplier: Supplier, matched: dict[str, int]) -> None:
    """Keep their SKU for our offer where it is not our own SKU (a barcode or a manager's mapping):
    the live check asks the supplier by it. Equal SKUs need no row (the live check falls back to
    our SKU), so a supplier listing our SKUs costs nothing here."""
    if not matched:
        return
    ours = dict(Offer.objects.filter(pk__in=list(set(matched.values()))).values_list("pk", "sku"))
    now = timezone.now()
    rows = [(supplier.pk, sku, offer_id, now) for sku, offer_id in matched.items() if ours.get(offer_id) != sku]
    if rows:
        bulk_upsert(SupplierSku, rows, fields=["supplier_id", "sku", "offer_id", "seen_at"],
                    unique_fields=["supplier_id", "sku"], update_fields=["offer_id"])


def _write(warehouse_id: int, figures: dict, *, source: str, via: str, complete: bool, checked_at, result: ReadResult):
    if not figures and not complete:
        return
    written = stock_levels_set(warehouse_id=warehouse_id, figures=figures, source=source, via=via,
                               complete=complete, checked_at=checked_at)
    result.count("changed", len(written.changed))
    result.count("unchanged", written.unchanged)
    result.restocked.extend(written.restocked)


