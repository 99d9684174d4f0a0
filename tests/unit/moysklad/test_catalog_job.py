"""moysklad-catalog against the sandbox's MoySklad (in-process, tests/sandbox_respx.py) and the
database (SQLite or PostgreSQL)."""
from datetime import timedelta, timezone
from decimal import Decimal
from types import SimpleNamespace

import pytest
from django.db import IntegrityError, transaction
from django.utils import timezone as dj_timezone

from catalog.models import Barcode, Category, FieldChange, Offer, Product
from catalog.services import product_contested_set_by_site
from integrations import jobs
from integrations.http.errors import AuthError
from integrations.models import CategoryBinding, JobRun, JobState, OfferBinding, ProductBinding, WarehouseBinding
from integrations.moysklad.constants import MSK
from integrations.runs import run_job
from integrations.sandbox.catalog_gen import PRODUCT, format_msk, parse_msk
from integrations.sandbox.moysklad import select
from stock.models import Warehouse

pytestmark = pytest.mark.django_db
JOB = "moysklad-catalog"


@pytest.fixture
def sandbox_options():
    return {"stores": 3}


def run(full=False, **kw) -> JobRun:
    return run_job(jobs.get(JOB), full=full, trigger="test", **kw)


def assert_ok(job_run: JobRun):
    assert job_run.status == JobRun.Status.SUCCESS, (job_run.message, job_run.errors)


@pytest.fixture
def catalog(ms):
    """A folder tree, two stores and an archived one, three simple products, one with two variants."""
    stores = ms.store_ids()
    ms.update_store(stores[0], name="Основной склад", code="main")
    ms.update_store(stores[1], name="Магазин на Тверской", code="shop")
    ms.update_store(stores[2], name="Старый склад", code="old", archived=True)
    ids = SimpleNamespace()
    ids.clothes = ms.add_folder("Одежда")
    ids.jackets = ms.add_folder("Куртки", ids.clothes)
    ids.winter = ms.add_folder("Зимние", ids.jackets)
    ids.jacket = ms.add_product(name="Куртка зимняя «Аляска»", article="ALS-01", code="00001",
                                externalCode="ext-als-01", salePrice=149900, productFolder=ids.winter,
                                description="Тёплая куртка",
                                barcodes=[{"ean13": "2000000000015"}, {"code128": "ALS01"}])
    ids.hat = ms.add_product(name="Шапка вязаная", article="", code="00002", salePrice=14990)
    ids.gloves = ms.add_product(name="Перчатки", article="GLV-3", code="00003", salePrice=99000)
    ids.tshirt = ms.add_product(name="Футболка базовая", article="TSH-B", code="00010", salePrice=99900)
    ids.tshirt_m = ms.add_variant(ids.tshirt, code="TSH-B-M-W", salePrice=99900,
                                  barcodes=[{"ean13": "2000000000107"}])
    ids.tshirt_l = ms.add_variant(ids.tshirt, code="TSH-B-L-B", salePrice=109900)
    ms.ids = ids
    return ms


def simple(ms, i: int, **fields) -> str:
    """Product `i` as the tests below name it: Товар i, article ART-i."""
    return ms.add_product(**{"name": f"Товар {i}", "article": f"ART-{i}", "code": f"{i:05d}", **fields})


def first_params(ms, path: str) -> dict:
    return ms.logged(path)[0].params


def offer(sku: str) -> Offer:
    return Offer.objects.get(sku=sku)


# -- shape of the import ------------------------------------------------------------------------------
def test_folders_become_a_category_tree_with_parents(catalog):
    assert_ok(run())
    root = Category.objects.get(name="Одежда")
    jackets = Category.objects.get(name="Куртки")
    winter = Category.objects.get(name="Зимние")
    assert root.parent is None and jackets.parent == root and winter.parent == jackets
    assert winter.path == "Одежда/Куртки/Зимние"
    assert CategoryBinding.objects.get(category=winter).external_id == catalog.ids.winter


