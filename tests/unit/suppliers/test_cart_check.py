import time
from datetime import timedelta
from decimal import Decimal

import httpx
import pytest
import respx
from django.utils import timezone

from stock.models import StockChange, StockLevel
from tests.factories import make_offer, make_stock, make_warehouse
from tests.waiting import wait_until

from .conftest import make_supplier

pytestmark = pytest.mark.django_db

BASE = "https://acme.example/api"


@pytest.fixture
def shop(settings):
    settings.CART_CHECK_STALE_SECONDS = 900
    settings.CART_CHECK_TIMEOUT = 0.3
    settings.CART_CHECK_ON_FAILURE = "stale"
    offer = make_offer(sku="A-1")
    supplier = make_supplier(live_check=True)
    wh = supplier.warehouse()
    level = make_stock(offer=offer, warehouse=wh, stock=3, source="supplier:acme", checked_at=timezone.now())
    return offer, supplier, level


def check(api, sku="A-1", quantity=1):
    return api.post("/api/v1/cart/check", {"sku": sku, "quantity": quantity}, content_type="application/json")


def make_stale(level, seconds=2000):
    StockLevel.objects.filter(pk=level.pk).update(checked_at=timezone.now() - timedelta(seconds=seconds))


def test_fresh_answers_from_the_database_without_asking(api, shop):
    with respx.mock(assert_all_called=False) as mock:
        route = mock.get(f"{BASE}/stock/A-1").respond(200, json={"sku": "A-1", "stock": 99})
        response = check(api, quantity=2)
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["ok"] is True and body["available"] == 3 and body["requested"] == 2 and body["source"] == "database"
    assert not route.called


def test_own_warehouses_add_up(api, shop):
    offer, _, _ = shop
    make_stock(offer=offer, warehouse=make_warehouse(code="main"), stock=2)
    assert check(api, quantity=5).json()["available"] == 5


def test_stale_with_live_on_asks_stores_and_logs(api, shop):
    offer, supplier, level = shop
    make_stale(level)
    with respx.mock() as mock:
        route = mock.get(f"{BASE}/stock/A-1").respond(200, json={"sku": "A-1", "stock": 7})
        body = check(api, quantity=5).json()
    assert route.called and route.calls[0].request.headers["Authorization"] == "Bearer supplier-token"
    assert body["source"] == "live" and body["available"] == 7
    level.refresh_from_db()
    assert level.stock == 7 and timezone.now() - level.checked_at < timedelta(seconds=5)
    assert StockChange.objects.get(offer=offer).via == "live"


def test_live_check_uses_the_suppliers_own_sku(api, shop):
    from integrations.suppliers.models import SupplierSku

    offer, supplier, level = shop
    SupplierSku.objects.create(supplier=supplier, sku="THEIR/42", offer=offer)
    make_stale(level)
    with respx.mock() as mock:
        route = mock.get(f"{BASE}/stock/THEIR%2F42").respond(200, json={"sku": "THEIR/42", "stock": 1})
        assert check(api).json()["source"] == "live"
    assert route.called


def test_supplier_404_means_zero(api, shop):
    _, _, level = shop
    make_stale(level)
    with respx.mock() as mock:
        mock.get(f"{BASE}/stock/A-1").respond(404, json={"error": "not carried"})
        response = check(api)
    assert response.status_code == 409 and response.json()["available"] == 0


def test_slow_supplier_answers_stale_within_the_timeout(api, shop):
    _, _, level = shop
    make_stale(level)

    def slow(request):
        time.sleep(1.0)
        return httpx.Response(200, json={"stock": 50})

    with respx.mock(assert_all_called=False) as mock:
        mock.get(f"{BASE}/stock/A-1").mock(side_effect=slow)
        started = time.monotonic()
        body = check(api).json()
        elapsed = time.monotonic() - started
    assert body["source"] == "stale" and body["available"] == 3
    assert elapsed < 0.3 + 0.4
    level.refresh_from_db()
    assert level.stock == 3


