"""Prices of the right price type for every sellable unit, and what happens around bad price data:
against a respx MoySklad and the database (SQLite or PostgreSQL)."""
from datetime import timedelta
from decimal import Decimal

import httpx
import pytest

from catalog.models import Barcode, Category, Offer, Product
from integrations import jobs
from integrations.models import JobRun, JobState, OfferBinding, ProductBinding
from integrations.runs import run_job
from stock.models import Warehouse

from .support import folder, product, store, variant

pytestmark = pytest.mark.django_db
JOB = "moysklad-catalog"


def run(full=False, **kw) -> JobRun:
    return run_job(jobs.get(JOB), full=full, trigger="test", **kw)


def assert_ok(job_run: JobRun):
    assert job_run.status == JobRun.Status.SUCCESS, (job_run.message, job_run.errors)


def prices(retail, wholesale=None) -> list:
    """salePrices as an account lists them with the wholesale price first (not the account's order)."""
    out = []
    if wholesale is not None:
        out.append({"value": wholesale, "priceType": {"id": "opt", "name": "Оптовая цена", "externalCode": "cbcf-opt"}})
    if retail is not None or wholesale is None:
        out.append({"value": retail, "priceType": {"id": "p1", "name": "Цена продажи", "externalCode": "cbcf-p1"}})
    return out


def later(minutes: int) -> str:
    return f"2026-11-2{minutes // 60 + 1} 10:{minutes % 60:02d}:00.000"


# -- which price ----------------------------------------------------------------------------
def test_wholesale_listed_first_does_not_become_the_price(ms):
    ms.entities["product"] = [product(1, salePrices=prices(149900.0, wholesale=100000.0))]
    assert_ok(run())
    assert Offer.objects.get(sku="ART-1").price == Decimal("1499.00")   # the account's first type: retail


@pytest.mark.parametrize("setting", ["opt", "Оптовая цена", "cbcf-opt"])
def test_configured_price_type_by_id_name_or_external_code(ms, settings, setting):
    settings.MOYSKLAD = {**settings.MOYSKLAD, "PRICE_TYPE": setting}
    ms.entities["product"] = [product(1, salePrices=prices(149900.0, wholesale=100000.0))]
    assert_ok(run())
    assert Offer.objects.get(sku="ART-1").price == Decimal("1000.00")


def test_without_a_setting_the_accounts_first_price_type_is_used(ms):
    ms.price_types = list(reversed(ms.price_types))   # this account lists wholesale first
    ms.entities["product"] = [product(1, salePrices=prices(149900.0, wholesale=100000.0))]
    assert_ok(run())
    assert Offer.objects.get(sku="ART-1").price == Decimal("1000.00")


def test_price_types_are_read_once_per_run(ms):
    ms.entities["product"] = [product(i) for i in range(1, 4)]
    assert_ok(run())
    assert len(ms.calls("/context/companysettings/pricetype")) == 1


# -- bad input --------------------------------------------------------------------------------
def test_configured_price_type_that_does_not_exist_fails_the_job_naming_the_available_ones(ms, settings):
    settings.MOYSKLAD = {**settings.MOYSKLAD, "PRICE_TYPE": "Розница"}
    ms.entities["store"] = [store(1)]
    ms.entities["productfolder"] = [folder(1)]
    ms.entities["product"] = [product(1)]
    with pytest.raises(Exception, match="Розница"):
        run()
    failed = JobRun.objects.get(job=JOB)
    assert failed.status == JobRun.Status.FAILED
    assert "'Розница'" in failed.message and "'Цена продажи' (id p1" in failed.message
    assert "'Оптовая цена' (id opt" in failed.message
    # Nothing written, nothing else asked.
    assert not (Warehouse.objects.exists() or Category.objects.exists() or Product.objects.exists()
                or Offer.objects.exists())
    assert [r.url.path.rsplit("/", 1)[-1] for r in ms.requests] == ["pricetype"]
    assert JobState.objects.get(job=JOB).cursor is None


def test_account_without_price_types_imports_units_without_prices(ms):
    ms.price_types = []
    ms.entities["product"] = [product(1), product(2)]
    r = run()
    assert_ok(r)
    assert list(Offer.objects.order_by("sku").values_list("sku", "price")) == [("ART-1", None), ("ART-2", None)]
    assert any("no sale price types" in e["error"] for e in r.errors)


def test_sale_price_with_a_null_value_is_no_price(ms):
    ms.entities["product"] = [product(1, salePrices=prices(None, wholesale=100000.0)), product(2, salePrices=[])]
    assert_ok(run())
    assert Offer.objects.get(sku="ART-1").price is None and Offer.objects.get(sku="ART-2").price is None
    assert not Offer.objects.get(sku="ART-1").archived   # listed like any other


def test_zero_is_a_price(ms):
    ms.entities["product"] = [product(1, salePrices=prices(0))]
    assert_ok(run())
    assert Offer.objects.get(sku="ART-1").price == Decimal("0.00")


def test_price_going_away_upstream_clears_ours(ms):
    ms.entities["product"] = [product(1)]
    assert_ok(run())
    ms.entities["product"] = [product(1, salePrices=[], updated=later(1))]
    assert_ok(run())
    assert Offer.objects.get(sku="ART-1").price is None


# -- variants ---------------------------------------------------------------------------------
def parent(**kw):
    return product(1, variantsCount=2, **kw)


