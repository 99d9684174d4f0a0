import httpx
import pytest
import respx

from catalog.models import Offer, Product
from integrations import jobs
from integrations.models import JobRun
from integrations.runs import run_job

BASE = "https://ms.test/api/remap/1.2"


def _page(rows, entity):
    return {"meta": {"href": f"{BASE}/entity/{entity}", "size": len(rows), "limit": 1000, "offset": 0}, "rows": rows}


def _product(i, **kw):
    row = {"id": f"00000000-0000-0000-0000-{i:012d}", "name": f"P{i}", "article": f"A{i}", "code": f"c{i}",
           "updated": "2026-11-20 10:00:00.000", "archived": False, "variantsCount": 0,
           "salePrices": [{"value": 149900.0, "priceType": {"id": "pt", "name": "Цена продажи"}}],
           "barcodes": [{"ean13": f"200000000{i:04d}"}]}
    row.update(kw)
    return row


@pytest.mark.django_db
def test_catalog_import_creates_products_and_skips_bad_rows(moysklad_settings):
    with respx.mock(base_url=BASE) as mock:
        mock.get("/context/companysettings/pricetype").respond(json=[{"id": "pt", "name": "Цена продажи"}])
        mock.get("/entity/store").respond(json=_page([], "store"))
        mock.get("/entity/productfolder").respond(json=_page([], "productfolder"))
        mock.get("/entity/product").respond(json=_page([_product(1), _product(2, salePrices=[]), _product(3, name="")],
                                                       "product"))
        mock.get("/entity/variant").respond(json=_page([], "variant"))
        run = run_job(jobs.get("moysklad-catalog"), trigger="test")
    assert run.status == JobRun.Status.SUCCESS, run.message
    assert Product.objects.count() == 2
    assert Offer.objects.get(sku="A1").price == 1499
    assert Offer.objects.get(sku="A2").price is None   # no sale price: listed, not orderable
    assert run.error_count == 1 and "missing name" in run.errors[0]["error"]
