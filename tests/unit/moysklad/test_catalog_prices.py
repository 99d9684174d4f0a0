"""Prices of the right price type for every sellable unit, and what happens around bad price data:
against the sandbox's MoySklad (in-process, tests/sandbox_respx.py) and the database (SQLite or
PostgreSQL). The sandbox's account has two price types: «Цена продажи» (retail, listed first) and
«Оптовая цена» (wholesale, 0.85 of retail)."""
from datetime import timedelta
from decimal import Decimal

import pytest

from catalog.models import Barcode, Category, Offer, Product
from integrations import jobs
from integrations.models import JobRun, JobState, OfferBinding, ProductBinding
from integrations.moysklad.mapping import parse_msk
from integrations.runs import run_job
from stock.models import Warehouse

pytestmark = pytest.mark.django_db
JOB = "moysklad-catalog"


def run(full=False, **kw) -> JobRun:
    return run_job(jobs.get(JOB), full=full, trigger="test", **kw)


def assert_ok(job_run: JobRun):
    assert job_run.status == JobRun.Status.SUCCESS, (job_run.message, job_run.errors)


def simple(ms, i: int, **fields) -> str:
    return ms.add_product(**{"name": f"Товар {i}", "article": f"ART-{i}", "code": f"{i:05d}", **fields})


def rubles(kopecks) -> Decimal:
    return (Decimal(str(kopecks)) / 100).quantize(Decimal("0.01"))


def wholesale_of(ms, product_id: str):
    return next(p["value"] for p in ms.product(product_id)["salePrices"] if p["priceType"]["name"] == "Оптовая цена")


def listed_as(ms, entity: str, row: dict) -> None:
    """The list answers `row` (a record as MoySklad would send it, say with a null price value)
    instead of the sandbox's own rendering of it."""
    (ms.delete_product if entity == "product" else ms.delete_variant)(row["id"])
    ms.faults.add(kind="rows", count=None, path_contains=f"entity/{entity}?", body=[row])


# -- which price ----------------------------------------------------------------------------
def test_wholesale_listed_first_does_not_become_the_price(ms):
    ms.configure(wholesale_first=True)   # rows list the wholesale price before the retail one
    one = simple(ms, 1, salePrice=149900)
    assert ms.product(one)["salePrices"][0]["priceType"]["name"] == "Оптовая цена"
    assert_ok(run())
    assert Offer.objects.get(sku="ART-1").price == Decimal("1499.00")   # the account's first type: retail


@pytest.mark.parametrize("key", ["id", "name", "externalCode"])
def test_configured_price_type_by_id_name_or_external_code(ms, settings, key):
    ms.configure(wholesale_first=True)
    one = simple(ms, 1, salePrice=149900)
    wholesale = next(p["priceType"] for p in ms.product(one)["salePrices"] if p["priceType"]["name"] == "Оптовая цена")
    settings.MOYSKLAD = {**settings.MOYSKLAD, "PRICE_TYPE": wholesale[key]}
    assert_ok(run())
    assert Offer.objects.get(sku="ART-1").price == rubles(wholesale_of(ms, one)) != Decimal("1499.00")


def test_without_a_setting_the_accounts_first_price_type_is_used(ms, sandbox_respx):
    one = simple(ms, 1, salePrice=149900)
    http = sandbox_respx.client()
    account_types = http.get("/context/companysettings/pricetype").json()
    # this account lists wholesale first
    ms.faults.add(status=200, count=None, path_contains="context/companysettings/pricetype",
                  body=list(reversed(account_types)))
    assert_ok(run())
    assert Offer.objects.get(sku="ART-1").price == rubles(wholesale_of(ms, one)) != Decimal("1499.00")


def test_price_types_are_read_once_per_run(ms, settings):
    settings.MOYSKLAD = {**settings.MOYSKLAD, "PAGE_SIZE": 1}
    for i in range(1, 4):
        simple(ms, i)
    assert_ok(run())
    assert len(ms.logged("entity/product")) == 3
    assert len(ms.logged("context/companysettings/pricetype")) == 1


