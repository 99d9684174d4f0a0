"""What tests seed the sandbox's MoySklad with (folders, stores, variants of a new product,
barcodes), its request log, its clock, and faults matched by query parameters or adding rows."""
import pytest

from integrations.sandbox.catalog_gen import parse_msk
from integrations.sandbox.moysklad import MoySkladEmulator
from integrations.sandbox.server import SandboxServer

from .conftest import AUTH


@pytest.fixture
def empty():
    """An empty account (no products, so no folders) served over a socket, its requests logged."""
    with SandboxServer(products=0, stores=2, rate_limit=False) as srv:
        srv.moysklad.log_requests()
        yield srv


def test_an_empty_account_has_no_folders():
    assert MoySkladEmulator(products=0).folder_ids() == []
    assert len(MoySkladEmulator(products=10).folder_ids()) == 39


def test_seeded_folders_stores_variants_and_barcodes_are_listed_as_the_api_does(empty, client_for):
    ms, http = empty.moysklad, client_for(empty)
    clothes = ms.add_folder("Одежда")
    winter = ms.add_folder("Зимние", clothes)
    shirt = ms.add_product(name="Футболка", article="TSH", productFolder=winter,
                           barcodes=[{"ean13": "2000000000107"}, {"code128": "TSH"}])
    m = ms.add_variant(shirt, code="TSH-M", salePrice=99900)
    ms.update_store(ms.store_ids()[1], name="Магазин", code="shop", archived=True)
    folders = http.get("/entity/productfolder").json()["rows"]
    assert [(f["name"], f["pathName"]) for f in folders] == [("Одежда", ""), ("Зимние", "Одежда")]
    product = http.get(f"/entity/product/{shirt}").json()
    assert product["pathName"] == "Одежда/Зимние" and product["variantsCount"] == 1
    assert product["barcodes"] == [{"ean13": "2000000000107"}, {"code128": "TSH"}]
    variant = http.get("/entity/variant").json()["rows"][0]
    assert variant["id"] == m and variant["code"] == "TSH-M" and variant["salePrices"][0]["value"] == 99900.0
    assert variant["product"]["meta"]["href"].endswith(shirt)
    stores = http.get("/entity/store", params={"filter": "archived=true;archived=false"}).json()["rows"]
    assert [(s["name"], s["code"], s["archived"]) for s in stores][1] == ("Магазин", "shop", True)
    ms.delete_folder(winter)
    assert [f["name"] for f in http.get("/entity/productfolder").json()["rows"]] == ["Одежда"]
    assert http.get(f"/entity/productfolder/{winter}").status_code == 404


def test_only_the_last_created_products_variants_can_grow():
    ms = MoySkladEmulator(products=0)
    first, second = ms.add_product(name="a"), ms.add_product(name="b")
    ms.add_variant(first)
    ms.add_variant(second)
    with pytest.raises(ValueError):
        ms.add_variant(first)
    with pytest.raises(ValueError):
        ms.update_product(first, barcodes=[{"qr": "x"}])


def test_the_request_log_and_faults_by_query_parameter(empty, client_for):
    ms, http = empty.moysklad, client_for(empty)
    for i in range(3):
        ms.add_product(name=f"p{i}")
    ms.faults.add(status=503, count=None, path_contains="entity/product?", params={"offset": "2"})
    assert http.get("/entity/product", params={"limit": 2}).status_code == 200
    assert http.get("/entity/product", params={"limit": 2, "offset": 2}).status_code == 503
    assert [(r.params.get("offset"), r.status, r.fault) for r in ms.logged("entity/product")] == [
        (None, 200, False), ("2", 503, True)]
    ms.log_requests(False)
    http.get("/entity/store")
    assert ms.logged() == []


def test_a_rows_fault_adds_to_a_collection_and_to_a_bare_array_report(empty, client_for):
    ms, http = empty.moysklad, client_for(empty)
    pid = ms.add_product(name="p")
    ms.set_stock(pid, ms.store_ids()[0], stock=3)
    ms.faults.add(kind="rows", count=1, path_contains="report/stock/bystore/current", body=["junk"])
    ms.faults.add(kind="rows", count=1, path_contains="entity/product?", body=[{"name": "без id"}])
    assert http.get("/report/stock/bystore/current").json()[-1] == "junk"
    page = http.get("/entity/product", params={"limit": 100}).json()
    assert page["rows"][-1] == {"name": "без id"} and page["meta"]["size"] == 1
    with pytest.raises(ValueError):
        ms.faults.add(kind="rows")


def test_the_clock_moves_updated_and_changed_since(empty, client_for):
    ms, http = empty.moysklad, client_for(empty)
    pid = ms.add_product(name="p")
    before = parse_msk(ms.product(pid)["updated"])
    ms.catalog.advance(2 * 3600)
    ms.update_product(pid, name="q")
    assert parse_msk(ms.product(pid)["updated"]) - before >= 2 * 3600 * 1000
    # MoySklad's "now" is two hours ahead: a changedSince 25 h before the wall clock is too old
    # for it, and one an hour into the wall clock's future is not in its future
    ms.set_stock(pid, ms.store_ids()[0], stock=1)
    from integrations.sandbox.catalog_gen import format_msk, now_msk_ms

    ahead = format_msk(now_msk_ms() + 3600 * 1000, millis=False)
    assert http.get("/report/stock/bystore/current", params={"changedSince": ahead}).status_code == 200
    too_old = format_msk(now_msk_ms() - 23 * 3600 * 1000, millis=False)
    assert http.get("/report/stock/bystore/current", params={"changedSince": too_old}).status_code == 400


def test_auth_still_applies_to_the_seeded_account(empty, client_for):
    assert client_for(empty, headers={}).get("/entity/product").status_code == 401
    assert client_for(empty, headers=AUTH).get("/entity/product").status_code == 200
