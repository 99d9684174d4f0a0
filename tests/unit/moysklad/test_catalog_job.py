"""moysklad-catalog against a respx MoySklad and the database (SQLite or PostgreSQL)."""
from datetime import datetime, timedelta, timezone
from decimal import Decimal

import httpx
import pytest
from django.db import IntegrityError, transaction

from catalog.models import Barcode, Category, FieldChange, Offer, Product
from catalog.services import product_contested_set_by_site
from integrations import jobs
from integrations.http.errors import AuthError
from integrations.models import CategoryBinding, JobRun, JobState, OfferBinding, ProductBinding, WarehouseBinding
from integrations.runs import run_job
from stock.models import Warehouse

from .support import error_response, folder, load, price, product, variant

pytestmark = pytest.mark.django_db
JOB = "moysklad-catalog"


def run(full=False, **kw) -> JobRun:
    return run_job(jobs.get(JOB), full=full, trigger="test", **kw)


def assert_ok(job_run: JobRun):
    assert job_run.status == JobRun.Status.SUCCESS, (job_run.message, job_run.errors)


@pytest.fixture
def catalog(ms):
    """The captured fixtures: a folder tree, three simple products, one with two variants."""
    ms.entities["store"] = load("store_list_two")["rows"]
    ms.entities["productfolder"] = load("productfolder_tree")["rows"]
    ms.entities["product"] = load("product_list_simple")["rows"] + load("product_list_with_variants")["rows"]
    ms.entities["variant"] = load("variant_list_two")["rows"]
    return ms


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
    assert CategoryBinding.objects.get(category=winter).external_id == "ffffffff-0000-0000-0000-000000000003"


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
    assert o.product.description == "Тёплая куртка" and o.product.vat == 20
    assert set(o.barcodes.values_list("kind", "value")) == {("ean13", "2000000000015"), ("code128", "ALS01")}
    assert o.product.offers.count() == 1
    binding = OfferBinding.objects.get(offer=o)
    assert binding.external_id == "11111111-0000-0000-0000-000000000001" and binding.kind == "product"
    assert ProductBinding.objects.get(product=o.product).external_code == "ext-als-01"


def test_sku_is_the_code_when_the_article_is_empty(catalog):
    assert_ok(run())
    hat = offer("00002")
    assert hat.name == "Шапка вязаная" and hat.price == Decimal("149.91")  # 14990.5 kopecks, half up


def test_product_with_variants_gets_an_offer_per_variant_and_none_for_itself(catalog):
    assert_ok(run())
    tshirt = Product.objects.get(name="Футболка базовая")
    assert sorted(tshirt.offers.values_list("sku", flat=True)) == ["TSH-B-L-B", "TSH-B-M-W"]
    assert not Offer.objects.filter(sku="TSH-B").exists()
    m = offer("TSH-B-M-W")
    assert m.is_variant and m.price == Decimal("999.00") and m.characteristics == {"Размер": "M", "Цвет": "белый"}
    assert offer("TSH-B-L-B").price == Decimal("1099.00")
    assert list(m.barcodes.values_list("value", flat=True)) == ["2000000000107"]
    assert OfferBinding.objects.get(offer=m).kind == "variant"


def test_product_that_gains_variants_retires_its_own_offer(ms):
    ms.entities["product"] = [product(1)]
    assert_ok(run())
    assert not offer("ART-1").archived
    ms.entities["product"] = [product(1, variantsCount=1, updated="2026-11-21 10:00:00.000")]
    ms.entities["variant"] = [variant(1, product(1)["id"])]
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
    for path in ("/entity/product", "/entity/variant", "/entity/productfolder"):
        assert catalog.params(catalog.calls(path)[0])["filter"] == "archived=true;archived=false"


def test_delta_reads_updated_since_the_cursor_minus_overlap_in_moscow_time(catalog):
    JobState.objects.create(job=JOB, cursor=datetime(2026, 11, 20, 7, 0, 0, tzinfo=timezone.utc))
    r = run()
    assert_ok(r)
    # cursor 07:00 UTC = 10:00 MSK, minus the 120 s overlap
    expected = "updated>=2026-11-20 09:58:00.000;archived=true;archived=false"
    for path in ("/entity/product", "/entity/variant"):
        params = catalog.params(catalog.calls(path)[0])
        assert params["filter"] == expected
        assert params["order"] == "id"
    assert r.window_from == datetime(2026, 11, 20, 6, 58, 0, tzinfo=timezone.utc)