def test_stores_become_warehouses(catalog):
    assert_ok(run())
    assert set(Warehouse.objects.values_list("code", "archived")) == {("main", False), ("shop", False),
                                                                      ("old", True)}
    assert WarehouseBinding.objects.count() == 3


def test_product_without_variants_gets_one_offer_with_sku_price_and_barcodes(catalog):
    assert_ok(run())
    o = offer("ALS-01")
    assert o.name == "Куртка зимняя «Аляска»" and not o.is_variant and o.price == Decimal("1499.00")
    assert o.product.name == "Куртка зимняя «Аляска»" and o.product.category.name == "Зимние"
    assert o.product.description == "Тёплая куртка" and o.product.vat == catalog.product(catalog.ids.jacket)["vat"]
    assert set(o.barcodes.values_list("kind", "value")) == {("ean13", "2000000000015"), ("code128", "ALS01")}
    assert o.product.offers.count() == 1
    binding = OfferBinding.objects.get(offer=o)
    assert binding.external_id == catalog.ids.jacket and binding.kind == "product"
    assert ProductBinding.objects.get(product=o.product).external_code == "ext-als-01"


def test_sku_is_the_code_when_the_article_is_empty(catalog):
    assert_ok(run())
    hat = offer("00002")
    assert hat.name == "Шапка вязаная" and hat.price == Decimal("149.90")   # kopecks to rubles


def test_product_with_variants_gets_an_offer_per_variant_and_none_for_itself(catalog):
    assert_ok(run())
    tshirt = Product.objects.get(name="Футболка базовая")
    assert sorted(tshirt.offers.values_list("sku", flat=True)) == ["TSH-B-L-B", "TSH-B-M-W"]
    assert not Offer.objects.filter(sku="TSH-B").exists()
    m = offer("TSH-B-M-W")
    upstream = {c["name"]: c["value"] for c in catalog.variant(catalog.ids.tshirt_m)["characteristics"]}
    assert m.is_variant and m.price == Decimal("999.00") and m.characteristics == upstream
    assert set(upstream) == {"Размер", "Цвет"}
    assert offer("TSH-B-L-B").price == Decimal("1099.00")
    assert list(m.barcodes.values_list("value", flat=True)) == ["2000000000107"]
    assert OfferBinding.objects.get(offer=m).kind == "variant"


def test_product_that_gains_variants_retires_its_own_offer(ms):
    one = simple(ms, 1)
    assert_ok(run())
    assert not offer("ART-1").archived
    ms.add_variant(one, code="VAR-1")
    assert_ok(run())
    assert offer("ART-1").archived and not offer("VAR-1").archived
    assert offer("VAR-1").product == offer("ART-1").product


def test_counts_and_progress_are_stored_on_the_run(catalog):
    r = run()
    assert_ok(r)
    assert r.counts["products_created"] == 4 and r.counts["variants_created"] == 2
    assert r.counts["folders"] == 3 and r.counts["requests"] >= 4
    assert r.progress_total == 6 and r.progress_done == 6
    assert JobState.objects.get(job=JOB).last_run_id == r.pk


# -- windows and cursor ---------------------------------------------------------------------------------
def test_first_run_reads_everything_including_archived(catalog):
    assert_ok(run())
    for path in ("entity/product", "entity/variant", "entity/productfolder"):
        assert first_params(catalog, path)["filter"] == "archived=true;archived=false"


def test_delta_reads_updated_since_the_cursor_minus_overlap_in_moscow_time(catalog):
    cursor = (dj_timezone.now() - timedelta(hours=5)).replace(microsecond=0)
    JobState.objects.create(job=JOB, cursor=cursor)
    r = run()
    assert_ok(r)
    # the cursor in MSK (UTC+3), minus the 120 s overlap
    since = (cursor - timedelta(seconds=120)).astimezone(MSK)
    expected = f"updated>={since:%Y-%m-%d %H:%M:%S}.000;archived=true;archived=false"
    for path in ("entity/product", "entity/variant"):
        params = first_params(catalog, path)
        assert params["filter"] == expected
        assert params["order"] == "id"
    assert r.window_from == cursor - timedelta(seconds=120)
    assert r.counts["products_created"] == 4   # all of them changed within the window


