"""moysklad-catalog on PostgreSQL writes two pages at once (CatalogWriters), each in a thread with
its own connection and transaction; a page that collides with the one beside it is written again
alone. Outside a transaction (transactional tests), against the in-process sandbox."""
import threading

import pytest
from django.db import connection

from catalog.models import Barcode, Offer, Product
from integrations import jobs
from integrations.models import JobRun, OfferBinding, ProductBinding
from integrations.moysklad import jobs as ms_jobs
from integrations.runs import run_job
from integrations.sandbox.catalog_gen import format_msk, parse_msk

pytestmark = pytest.mark.django_db(transaction=True)
JOB = "moysklad-catalog"


@pytest.fixture(autouse=True)
def postgresql_only():
    if connection.vendor != "postgresql":
        pytest.skip("catalog pages are written in threads on PostgreSQL only (SQLite has one writer); "
                    "set DATABASE_URL to a PostgreSQL server to run this")


@pytest.fixture
def paged(ms, settings):
    """Pages of two rows, so a handful of products makes several pages."""
    settings.MOYSKLAD = {**settings.MOYSKLAD, "PAGE_SIZE": 2}
    return ms


def run(**kw) -> JobRun:
    return run_job(jobs.get(JOB), trigger="test", raise_errors=False, **kw)


def writer_threads(monkeypatch, name: str) -> set[str]:
    """Names of the threads that call catalog.services.`name` from the job."""
    seen: set[str] = set()
    real = getattr(ms_jobs, name)

    def spy(**kwargs):
        seen.add(threading.current_thread().name)
        return real(**kwargs)

    monkeypatch.setattr(ms_jobs, name, spy)
    return seen


def test_pages_are_written_by_two_writers_and_land_as_one_after_the_other(paged, monkeypatch):
    for i in range(1, 8):
        paged.add_product(name=f"Товар {i}", article=f"ART-{i}", code=f"{i:05d}", salePrice=1000 * i,
                          barcodes=[{"ean13": f"200000000{i:04d}"}])
    parent = paged.add_product(name="Футболка", article="TSH", code="00010", salePrice=99900)
    for size in ("S", "M", "L"):
        paged.add_variant(parent, code=f"TSH-{size}", salePrice=99900)
    product_threads = writer_threads(monkeypatch, "products_write")
    variant_threads = writer_threads(monkeypatch, "offers_write")

    r = run()

    assert r.status == JobRun.Status.SUCCESS, (r.message, r.errors)
    assert len(product_threads) == 2 and all(t.startswith("moysklad-catalog-write") for t in product_threads)
    assert variant_threads and all(t.startswith("moysklad-catalog-write") for t in variant_threads)
    assert Product.objects.count() == 8 and ProductBinding.objects.count() == 8
    assert sorted(Offer.objects.values_list("sku", flat=True)) == sorted(
        [f"ART-{i}" for i in range(1, 8)] + ["TSH-L", "TSH-M", "TSH-S"])
    assert OfferBinding.objects.count() == 10
    assert list(Barcode.objects.filter(offer__sku="ART-3").values_list("value", flat=True)) == ["2000000000003"]
    assert Offer.objects.get(sku="ART-3").price == 30
    # the reports of every page reached the run, once each
    assert r.counts["products_created"] == 8 and r.counts["variants_created"] == 3
    assert r.progress_done == r.progress_total == 11
    assert "pages_rewritten" not in r.counts and r.error_count == 0
    assert run().counts["up_to_date"] == 11   # a second run finds every page written


