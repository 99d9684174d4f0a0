"""MoySklad → site: catalog (folders, products, variants) and stock. Each page is written in bulk
(a few statements a page, never a query per row); a record that cannot be mapped is recorded on
the run and skipped, the rest of the page lands. Catalog rows are written by catalog.services
alone: this module maps, calls it and binds the result to MoySklad's ids."""
from __future__ import annotations

import logging
import threading
import time
from collections import defaultdict
from contextlib import ExitStack
from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait
from datetime import timedelta
from decimal import Decimal

import psycopg
from django.db import connections, router, transaction
from django.utils import timezone

from catalog.models import Barcode, Offer, Product
from catalog.services import CategoryIn, ProductIn, UnitIn, catalog_archive, categories_write, offers_write, products_write
from integrations.http.errors import MappingError
from integrations.models import CategoryBinding, OfferBinding, ProductBinding, System, WarehouseBinding
from integrations.runs import JobContext
from stock.models import StockLevel, Warehouse
from stock.services import stock_levels_set, warehouse_ships_orders_set
from syncsite.bulk import Keys, PlannerStats, bulk_insert, bulk_session, bulk_upsert, in_chunks

from .client import MoySkladClient
from .constants import CHANGED_SINCE_MARGIN, CHANGED_SINCE_MAX_HOURS
from .mapping import (
    OfferData,
    PriceType,
    ProductData,
    map_folder,
    map_product,
    map_variant,
    parse_msk,
    stock_quantity,
)
from .schemas import PRODUCT_PAGE, VARIANT_PAGE, Page, StockReportRow

log = logging.getLogger("syncsite.moysklad")
MS = System.MOYSKLAD
LIST_ORDER = "id"  # a stable key: see catalog_import
ID_LOOKUP_CHUNK = 100  # ids per `filter=id=…;id=…` request (URL and headers must stay under 8 KB)
# Long lists are fetched this many pages at a time (of the 5 parallel requests MoySklad allows):
# the limiter still paces them, so a full import takes the budget's time, not the latencies'.
PAGES_IN_FLIGHT = 3
# A long catalog list is written this many pages at once on PostgreSQL (CatalogWriters): while
# one page's COPY, constraint checks and commit run in the database, the next is looked up and
# planned here.
CATALOG_WRITERS = 2
# A full stock read writes this many stores at once on PostgreSQL: while one store's rows are
# planned and formatted here, the other's INSERT and commit run in the database (different
# warehouses, different rows: the writers never wait for each other's locks).
STOCK_WRITERS = 2


def _bindings(model, ext_ids, local: str, archived: str | None = None) -> dict[str, tuple]:
    """external id -> (local id, external_updated_at[, local row archived]), one query a chunk."""
    fields = ["external_id", local, "external_updated_at"] + ([archived] if archived else [])
    return {
        row[0]: tuple(row[1:])
        for row in in_chunks(
            lambda chunk: model.objects.filter(system=MS, external_id__any=Keys(chunk)).values_list(*fields), ext_ids)
    }


# ------------------------------------------------------------------------------------------------
# Warehouses
# ------------------------------------------------------------------------------------------------
def warehouses_import(client: MoySkladClient, ctx: JobContext) -> dict[str, int]:
    """Stores -> Warehouse; returns {store id: warehouse id} for active stores."""
    rows = client.stores()
    bad = [r for r in rows if not isinstance(r, dict)]
    rows = [r for r in rows if isinstance(r, dict)]
    for _ in bad:
        ctx.error("?", "malformed store row")
    bound = _bindings(WarehouseBinding, [r.get("id") for r in rows if r.get("id")], "warehouse_id")
    now = timezone.now()
    result: dict[str, int] = {}
    with transaction.atomic():
        for row in rows:
            ext = row.get("id")
            if not ext or not row.get("name"):
                ctx.error(ext or "?", "malformed store row")
                continue
            code = (row.get("code") or "").strip() or ext[:8]
            archived = bool(row.get("archived"))
            if ext in bound:
                wid = bound[ext][0]
                Warehouse.objects.filter(pk=wid).update(name=row["name"][:255], archived=archived, updated_at=now)
            else:
                if Warehouse.objects.filter(code=code).exists():
                    code = f"{code}-{ext[:8]}"
                wid = Warehouse.objects.create(name=row["name"][:255], code=code[:64], archived=archived,
                                               source=MS).pk
                WarehouseBinding.objects.create(system=MS, external_id=ext, warehouse_id=wid,
                                                external_code=(row.get("externalCode") or "")[:255])
            WarehouseBinding.objects.filter(system=MS, external_id=ext).update(
                external_updated_at=parse_msk(row.get("updated")), synced_at=now)
            if not archived:
                result[ext] = wid
        _shipping_store_mark(client, rows, result, ctx)
    ctx.count("warehouses", len(rows))
    return result


