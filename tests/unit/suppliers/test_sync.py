from decimal import Decimal

import httpx
import pytest
import respx
from django.core.management import call_command

from catalog.models import ExternalSku
from integrations.http.errors import UpstreamUnavailableError
from integrations.http.outbound import OutboundRefused
from integrations.suppliers import sync
from integrations.suppliers.feeds import FeedError
from integrations.suppliers.models import Supplier, SupplierSku
from integrations.suppliers.sync import supplier_read
from stock.models import StockChange, StockLevel
from tests.factories import make_offer

from .conftest import make_supplier

pytestmark = pytest.mark.django_db

BASE = "https://acme.example/api"


def level(supplier, offer):
    row = StockLevel.objects.filter(warehouse__code=supplier.warehouse_code, offer=offer).first()
    return None if row is None else int(row.stock)


@pytest.fixture
def offers():
    return {
        "A": make_offer(sku="A-1"),
        "B": make_offer(sku="B-1", barcodes=["4600000000017"]),
        "C": make_offer(sku="C-1"),
    }


def test_api_full_read_pages_until_short_page(offers):
    supplier = make_supplier(page_size=2)
    with respx.mock() as mock:
        route = mock.get(f"{BASE}/stock").mock(side_effect=[
            httpx.Response(200, json={"items": [{"sku": "A-1", "stock": 5}, {"sku": "4600000000017", "stock": 2}]}),
            httpx.Response(200, json={"items": [{"sku": "ZZZ", "stock": 1}]}),
        ])
        result = supplier_read(supplier, full=True)
    assert route.call_count == 2
    first = route.calls[0].request
    assert first.url.params["page"] == "1" and first.url.params["per_page"] == "2"
    assert first.headers["Authorization"] == "Bearer supplier-token"
    assert level(supplier, offers["A"]) == 5 and level(supplier, offers["B"]) == 2  # B by barcode
    assert result.counts["unmapped"] == 1
    assert ExternalSku.objects.filter(source="supplier:acme", sku="ZZZ", offer__isnull=True).exists()
    changes = StockChange.objects.filter(source="supplier:acme")
    assert changes.count() == 2 and set(changes.values_list("via", flat=True)) == {"full"}
    # their SKU is kept where it is not ours (the live check asks by it)
    assert set(SupplierSku.objects.values_list("sku", "offer_id")) == {("4600000000017", offers["B"].pk)}
    supplier.refresh_from_db()
    assert supplier.last_status == "ok" and supplier.delta_cursor is not None


def test_api_delta_uses_updated_since_and_logs_one_change_per_real_change(offers):
    supplier = make_supplier()
    with respx.mock() as mock:
        mock.get(f"{BASE}/stock").respond(200, json={"items": [{"sku": "A-1", "stock": 5}]})
        supplier_read(supplier, full=True)
    supplier.refresh_from_db()
    with respx.mock() as mock:
        route = mock.get(f"{BASE}/stock").respond(200, json={"items": [{"sku": "A-1", "stock": 5},
                                                                        {"sku": "C-1", "stock": 3}]})
        supplier_read(supplier, full=False)
    assert "updated_since" in route.calls[0].request.url.params
    assert StockChange.objects.filter(source="supplier:acme", offer=offers["A"]).count() == 1
    assert StockChange.objects.get(offer=offers["C"]).via == "sync"


def test_api_bad_items_rejected_and_counted(offers):
    supplier = make_supplier()
    with respx.mock() as mock:
        mock.get(f"{BASE}/stock").respond(200, json={"items": [{"sku": "A-1", "stock": -1}, {"stock": 3},
                                                               "junk", {"sku": "C-1", "stock": 2}]})
        result = supplier_read(supplier, full=True)
    assert result.counts["rejected"] == 3 and level(supplier, offers["C"]) == 2 and level(supplier, offers["A"]) is None