def test_down_supplier_refuse_mode_answers_503(api, shop, settings):
    settings.CART_CHECK_ON_FAILURE = "refuse"
    _, _, level = shop
    make_stale(level)
    with respx.mock() as mock:
        mock.get(f"{BASE}/stock/A-1").respond(500)
        response = check(api)
    assert response.status_code == 503 and response.json()["error"] == "supplier_unavailable"


def test_breaker_skips_a_failing_supplier(api, shop, settings):
    settings.CART_CHECK_BREAKER_FAILURES = 2
    settings.CART_CHECK_BREAKER_SECONDS = 60
    _, _, level = shop
    make_stale(level)
    with respx.mock() as mock:
        route = mock.get(f"{BASE}/stock/A-1").mock(side_effect=httpx.ConnectError("down"))
        for _ in range(4):
            assert check(api).json()["source"] == "stale"
    assert route.call_count == 2


def test_breaker_lets_a_trial_through_after_the_pause(api, shop, settings):
    settings.CART_CHECK_BREAKER_FAILURES = 1
    settings.CART_CHECK_BREAKER_SECONDS = 0.2
    _, _, level = shop
    make_stale(level)
    with respx.mock() as mock:
        route = mock.get(f"{BASE}/stock/A-1").mock(side_effect=[httpx.Response(500),
                                                                httpx.Response(200, json={"stock": 6})])
        assert check(api).json()["source"] == "stale"
        assert check(api).json()["source"] == "stale"   # open: not asked
        assert route.call_count == 1

        def live():
            answer = check(api).json()
            return answer if answer["source"] == "live" else None

        body = wait_until(live, timeout=5, what="the trial call after the pause")   # it succeeds and closes it
    assert body["available"] == 6 and route.call_count == 2   # asked once more: the trial, nothing before it


def test_stale_with_live_off_is_reported_stale(api, shop):
    _, supplier, level = shop
    supplier.live_check = False
    supplier.save()
    make_stale(level)
    with respx.mock(assert_all_called=False) as mock:
        route = mock.get(f"{BASE}/stock/A-1").respond(200, json={"stock": 5})
        assert check(api).json()["source"] == "stale"
    assert not route.called


def test_per_supplier_freshness_threshold(api, shop):
    _, supplier, level = shop
    supplier.fresh_seconds = 60
    supplier.save()
    make_stale(level, seconds=120)
    with respx.mock() as mock:
        mock.get(f"{BASE}/stock/A-1").respond(200, json={"stock": 4})
        assert check(api).json()["source"] == "live"


def test_insufficient_unknown_invalid(api, shop):
    response = check(api, quantity=4)
    assert response.status_code == 409
    assert response.json()["error"] == "insufficient_stock"
    assert response.json()["available"] == 3 and response.json()["requested"] == 4
    assert check(api, sku="NOPE").status_code == 404
    assert check(api, sku="NOPE").json()["error"] == "unknown_sku"
    for bad in ({"sku": "A-1", "quantity": 0}, {"sku": "A-1", "quantity": "x"}, {"sku": "A-1"}, {"quantity": 1},
                {"sku": "", "quantity": 1}):
        response = api.post("/api/v1/cart/check", bad, content_type="application/json")
        assert response.status_code == 400 and response.json()["error"] == "invalid"


def test_needs_the_token(client, shop, settings):
    settings.STOREFRONT_API_TOKEN = "x"
    assert client.post("/api/v1/cart/check", {"sku": "A-1", "quantity": 1},
                       content_type="application/json").status_code == 401


def test_internal_supplier_url_not_asked_live(api, shop):
    _, supplier, level = shop
    supplier.url = "http://169.254.169.254/api"
    supplier.save()
    make_stale(level)
    with respx.mock(assert_all_called=False) as mock:
        route = mock.route().respond(200, json={"stock": 9})
        assert check(api).json()["source"] == "stale"
    assert not route.called