def test_full_run_ignores_the_cursor(catalog):
    JobState.objects.create(job=JOB, cursor=datetime(2026, 11, 20, 7, 0, 0, tzinfo=timezone.utc))
    assert_ok(run(full=True))
    assert catalog.params(catalog.calls("/entity/product")[0])["filter"] == "archived=true;archived=false"


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
    ms.entities["product"] = [product(1), product(1, name="Новее", updated="2026-11-20 11:00:00.000")]
    assert_ok(run())
    assert Product.objects.get().name == "Новее" and Offer.objects.count() == 1


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
    rows = catalog.entities["product"]
    rows[0] = {**rows[0], "updated": "2026-11-21 09:00:00.000", "name": "Куртка «Аляска» 2",
               "salePrices": [{"value": 159900.0, "priceType": {"id": "p1", "name": "Цена продажи"}}],
               "barcodes": [{"ean13": "2000000000999"}]}
    r = run()
    assert_ok(r)
    o = offer("ALS-01")
    assert o.price == Decimal("1599.00") and o.product.name == "Куртка «Аляска» 2"
    assert list(o.barcodes.values_list("value", flat=True)) == ["2000000000999"]
    assert r.counts["products_updated"] == 1 and r.counts["up_to_date"] == 5
    assert Product.objects.count() == 2 + 2 and Offer.objects.count() == 5


def test_changed_article_changes_the_sku_of_the_same_offer(ms):
    ms.entities["product"] = [product(1)]
    assert_ok(run())
    offer_id = offer("ART-1").pk
    ms.entities["product"] = [product(1, article="NEW-1", updated="2026-11-21 10:00:00.000")]
    assert_ok(run())
    assert offer("NEW-1").pk == offer_id and Offer.objects.count() == 1


def test_archived_upstream_is_archived_here(catalog):
    assert_ok(run())
    rows = catalog.entities["product"]
    rows[1] = {**rows[1], "archived": True, "updated": "2026-11-21 09:00:00.000"}
    catalog.entities["variant"][0] = {**catalog.entities["variant"][0], "archived": True,
                                      "updated": "2026-11-21 09:00:00.000"}
    assert_ok(run())
    hat = offer("00002")
    assert hat.archived and hat.product.archived
    assert offer("TSH-B-M-W").archived and not offer("TSH-B-L-B").archived
    assert not offer("ALS-01").archived


def test_full_run_archives_what_vanished_upstream_and_deletes_nothing(catalog):
    assert_ok(run())
    counts = (Product.objects.count(), Offer.objects.count())
    del catalog.entities["product"][2]   # Перчатки deleted in MoySklad
    del catalog.entities["variant"][1]   # one variant deleted
    r = run(full=True)
    assert_ok(r)
    assert (Product.objects.count(), Offer.objects.count()) == counts  # never deleted here
    assert offer("GLV-3").archived and offer("GLV-3").product.archived
    assert offer("TSH-B-L-B").archived and not offer("TSH-B-M-W").archived
    assert not offer("ALS-01").archived and not Product.objects.get(name="Футболка базовая").archived
    assert r.counts["deleted_upstream_products"] == 1 and r.counts["deleted_upstream_offers"] == 2


def test_delta_run_never_archives_what_it_did_not_see(catalog):
    assert_ok(run())
    catalog.entities["product"] = []
    catalog.entities["variant"] = []
    assert_ok(run())
    assert not Offer.objects.filter(archived=True).exists()
    assert not Product.objects.filter(archived=True).exists()


def test_full_run_keeps_items_whose_rows_failed_to_map(catalog):
    """A row present upstream but unmappable today (say its name went missing) is not 'deleted'."""
    assert_ok(run())
    catalog.entities["product"][0] = {**catalog.entities["product"][0], "name": "",
                                      "updated": "2026-11-22 09:00:00.000"}
    r = run(full=True)
    assert_ok(r)
    assert r.error_count == 1 and not offer("ALS-01").archived


# -- contested name ---------------------------------------------------------------------------------
def test_contested_name_goes_to_moysklad_when_its_edit_is_newer(ms):
    ms.entities["product"] = [product(1, name="Имя из МС")]
    assert_ok(run())
    p = Product.objects.get()
    product_contested_set_by_site(product=p, field="name", value="Имя с сайта")
    p.refresh_from_db()
    ms.entities["product"] = [product(1, name="Новое имя из МС",
                                      updated=(p.name_edited_at + timedelta(minutes=1)).astimezone(
                                          timezone(timedelta(hours=3))).strftime("%Y-%m-%d %H:%M:%S.000"))]
    assert_ok(run())
    p.refresh_from_db()
    assert p.name == "Новое имя из МС"
    history = list(FieldChange.objects.order_by("id").values_list("source", "old_value", "new_value", "accepted"))
    assert history == [("site", "Имя из МС", "Имя с сайта", True),
                       ("moysklad", "Имя с сайта", "Новое имя из МС", True)]