def _shipping_store_mark(client: MoySkladClient, rows: list[dict], active: dict[str, int], ctx: JobContext) -> None:
    """Site orders reserve first from the store they are exported to (MOYSKLAD_STORE_ID, else the
    account's first store, as the order export resolves it)."""
    from .orders import _pick

    setting = (client.conf.get("STORE_ID") or "").strip()
    try:
        store = _pick(rows, setting, "store", "MOYSKLAD_STORE_ID") if rows else None
    except MappingError as exc:
        ctx.error("MOYSKLAD_STORE_ID", str(exc))
        return
    warehouse_ships_orders_set(warehouse_id=active.get(store["id"]) if store else None)


# ------------------------------------------------------------------------------------------------
# Catalog
# ------------------------------------------------------------------------------------------------
# Pages are decoded straight into typed rows (schemas.py, msgspec) by the threads that fetch
# them, mapped by the pure functions of mapping.py, and handed to catalog.services, which owns
# every catalog write. This section binds what the service wrote to MoySklad's ids.
def catalog_import(ctx: JobContext) -> None:
    with MoySkladClient() as client, bulk_session():
        # The price type first: a configured one the account lacks fails the run before anything
        # is written (PriceTypeError names the account's types).
        price_type = client.sale_price_type()
        if price_type is None:
            ctx.error("pricetype", "the MoySklad account has no sale price types: units are imported without a price")
        if ctx.since is None:
            # Stores belong to the stock job, which reads them every run; the catalog reads them
            # on a first or full run only, so a delta is four requests: price types, folders,
            # products, variants.
            warehouses_import(client, ctx)
        seen_folders = folders_import(client, ctx)
        filters = client.delta_filters(ctx.since)
        seen_products: set[str] | None = set() if ctx.full else None
        seen_offers: set[str] | None = set() if ctx.full else None

        planner = PlannerStats(Product, ProductBinding, Offer, OfferBinding, Barcode)  # a first import fills them

        # Offset paging has no snapshot. Ordered by `updated`, a record edited while we page jumps
        # to the end and shifts the rest back: the row at the next page boundary is never read.
        # Ordered by id, an edit moves nothing (the record is read again next run).
        # Long lists come PAGES_IN_FLIGHT pages at a time, fetched and decoded while the pages
        # before them are written, so the import takes the rate limit's time, not ours.
        total = 0
        with CatalogWriters(ctx) as writers:
            for page in client.iter_pages("product", filters=filters, order=LIST_ORDER, parallel=PAGES_IN_FLIGHT,
                                          parse=PageMapper(PRODUCT_PAGE, map_product, "product", price_type)):
                if not total:
                    total = page.meta.size or 0
                    ctx.set_total(total)
                writers.write(products_import_page, page, price_type=price_type, seen_products=seen_products,
                              seen_offers=seen_offers)
                planner.added(page.count)
            writers.drain()   # a variant's product must be there before the variant is written
            vtotal = 0
            for page in client.iter_pages("variant", filters=filters, order=LIST_ORDER, parallel=PAGES_IN_FLIGHT,
                                          parse=PageMapper(VARIANT_PAGE, map_variant, "variant", price_type)):
                if not vtotal:
                    vtotal = page.meta.size or 0
                    ctx.set_total((ctx.total or 0) + vtotal)
                writers.write(variants_import_page, page, price_type=price_type, seen_offers=seen_offers)
                planner.added(page.count)
        if ctx.full:
            catalog_reconcile(client, ctx, seen_folders=seen_folders, seen_products=seen_products or set(),
                              seen_offers=seen_offers or set(), price_type=price_type)
        ctx.count("requests", client.stats.requests)
        ctx.count("retries", client.stats.retries)
        ctx.count("rate_limited", client.stats.rate_limited)


class _PageReport:
    """What a page reports on the run (counts, record errors, progress), held until its
    transaction has committed: a page written again after a conflict reports once."""

    def __init__(self):
        self.calls: list[tuple] = []

    def count(self, key: str, n: int = 1) -> None:
        self.calls.append(("count", key, n))

    def error(self, ref: str, message: str) -> None:
        self.calls.append(("error", ref, message))

    def advance(self, n: int = 1) -> None:
        self.calls.append(("advance", n))

    def replay(self, ctx: JobContext) -> None:
        for name, *args in self.calls:
            getattr(ctx, name)(*args)