# -- bad input --------------------------------------------------------------------------------
def test_configured_price_type_that_does_not_exist_fails_the_job_naming_the_available_ones(ms, settings):
    settings.MOYSKLAD = {**settings.MOYSKLAD, "PRICE_TYPE": "Розница"}
    ms.add_folder("Папка 1")
    retail, wholesale = (p["priceType"] for p in ms.product(simple(ms, 1))["salePrices"])
    with pytest.raises(Exception, match="Розница"):
        run()
    failed = JobRun.objects.get(job=JOB)
    assert failed.status == JobRun.Status.FAILED
    assert "'Розница'" in failed.message and f"'Цена продажи' (id {retail['id']}" in failed.message
    assert f"'Оптовая цена' (id {wholesale['id']}" in failed.message
    # Nothing written, nothing else asked.
    assert not (Warehouse.objects.exists() or Category.objects.exists() or Product.objects.exists()
                or Offer.objects.exists())
    assert [r.path for r in ms.logged()] == ["context/companysettings/pricetype"]
    assert JobState.objects.get(job=JOB).cursor is None


def test_account_without_price_types_imports_units_without_prices(ms):
    ms.faults.add(status=200, count=None, path_contains="context/companysettings/pricetype", body=[])
    for i in (1, 2):   # an account without price types has no sale prices on its rows either
        ms.update_product(simple(ms, i), salePrice=None)
    r = run()
    assert_ok(r)
    assert list(Offer.objects.order_by("sku").values_list("sku", "price")) == [("ART-1", None), ("ART-2", None)]
    assert any("no sale price types" in e["error"] for e in r.errors)


def test_sale_price_with_a_null_value_is_no_price(ms):
    ms.configure(wholesale_first=True)
    row = ms.product(simple(ms, 1))
    next(p for p in row["salePrices"] if p["priceType"]["name"] == "Цена продажи")["value"] = None
    listed_as(ms, "product", row)   # retail null, wholesale set
    ms.update_product(simple(ms, 2), salePrice=None)   # no sale prices at all
    assert_ok(run())
    assert Offer.objects.get(sku="ART-1").price is None and Offer.objects.get(sku="ART-2").price is None
    assert not Offer.objects.get(sku="ART-1").archived   # listed like any other


def test_zero_is_a_price(ms):
    simple(ms, 1, salePrice=0)
    assert_ok(run())
    assert Offer.objects.get(sku="ART-1").price == Decimal("0.00")


def test_price_going_away_upstream_clears_ours(ms):
    one = simple(ms, 1)
    assert_ok(run())
    assert Offer.objects.get(sku="ART-1").price is not None
    ms.update_product(one, salePrice=None)
    assert_ok(run())
    assert Offer.objects.get(sku="ART-1").price is None


# -- variants ---------------------------------------------------------------------------------
@pytest.fixture
def no_fallback(ms):
    """A variant without an own price lists none (the importer must fall back to its product's)."""
    ms.configure(variant_price_fallback=False)
    return ms


def test_variant_without_its_own_price_takes_its_products(no_fallback):
    ms = no_fallback
    parent = simple(ms, 1, salePrice=50000)
    ms.add_variant(parent, code="VAR-1")
    only_wholesale = ms.variant(ms.add_variant(parent, code="VAR-2", salePrice=35000))
    next(p for p in only_wholesale["salePrices"] if p["priceType"]["name"] == "Цена продажи")["value"] = None
    ms.add_variant(parent, code="VAR-3", salePrice=70000)
    listed_as(ms, "variant", only_wholesale)
    assert ms.variant(ms.variant_ids()[0])["salePrices"] == []
    assert_ok(run())
    assert Offer.objects.get(sku="VAR-1").price == Decimal("500.00")
    assert Offer.objects.get(sku="VAR-2").price == Decimal("500.00")   # a wholesale price of its own is not one
    assert Offer.objects.get(sku="VAR-3").price == Decimal("700.00")


def test_variant_taking_its_products_price_follows_a_change_of_it(no_fallback):
    ms = no_fallback
    parent = simple(ms, 1, salePrice=50000)
    ms.add_variant(parent, code="VAR-1")
    ms.add_variant(parent, code="VAR-3", salePrice=99900)
    assert_ok(run())
    own_before = Offer.objects.get(sku="VAR-3").updated_at
    ms.catalog.advance(60)
    ms.update_product(parent, salePrice=55000)
    assert_ok(run())   # the variants themselves did not change upstream
    assert Offer.objects.get(sku="VAR-1").price == Decimal("550.00")
    assert Offer.objects.get(sku="VAR-3").price == Decimal("999.00") and \
        Offer.objects.get(sku="VAR-3").updated_at == own_before