def test_a_failing_page_changes_nothing(offers):
    supplier = make_supplier(page_size=1)
    with respx.mock() as mock:
        mock.get(f"{BASE}/stock").mock(side_effect=[
            httpx.Response(200, json={"items": [{"sku": "A-1", "stock": 5}]}),
            httpx.Response(503), httpx.Response(503), httpx.Response(503)])
        with pytest.raises(UpstreamUnavailableError):
            supplier_read(supplier, full=True)
    assert not StockLevel.objects.filter(warehouse__code="supplier:acme").exists()
    supplier.refresh_from_db()
    assert supplier.last_status == "failed"


CSV = "sku;stock\nA-1;4\nB-1;1\n;3\nC-1;x\n".encode("cp1251")


def test_csv_feed_applied_bad_rows_counted(offers):
    supplier = make_supplier(kind="csv", url="https://acme.example/price.csv")
    with respx.mock() as mock:
        mock.get("https://acme.example/price.csv").respond(200, content=CSV)
        result = supplier_read(supplier, full=False)
    assert level(supplier, offers["A"]) == 4 and level(supplier, offers["B"]) == 1
    assert result.counts["rejected"] == 2


def test_feed_that_ends_early_changes_nothing(offers):
    supplier = make_supplier(kind="csv", url="https://acme.example/price.csv")
    make_level = StockLevel.objects.filter
    with respx.mock() as mock:
        mock.get("https://acme.example/price.csv").respond(200, content=b"sku;stock\nA-1;4\n",
                                                           headers={"Content-Length": "400"})
        with pytest.raises(UpstreamUnavailableError):
            supplier_read(supplier, full=True)
    assert not make_level(warehouse__code="supplier:acme").exists()


def test_feed_download_failure_changes_nothing_and_no_zeroing(offers):
    supplier = make_supplier(kind="csv", url="https://acme.example/price.csv", zero_missing=True)
    with respx.mock() as mock:
        mock.get("https://acme.example/price.csv").respond(200, content=b"sku;stock\nA-1;4\nB-1;2\n")
        supplier_read(supplier, full=True)
    with respx.mock() as mock:
        mock.get("https://acme.example/price.csv").mock(side_effect=httpx.ReadError("connection reset"))
        with pytest.raises(UpstreamUnavailableError):
            supplier_read(supplier, full=True)
    assert level(supplier, offers["A"]) == 4 and level(supplier, offers["B"]) == 2


def test_truncated_yml_changes_nothing(offers):
    supplier = make_supplier(kind="yml", url="https://acme.example/feed.xml", zero_missing=True)
    body = b'<yml_catalog><shop><offers><offer id="1"><vendorCode>A-1</vendorCode><count>3</count></offer>'
    with respx.mock() as mock:
        mock.get("https://acme.example/feed.xml").respond(200, content=body)
        with pytest.raises(FeedError):
            supplier_read(supplier, full=True)
    assert level(supplier, offers["A"]) is None


def test_zero_missing_only_on_a_complete_full_read(offers):
    supplier = make_supplier(kind="yml", url="https://acme.example/feed.xml", zero_missing=True)
    feed = ('<yml_catalog><shop><offers>{}</offers></shop></yml_catalog>')
    offer = '<offer id="{0}"><vendorCode>{0}</vendorCode><count>{1}</count></offer>'
    with respx.mock() as mock:
        mock.get("https://acme.example/feed.xml").respond(200, text=feed.format(offer.format("A-1", 3) + offer.format("B-1", 2)))
        supplier_read(supplier, full=True)
        mock.get("https://acme.example/feed.xml").respond(200, text=feed.format(offer.format("A-1", 3)))
        supplier_read(supplier, full=True)
    assert level(supplier, offers["A"]) == 3 and level(supplier, offers["B"]) == 0


def test_zero_missing_in_batched_mode(offers, monkeypatch):
    monkeypatch.setattr(sync, "SINGLE_WRITE_MAX", 0)
    monkeypatch.setattr(sync, "BATCH", 1)
    supplier = make_supplier(zero_missing=True)
    with respx.mock() as mock:
        mock.get(f"{BASE}/stock").respond(200, json={"items": [{"sku": "A-1", "stock": 3}, {"sku": "B-1", "stock": 2}]})
        supplier_read(supplier, full=True)
        mock.get(f"{BASE}/stock").respond(200, json={"items": [{"sku": "A-1", "stock": 4}]})
        supplier_read(supplier, full=False)   # a delta never zeroes
        assert level(supplier, offers["B"]) == 2
        supplier_read(supplier, full=True)
    assert level(supplier, offers["A"]) == 4 and level(supplier, offers["B"]) == 0