class CatalogWriters:
    """Pages of a long list written CATALOG_WRITERS at a time on PostgreSQL, each writer a thread
    with its own connection (kept for the whole list, in a bulk session) and a transaction per
    page; the pages' reports reach the run in page order.

    Two pages written side by side never see each other's uncommitted rows, so a record listed
    in both (offset paging on moving data) or a SKU used in both would pass both lookups; the
    unique keys stop the later page (a unique violation, or a deadlock PostgreSQL breaks), and
    that page is written again alone once the other has committed, when its lookups see it: the
    outcome is the serial one. SQLite, or a caller's open transaction: pages are written in turn
    in the caller's thread."""

    def __init__(self, ctx: JobContext, writers: int = CATALOG_WRITERS):
        self.ctx = ctx
        self.writers = writers if writers > 1 and _writes_in_threads(Product) else 0
        self.threads: list[ThreadPoolExecutor] = []   # one thread each: a page goes to a known writer
        self.writing: list[tuple] = []   # (future, report, func, page, options), oldest first
        self.written = 0
        self.conflicts = 0

    def __enter__(self) -> "CatalogWriters":
        try:
            for i in range(self.writers):
                thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"moysklad-catalog-write-{i}")
                self.threads.append(thread)
                thread.submit(_session_open).result()
        except BaseException:
            self.__exit__(None, None, None)   # close the sessions already open
            raise
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        try:
            if exc_type is None:
                self.drain()
        finally:
            # after a failure, the pages in flight end first; then each writer's session closes
            for thread in self.threads:
                thread.submit(_session_close)
                thread.shutdown(wait=True)
            if self.conflicts:
                self.ctx.count("pages_rewritten", self.conflicts)

    def write(self, func, page, **options) -> None:
        if not self.writers:
            func(page, self.ctx, **options)
            return
        while len(self.writing) >= self.writers:
            self._finish_oldest()
        report = _PageReport()
        thread = self.threads[self.written % self.writers]   # the oldest page's writer: free now
        self.written += 1
        self.writing.append((thread.submit(func, page, report, **options), report, func, page, options))

    def drain(self) -> None:
        while self.writing:
            self._finish_oldest()

    def _finish_oldest(self) -> None:
        future, report, func, page, options = self.writing.pop(0)
        try:
            future.result()
        except Exception as exc:
            if not _collided(exc):
                raise
            log.info("moysklad-catalog: a page collided with the one written beside it (%s); written again alone",
                     str(exc).splitlines()[0][:200])
            self.conflicts += 1
            self.drain()   # the others commit first: the page's lookups then see their rows
            func(page, self.ctx, **options)
            return
        report.replay(self.ctx)


def _collided(exc: BaseException) -> bool:
    """A unique key another transaction holds, or a deadlock PostgreSQL broke (Django's wrapper
    or psycopg's own error: COPY raises the latter)."""
    return any(isinstance(e, (psycopg.errors.UniqueViolation, psycopg.errors.DeadlockDetected))
               for e in (exc, exc.__cause__))


_writer_session = threading.local()


def _session_open() -> None:
    """A writer thread's connection in a bulk session for as long as the thread writes."""
    _writer_session.stack = ExitStack()
    _writer_session.stack.enter_context(bulk_session())


def _session_close() -> None:
    try:
        if getattr(_writer_session, "stack", None) is not None:
            _writer_session.stack.close()
            _writer_session.stack = None
    finally:
        connections.close_all()  # this thread's connections only


def folders_import(client: MoySkladClient, ctx: JobContext) -> set[str]:
    """Folders are few: read them all every run, then one catalog write for them all. Returns the
    ids of every folder listed (mapped or not)."""
    folders = []
    seen: set[str] = set()
    for row in client.iter_rows("productfolder", filters=["archived=true", "archived=false"]):
        if isinstance(row, dict) and row.get("id"):
            seen.add(str(row["id"]))
        try:
            folders.append(map_folder(row))
        except MappingError as exc:
            ctx.error(row.get("id", "?") if isinstance(row, dict) else "?", f"folder: {exc}")
    folders = _latest_by_id(folders)
    bound = _bindings(CategoryBinding, [f.external_id for f in folders], "category_id")
    position = {f.external_id: i for i, f in enumerate(folders)}
    now = timezone.now()
    items = [CategoryIn(id=bound[f.external_id][0] if f.external_id in bound else None, name=f.name, path=f.path,
                        archived=f.archived, parent_index=position.get(f.parent_external_id)) for f in folders]
    with transaction.atomic():
        ids = categories_write(categories=items)
        _bind(CategoryBinding, "category_id", [(f.external_id, pk, "", f.updated) for f, pk in zip(folders, ids)],
              bound, now)
    ctx.count("folders", len(folders))
    return seen