def test_variant_whose_product_has_no_price_is_imported_without_one(no_fallback):
    ms = no_fallback
    parent = simple(ms, 1)
    ms.add_variant(parent, code="VAR-1")
    ms.update_product(parent, salePrice=None)
    r = run()
    assert_ok(r)
    assert Offer.objects.get(sku="VAR-1").price is None and not Offer.objects.get(sku="VAR-1").archived


# -- only real changes move updated_at -------------------------------------------------------------
def test_a_newer_record_with_nothing_changed_moves_no_updated_at_and_keeps_barcodes(ms):
    five = simple(ms, 5, externalCode="ART-5")
    parent = simple(ms, 1)
    var = ms.add_variant(parent, code="VAR-1", barcodes=[{"ean13": "4600000000017"}])
    assert_ok(run())
    stamps = sorted(Offer.objects.values_list("sku", "updated_at")) + sorted(
        Product.objects.values_list("name", "updated_at"))
    barcodes = sorted(Barcode.objects.values_list("pk", "value"))
    ms.catalog.advance(5 * 60)
    ms.update_product(five, name="Товар 5")    # saved again in the UI, nothing changed: a newer `updated`
    ms.update_product(parent, name="Товар 1")
    ms.update_variant(var, code="VAR-1")
    newer = ms.product(five)["updated"]
    r = run()
    assert_ok(r)
    assert r.counts["products_updated"] == 2 and r.counts.get("products_changed", 0) == 0
    assert sorted(Offer.objects.values_list("sku", "updated_at")) + sorted(
        Product.objects.values_list("name", "updated_at")) == stamps
    assert sorted(Barcode.objects.values_list("pk", "value")) == barcodes   # not deleted and re-inserted
    # The bindings did take the newer version.
    binding = OfferBinding.objects.get(external_code="ART-5")
    assert binding.external_updated_at == parse_msk(newer)


def test_a_real_change_moves_updated_at_of_that_unit_only(ms):
    one, two = simple(ms, 1), simple(ms, 2)
    assert_ok(run())
    before = dict(Offer.objects.values_list("sku", "updated_at"))
    ms.catalog.advance(5 * 60)
    ms.update_product(one, salePrice=159900)
    ms.update_product(two, name="Товар 2")   # saved, unchanged
    assert_ok(run())
    after = dict(Offer.objects.values_list("sku", "updated_at"))
    assert after["ART-1"] > before["ART-1"] and after["ART-2"] == before["ART-2"]
    assert Product.objects.get(name="Товар 2").updated_at <= before["ART-2"] + timedelta(seconds=1)


def test_changed_barcodes_replace_the_list_and_move_updated_at(ms):
    one = simple(ms, 1)
    assert_ok(run())
    before = Offer.objects.get(sku="ART-1").updated_at
    ms.catalog.advance(5 * 60)
    ms.update_product(one, barcodes=[{"ean13": "4600000000024"}, {"code128": "X1"}])
    assert_ok(run())
    o = Offer.objects.get(sku="ART-1")
    assert sorted(o.barcodes.values_list("kind", "value")) == [("code128", "X1"), ("ean13", "4600000000024")]
    assert o.updated_at > before


# -- pages cut short ----------------------------------------------------------------------------
def test_a_page_whose_json_is_cut_short_fails_the_run_and_writes_nothing_of_it(ms, settings, sandbox_respx):
    settings.MOYSKLAD = {**settings.MOYSKLAD, "PAGE_SIZE": 2}
    ids = [simple(ms, i, externalCode=f"ext-{i}") for i in range(1, 6)]
    # page 1 (in id order) lands; page 2's answer is cut off halfway
    in_order = sandbox_respx.client().get("/entity/product", params={"order": "id"}).json()["rows"]
    assert {r["id"] for r in in_order} == set(ids)
    first_page = sorted(r["article"] for r in in_order[:2])
    whole = sandbox_respx.client().get("/entity/product", params={"order": "id", "limit": 2, "offset": 2}).content
    ms.faults.add(status=200, count=None, path_contains="entity/product?", params={"offset": "2"},
                  body=whole[: len(whole) // 2])
    with pytest.raises(Exception) as info:
        run()
    assert "not JSON" in str(info.value)
    failed = JobRun.objects.get(job=JOB)
    assert failed.status == JobRun.Status.FAILED and "not JSON" in failed.message
    assert sorted(Offer.objects.values_list("sku", flat=True)) == first_page   # page 1 only, whole
    on_page_2 = [r["externalCode"] for r in in_order[2:4]]
    assert not ProductBinding.objects.filter(external_code__in=on_page_2).exists()
    assert JobState.objects.get(job=JOB).cursor is None
