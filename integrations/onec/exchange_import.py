"""Importing an uploaded CommerceML file in a worker (the exchange's `import` answers `progress`
meanwhile, then `success` or `failure`).

* The whole file is checked first (`commerceml.document_check`): malformed, cut short, a DTD or
  the wrong root fail the import with the reason and change nothing.
* Then it is read as a stream and written in batches (bounded memory): catalog items
  (`import.xml`) become `OnecItem` rows, warehouses `OnecWarehouse` rows, and offers are matched
  (`Артикул`, else the article `import.xml` gave for that `Ид`, else the `Ид` itself; barcodes;
  a manager's mapping — catalog.services.external_skus_match) and their quantities written per
  warehouse `1c:{Склад name}` (`1c` when the offer gives only its total) through
  stock.services.stock_levels_set (via "exchange").
* A complete document (`СодержитТолькоИзменения="false"`): in every warehouse it covers, the 1C
  stock it no longer lists becomes 0 (levels its batches neither wrote nor confirmed).
* Claimed with one conditional UPDATE; a worker that dies leaves the upload `importing` with an
  old heartbeat, and the sweeper queues it again.
"""
from __future__ import annotations

import logging
from collections import defaultdict
from datetime import timedelta
from decimal import Decimal

from django.db.models import Q
from django.utils import timezone

from catalog.services import external_skus_match
from syncsite import publish as publisher

from . import commerceml
from .exchange_files import upload_path
from .mapping import SOURCE
from .models import ExchangeUpload, OnecItem, OnecWarehouse
from .services import ApplyResult, figures_write, missing_zero, warehouse_for

log = logging.getLogger("syncsite.onec.exchange")
State = ExchangeUpload.State

#: offers matched and written together
OFFER_BATCH = 5_000
#: catalog items upserted together
ITEM_BATCH = 2000
#: an import whose heartbeat is older than this lost its worker
STALE = timedelta(minutes=5)
#: a queued import the broker never delivered is re-signalled after this
REQUEUE_AFTER = timedelta(minutes=1)


def import_signal(upload_id: int) -> bool:
    from .tasks import exchange_import_task

    return publisher.publish(exchange_import_task, upload_id, wait=0)


#: exchange sessions (and whatever files they left) are forgotten this long after their last call
SESSION_KEEP = timedelta(days=7)


def sessions_forget() -> int:
    """Drop sessions unused for SESSION_KEEP with their uploads' rows and files (none importing)."""
    from .exchange_files import session_remove
    from .models import ExchangeSession

    old = list(ExchangeSession.objects.filter(seen_at__lt=timezone.now() - SESSION_KEEP).exclude(
        uploads__state__in=[State.QUEUED, State.IMPORTING]).values_list("pk", flat=True)[:200])
    for session_id in old:
        session_remove(session_id)
    ExchangeSession.objects.filter(pk__in=old).delete()
    return len(old)


def imports_sweep() -> int:
    now = timezone.now()
    sessions_forget()
    stale = ExchangeUpload.objects.filter(state=State.IMPORTING).filter(
        Q(heartbeat_at__lt=now - STALE) | Q(heartbeat_at__isnull=True, started_at__lt=now - STALE))
    stale.update(state=State.QUEUED, queued_at=now - REQUEUE_AFTER)
    ids = list(ExchangeUpload.objects.filter(state=State.QUEUED, queued_at__lt=now - REQUEUE_AFTER)
               .values_list("pk", flat=True)[:50])
    for upload_id in ids:
        import_signal(upload_id)
    return len(ids)