def _latest_by_id(items: list, key=lambda x: x.external_id) -> list:
    """A page may carry one record twice (offset paging on moving data): keep the newest."""
    best: dict[str, object] = {}
    for item in items:
        k = key(item)
        if k not in best or (item.updated or timezone.now()) >= (best[k].updated or timezone.now()):
            best[k] = item
    return list(best.values())


class PageMapper:
    """Decode and map a page in the thread that fetched it. Mapping is pure, so it can run there,
    while the main thread writes the pages before (psycopg waits for the database without holding
    the GIL): the import's CPU work overlaps its database work instead of adding to it."""

    def __init__(self, decoder, mapper, kind: str, price_type: PriceType | None):
        self.decoder, self.mapper, self.kind, self.price_type = decoder, mapper, kind, price_type

    def __call__(self, content: bytes) -> Page:
        page = self.decoder(content)
        kind = self.kind
        bad = [(ref, f"{kind} {ref}: malformed {kind} row: {message}") for ref, message in page.bad]
        mapped = []
        for row in page.rows:
            try:
                mapped.append(self.mapper(row, price_type=self.price_type))
            except MappingError as exc:
                bad.append((row.id or "?", f"{kind} {row.id or '?'}: {exc}"))
        return Page(page.meta, mapped, bad, mapped=True)


def _mapped_rows(page: Page, ctx: JobContext, seen: list[set | None]) -> tuple[list, int]:
    """(mapped rows, how many rows the page held) of a page PageMapper made; its misfits go on
    the run (and count as seen, so a full run never archives them for it)."""
    for ref, message in page.bad:
        ctx.error(ref, message)
        for s in seen:
            if s is not None and ref != "?":
                s.add(ref)
    return page.rows, page.count


def _page_rows(rows, ctx: JobContext, kind: str, seen: list[set | None]) -> tuple[list, int]:
    """(rows that fit the typed view, how many rows the page held). Rows that did not fit are
    recorded on the run (and count as seen, so a full run never archives them for it)."""
    if isinstance(rows, Page):
        for ref, message in rows.bad:
            ctx.error(ref, f"{kind} {ref}: malformed {kind} row: {message}")
            for s in seen:
                if s is not None and ref != "?":
                    s.add(ref)
        return rows.rows, rows.count
    return list(rows), len(rows)


def products_import_page(rows, ctx: JobContext, *, price_type: PriceType | None = None,
                         seen_products: set | None = None, seen_offers: set | None = None,
                         advance: bool = True) -> None:
    """One page of products (a decoded Page, or rows as dicts) -> catalog.services.products_write."""
    mapped: list[ProductData] = []
    if isinstance(rows, Page) and rows.mapped:
        mapped, size = _mapped_rows(rows, ctx, [seen_products, seen_offers])
    else:
        rows, size = _page_rows(rows, ctx, "product", [seen_products, seen_offers])
        for row in rows:
            try:
                mapped.append(map_product(row, price_type=price_type))
            except MappingError as exc:
                ref = _ref(row)
                ctx.error(ref, f"product {ref}: {exc}")
                if seen_products is not None and ref != "?":
                    seen_products.add(ref)  # present upstream: never archive it for this
                    seen_offers.add(ref)
    mapped = _latest_by_id(mapped)
    if seen_products is not None:
        seen_products.update(p.external_id for p in mapped)
        seen_offers.update(p.external_id for p in mapped if p.offer)
    bound = _bindings(ProductBinding, [p.external_id for p in mapped], "product_id", "product__archived")
    todo = [p for p in mapped if not _up_to_date(bound.get(p.external_id), p.updated, p.archived)]
    ctx.count("up_to_date", len(mapped) - len(todo))
    folder_ids = {ext: v[0] for ext, v in _bindings(
        CategoryBinding, {p.folder_external_id for p in todo if p.folder_external_id}, "category_id").items()}
    unit_bound = _bindings(OfferBinding, [p.offer.external_id for p in todo if p.offer], "offer_id")
    items: list[ProductIn] = []
    for p in todo:
        if p.folder_external_id and p.folder_external_id not in folder_ids:
            ctx.error(p.external_id, f"product {p.external_id}: unknown folder {p.folder_external_id}; kept without category")
        items.append(ProductIn(
            id=bound[p.external_id][0] if p.external_id in bound else None, name=p.name, description=p.description,
            category_id=folder_ids.get(p.folder_external_id) if p.folder_external_id else None,
            archived=p.archived, vat=p.vat, price=p.price, has_variants=p.has_variants, changed_at=p.updated,
            unit=_unit(p.offer, unit_bound) if p.offer else None))
    now = timezone.now()
    with transaction.atomic():
        result = products_write(products=items)
        _record_taken(result.rejected, [p.offer for p in todo], ctx)
        written = [(p, pk) for p, pk in zip(todo, result.product_ids) if pk is not None]
        _bind(ProductBinding, "product_id", [(p.external_id, pk, p.external_code, p.updated) for p, pk in written],
              bound, now)
        units = [p.offer for p, _ in written if p.offer]
        _bind(OfferBinding, "offer_id", [(o.external_id, pk, o.sku, o.updated) for o, pk in zip(units, result.offer_ids)],
              unit_bound, now, kind="product")
    ctx.count("products_created", result.products_created)
    ctx.count("products_updated", len(written) - result.products_created)
    ctx.count("products_changed", len(result.products_changed))
    ctx.count("offers_changed", len(result.offers_changed))
    if advance:
        ctx.advance(size)