def test_contested_name_stays_when_the_site_edit_is_newer_and_the_attempt_is_recorded(ms):
    ms.entities["product"] = [product(1, name="Имя из МС", updated="2026-11-20 10:00:00.000")]
    assert_ok(run())
    p = Product.objects.get()
    product_contested_set_by_site(product=p, field="name", value="Имя с сайта")  # edited now, after 2026-11-20
    ms.entities["product"] = [product(1, name="Другое имя из МС", updated="2026-11-20 10:05:00.000",
                                      salePrices=price(200000.0))]
    assert_ok(run())
    p.refresh_from_db()
    assert p.name == "Имя с сайта"
    assert offer("ART-1").price == Decimal("2000.00")  # MoySklad-owned fields still land
    rejected = FieldChange.objects.get(source="moysklad")
    assert (rejected.old_value, rejected.new_value, rejected.accepted) == ("Имя с сайта", "Другое имя из МС", False)


def test_site_owned_fields_are_never_written(ms):
    ms.entities["product"] = [product(1)]
    assert_ok(run())
    Product.objects.update(slug="my-slug", seo_title="SEO")
    ms.entities["product"] = [product(1, name="Новое", updated="2026-11-21 10:00:00.000")]
    assert_ok(run())
    p = Product.objects.get()
    assert (p.name, p.slug, p.seo_title) == ("Новое", "my-slug", "SEO")


# -- bad input ----------------------------------------------------------------------------------------
def test_bad_rows_are_skipped_and_recorded_while_the_rest_lands(ms):
    ms.entities["productfolder"] = [folder(1)]
    site_product = Product.objects.create(name="Сайт")
    Offer.objects.create(product=site_product, sku="SITE-SKU", name="не из МС")
    ms.entities["product"] = [
        product(1, folder=folder(1)["id"]),                      # fine
        "garbage",                                                # malformed row
        {"name": "без id"},                                       # malformed row
        product(3, salePrices=[]),                                # no price: lands, price null
        product(4, salePrices=price(None)),                       # null price: lands, price null
        product(5, folder="ffffffff-0000-0000-0000-00000000dead"),  # unknown folder: kept, no category
        product(6, article="ART-1"),                              # duplicate SKU of product 1 in this page
        product(7, article="SITE-SKU"),                           # duplicate of a site offer
        product(8, name=""),                                      # no name
        product(9),                                               # fine
    ]
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
    ms.entities["product"] = [product(1)]
    assert_ok(run())
    ms.entities["product"] = [product(2, article="ART-1", updated="2026-11-21 10:00:00.000")]
    r = run()
    assert r.error_count == 1 and "already used by MoySklad item" in r.errors[0]["error"]
    assert Offer.objects.count() == 1 and ProductBinding.objects.count() == 1


def test_variant_whose_product_is_unknown_is_recorded(ms):
    ms.entities["variant"] = [variant(1, "22222222-0000-0000-0000-00000000dead")]
    r = run()
    assert_ok(r)
    assert r.error_count == 1 and "not imported" in r.errors[0]["error"]
    assert not Offer.objects.exists()


def test_malformed_folder_is_recorded_and_its_products_kept(ms):
    ms.entities["productfolder"] = [folder(1), {"id": "ffffffff-0000-0000-0000-000000000002"}]
    ms.entities["product"] = [product(1, folder="ffffffff-0000-0000-0000-000000000002")]
    r = run()
    assert_ok(r)
    assert offer("ART-1").product.category is None
    assert r.error_count == 2  # the folder, then the product's unknown folder


# -- failures ------------------------------------------------------------------------------------------
def test_failed_run_moves_no_cursor_and_never_hides_anything(ms, settings):
    settings.MOYSKLAD = {**settings.MOYSKLAD, "PAGE_SIZE": 2}
    ms.entities["product"] = [product(i) for i in range(1, 6)]
    first = run(full=True)
    assert_ok(first)
    state_before = JobState.objects.values("cursor", "full_cursor").get(job=JOB)
    snapshot = _snapshot()
    # Now page 2 answers 500 every time: the client retries, gives up, the run fails.
    ms.entities["product"] = [product(i, updated="2026-11-22 10:00:00.000", salePrices=price(1.0))
                              for i in range(1, 3)]  # page 1 only has two rows: the rest "vanished"
    ms.entities["product"] += [product(i) for i in range(3, 6)]
    ms.fail["product"] = lambda request, offset: error_response(500, "error_500_internal") if offset >= 2 else None
    mark = len(ms.requests)
    with pytest.raises(Exception) as info:
        run(full=True)
    assert "UpstreamUnavailableError" in type(info.value).__name__
    failed = JobRun.objects.filter(job=JOB).first()
    assert failed.status == JobRun.Status.FAILED and "500" in failed.message
    tries = [r for r in ms.requests[mark:] if r.url.path.endswith("/entity/product")]
    assert [ms.params(r)["offset"] for r in tries] == ["0", "2", "2", "2"]  # page 2: 1 try + 2 retries
    assert JobState.objects.values("cursor", "full_cursor").get(job=JOB) == state_before
    assert not Offer.objects.filter(archived=True).exists() and not Product.objects.filter(archived=True).exists()
    assert Offer.objects.count() == snapshot["bindings"][1] == 5
    assert JobState.objects.get(job=JOB).locked_by == ""  # the lock is released