def test_a_record_on_two_pages_written_side_by_side_lands_once(paged, monkeypatch, settings):
    """Offset paging on moving data shows a record again on the next page. Both pages pass their
    lookups before either commits (held at a barrier here); the unique keys stop one of them and it
    is written again alone: the record lands once, with the newer name, nothing recorded as bad."""
    settings.MOYSKLAD = {**settings.MOYSKLAD, "PAGE_SIZE": 1}
    row = paged.product(paged.add_product(name="Товар 1", article="ART-1", code="00001", salePrice=1000))
    paged.add_product(name="Товар 2", article="ART-2", code="00002", salePrice=2000)
    newer = {**row, "name": "Новее", "updated": format_msk(parse_msk(row["updated"]) + 60_000)}
    paged.faults.add(kind="rows", count=1, path_contains="entity/product", params={"offset": "1"}, body=[newer])
    both_looked_up = threading.Barrier(2, timeout=10)
    calls = []
    real = ms_jobs.products_write

    def held(**kwargs):
        calls.append(threading.current_thread().name)
        if len(calls) <= 2:   # the two pages side by side; not the one written again
            both_looked_up.wait()
        return real(**kwargs)

    monkeypatch.setattr(ms_jobs, "products_write", held)

    r = run()

    assert r.status == JobRun.Status.SUCCESS, (r.message, r.errors)
    assert r.counts["pages_rewritten"] == 1 and r.error_count == 0
    assert len(calls) == 3 and calls[2] == threading.current_thread().name   # written again here, alone
    assert sorted(Product.objects.values_list("name", flat=True)) == ["Новее", "Товар 2"]
    assert sorted(Offer.objects.values_list("sku", flat=True)) == ["ART-1", "ART-2"]
    assert ProductBinding.objects.count() == OfferBinding.objects.count() == 2


def test_a_writer_that_fails_fails_the_run_and_its_page_leaves_nothing(paged, monkeypatch):
    for i in range(1, 6):
        paged.add_product(name=f"Товар {i}", article=f"ART-{i}", code=f"{i:05d}", salePrice=1000)
    real = ms_jobs.products_write
    calls = []

    def broken(**kwargs):
        calls.append(1)
        if len(calls) == 2:
            raise RuntimeError("disk full")
        return real(**kwargs)

    monkeypatch.setattr(ms_jobs, "products_write", broken)
    r = run()
    assert r.status == JobRun.Status.FAILED and "disk full" in r.message
    # every product that landed has its binding: no page was half-written
    assert Product.objects.count() == ProductBinding.objects.count() < 5


def test_bad_rows_on_pages_written_side_by_side_are_recorded_once_each(paged):
    """A page's record errors reach the run from the writer's report, once, after it committed."""
    gone = paged.add_folder("Удалённая")
    for i in range(1, 7):
        paged.add_product(name=f"Товар {i}", article=f"ART-{i}", code=f"{i:05d}", salePrice=1000)
    paged.add_product(name="Без папки", article="ART-7", code="00007", salePrice=1000, productFolder=gone)
    paged.delete_folder(gone)
    paged.add_product(name="Дубль", article="ART-1", code="00008", salePrice=1000)   # a later page: SKU taken
    paged.faults.add(kind="rows", count=1, path_contains="entity/product", params={"offset": "6"},
                     body=["garbage"])   # on the last page: an extra row elsewhere would shift the offsets
    r = run()
    assert r.status == JobRun.Status.SUCCESS, (r.message, r.errors)
    text = [e["error"] for e in r.errors]
    assert r.error_count == 3 and len(text) == 3, text
    assert sum("malformed product row" in t for t in text) == 1
    assert sum("unknown folder" in t for t in text) == 1
    assert sum("duplicate SKU 'ART-1'" in t for t in text) == 1
    assert Offer.objects.count() == 7 and Offer.objects.get(sku="ART-7").product.category is None


def test_a_page_cut_short_fails_the_run_while_the_pages_before_it_commit_whole(paged, sandbox_respx):
    for i in range(1, 6):
        paged.add_product(name=f"Товар {i}", article=f"ART-{i}", code=f"{i:05d}", salePrice=1000)
    in_order = sandbox_respx.client().get("/entity/product", params={"order": "id"}).json()["rows"]
    whole = sandbox_respx.client().get("/entity/product", params={"order": "id", "limit": 2, "offset": 2}).content
    paged.faults.add(status=200, count=None, path_contains="entity/product?", params={"offset": "2"},
                     body=whole[: len(whole) // 2])
    r = run()
    assert r.status == JobRun.Status.FAILED and "not JSON" in r.message
    assert sorted(Offer.objects.values_list("sku", flat=True)) == sorted(row["article"] for row in in_order[:2])
    assert Product.objects.count() == ProductBinding.objects.count() == 2
