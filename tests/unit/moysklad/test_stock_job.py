"""moysklad-stock: report/stock/bystore/current (stock and reserve) → StockLevel per warehouse,
against the sandbox's MoySklad (in-process, tests/sandbox_respx.py)."""
from datetime import timedelta
from decimal import Decimal
from types import SimpleNamespace

import pytest
from django.utils import timezone

from catalog.models import Offer, Product
from integrations import jobs
from integrations.models import JobRun, JobState, OfferBinding
from integrations.moysklad.mapping import to_msk_string
from integrations.runs import run_job
from stock.models import StockLevel, Warehouse

pytestmark = pytest.mark.django_db
JOB = "moysklad-stock"


@pytest.fixture
def sandbox_options():
    return {"stores": 3}


def run(full=False) -> JobRun:
    job_run = run_job(jobs.get(JOB), full=full, trigger="test")
    assert job_run.status == JobRun.Status.SUCCESS, (job_run.message, job_run.errors)
    return job_run


@pytest.fixture
def stock(ms):
    """Two stores and an archived one; three products bound to offers here and one that is not;
    their stock and reserves, moved an hour ago (MoySklad's clock set back while seeding)."""
    main, shop, old = ms.store_ids()
    ms.update_store(main, name="Основной склад", code="main")
    ms.update_store(shop, name="Магазин на Тверской", code="shop")
    ms.update_store(old, name="Старый склад", code="old", archived=True)
    ids = SimpleNamespace(main=main, shop=shop, old=old)
    ids.jacket = ms.add_product(name="Куртка", article="ALS-01")
    ids.hat = ms.add_product(name="Шапка", article="", code="00002")
    ids.gloves = ms.add_product(name="Перчатки", article="GLV-3")
    ids.stranger = ms.add_product(name="Не с сайта", article="NOT-HERE")
    ms.catalog.advance(-3600)
    ms.set_stock(ids.jacket, main, stock=10, reserve=4)
    ms.set_stock(ids.jacket, shop, stock=3, reserve=5)
    ms.set_stock(ids.hat, main, stock=46.5)
    ms.set_stock(ids.hat, None, reserve=2)          # a reserve without a store
    ms.set_stock(ids.stranger, main, stock=7)
    ms.set_stock(ids.jacket, old, stock=100)         # the archived store: never read
    ms.catalog.advance(3600)
    product = Product.objects.create(name="p")
    for ext, sku in ((ids.jacket, "ALS-01"), (ids.hat, "00002"), (ids.gloves, "GLV-3")):
        offer = Offer.objects.create(product=product, sku=sku, name=sku)
        OfferBinding.objects.create(external_id=ext, offer=offer)
    ms.ids = ids
    return ms


def reads(ms) -> list[dict]:
    return [r.params for r in ms.logged("report/stock/bystore/current")]


def level(sku: str, store_code: str) -> StockLevel:
    return StockLevel.objects.get(offer__sku=sku, warehouse__code=store_code)


def figures(sku, store_code):
    lv = level(sku, store_code)
    return lv.stock, lv.reserve, lv.available


def set_cursor(ago: timedelta):
    JobState.objects.update_or_create(job=JOB, defaults={"cursor": timezone.now() - ago})


def test_stock_and_reserve_per_warehouse_with_available_never_below_zero(stock):
    r = run()
    assert figures("ALS-01", "main") == (10, 4, 6)
    assert figures("ALS-01", "shop") == (3, 5, 0)  # reserve above stock: available clamps at 0
    assert figures("00002", "main") == (Decimal("46.5"), 0, Decimal("46.5"))
    assert not StockLevel.objects.filter(warehouse__code="old").exists()  # archived store: not read
    assert r.counts["stock_changed"] == 3 and r.counts["full_read"] == 1


def test_first_run_is_a_full_read_per_active_store(stock):
    run()
    main, shop = stock.ids.main, stock.ids.shop
    assert sorted((p["stockType"], p["filter"]) for p in reads(stock)) == sorted([
        ("reserve", f"storeId={main}"), ("reserve", f"storeId={shop}"),
        ("stock", f"storeId={main}"), ("stock", f"storeId={shop}")])
    assert not any("changedSince" in p for p in reads(stock))


def test_delta_asks_changed_since_the_cursor_minus_overlap_when_within_24_hours(stock):
    set_cursor(timedelta(hours=23))
    cursor = JobState.objects.get(job=JOB).cursor
    r = run()
    expected = to_msk_string(cursor - timedelta(seconds=120), millis=False)
    assert sorted(p["stockType"] for p in reads(stock)) == ["reserve", "stock"]
    assert all(p["changedSince"] == expected and "filter" not in p for p in reads(stock))
    assert all(r.status == 200 for r in stock.logged("report/stock/bystore/current"))   # MoySklad took it
    assert r.counts["full_read"] == 0
    assert figures("ALS-01", "main") == (10, 4, 6)