def variants_import_page(rows, ctx: JobContext, *, price_type: PriceType | None = None,
                         seen_offers: set | None = None, advance: bool = True) -> None:
    """One page of variants -> catalog.services.offers_write. A variant without a price of its own
    takes its product's (as stored by the product pages, read before the variants)."""
    mapped: list[OfferData] = []
    if isinstance(rows, Page) and rows.mapped:
        mapped, size = _mapped_rows(rows, ctx, [seen_offers])
    else:
        rows, size = _page_rows(rows, ctx, "variant", [seen_offers])
        for row in rows:
            try:
                mapped.append(map_variant(row, price_type=price_type))
            except MappingError as exc:
                ref = _ref(row)
                ctx.error(ref, f"variant {ref}: {exc}")
                if seen_offers is not None and ref != "?":
                    seen_offers.add(ref)
    mapped = _latest_by_id(mapped)
    if seen_offers is not None:
        seen_offers.update(v.external_id for v in mapped)
    bound = _bindings(OfferBinding, [v.external_id for v in mapped], "offer_id", "offer__archived")
    todo = [v for v in mapped if not _up_to_date(bound.get(v.external_id), v.updated, v.archived)]
    ctx.count("up_to_date", len(mapped) - len(todo))
    parents = {ext: (pk, price) for ext, pk, price in in_chunks(
        lambda c: ProductBinding.objects.filter(system=MS, external_id__any=Keys(c)).values_list(
            "external_id", "product_id", "product__price"), list({v.product_external_id for v in todo}))}
    ready: list[OfferData] = []
    items: list[UnitIn] = []
    for v in todo:
        parent = parents.get(v.product_external_id)
        if parent is None:
            ctx.error(v.external_id, f"variant {v.external_id}: product {v.product_external_id} not imported (skipped)")
            continue
        unit = _unit(v, bound)
        unit.product_id = parent[0]
        if not v.own_price:
            unit.price, unit.price_from_product = parent[1], True
        ready.append(v)
        items.append(unit)
    now = timezone.now()
    with transaction.atomic():
        result = offers_write(offers=items)
        _record_taken(result.rejected, ready, ctx)
        _bind(OfferBinding, "offer_id", [(v.external_id, pk, v.sku, v.updated)
                                         for v, pk in zip(ready, result.offer_ids) if pk is not None],
              bound, now, kind="variant")
    written = sum(1 for pk in result.offer_ids if pk is not None)
    ctx.count("variants_created", result.offers_created)
    ctx.count("variants_updated", written - result.offers_created)
    ctx.count("offers_changed", len(result.offers_changed))
    if advance:
        ctx.advance(size)


def _ref(row) -> str:
    if isinstance(row, dict):
        return str(row.get("id") or "?")
    return getattr(row, "id", None) or "?"


def _unit(o: OfferData, bound: dict) -> UnitIn:
    return UnitIn(id=bound[o.external_id][0] if o.external_id in bound else None, sku=o.sku, name=o.name,
                  price=o.price, article=o.article, code=o.code, archived=o.archived,
                  is_variant=o.kind == "variant", characteristics=o.characteristics, barcodes=o.barcodes)