def test_full_run_ignores_the_cursor(catalog):
    JobState.objects.create(job=JOB, cursor=dj_timezone.now() - timedelta(hours=5))
    assert_ok(run(full=True))
    assert first_params(catalog, "entity/product")["filter"] == "archived=true;archived=false"


def test_success_moves_the_cursor_to_the_start_of_the_run(catalog):
    r = run()
    state = JobState.objects.get(job=JOB)
    assert state.cursor == r.started_at and state.full_cursor is None
    r2 = run(full=True)
    state.refresh_from_db()
    assert state.cursor == r2.started_at == state.full_cursor


# -- idempotency -------------------------------------------------------------------------------------------
def _snapshot():
    return {
        "products": sorted(Product.objects.values_list("id", "name", "updated_at")),
        "offers": sorted(Offer.objects.values_list("id", "sku", "price", "updated_at")),
        "barcodes": sorted(Barcode.objects.values_list("offer_id", "value")),
        "bindings": (ProductBinding.objects.count(), OfferBinding.objects.count(), CategoryBinding.objects.count()),
        "history": FieldChange.objects.count(),
    }


def test_rerun_never_duplicates_and_skips_up_to_date_records(catalog):
    assert_ok(run())
    before = _snapshot()
    second = run()
    assert_ok(second)
    assert _snapshot() == before  # not one row added, not one updated_at moved
    assert second.counts["up_to_date"] == 6
    assert second.counts["products_updated"] == 0 and second.counts["variants_updated"] == 0
    assert_ok(run(full=True))
    assert _snapshot() == before


def test_overlapping_pages_with_the_same_record_twice_land_once(ms):
    row = ms.product(simple(ms, 1))
    # renamed while we paged: the next page shows the same record again, newer
    newer = {**row, "name": "Новее", "updated": format_msk(parse_msk(row["updated"]) + 60_000)}
    ms.faults.add(kind="rows", count=1, path_contains="entity/product?", body=[newer])
    assert_ok(run())
    assert Product.objects.get().name == "Новее" and Offer.objects.count() == 1


def test_a_record_on_two_pages_of_a_first_import_lands_once(ms, settings):
    """Offset paging on moving data lists a record again on a later page of the first import:
    the later page updates what the earlier one wrote."""
    settings.MOYSKLAD = {**settings.MOYSKLAD, "PAGE_SIZE": 1}
    row = ms.product(simple(ms, 1))
    simple(ms, 2)
    newer = {**row, "name": "Новее", "updated": format_msk(parse_msk(row["updated"]) + 60_000)}
    ms.faults.add(kind="rows", count=1, path_contains="entity/product", params={"offset": "1"}, body=[newer])
    r = run()
    assert_ok(r)
    assert r.error_count == 0
    assert r.counts["products_created"] == 2 and r.counts["products_updated"] == 1
    assert sorted(Product.objects.values_list("name", flat=True)) == ["Новее", "Товар 2"]
    assert sorted(Offer.objects.values_list("sku", flat=True)) == ["ART-1", "ART-2"]
    assert ProductBinding.objects.count() == OfferBinding.objects.count() == 2


@pytest.mark.parametrize("page_size", [10, 1])
def test_a_duplicate_sku_in_a_first_import_is_recorded_once(ms, settings, page_size):
    """Two records with one article, on one page or on two: the first keeps the SKU and the other
    is recorded once."""
    settings.MOYSKLAD = {**settings.MOYSKLAD, "PAGE_SIZE": page_size}
    simple(ms, 1)
    simple(ms, 2, article="ART-1")
    r = run()
    assert_ok(r)
    assert r.error_count == 1 and "duplicate SKU 'ART-1'" in r.errors[0]["error"]
    assert list(Offer.objects.values_list("sku", flat=True)) == ["ART-1"]