def test_cursor_close_to_24_hours_old_means_a_full_read(stock):
    set_cursor(timedelta(hours=23, minutes=57))  # minus the 2 min overlap: within 5 min of the limit
    r = run()
    assert r.counts["full_read"] == 1
    assert all("changedSince" not in p for p in reads(stock))


def test_full_flag_forces_a_full_read(stock):
    set_cursor(timedelta(minutes=10))
    assert run(full=True).counts["full_read"] == 1


def test_full_read_zeroes_levels_missing_from_the_report(stock):
    run()
    stock.set_stock(stock.ids.hat, stock.ids.main, stock=0)             # the report leaves zeroes out
    stock.set_stock(stock.ids.jacket, stock.ids.main, reserve=0)
    run(full=True)
    assert figures("00002", "main") == (0, 0, 0)
    assert figures("ALS-01", "main") == (10, 0, 10)


def test_full_read_leaves_levels_of_offers_not_from_moysklad(stock):
    run()
    other = Offer.objects.create(product=Product.objects.first(), sku="SUPPLIER-1", name="x")
    StockLevel.objects.create(offer=other, warehouse=Warehouse.objects.get(code="main"), stock=5, available=5,
                              source="supplier")
    run(full=True)
    assert level("SUPPLIER-1", "main").stock == 5


def test_delta_never_zeroes_what_it_did_not_hear_about(stock):
    run()
    set_cursor(timedelta(minutes=10))
    stock.set_stock(stock.ids.jacket, stock.ids.main, stock=12)
    stock.set_stock(stock.ids.hat, stock.ids.shop, reserve=1)   # a cell the hat never had: 0 stock
    stock.faults.add(status=200, count=1, path_contains="report/stock/bystore/current",
                     params={"stockType": "reserve"}, body=[])   # this time the reserve delta is empty
    run()
    assert figures("ALS-01", "main") == (12, 4, 8)  # reserve not reported: kept, not zeroed
    assert figures("00002", "main") == (Decimal("46.5"), 0, Decimal("46.5"))   # not reported: kept


def test_rows_without_a_store_are_ignored_and_counted(stock):
    set_cursor(timedelta(hours=2))  # a delta reads every store at once, store-less reserves included
    r = run()
    # the store-less reserve moved: both reports list it (stock 0 as a zero line, reserve 2)
    assert r.counts["rows_without_store"] == 2
    assert r.error_count == 0
    assert figures("00002", "main") == (Decimal("46.5"), 0, Decimal("46.5"))


def test_unknown_assortment_ids_are_counted_not_errors(stock):
    r = run()
    assert r.counts["unknown_items"] == 1 and r.error_count == 0


def test_malformed_report_rows_are_recorded(stock):
    set_cursor(timedelta(hours=2))
    main = stock.ids.main
    stock.faults.add(kind="rows", count=1, path_contains="report/stock/bystore/current",
                     params={"stockType": "stock"},
                     body=[{"storeId": main, "stock": 1}, "junk",
                           {"assortmentId": stock.ids.gloves, "storeId": main, "stock": "lots"}])
    r = run()
    assert r.error_count == 3
    assert {e["error"] for e in r.errors} == {"stock row: no assortmentId", "stock row: not an object",
                                              "stock row: bad stock 'lots'"}
    assert figures("ALS-01", "main") == (10, 4, 6)


def test_only_changed_rows_are_written(stock):
    run()
    long_ago = timezone.now() - timedelta(days=3)
    StockLevel.objects.update(updated_at=long_ago, checked_at=long_ago)
    stock.set_stock(stock.ids.jacket, stock.ids.main, stock=11)
    r = run(full=True)
    assert r.counts["stock_changed"] == 1
    changed = level("ALS-01", "main")
    assert changed.updated_at > long_ago and changed.stock == 11 and changed.available == 7
    for sku, store_code in (("ALS-01", "shop"), ("00002", "main")):
        unchanged = level(sku, store_code)
        assert unchanged.updated_at == long_ago  # the marketplace export relies on this
        assert unchanged.checked_at > long_ago   # but we did read it just now


def test_rerun_with_the_same_report_writes_nothing(stock):
    run()
    before = sorted(StockLevel.objects.values_list("id", "stock", "reserve", "available", "updated_at"))
    assert run(full=True).counts["stock_changed"] == 0
    assert sorted(StockLevel.objects.values_list("id", "stock", "reserve", "available", "updated_at")) == before


def test_the_shipping_store_is_marked_for_site_orders(stock, settings):
    run()
    assert list(Warehouse.objects.filter(ships_orders=True).values_list("code", flat=True)) == ["main"]  # the first
    settings.MOYSKLAD = {**settings.MOYSKLAD, "STORE_ID": "Магазин на Тверской"}
    run()
    assert list(Warehouse.objects.filter(ships_orders=True).values_list("code", flat=True)) == ["shop"]
    settings.MOYSKLAD = {**settings.MOYSKLAD, "STORE_ID": "Нет такого"}
    r = run()
    assert r.errors[0]["ref"] == "MOYSKLAD_STORE_ID" and "no such store" in r.errors[0]["error"]
    assert list(Warehouse.objects.filter(ships_orders=True).values_list("code", flat=True)) == ["shop"]