class _Importer:
    def __init__(self, upload: ExchangeUpload):
        self.upload = upload
        self.checked_at = upload.started_at or timezone.now()
        self.result = ApplyResult()
        self.doc_warehouses: dict[str, str] = {}
        self._known: dict[str, str] | None = None
        self.complete = False
        self.kind = ""
        self.offers: list[commerceml.OfferRecord] = []
        self.items: list[commerceml.CatalogItem] = []
        self.covered: set[int] = set()     # our warehouse ids this document spoke for
        self.errors: list[str] = []

    # -- warehouses ---------------------------------------------------------------------------
    def warehouse_name(self, onec_id: str) -> str:
        if onec_id in self.doc_warehouses:
            return self.doc_warehouses[onec_id]
        if self._known is None:
            self._known = dict(OnecWarehouse.objects.values_list("onec_id", "name"))
        return self._known.get(onec_id) or onec_id

    def warehouse_seen(self, w: commerceml.Warehouse) -> None:
        self.doc_warehouses[w.id] = w.name
        OnecWarehouse.objects.update_or_create(onec_id=w.id[:160], defaults={"name": w.name[:255],
                                                                          "updated_at": timezone.now()})

    # -- records --------------------------------------------------------------------------------
    def error(self, ref: str, message: str) -> None:
        self.result.add("errors")
        if len(self.errors) < 50:
            self.errors.append(f"{ref}: {message}")

    def run(self, stream) -> None:
        for record in commerceml.read_ahead(commerceml.document_read(stream)):
            if isinstance(record, commerceml.OfferRecord):
                self.offers.append(record)
                if len(self.offers) >= OFFER_BATCH:
                    self.flush_offers()
            elif isinstance(record, commerceml.CatalogItem):
                self.items.append(record)
                if len(self.items) >= ITEM_BATCH:
                    self.flush_items()
            elif isinstance(record, commerceml.Warehouse):
                self.warehouse_seen(record)
            elif isinstance(record, commerceml.Package):
                self.kind = record.kind
                self.complete = record.kind == "offers" and record.only_changes is False
        self.flush_items()
        self.flush_offers()
        # A complete document speaks for its warehouses only if it carries quantities at all
        # (CommerceML 2.10 sends prices in an offers package of their own, with no stock in it).
        if self.complete and self.result.counts.get("with_quantity"):
            for onec_id, name in self.doc_warehouses.items():
                self.covered.add(warehouse_for(name).pk)
            for warehouse_id in sorted(self.covered):
                missing_zero(warehouse_id=warehouse_id, checked_at=self.checked_at, via="exchange",
                             result=self.result)

    def flush_items(self) -> None:
        if not self.items:
            return
        now = timezone.now()
        rows = {i.id[:160]: OnecItem(onec_id=i.id[:160], sku=i.sku[:255], barcode=i.barcode[:64], name=i.name,
                                     updated_at=now) for i in self.items}
        OnecItem.objects.bulk_create(list(rows.values()), update_conflicts=True, unique_fields=["onec_id"],
                                     update_fields=["sku", "barcode", "name", "updated_at"])
        self.result.add("catalog_items", len(rows))
        self.items = []
        self.beat()

    def flush_offers(self) -> None:
        offers, self.offers = self.offers, []
        if not offers:
            return
        # Ид -> what import.xml said (article, barcode) for offers that do not carry their own.
        wanted = {o.id for o in offers if o.id and not o.sku}
        known = {row[0]: row[1:] for row in OnecItem.objects.filter(onec_id__in=wanted)
                 .values_list("onec_id", "sku", "barcode")} if wanted else {}
        keyed: list[tuple[str, commerceml.OfferRecord]] = []
        barcodes: dict[str, list[str]] = {}
        names: dict[str, str] = {}
        for offer in offers:
            if offer.problem:
                self.error(offer.id or offer.sku or "?", offer.problem)
                continue
            if not offer.id and not offer.sku:
                self.error("?", "an offer without Ид or Артикул")
                continue
            sku, codes = offer.sku, list(offer.barcodes)
            if not sku and offer.id in known:
                sku, code = known[offer.id]
                codes += [code] if code else []
            # A variant (`product#characteristic`) without an article of its own is not its
            # product: only its own Ид, barcode or a manager's mapping may match it.
            key = (sku or offer.id)[:255]
            if codes:
                barcodes[key] = codes
            if offer.name:
                names[key] = offer.name
            keyed.append((key, offer))
        matched = external_skus_match(source=SOURCE, skus=[k for k, _ in keyed], barcodes=barcodes, names=names)
        per_warehouse: dict[str, dict[int, Decimal]] = defaultdict(lambda: defaultdict(Decimal))
        for key, offer in keyed:
            offer_id = matched.get(key)
            if offer_id is None:
                self.result.add("unmatched")
                continue
            self.result.add("matched")
            if offer.by_warehouse or offer.total is not None:
                self.result.add("with_quantity")
            if offer.by_warehouse:
                for wid, qty in offer.by_warehouse.items():
                    per_warehouse[self.warehouse_name(wid)][offer_id] += _non_negative(qty, self.result)
            elif offer.total is not None:
                per_warehouse[""][offer_id] += _non_negative(offer.total, self.result)
            else:
                self.result.add("no_quantity")
        self.result.add("offers", len(offers))
        for name, figures in per_warehouse.items():
            warehouse = warehouse_for(name)
            self.covered.add(warehouse.pk)
            figures_write(warehouse_id=warehouse.pk, figures=figures, via="exchange", checked_at=self.checked_at,
                          result=self.result)
        self.beat()

    def beat(self) -> None:
        ExchangeUpload.objects.filter(pk=self.upload.pk).update(heartbeat_at=timezone.now(),
                                                                counts=dict(self.result.counts))


def _non_negative(value: Decimal, result: ApplyResult) -> Decimal:
    """1C allows negative balances (sold before it was received): we have none to sell."""
    if value < 0:
        result.add("negative_as_zero")
        return Decimal(0)
    return value


def upload_import(*, upload_id: int) -> str:
    """Import one uploaded file; returns its final state."""
    now = timezone.now()
    claimed = ExchangeUpload.objects.filter(pk=upload_id).filter(
        Q(state=State.QUEUED) | Q(state=State.IMPORTING, heartbeat_at__lt=now - STALE)).update(
        state=State.IMPORTING, started_at=now, heartbeat_at=now, error="")
    if not claimed:
        return "not-claimed"
    upload = ExchangeUpload.objects.select_related("session").get(pk=upload_id)
    path = upload_path(upload.session_id, upload.filename)
    importer = _Importer(upload)
    try:
        if not path.is_file():
            raise commerceml.DocumentError(f"{upload.filename} is gone from the server (the session was cleaned up)")
        with path.open("rb") as stream:
            commerceml.document_check(stream)
        with path.open("rb") as stream:
            importer.run(stream)
    except Exception as exc:
        path.unlink(missing_ok=True)   # its outcome is on the row; 1C sends the file again next time
        reason = str(exc) if isinstance(exc, commerceml.DocumentError) else f"{exc.__class__.__name__}: {exc}"
        ExchangeUpload.objects.filter(pk=upload_id).update(
            state=State.FAILED, error=reason[:4000], finished_at=timezone.now(), counts=dict(importer.result.counts))
        log.warning("onec.exchange.import-failed upload=%s file=%s %s", upload_id, upload.filename, reason[:300])
        if not isinstance(exc, commerceml.DocumentError):
            log.exception("onec.exchange.import-crashed upload=%s", upload_id)
        return State.FAILED
    path.unlink(missing_ok=True)
    counts = dict(importer.result.counts)
    error = "; ".join(importer.errors)
    ExchangeUpload.objects.filter(pk=upload_id).update(state=State.DONE, counts=counts, error=error[:4000],
                                                       finished_at=timezone.now())
    log.info("onec.exchange.imported upload=%s file=%s %s", upload_id, upload.filename, counts)
    return State.DONE