def test_401_stops_the_job_with_a_clear_message(ms):
    ms.fail["pricetype"] = lambda request, offset: error_response(401, "error_401")
    with pytest.raises(AuthError):
        run()
    failed = JobRun.objects.get(job=JOB)
    assert failed.status == JobRun.Status.FAILED
    assert "check MOYSKLAD_TOKEN" in failed.message and "1056" in failed.message
    assert len(ms.requests) == 1  # nothing retried, nothing else tried
    assert JobState.objects.get(job=JOB).cursor is None


def test_a_transport_error_mid_run_fails_the_run(ms):
    ms.entities["product"] = [product(1)]
    ms.fail["variant"] = lambda request, offset: (_ for _ in ()).throw(httpx.ConnectError("reset by peer"))
    with pytest.raises(Exception):
        run()
    assert JobRun.objects.get(job=JOB).status == JobRun.Status.FAILED
    assert JobState.objects.get(job=JOB).cursor is None


# -- regressions -----------------------------------------------------------------------------------
def test_site_name_survives_a_later_moysklad_change_that_did_not_touch_the_name(ms):
    ms.entities["product"] = [product(1, name="Имя из МС", updated="2026-11-20 10:00:00.000")]
    assert_ok(run())
    p = Product.objects.get()
    product_contested_set_by_site(product=p, field="name", value="Имя с сайта")
    # Later, someone changes only the price in MoySklad: its `updated` is newer than the site edit.
    later = (timezone_now_msk() + timedelta(minutes=5)).strftime("%Y-%m-%d %H:%M:%S.000")
    ms.entities["product"] = [product(1, name="Имя из МС", updated=later, salePrices=price(5000.0))]
    assert_ok(run())
    p.refresh_from_db()
    assert p.name == "Имя с сайта"
    assert offer("ART-1").price == Decimal("50.00")
    assert not FieldChange.objects.filter(source="moysklad").exists()
    # ... and when MoySklad then really renames it, MoySklad's newer edit wins.
    later = (timezone_now_msk() + timedelta(minutes=10)).strftime("%Y-%m-%d %H:%M:%S.000")
    ms.entities["product"] = [product(1, name="Новое имя из МС", updated=later)]
    assert_ok(run())
    p.refresh_from_db()
    assert p.name == "Новое имя из МС"


def timezone_now_msk():
    from integrations.moysklad.constants import MSK
    from django.utils import timezone as dj_timezone

    return dj_timezone.now().astimezone(MSK)


def test_catalog_pages_in_a_stable_order(catalog):
    assert_ok(run())
    for path in ("/entity/product", "/entity/variant"):
        assert catalog.params(catalog.calls(path)[0])["order"] == "id"


def test_full_run_confirms_before_archiving_what_paging_skipped(catalog):
    """Offset paging on moving data can skip a row; the full run must not take it for deleted."""
    assert_ok(run())
    catalog.skipped_by_paging = {"11111111-0000-0000-0000-000000000003", "33333333-0000-0000-0000-000000000002"}
    del catalog.entities["product"][0]  # really deleted
    r = run(full=True)
    assert_ok(r)
    assert not offer("GLV-3").archived and not offer("TSH-B-L-B").archived
    assert offer("ALS-01").archived
    assert r.counts["deleted_upstream_products"] == 1 and r.counts["deleted_upstream_offers"] == 1
    lookups = [catalog.params(req)["filter"] for req in catalog.requests
               if "id=" in catalog.params(req).get("filter", "")]
    assert any("id=11111111-0000-0000-0000-000000000001" in f for f in lookups)


def test_record_archived_here_but_active_upstream_is_restored(catalog):
    assert_ok(run())
    Offer.objects.filter(sku="GLV-3").update(archived=True)
    Product.objects.filter(name="Перчатки").update(archived=True)
    assert_ok(run(full=True))
    assert not offer("GLV-3").archived and not offer("GLV-3").product.archived


def test_full_run_archives_folders_missing_upstream(catalog):
    assert_ok(run())
    catalog.entities["productfolder"] = [f for f in catalog.entities["productfolder"] if f["name"] != "Зимние"]
    assert_ok(run())
    assert not Category.objects.get(name="Зимние").archived  # a delta does not reconcile
    r = run(full=True)
    assert_ok(r)
    assert Category.objects.get(name="Зимние").archived and not Category.objects.get(name="Куртки").archived
    assert r.counts["deleted_upstream_folders"] == 1 and Category.objects.count() == 3