def test_bindings_are_unique_in_the_database(catalog):
    assert_ok(run())
    existing = ProductBinding.objects.first()
    other = Product.objects.create(name="другой")
    with pytest.raises(IntegrityError), transaction.atomic():
        ProductBinding.objects.create(system="moysklad", external_id=existing.external_id, product=other)
    with pytest.raises(IntegrityError), transaction.atomic():
        ProductBinding.objects.create(system="moysklad", external_id="another-id", product=existing.product)
    o = OfferBinding.objects.first()
    with pytest.raises(IntegrityError), transaction.atomic():
        OfferBinding.objects.create(system="moysklad", external_id=o.external_id,
                                    offer=Offer.objects.create(product=other, sku="X-1", name="x"))


def test_changed_record_is_updated_in_place(catalog):
    assert_ok(run())
    catalog.update_product(catalog.ids.jacket, name="Куртка «Аляска» 2", salePrice=159900,
                           barcodes=[{"ean13": "2000000000999"}])
    r = run()
    assert_ok(r)
    o = offer("ALS-01")
    assert o.price == Decimal("1599.00") and o.product.name == "Куртка «Аляска» 2"
    assert list(o.barcodes.values_list("value", flat=True)) == ["2000000000999"]
    assert r.counts["products_updated"] == 1 and r.counts["up_to_date"] == 5
    assert Product.objects.count() == 2 + 2 and Offer.objects.count() == 5


def test_changed_article_changes_the_sku_of_the_same_offer(ms):
    one = simple(ms, 1)
    assert_ok(run())
    offer_id = offer("ART-1").pk
    ms.update_product(one, article="NEW-1")
    assert_ok(run())
    assert offer("NEW-1").pk == offer_id and Offer.objects.count() == 1


def test_archived_upstream_is_archived_here(catalog):
    assert_ok(run())
    catalog.update_product(catalog.ids.hat, archived=True)
    catalog.update_variant(catalog.ids.tshirt_m, archived=True)
    assert_ok(run())
    hat = offer("00002")
    assert hat.archived and hat.product.archived
    assert offer("TSH-B-M-W").archived and not offer("TSH-B-L-B").archived
    assert not offer("ALS-01").archived


def test_full_run_archives_what_vanished_upstream_and_deletes_nothing(catalog):
    assert_ok(run())
    counts = (Product.objects.count(), Offer.objects.count())
    catalog.delete_product(catalog.ids.gloves)    # Перчатки deleted in MoySklad
    catalog.delete_variant(catalog.ids.tshirt_l)  # one variant deleted
    r = run(full=True)
    assert_ok(r)
    assert (Product.objects.count(), Offer.objects.count()) == counts  # never deleted here
    assert offer("GLV-3").archived and offer("GLV-3").product.archived
    assert offer("TSH-B-L-B").archived and not offer("TSH-B-M-W").archived
    assert not offer("ALS-01").archived and not Product.objects.get(name="Футболка базовая").archived
    assert r.counts["deleted_upstream_products"] == 1 and r.counts["deleted_upstream_offers"] == 2


def test_delta_run_never_archives_what_it_did_not_see(catalog):
    assert_ok(run())
    for product_id in catalog.product_ids():   # everything deleted upstream: a delta hears of nothing
        catalog.delete_product(product_id)
    r = run()
    assert_ok(r)
    assert len(catalog.logged("entity/product")) == 2
    assert not Offer.objects.filter(archived=True).exists()
    assert not Product.objects.filter(archived=True).exists()


def test_full_run_keeps_items_whose_rows_failed_to_map(catalog):
    """A row present upstream but unmappable today (say its name went missing) is not 'deleted'."""
    assert_ok(run())
    catalog.update_product(catalog.ids.jacket, name="")
    r = run(full=True)
    assert_ok(r)
    assert r.error_count == 1 and not offer("ALS-01").archived