def _record_taken(rejected, offers: list, ctx: JobContext) -> None:
    """Put the units the service refused for their SKU on the run, naming who holds the SKU."""
    if not rejected:
        return
    holders = dict(OfferBinding.objects.filter(system=MS, offer_id__in={r.holder_id for r in rejected if r.holder_id})
                   .values_list("offer_id", "external_id"))
    for r in rejected:
        o = offers[r.index]
        if r.other_index is not None:
            why = f"also on {offers[r.other_index].external_id} in this page"
        elif r.holder_id in holders:
            why = f"already used by MoySklad item {holders[r.holder_id]}"
        else:
            why = "a site offer not linked to MoySklad has it"
        ctx.error(o.external_id, f"duplicate SKU {r.sku!r}: {why}")


def _bind(model, local: str, rows: list[tuple], bound: dict, now, **extra) -> None:
    """Bindings of what was just written: rows (external id, local id, external code, upstream
    `updated`). New ones are inserted (COPY), known ones get their stamps."""
    fields = ["system", "external_id", local, "external_code", "external_updated_at", "synced_at", *extra]
    tail = tuple(extra.values())
    new = [(MS, ext, pk, code[:255], updated, now, *tail) for ext, pk, code, updated in rows if ext not in bound]
    old = [(MS, ext, pk, code[:255], updated, now, *tail) for ext, pk, code, updated in rows if ext in bound]
    if new:
        bulk_insert(model, new, fields=fields, keys=False)   # nothing refers to a binding's own key
    if old:
        bulk_upsert(model, old, fields=fields, unique_fields=["system", "external_id"],
                    update_fields=["external_code", "external_updated_at", "synced_at", *extra])


def _up_to_date(binding: tuple | None, updated, archived: bool) -> bool:
    """We hold this version already (and agree on archived: a row archived here by mistake, say by
    a reconciliation that missed it, comes back as soon as it is listed again)."""
    return bool(binding and binding[1] and updated and binding[1] >= updated and binding[2] == archived)


def catalog_reconcile(client: MoySkladClient, ctx: JobContext, *, seen_folders: set[str], seen_products: set[str],
                      seen_offers: set[str], price_type: PriceType | None = None) -> None:
    """After a complete full read: what we hold bound to MoySklad but the read did not list was
    probably deleted upstream. Offset paging can skip a row, so first look the missing ids up by
    id: rows that come back are imported (they were only missed), the rest is unpublished
    (archived), never deleted."""
    missing_products = {ext: pid for ext, pid in ProductBinding.objects.filter(system=MS).values_list(
        "external_id", "product_id") if ext not in seen_products}
    missing_offers = {ext: (oid, kind) for ext, oid, kind in OfferBinding.objects.filter(system=MS).values_list(
        "external_id", "offer_id", "kind") if ext not in seen_offers}
    # The product itself of a product with variants sells nothing: its old offer stays retired.
    lookup_products = set(missing_products) | {ext for ext, (_, kind) in missing_offers.items()
                                               if kind == "product" and ext not in seen_products}
    lookup_variants = {ext for ext, (_, kind) in missing_offers.items() if kind == "variant"}
    found = 0
    for entity, ids in (("product", lookup_products), ("variant", lookup_variants)):
        rows = _lookup_by_id(client, entity, sorted(ids))
        found += len(rows)
        if entity == "product":
            products_import_page(rows, ctx, price_type=price_type, seen_products=seen_products,
                                 seen_offers=seen_offers, advance=False)
        else:
            variants_import_page(rows, ctx, price_type=price_type, seen_offers=seen_offers, advance=False)
    ctx.count("missed_by_paging", found)
    gone_products = [pid for ext, pid in missing_products.items() if ext not in seen_products]
    gone_offers = [oid for ext, (oid, _) in missing_offers.items() if ext not in seen_offers]
    gone_folders = [cid for ext, cid in CategoryBinding.objects.filter(system=MS).values_list(
        "external_id", "category_id") if ext not in seen_folders]
    archived = catalog_archive(product_ids=gone_products, offer_ids=gone_offers, category_ids=gone_folders)
    ctx.count("deleted_upstream_products", archived.products)
    ctx.count("deleted_upstream_offers", archived.offers)
    ctx.count("deleted_upstream_folders", archived.categories)