def test_variant_without_its_own_price_takes_its_products(ms):
    ms.entities["product"] = [parent(salePrices=prices(50000.0, wholesale=40000.0))]
    ms.entities["variant"] = [variant(1, parent()["id"], salePrices=[]),
                              variant(2, parent()["id"], salePrices=prices(None, wholesale=30000.0)),
                              variant(3, parent()["id"], salePrices=prices(70000.0))]
    assert_ok(run())
    assert Offer.objects.get(sku="VAR-1").price == Decimal("500.00")
    assert Offer.objects.get(sku="VAR-2").price == Decimal("500.00")   # a wholesale price of its own is not one
    assert Offer.objects.get(sku="VAR-3").price == Decimal("700.00")


def test_variant_taking_its_products_price_follows_a_change_of_it(ms):
    ms.entities["product"] = [parent(salePrices=prices(50000.0))]
    ms.entities["variant"] = [variant(1, parent()["id"], salePrices=[]), variant(3, parent()["id"])]
    assert_ok(run())
    own_before = Offer.objects.get(sku="VAR-3").updated_at
    ms.entities["product"] = [parent(salePrices=prices(55000.0), updated=later(1))]
    assert_ok(run())   # the variants themselves did not change upstream
    assert Offer.objects.get(sku="VAR-1").price == Decimal("550.00")
    assert Offer.objects.get(sku="VAR-3").price == Decimal("999.00") and \
        Offer.objects.get(sku="VAR-3").updated_at == own_before


def test_variant_whose_product_has_no_price_is_imported_without_one(ms):
    ms.entities["product"] = [parent(salePrices=[])]
    ms.entities["variant"] = [variant(1, parent()["id"], salePrices=[])]
    r = run()
    assert_ok(r)
    assert Offer.objects.get(sku="VAR-1").price is None and not Offer.objects.get(sku="VAR-1").archived


# -- only real changes move updated_at -------------------------------------------------------------
def test_a_newer_record_with_nothing_changed_moves_no_updated_at_and_keeps_barcodes(ms):
    ms.entities["product"] = [product(5), parent()]
    ms.entities["variant"] = [variant(1, parent()["id"], barcodes=[{"ean13": "4600000000017"}])]
    assert_ok(run())
    stamps = sorted(Offer.objects.values_list("sku", "updated_at")) + sorted(
        Product.objects.values_list("name", "updated_at"))
    barcodes = sorted(Barcode.objects.values_list("pk", "value"))
    ms.entities["product"] = [product(5, updated=later(5)), parent(updated=later(5))]
    ms.entities["variant"] = [variant(1, parent()["id"], barcodes=[{"ean13": "4600000000017"}], updated=later(5))]
    r = run()
    assert_ok(r)
    assert r.counts["products_updated"] == 2 and r.counts.get("products_changed", 0) == 0
    assert sorted(Offer.objects.values_list("sku", "updated_at")) + sorted(
        Product.objects.values_list("name", "updated_at")) == stamps
    assert sorted(Barcode.objects.values_list("pk", "value")) == barcodes   # not deleted and re-inserted
    # The bindings did take the newer version.
    assert OfferBinding.objects.get(external_code="ART-5").external_updated_at.strftime("%H:%M") == "07:05"


def test_a_real_change_moves_updated_at_of_that_unit_only(ms):
    ms.entities["product"] = [product(1), product(2)]
    assert_ok(run())
    before = dict(Offer.objects.values_list("sku", "updated_at"))
    ms.entities["product"] = [product(1, salePrices=prices(159900.0), updated=later(5)), product(2, updated=later(5))]
    assert_ok(run())
    after = dict(Offer.objects.values_list("sku", "updated_at"))
    assert after["ART-1"] > before["ART-1"] and after["ART-2"] == before["ART-2"]
    assert Product.objects.get(name="Товар 2").updated_at <= before["ART-2"] + timedelta(seconds=1)


def test_changed_barcodes_replace_the_list_and_move_updated_at(ms):
    ms.entities["product"] = [product(1)]
    assert_ok(run())
    before = Offer.objects.get(sku="ART-1").updated_at
    ms.entities["product"] = [product(1, barcodes=[{"ean13": "4600000000024"}, {"code128": "X1"}], updated=later(5))]
    assert_ok(run())
    o = Offer.objects.get(sku="ART-1")
    assert sorted(o.barcodes.values_list("kind", "value")) == [("code128", "X1"), ("ean13", "4600000000024")]
    assert o.updated_at > before


# -- pages cut short ----------------------------------------------------------------------------
def test_a_page_whose_json_is_cut_short_fails_the_run_and_writes_nothing_of_it(ms, settings):
    settings.MOYSKLAD = {**settings.MOYSKLAD, "PAGE_SIZE": 2}
    ms.entities["product"] = [product(i) for i in range(1, 6)]

    def cut(request, offset):
        if offset != 2:
            return None
        whole = httpx.Response(200, json={"meta": {"size": 5, "limit": 2, "offset": 2}, "rows": [product(3), product(4)]})
        return httpx.Response(200, content=whole.content[: len(whole.content) // 2],
                              headers={"Content-Type": "application/json"})

    ms.fail["product"] = cut
    with pytest.raises(Exception) as info:
        run()
    assert "not JSON" in str(info.value)
    failed = JobRun.objects.get(job=JOB)
    assert failed.status == JobRun.Status.FAILED and "not JSON" in failed.message
    assert sorted(Offer.objects.values_list("sku", flat=True)) == ["ART-1", "ART-2"]   # page 1 only, whole
    assert not ProductBinding.objects.filter(external_code__in=["ext-3", "ext-4"]).exists()
    assert JobState.objects.get(job=JOB).cursor is None