# -- contested name ---------------------------------------------------------------------------------
def test_contested_name_goes_to_moysklad_when_its_edit_is_newer(ms):
    one = simple(ms, 1, name="Имя из МС")
    assert_ok(run())
    p = Product.objects.get()
    product_contested_set_by_site(product=p, field="name", value="Имя с сайта")
    p.refresh_from_db()
    ms.catalog.advance(60)   # MoySklad's edit a minute after the site's
    ms.update_product(one, name="Новое имя из МС")
    assert_ok(run())
    p.refresh_from_db()
    assert p.name == "Новое имя из МС"
    history = list(FieldChange.objects.order_by("id").values_list("source", "old_value", "new_value", "accepted"))
    assert history == [("site", "Имя из МС", "Имя с сайта", True),
                       ("moysklad", "Имя с сайта", "Новое имя из МС", True)]


def test_contested_name_stays_when_the_site_edit_is_newer_and_the_attempt_is_recorded(ms):
    ms.catalog.advance(-60)   # MoySklad's clock a minute behind: its edits below come before the site's
    one = simple(ms, 1, name="Имя из МС")
    assert_ok(run())
    ms.update_product(one, name="Другое имя из МС", salePrice=200000)
    p = Product.objects.get()
    product_contested_set_by_site(product=p, field="name", value="Имя с сайта")  # edited now, after MoySklad
    assert_ok(run())
    p.refresh_from_db()
    assert p.name == "Имя с сайта"
    assert offer("ART-1").price == Decimal("2000.00")  # MoySklad-owned fields still land
    rejected = FieldChange.objects.get(source="moysklad")
    assert (rejected.old_value, rejected.new_value, rejected.accepted) == ("Имя с сайта", "Другое имя из МС", False)


def test_site_owned_fields_are_never_written(ms):
    one = simple(ms, 1)
    assert_ok(run())
    Product.objects.update(slug="my-slug", seo_title="SEO")
    ms.update_product(one, name="Новое")
    assert_ok(run())
    p = Product.objects.get()
    assert (p.name, p.slug, p.seo_title) == ("Новое", "my-slug", "SEO")


# -- bad input ----------------------------------------------------------------------------------------
def test_bad_rows_are_skipped_and_recorded_while_the_rest_lands(ms):
    folder = ms.add_folder("Папка 1")
    gone = ms.add_folder("Удалённая")
    site_product = Product.objects.create(name="Сайт")
    Offer.objects.create(product=site_product, sku="SITE-SKU", name="не из МС")
    simple(ms, 1, productFolder=folder)                           # fine
    ms.update_product(simple(ms, 3), salePrice=None)              # no price: lands, price null
    null_price = ms.product(simple(ms, 4))                        # a price whose value is null: lands, price null
    null_price["salePrices"][0]["value"] = None
    ms.delete_product(null_price["id"])
    simple(ms, 5, productFolder=gone)                             # unknown folder: kept, no category
    ms.delete_folder(gone)
    simple(ms, 6, article="ART-1")                                # duplicate SKU of product 1 in this page
    simple(ms, 7, article="SITE-SKU")                             # duplicate of a site offer
    simple(ms, 8, name="")                                        # no name
    simple(ms, 9)                                                 # fine
    ms.faults.add(kind="rows", count=1, path_contains="entity/product?",
                  body=["garbage", {"name": "без id"}, null_price])   # malformed rows, the null price
    r = run()
    assert_ok(r)  # data problems do not fail the run
    assert sorted(Offer.objects.exclude(sku="SITE-SKU").values_list("sku", flat=True)) == [
        "ART-1", "ART-3", "ART-4", "ART-5", "ART-9"]
    assert offer("ART-3").price is None and offer("ART-4").price is None
    assert offer("ART-1").product.category.name == "Папка 1"
    assert offer("ART-5").product.category is None
    assert offer("SITE-SKU").product == site_product  # untouched
    assert r.error_count == 6
    text = " | ".join(e["error"] for e in r.errors)
    for expected in ("malformed product row", "unknown folder", "duplicate SKU 'ART-1'",
                     "duplicate SKU 'SITE-SKU'", "missing name"):
        assert expected in text
    assert JobState.objects.get(job=JOB).cursor == r.started_at