def _lookup_by_id(client: MoySkladClient, entity: str, ids: list[str]) -> list[dict]:
    """The rows of `entity` with these ids (active or archived), a hundred ids a request."""
    rows: list[dict] = []
    for chunk in _chunks(ids, ID_LOOKUP_CHUNK):
        filters = [f"id={ext}" for ext in chunk] + ["archived=true", "archived=false"]
        rows += [r for r in client.iter_rows(entity, filters=filters) if isinstance(r, dict) and r.get("id") in chunk]
    return rows


def _chunks(seq, size=500):
    for i in range(0, len(seq), size):
        yield seq[i:i + size]


# ------------------------------------------------------------------------------------------------
# Stock
# ------------------------------------------------------------------------------------------------
def stock_import(ctx: JobContext) -> None:
    """Stock and reserve per item and store from report/stock/bystore/current, written through
    the one stock write service (`stock.services.stock_levels_set`: available = stock − reserve −
    our holds, only real changes written and logged, then the stock-changed hook).

    Delta (cursor within the 24 h `changedSince` allows, less a margin): one call per stock type
    for the whole account; the values are absolute. Otherwise a full read, store by store
    (`complete`: an item the report leaves out has no stock there, so a level we hold for it is
    zeroed); the next store's reports are fetched while this one is written. Each store's
    figures carry the moment its read started, so holds handed over to MoySklad before it are
    released (its reserve counts them now). `upstream_wait_ms` is how long the job waited for
    MoySklad: the rest of its time is ours."""
    with MoySkladClient() as client:
        stores = warehouses_import(client, ctx)
        since = ctx.since
        horizon = timezone.now() - timedelta(hours=CHANGED_SINCE_MAX_HOURS) + CHANGED_SINCE_MARGIN
        full = ctx.full or since is None or since < horizon
        via = "webhook" if ctx.run.trigger == "event" else "full" if full else "sync"
        ctx.count("full_read", int(full))
        waited = 0.0
        if full:
            offers = dict(OfferBinding.objects.filter(system=MS).values_list("external_id", "offer_id")
                          .iterator(chunk_size=10_000))  # never the whole result as one list
            ctx.set_total(len(stores))

            def read(store_ext: str):
                started = timezone.now()
                return (started, client.stock_bystore_current("stock", store_id=store_ext),
                        client.stock_bystore_current("reserve", store_id=store_ext))

            order = list(stores.items())
            writers = STOCK_WRITERS if _writes_in_threads() and STOCK_WRITERS > 1 else 0
            with ThreadPoolExecutor(max_workers=1, thread_name_prefix="moysklad-stock") as pool, \
                    ThreadPoolExecutor(max_workers=max(writers, 1), thread_name_prefix="moysklad-stock-write") as out:
                pending = pool.submit(read, order[0][0]) if order else None
                writing: list = []   # stores being written

                def write_slot() -> None:
                    # Whichever writer finishes first frees the slot (stores differ in size): the
                    # next store's read starts then, not when the oldest is done.
                    while writing and len(writing) >= writers:
                        done, _ = wait(writing, return_when=FIRST_COMPLETED)
                        for future in done:
                            writing.remove(future)
                            future.result()
                            ctx.advance()

                for i, (store_ext, warehouse_id) in enumerate(order):
                    if pending is None:  # deferred: at most `writers` stores are held at once
                        write_slot()
                        pending = pool.submit(read, store_ext)
                    t0 = time.perf_counter()
                    started, stock, reserve = pending.result()
                    waited += time.perf_counter() - t0
                    levels = _levels(stock, reserve, ctx)
                    del stock, reserve  # mapped: free the report before the next one arrives
                    pending = None
                    if i + 1 < len(order) and len(writing) + 1 < max(writers, 2):
                        pending = pool.submit(read, order[i + 1][0])   # fetched while this store is written
                    for other in set(levels) - {store_ext}:
                        ctx.count("rows_other_store", len(levels[other]))
                    args = (levels.pop(store_ext, {}), warehouse_id, offers, ctx)
                    options = {"full": True, "via": via, "checked_at": started}
                    del levels
                    if not writers:
                        _apply_levels(*args, **options)
                        ctx.advance()
                        continue
                    write_slot()
                    writing.append(out.submit(_in_own_connection, _apply_levels, *args, **options))
                    del args
                for future in writing:
                    future.result()
                    ctx.advance()
        else:
            started = timezone.now()
            t0 = time.perf_counter()
            stock = client.stock_bystore_current("stock", changed_since=since)
            reserve = client.stock_bystore_current("reserve", changed_since=since)
            waited += time.perf_counter() - t0
            levels = _levels(stock, reserve, ctx)
            ids = {a for per_store in levels.values() for a in per_store}
            offers = dict(in_chunks(lambda c: OfferBinding.objects.filter(system=MS, external_id__in=c).values_list(
                "external_id", "offer_id"), list(ids)))
            ctx.set_total(len(ids))
            for store_ext, per_item in levels.items():
                if store_ext in stores:
                    _apply_levels(per_item, stores[store_ext], offers, ctx, full=False, via=via, checked_at=started)
                else:
                    ctx.count("rows_unknown_store", len(per_item))
            ctx.advance(len(ids))
        ctx.count("upstream_wait_ms", round(waited * 1000))
        ctx.count("requests", client.stats.requests)


