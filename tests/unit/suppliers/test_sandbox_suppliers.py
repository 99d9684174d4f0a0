"""The sandbox supplier emulators read end to end through the real clients (127.0.0.1)."""
import httpx
import pytest

from integrations.sandbox.server import SandboxServer
from integrations.sandbox.suppliers import TOKEN, sign as sandbox_sign
from integrations.suppliers.sync import supplier_read
from integrations.suppliers.webhooks import sign
from stock.models import StockLevel
from tests.factories import make_offer

from .conftest import make_supplier

pytestmark = pytest.mark.django_db


@pytest.fixture(scope="module")
def sandbox():
    with SandboxServer(products=40, seed=3, rate_limit=False) as srv:
        yield srv


@pytest.fixture
def goods(sandbox, settings):
    settings.OUTBOUND_ALLOW_PRIVATE = True
    offers = {}
    for emulator in sandbox.suppliers.values():
        for key, row in emulator.stock.items():
            if "-ONLY-" in key:
                continue
            if key in emulator.by_barcode:
                offers[key] = make_offer(sku=f"OUR-{key}", barcodes=[key])
            else:
                offers[key] = make_offer(sku=key)
    return offers


def levels(slug):
    return {lv.offer.sku: int(lv.stock) for lv in
            StockLevel.objects.filter(warehouse__code=f"supplier:{slug}").select_related("offer")}


def test_api_supplier_full_delta_and_live(sandbox, goods, settings):
    alpha = sandbox.suppliers["sup-alpha"]
    for row in alpha.stock.values():
        row[1] -= 3600  # an hour old: a delta (with its 2-minute overlap) sees only what changes now
    supplier = make_supplier(slug="alpha", url=f"{sandbox.url}/sup-alpha", token=TOKEN, page_size=5)
    result = supplier_read(supplier, full=True)
    carried = [k for k in alpha.stock if "-ONLY-" not in k]
    assert result.counts["mapped"] == len(carried) and result.counts["unmapped"] == 3
    assert len(levels("alpha")) == len(carried)
    changed = alpha.churn(2)
    result = supplier_read(supplier, full=False)
    assert result.counts["read"] == 2
    sku = next(k for k in carried if k not in alpha.by_barcode)
    alpha.set_stock(sku, 41)
    from integrations.suppliers.client import SupplierClient

    client = SupplierClient(supplier, timeout=2, attempts=1)
    assert client.stock_one(sku) == 41 and client.stock_one("NOPE") == 0
    client.close()
    assert changed


def test_csv_cp1251_and_yml_feeds(sandbox, goods):
    beta = sandbox.suppliers["sup-beta"]
    csv_supplier = make_supplier(slug="beta", kind="csv", url=f"{sandbox.url}/sup-beta/price.csv", token=TOKEN)
    result = supplier_read(csv_supplier, full=True)
    assert result.counts.get("rejected", 0) == 0 and result.counts["unmapped"] == 3
    yml_supplier = make_supplier(slug="betayml", kind="yml", url=f"{sandbox.url}/sup-beta/feed.xml", token=TOKEN)
    supplier_read(yml_supplier, full=True)
    assert set(levels("beta")) == set(levels("betayml")) and len(levels("beta")) == len(beta.stock) - 3


def test_live_latency_and_failures_configurable(sandbox):
    alpha = sandbox.suppliers["sup-alpha"]
    alpha.configure(live_latency_ms=50, live_fail_every=2)
    try:
        sku = next(iter(alpha.stock))
        headers = {"Authorization": f"Bearer {TOKEN}"}
        first = httpx.get(f"{sandbox.url}/sup-alpha/stock/{sku}", headers=headers)
        second = httpx.get(f"{sandbox.url}/sup-alpha/stock/{sku}", headers=headers)
        assert first.status_code == 200 and second.status_code == 503
        assert first.elapsed.total_seconds() >= 0.05
        assert httpx.get(f"{sandbox.url}/sup-alpha/stock/{sku}").status_code == 401
    finally:
        alpha.configure(live_latency_ms=0, live_fail_every=0)


def test_the_sender_signs_as_the_webhook_verifies():
    assert sandbox_sign("s", 1700000000, b'{"items": []}') == sign("s", "1700000000", b'{"items": []}')