def test_stock_changes_are_logged_with_their_source_and_how_they_came(stock):
    from stock.models import StockChange

    run()
    assert set(StockChange.objects.values_list("source", "via")) == {("moysklad", "full")}
    set_cursor(timedelta(minutes=10))
    stock.set_stock(stock.ids.jacket, stock.ids.main, stock=12)
    run()
    change = StockChange.objects.filter(via="sync").get()
    assert (change.previous_stock, change.new_stock, change.previous_available, change.new_available) == (10, 12, 6, 8)


@pytest.mark.django_db(transaction=True)
def test_full_read_writes_stores_in_threads_of_their_own_on_postgresql(stock, monkeypatch):
    """Outside a transaction, on PostgreSQL, each store is written in a thread with its own
    connection (one store's INSERT and commit run while the next is planned); the figures are the
    same as written one after the other, and a writer's failure fails the run."""
    from django.db import connection

    from integrations.moysklad import jobs as ms_jobs
    from stock import services

    if connection.vendor != "postgresql":
        pytest.skip("stores are written in threads on PostgreSQL only (SQLite has one writer); "
                    "set DATABASE_URL to a PostgreSQL server to run this")
    threads: dict[int, str] = {}
    real = services.stock_levels_set

    def spy(**kwargs):
        import threading

        threads[kwargs["warehouse_id"]] = threading.current_thread().name
        return real(**kwargs)

    monkeypatch.setattr(ms_jobs, "stock_levels_set", spy)
    r = run(full=True)
    assert figures("ALS-01", "main") == (10, 4, 6)
    assert figures("ALS-01", "shop") == (3, 5, 0)
    assert figures("00002", "main") == (Decimal("46.5"), 0, Decimal("46.5"))
    assert r.counts["stock_changed"] == 3 and r.counts["stock_rows"] == 3
    assert len(threads) == 2 and all(name.startswith("moysklad-stock-write") for name in threads.values())

    def broken(**kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr(ms_jobs, "stock_levels_set", broken)
    failed = run_job(jobs.get(JOB), full=True, trigger="test", raise_errors=False)
    assert failed.status == JobRun.Status.FAILED and "disk full" in failed.message


@pytest.mark.django_db(transaction=True)
def test_the_next_store_is_read_when_either_writer_is_free_not_the_oldest(stock, monkeypatch):
    """Three stores, two writers: while the first store's write is still running, the second's
    finishes, and the third store is read then (stores differ in size; waiting for the oldest
    left a writer idle). Were the job to wait for the oldest, the first write would wait here
    for a read that never comes, and time out."""
    import threading

    from django.db import connection

    from integrations.moysklad import jobs as ms_jobs
    from integrations.moysklad.client import MoySkladClient
    from stock import services

    if connection.vendor != "postgresql":
        pytest.skip("stores are written in threads on PostgreSQL only (SQLite has one writer); "
                    "set DATABASE_URL to a PostgreSQL server to run this")
    stock.update_store(stock.ids.old, archived=False)   # three active stores
    third_read = threading.Event()
    stock_reads: list[str] = []
    real_read = MoySkladClient.stock_bystore_current

    def read(self, kind, **kwargs):
        if kind == "stock":
            stock_reads.append(kwargs.get("store_id"))
            if len(stock_reads) == 3:
                third_read.set()
        return real_read(self, kind, **kwargs)

    writes: list[bool] = []
    first = threading.Lock()
    real_write = services.stock_levels_set

    def write(**kwargs):
        if first.acquire(blocking=False):   # the first store written waits for the third one's read
            writes.append(third_read.wait(timeout=5))
        else:
            writes.append(True)
        return real_write(**kwargs)

    monkeypatch.setattr(MoySkladClient, "stock_bystore_current", read)
    monkeypatch.setattr(ms_jobs, "stock_levels_set", write)
    r = run(full=True)
    assert writes == [True, True, True]
    assert len(set(stock_reads)) == 3 and r.counts["full_read"] == 1
    assert figures("ALS-01", "main") == (10, 4, 6) and figures("ALS-01", "old") == (100, 0, 100)


def test_full_read_inside_a_transaction_writes_in_it(stock, monkeypatch):
    """A caller's open transaction (a test, a management shell's atomic block) keeps the writes in
    the caller's thread: a thread of its own could not see the caller's uncommitted rows."""
    import threading

    from integrations.moysklad import jobs as ms_jobs
    from stock import services

    names = set()
    real = services.stock_levels_set
    monkeypatch.setattr(ms_jobs, "stock_levels_set",
                        lambda **kw: names.add(threading.current_thread().name) or real(**kw))
    run(full=True)
    assert names == {threading.current_thread().name}