def test_duplicate_sku_against_an_existing_moysklad_offer_is_recorded(ms):
    simple(ms, 1)
    assert_ok(run())
    simple(ms, 2, article="ART-1")
    r = run()
    assert r.error_count == 1 and "already used by MoySklad item" in r.errors[0]["error"]
    assert Offer.objects.count() == 1 and ProductBinding.objects.count() == 1


def test_variant_whose_product_is_unknown_is_recorded(ms):
    parent = simple(ms, 1)
    orphan = ms.variant(ms.add_variant(parent, code="VAR-1"))
    ms.delete_product(parent)   # gone with its variants; the variant list still shows this one
    ms.faults.add(kind="rows", count=1, path_contains="entity/variant", body=[orphan])
    r = run()
    assert_ok(r)
    assert r.error_count == 1 and "not imported" in r.errors[0]["error"]
    assert not Offer.objects.exists()


def test_malformed_folder_is_recorded_and_its_products_kept(ms):
    ms.add_folder("Папка 1")
    broken = ms.add_folder("Папка 2")
    simple(ms, 1, productFolder=broken)
    ms.delete_folder(broken)   # listed below as a row with nothing but its id
    ms.faults.add(kind="rows", count=1, path_contains="entity/productfolder", body=[{"id": broken}])
    r = run()
    assert_ok(r)
    assert offer("ART-1").product.category is None
    assert r.error_count == 2  # the folder, then the product's unknown folder


# -- failures ------------------------------------------------------------------------------------------
def test_failed_run_moves_no_cursor_and_never_hides_anything(ms, settings):
    settings.MOYSKLAD = {**settings.MOYSKLAD, "PAGE_SIZE": 2}
    ids = [simple(ms, i) for i in range(1, 6)]
    first = run(full=True)
    assert_ok(first)
    state_before = JobState.objects.values("cursor", "full_cursor").get(job=JOB)
    snapshot = _snapshot()
    # Now page 2 answers 500 every time: the client retries, gives up, the run fails.
    for product_id in ids:
        ms.update_product(product_id, salePrice=100)
    ms.faults.add(status=500, count=None, path_contains="entity/product?", params={"offset": "2"})
    mark = len(ms.logged("entity/product"))
    with pytest.raises(Exception) as info:
        run(full=True)
    assert "UpstreamUnavailableError" in type(info.value).__name__
    failed = JobRun.objects.filter(job=JOB).first()
    assert failed.status == JobRun.Status.FAILED and "500" in failed.message
    tries = ms.logged("entity/product")[mark:]
    assert [r.params["offset"] for r in tries] == ["0", "2", "2", "2"]  # page 2: 1 try + 2 retries
    assert JobState.objects.values("cursor", "full_cursor").get(job=JOB) == state_before
    assert not Offer.objects.filter(archived=True).exists() and not Product.objects.filter(archived=True).exists()
    assert Offer.objects.count() == snapshot["bindings"][1] == 5
    assert JobState.objects.get(job=JOB).locked_by == ""  # the lock is released


def test_401_stops_the_job_with_a_clear_message(ms, settings):
    settings.MOYSKLAD = {**settings.MOYSKLAD, "TOKEN": "a-revoked-token"}
    with pytest.raises(AuthError):
        run()
    failed = JobRun.objects.get(job=JOB)
    assert failed.status == JobRun.Status.FAILED
    assert "check MOYSKLAD_TOKEN" in failed.message and "1056" in failed.message
    assert [(r.path, r.status) for r in ms.logged()] == [("context/companysettings/pricetype", 401)]  # nothing retried
    assert JobState.objects.get(job=JOB).cursor is None


