"""Writes are in bulk: the number of queries to import a page does not grow with its rows."""
import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from catalog.models import Offer, Product
from integrations import jobs
from integrations.models import CategoryBinding, JobRun
from integrations.moysklad import jobs as ms_jobs
from integrations.moysklad.jobs import folders_import
from integrations.moysklad.mapping import PriceType
from integrations.runs import JobContext

from .support import folder, price, product, variant

pytestmark = pytest.mark.django_db
RETAIL = PriceType("p1", "Цена продажи")


def products_import_page(rows, ctx):
    ms_jobs.products_import_page(rows, ctx, price_type=RETAIL)


def variants_import_page(rows, ctx):
    ms_jobs.variants_import_page(rows, ctx, price_type=RETAIL)


def context() -> JobContext:
    spec = jobs.get("moysklad-catalog")
    job_run = JobRun.objects.create(job=spec.name, started_at=timezone.now())
    ctx = JobContext(spec=spec, run=job_run, since=None, owner="test")
    ctx.flush_every = float("inf")  # progress writes are time-driven; keep them out of the count
    return ctx


@pytest.fixture
def folder_bound(db):
    from catalog.models import Category

    cat = Category.objects.create(name="Папка")
    CategoryBinding.objects.create(external_id=folder(1)["id"], category=cat)
    return folder(1)["id"]


def products(first: int, n: int, **kw) -> list[dict]:
    return [product(i, folder=kw.get("folder"), barcodes=[{"ean13": f"2{i:012d}"}, {"code128": f"C{i}"}],
                    **{k: v for k, v in kw.items() if k != "folder"})
            for i in range(first, first + n)]


def count_queries(fn) -> int:
    with CaptureQueriesContext(connection) as captured:
        fn()
    return len(captured)


def test_importing_a_page_of_1000_new_products_takes_as_many_queries_as_100(folder_bound,
                                                                            django_assert_max_num_queries):
    ctx = context()
    small = count_queries(lambda: products_import_page(products(1, 100, folder=folder_bound), ctx))
    with django_assert_max_num_queries(small):
        products_import_page(products(10_001, 1000, folder=folder_bound), ctx)
    assert Offer.objects.count() == 1100 and ctx.error_count == 0
    assert small <= 20


def test_updating_a_page_of_1000_products_takes_as_many_queries_as_100(folder_bound, django_assert_max_num_queries):
    ctx = context()
    products_import_page(products(1, 100, folder=folder_bound), ctx)
    products_import_page(products(10_001, 1000, folder=folder_bound), ctx)
    newer = {"updated": "2026-11-21 10:00:00.000", "salePrices": price(100.0)}
    small = count_queries(lambda: products_import_page(products(1, 100, folder=folder_bound, name="Новое имя",
                                                                **newer), ctx))
    with django_assert_max_num_queries(small):
        products_import_page(products(10_001, 1000, folder=folder_bound, name="Новое имя", **newer), ctx)
    assert Offer.objects.filter(price=1).count() == 1100
    assert Product.objects.filter(name="Новое имя").count() == 1100


def test_up_to_date_page_costs_a_few_reads_and_no_writes(folder_bound):
    ctx = context()
    rows = products(1, 1000, folder=folder_bound)
    products_import_page(rows, ctx)
    with CaptureQueriesContext(connection) as captured:
        products_import_page(rows, ctx)
    writes = [q["sql"] for q in captured if q["sql"].lstrip().upper().startswith(("INSERT", "UPDATE", "DELETE"))]
    assert writes == [] and len(captured) <= 10


def test_importing_a_page_of_1000_variants_takes_as_many_queries_as_100(django_assert_max_num_queries):
    ctx = context()
    parents = [product(i, variantsCount=2) for i in range(1, 6)]
    products_import_page(parents, ctx)

    def variants(first, n):
        return [variant(i, parents[i % 5]["id"], barcodes=[{"ean13": f"3{i:012d}"}]) for i in range(first, first + n)]

    small = count_queries(lambda: variants_import_page(variants(1, 100), ctx))
    with django_assert_max_num_queries(small):
        variants_import_page(variants(10_001, 1000), ctx)
    assert Offer.objects.filter(is_variant=True).count() == 1100


def test_folders_are_written_in_bulk(ms, django_assert_max_num_queries):
    from integrations.moysklad.client import MoySkladClient

    parent = None
    for i in range(1, 400):   # 399 folders, each inside the one before
        parent = ms.add_folder(f"Папка {i}", parent)
    ctx = context()
    with MoySkladClient() as client, django_assert_max_num_queries(12):
        folders_import(client, ctx)
    assert CategoryBinding.objects.count() == 399
    assert len(ms.logged("entity/productfolder")) == 1