def test_without_zero_missing_nothing_is_zeroed(offers):
    supplier = make_supplier()
    with respx.mock() as mock:
        mock.get(f"{BASE}/stock").respond(200, json={"items": [{"sku": "A-1", "stock": 3}, {"sku": "B-1", "stock": 2}]})
        supplier_read(supplier, full=True)
        mock.get(f"{BASE}/stock").respond(200, json={"items": [{"sku": "A-1", "stock": 3}]})
        supplier_read(supplier, full=True)
    assert level(supplier, offers["B"]) == 2


def test_supplier_on_internal_address_refused_no_request_sent(offers):
    for n, url in enumerate(["http://127.0.0.1:9000/api", "http://10.0.0.7/api", "http://169.254.169.254/api"]):
        supplier = make_supplier(slug=f"bad{n}", url=url)
        with respx.mock(assert_all_called=False) as mock:
            route = mock.route().respond(200, json={"items": []})
            with pytest.raises(OutboundRefused):
                supplier_read(supplier, full=True)
            assert not route.called


def test_reads_of_one_supplier_never_overlap(offers):
    from integrations.runs import acquire_lock

    supplier = make_supplier()
    other = make_supplier(slug="other", url="https://other.example/api")
    held = acquire_lock(sync.lock_name("acme"), "someone-else")
    assert held is not None
    with pytest.raises(sync.SupplierBusy):
        supplier_read(supplier, full=True)
    with respx.mock() as mock:   # another supplier is not blocked
        mock.get("https://other.example/api/stock").respond(200, json={"items": []})
        supplier_read(other, full=True)
    held.release()


def test_holds_kept_through_supplier_writes(offers):
    from stock.services import HoldRequest, stock_holds_place

    supplier = make_supplier()
    with respx.mock() as mock:
        mock.get(f"{BASE}/stock").respond(200, json={"items": [{"sku": "A-1", "stock": 5}]})
        supplier_read(supplier, full=True)
        wh = supplier.warehouse()
        stock_holds_place(holds=[HoldRequest(offers["A"].pk, wh.pk, Decimal(2), "orderline:1")], source="site")
        mock.get(f"{BASE}/stock").respond(200, json={"items": [{"sku": "A-1", "stock": 6}]})
        supplier_read(supplier, full=False)
    row = StockLevel.objects.get(warehouse=wh, offer=offers["A"])
    assert row.stock == 6 and row.available == 4


def test_command_add_and_list(capsys):
    call_command("supplier", "add", "acme", "--kind", "csv", "--url", "https://acme.example/p.csv", "--name", "ACME",
                 "--token", "s3cret-token", "--secret", "whsec", "--realtime", "--zero-missing")
    supplier = Supplier.objects.get(slug="acme")
    assert supplier.kind == "csv" and supplier.live_check and supplier.zero_missing
    assert supplier.token == "s3cret-token" and "s3cret-token" not in supplier.token_encrypted
    assert StockLevel.objects.none() is not None
    from stock.models import Warehouse

    assert Warehouse.objects.filter(code="supplier:acme").exists()
    call_command("supplier", "add", "acme", "--kind", "yml", "--url", "https://acme.example/f.xml")
    supplier.refresh_from_db()
    assert supplier.kind == "yml" and supplier.token == "s3cret-token"
    call_command("supplier", "list")
    out = capsys.readouterr().out
    assert "acme" in out and "s3cret-token" not in out


def test_command_refuses_bad_slug():
    from django.core.management.base import CommandError

    with pytest.raises(CommandError):
        call_command("supplier", "add", "Bad Slug!", "--kind", "api", "--url", "https://x.example")


def test_token_unreadable_under_another_secret_key(settings):
    supplier = make_supplier()
    settings.SECRET_KEY = "another-key-entirely-" * 3
    assert Supplier.objects.get(pk=supplier.pk).token == ""