def test_a_transport_error_mid_run_fails_the_run(ms):
    simple(ms, 1)
    ms.faults.add(kind="drop", count=None, path_contains="entity/variant")   # connection closed, no answer
    with pytest.raises(Exception):
        run()
    assert [r.status for r in ms.logged("entity/variant")] == [0, 0, 0]
    assert JobRun.objects.get(job=JOB).status == JobRun.Status.FAILED
    assert JobState.objects.get(job=JOB).cursor is None


# -- regressions -----------------------------------------------------------------------------------
def test_site_name_survives_a_later_moysklad_change_that_did_not_touch_the_name(ms):
    one = simple(ms, 1, name="Имя из МС")
    assert_ok(run())
    p = Product.objects.get()
    product_contested_set_by_site(product=p, field="name", value="Имя с сайта")
    # Later, someone changes only the price in MoySklad: its `updated` is newer than the site edit.
    ms.catalog.advance(5 * 60)
    ms.update_product(one, salePrice=5000)
    assert_ok(run())
    p.refresh_from_db()
    assert p.name == "Имя с сайта"
    assert offer("ART-1").price == Decimal("50.00")
    assert not FieldChange.objects.filter(source="moysklad").exists()
    # ... and when MoySklad then really renames it, MoySklad's newer edit wins.
    ms.catalog.advance(5 * 60)
    ms.update_product(one, name="Новое имя из МС")
    assert_ok(run())
    p.refresh_from_db()
    assert p.name == "Новое имя из МС"


def test_catalog_pages_in_a_stable_order(catalog):
    assert_ok(run())
    for path in ("entity/product", "entity/variant"):
        assert first_params(catalog, path)["order"] == "id"


def test_full_run_confirms_before_archiving_what_paging_skipped(catalog, sandbox_respx, settings):
    """Offset paging on moving data can skip a row; the full run must not take it for deleted."""
    for i in range(5, 9):
        simple(catalog, i)
    assert_ok(run())
    catalog.delete_product(catalog.ids.jacket)  # really deleted
    settings.MOYSKLAD = {**settings.MOYSKLAD, "PAGE_SIZE": 2}
    in_id_order = [catalog.catalog.id_of(PRODUCT, i) for i in select(catalog.collections["product"], [], "id")]
    first, skipped = in_id_order[0], in_id_order[2]

    def someone_deletes_a_product_while_we_page(request):
        if request.url.path.endswith("/entity/product") and request.url.params.get("offset") == "2" \
                and first in catalog.product_ids():
            catalog.delete_product(first)   # read on page 1; everything after it moves up one place

    sandbox_respx.before_request.append(someone_deletes_a_product_while_we_page)
    r = run(full=True)
    assert_ok(r)
    assert first not in catalog.product_ids()
    assert not ProductBinding.objects.get(external_id=skipped).product.archived   # the list skipped it; a lookup found it
    assert offer("ALS-01").archived                        # really deleted: confirmed by the lookup
    assert r.counts["deleted_upstream_products"] == 1 and r.counts["deleted_upstream_offers"] == 1
    lookups = [req.params["filter"] for req in catalog.logged("entity/product") if "id=" in req.params.get("filter", "")]
    assert any(f"id={catalog.ids.jacket}" in f for f in lookups) and any(f"id={skipped}" in f for f in lookups)


def test_record_archived_here_but_active_upstream_is_restored(catalog):
    assert_ok(run())
    Offer.objects.filter(sku="GLV-3").update(archived=True)
    Product.objects.filter(name="Перчатки").update(archived=True)
    assert_ok(run(full=True))
    assert not offer("GLV-3").archived and not offer("GLV-3").product.archived


def test_full_run_archives_folders_missing_upstream(catalog):
    assert_ok(run())
    catalog.delete_folder(catalog.ids.winter)
    assert_ok(run())
    assert not Category.objects.get(name="Зимние").archived  # a delta does not reconcile
    r = run(full=True)
    assert_ok(r)
    assert Category.objects.get(name="Зимние").archived and not Category.objects.get(name="Куртки").archived
    assert r.counts["deleted_upstream_folders"] == 1 and Category.objects.count() == 3