def _writes_in_threads(model=StockLevel) -> bool:
    """Stores (and catalog pages) are written in threads of their own (each with its own
    connection and transaction) on PostgreSQL, unless the caller holds a transaction: then
    everything is written in it."""
    connection = connections[router.db_for_write(model)]
    return connection.vendor == "postgresql" and not connection.in_atomic_block


def _in_own_connection(func, *args, **kwargs):
    try:
        return func(*args, **kwargs)
    finally:
        connections.close_all()  # this thread's connections only


def _levels(stock_rows: list, reserve_rows: list, ctx: JobContext) -> dict[str, dict[str, list]]:
    """{store id: {assortment id: [stock, reserve]}} from the two report calls; a figure the
    report did not give is None."""
    out: dict[str, dict[str, list]] = defaultdict(dict)
    known: dict[tuple[type, object], Decimal] = {}  # most figures repeat: convert each value once
    for rows, key, idx in ((stock_rows, "stock", 0), (reserve_rows, "reserve", 1)):
        if not isinstance(rows, list):
            raise MappingError(f"stock report ({key}) is not a list")
        for row in rows:
            try:
                if type(row) is StockReportRow:   # decoded typed: the fields exist and are numbers
                    store, item, value = row.storeId, row.assortmentId, getattr(row, key)
                elif not isinstance(row, dict):
                    raise MappingError("not an object")
                else:
                    store, item, value = row.get("storeId"), row.get("assortmentId"), row.get(key)
                if not isinstance(item, str) or not item:
                    raise MappingError("no assortmentId")
                kind = type(value)
                if kind is int or kind is float:
                    qty = known.get((kind, value))
                    if qty is None:
                        qty = known[(kind, value)] = stock_quantity({key: value}, key)
                else:
                    qty = stock_quantity({key: value}, key)
            except MappingError as exc:
                ctx.error(str(row)[:80], f"stock row: {exc}")
                continue
            if store is None:
                ctx.count("rows_without_store")  # reserves of orders with no store
                continue
            per_store = out[store]
            figures = per_store.get(item)
            if figures is None:
                per_store[item] = figures = [None, None]
            figures[idx] = qty
    return out


def _apply_levels(per_item: dict[str, list], warehouse_id: int, offers: dict[str, int], ctx: JobContext,
                  *, full: bool, via: str, checked_at) -> None:
    """Map one store's report rows to our offers and hand them to the stock write service. A full
    read: a figure missing from its report is 0. A delta: a figure it did not give keeps ours."""
    figures: dict[int, tuple] = {}
    partial: list[int] = []   # a figure the report did not give
    unknown = 0
    for item, (stock, reserve) in per_item.items():
        offer_id = offers.get(item)
        if offer_id is None:
            unknown += 1  # not (yet) in our catalog: a service, a bundle, a skipped record
            continue
        if stock is None or reserve is None:
            partial.append(offer_id)
        figures[offer_id] = (stock, reserve)
    per_item.clear()  # mapped: a store's report rows need not live while its levels are written
    if unknown:
        ctx.count("unknown_items", unknown)
    if partial:
        held = {} if full else {o: (s, r) for o, s, r in in_chunks(lambda c: StockLevel.objects.filter(
            warehouse_id=warehouse_id, offer_id__in=c).values_list("offer_id", "stock", "reserve"), partial)}
        zeros = (Decimal(0), Decimal(0))
        for offer_id in partial:
            stock, reserve = figures[offer_id]
            default = held.get(offer_id, zeros)
            figures[offer_id] = (default[0] if stock is None else stock, default[1] if reserve is None else reserve)
    result = stock_levels_set(warehouse_id=warehouse_id, figures=figures, source=MS, via=via, complete=full,
                              checked_at=checked_at)
    ctx.count("stock_changed", len(result.changed))
    ctx.count("stock_restocked", len(result.restocked))
    ctx.count("stock_rows", len(figures))
