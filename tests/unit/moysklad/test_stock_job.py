"""moysklad-stock: report/stock/bystore/current (stock and reserve) → StockLevel per warehouse."""
from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from catalog.models import Offer, Product
from integrations import jobs
from integrations.models import JobRun, JobState, OfferBinding
from integrations.moysklad.mapping import to_msk_string
from integrations.runs import run_job
from stock.models import StockLevel, Warehouse

from .support import load

pytestmark = pytest.mark.django_db
JOB = "moysklad-stock"
MAIN, SHOP, OLD = (f"aaaaaaaa-0000-0000-0000-00000000000{i}" for i in (1, 2, 3))
JACKET, HAT, GLOVES = (f"11111111-0000-0000-0000-00000000000{i}" for i in (1, 2, 3))


def run(full=False) -> JobRun:
    job_run = run_job(jobs.get(JOB), full=full, trigger="test")
    assert job_run.status == JobRun.Status.SUCCESS, (job_run.message, job_run.errors)
    return job_run


@pytest.fixture
def stock(ms):
    """Three bound offers and the captured store list and stock reports."""
    ms.entities["store"] = load("store_list_two")["rows"]
    ms.stock["stock"] = load("report_stock_bystore_current_stock")
    ms.stock["reserve"] = load("report_stock_bystore_current_reserve")
    product = Product.objects.create(name="p")
    for ext, sku in ((JACKET, "ALS-01"), (HAT, "00002"), (GLOVES, "GLV-3")):
        offer = Offer.objects.create(product=product, sku=sku, name=sku)
        OfferBinding.objects.create(external_id=ext, offer=offer)
    return ms


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
    reads = [stock.params(r) for r in stock.calls("/report/stock/bystore/current")]
    assert sorted((p["stockType"], p["filter"]) for p in reads) == [
        ("reserve", f"storeId={MAIN}"), ("reserve", f"storeId={SHOP}"),
        ("stock", f"storeId={MAIN}"), ("stock", f"storeId={SHOP}")]
    assert not any("changedSince" in p for p in reads)


def test_delta_asks_changed_since_the_cursor_minus_overlap_when_within_24_hours(stock):
    set_cursor(timedelta(hours=23))
    cursor = JobState.objects.get(job=JOB).cursor
    r = run()
    reads = [stock.params(req) for req in stock.calls("/report/stock/bystore/current")]
    expected = to_msk_string(cursor - timedelta(seconds=120), millis=False)
    assert sorted(p["stockType"] for p in reads) == ["reserve", "stock"]
    assert all(p["changedSince"] == expected and "filter" not in p for p in reads)
    assert r.counts["full_read"] == 0
    assert figures("ALS-01", "main") == (10, 4, 6)


def test_cursor_close_to_24_hours_old_means_a_full_read(stock):
    set_cursor(timedelta(hours=23, minutes=57))  # minus the 2 min overlap: within 5 min of the limit
    r = run()
    assert r.counts["full_read"] == 1
    assert all("changedSince" not in stock.params(req) for req in stock.calls("/report/stock/bystore/current"))


def test_full_flag_forces_a_full_read(stock):
    set_cursor(timedelta(minutes=10))
    assert run(full=True).counts["full_read"] == 1


def test_full_read_zeroes_levels_missing_from_the_report(stock):
    run()
    stock.stock["stock"] = [r for r in stock.stock["stock"] if r["assortmentId"] != HAT]
    stock.stock["reserve"] = [r for r in stock.stock["reserve"] if not (r["assortmentId"] == JACKET
                                                                        and r["storeId"] == MAIN)]
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
    stock.stock["stock"] = [{"assortmentId": JACKET, "storeId": MAIN, "stock": 12}]
    stock.stock["reserve"] = []
    run()
    assert figures("ALS-01", "main") == (12, 4, 8)  # reserve not reported: kept, not zeroed
    assert figures("00002", "main") == (Decimal("46.5"), 0, Decimal("46.5"))


def test_rows_without_a_store_are_ignored_and_counted(stock):
    set_cursor(timedelta(minutes=10))  # a delta reads every store at once, store-less reserves included
    r = run()
    assert r.counts["rows_without_store"] == 1
    assert r.error_count == 0
    assert figures("00002", "main") == (Decimal("46.5"), 0, Decimal("46.5"))


def test_unknown_assortment_ids_are_counted_not_errors(stock):
    r = run()
    assert r.counts["unknown_items"] == 1 and r.error_count == 0


def test_malformed_report_rows_are_recorded(stock):
    set_cursor(timedelta(minutes=10))
    stock.stock["stock"] = stock.stock["stock"] + [{"storeId": MAIN, "stock": 1}, "junk",
                                                   {"assortmentId": GLOVES, "storeId": MAIN, "stock": "lots"}]
    r = run()
    assert r.error_count == 3
    assert {e["error"] for e in r.errors} == {"stock row: no assortmentId", "stock row: not an object",
                                              "stock row: bad stock 'lots'"}
    assert figures("ALS-01", "main") == (10, 4, 6)


def test_only_changed_rows_are_written(stock):
    run()
    long_ago = timezone.now() - timedelta(days=3)
    StockLevel.objects.update(updated_at=long_ago, checked_at=long_ago)
    stock.stock["stock"] = [dict(r, stock=11) if r["assortmentId"] == JACKET and r["storeId"] == MAIN else r
                            for r in stock.stock["stock"]]
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
    stock.stock["stock"] = [{"assortmentId": JACKET, "storeId": MAIN, "stock": 12}]
    stock.stock["reserve"] = []
    run()
    change = StockChange.objects.filter(via="sync").get()
    assert (change.previous_stock, change.new_stock, change.previous_available, change.new_available) == (10, 12, 6, 8)
