"""Rate limits, the parallel cap, injected faults, stats and the control endpoints."""
import threading

import httpx
import pytest

from .conftest import AUTH, ManualClock


# -- weighted budget ----------------------------------------------------------------------------
def test_budget_429_headers_and_recovery(make_sandbox, client_for):
    srv = make_sandbox()                     # 45 units / 3 s, weight 4 -> 11 requests
    clock = ManualClock()
    srv.moysklad.limiter.clock = clock       # time stands still: no flakiness on slow machines
    ms = client_for(srv)
    remaining = [int(ms.get("/entity/store").headers["X-RateLimit-Remaining"]) for _ in range(11)]
    assert remaining == [45 - 4 * n for n in range(1, 12)]
    resp = ms.get("/entity/store")
    assert resp.status_code == 429
    err = resp.json()["errors"][0]
    assert err["code"] == 1049
    h = resp.headers
    assert h["X-RateLimit-Limit"] == "45" and h["X-RateLimit-Remaining"] == "0"
    assert h["X-Lognex-Retry-TimeInterval"] == "3000"
    assert h["X-Lognex-Retry-After"] == "3000" and h["X-Lognex-Reset"] == "3000"   # milliseconds
    assert ms.get("/entity/store").status_code == 429        # a 429 consumes nothing ...
    clock.advance(int(h["X-Lognex-Retry-After"]) / 1000)
    assert ms.get("/entity/store").status_code == 200        # ... so waiting Retry-After is enough
    stats = srv.moysklad.stats()
    assert stats["units"] == 12 * 4 and stats["rate_limited"] == 2 and stats["by_status"]["429"] == 2


def test_heavy_reports_weigh_5(make_sandbox, client_for):
    srv = make_sandbox()
    srv.moysklad.limiter.clock = ManualClock()
    ms = client_for(srv)
    codes = [ms.get("/report/stock/bystore", params={"limit": 1}).status_code for _ in range(10)]
    assert codes == [200] * 9 + [429]
    assert srv.moysklad.stats()["units"] == 45
    srv.moysklad.limiter.reset()
    resp = ms.get("/report/stock/bystore/current")           # /current is not on the weight-5 list
    assert resp.headers["X-RateLimit-Remaining"] == "41"


def test_weight_and_budget_are_configurable(make_sandbox, client_for):
    srv = make_sandbox(request_weight=1, rate_header_unit="requests")
    srv.moysklad.limiter.clock = ManualClock()
    ms = client_for(srv)
    assert ms.get("/entity/store").headers["X-RateLimit-Remaining"] == "44"
    srv.moysklad.configure(request_weight=15)
    assert [ms.get("/entity/store").status_code for _ in range(3)] == [200, 200, 429]


def test_rate_limit_off(make_sandbox, client_for):
    srv = make_sandbox(rate_limit=False)
    ms = client_for(srv)
    assert {ms.get("/entity/store").status_code for _ in range(30)} == {200}


# -- parallel cap -------------------------------------------------------------------------------
def test_sixth_parallel_request_gets_1073_without_retry_after(make_sandbox):
    srv = make_sandbox(latency_ms=800)       # each admitted request holds its slot 0.8 s
    n = 8
    barrier = threading.Barrier(n)
    results = []

    def call():
        with httpx.Client(headers=AUTH, timeout=10) as client:
            barrier.wait()
            results.append(client.get(f"{srv.moysklad_base_url}/entity/store"))

    threads = [threading.Thread(target=call) for _ in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    ok = [r for r in results if r.status_code == 200]
    refused = [r for r in results if r.status_code == 429]
    assert len(ok) == 5 and len(refused) == 3
    for r in refused:
        assert r.json()["errors"][0]["code"] == 1073
        assert "X-Lognex-Retry-After" not in r.headers
    stats = srv.moysklad.stats()
    assert stats["parallel_limited"] == 3 and stats["max_concurrent"] >= 6 and stats["max_parallel_admitted"] == 5
    assert stats["units"] == 5 * 4                           # refused requests consumed nothing


# -- faults -------------------------------------------------------------------------------------
def test_status_fault_count_and_path(make_sandbox, client_for):
    srv = make_sandbox(rate_limit=False)
    ms = client_for(srv)
    srv.moysklad.faults.add(status=500, count=2, path_contains="entity/product")
    assert ms.get("/entity/store").status_code == 200
    assert [ms.get("/entity/product").status_code for _ in range(3)] == [500, 500, 200]
    srv.moysklad.faults.add(status=503)
    resp = ms.get("/entity/store")
    assert resp.status_code == 503 and "errors" in resp.json()
    assert srv.moysklad.stats()["faults"] == 3


@pytest.mark.parametrize("status,code", [(401, 1056), (403, 1016)])
def test_auth_faults(make_sandbox, client_for, status, code):
    srv = make_sandbox(rate_limit=False)
    srv.moysklad.faults.add(status=status)
    resp = client_for(srv).get("/entity/store")
    assert resp.status_code == status and resp.json()["errors"][0]["code"] == code


def test_429_faults(make_sandbox, client_for):
    srv = make_sandbox(rate_limit=False)
    ms = client_for(srv)
    srv.moysklad.faults.add(status=429, retry_after_ms=1500)
    resp = ms.get("/entity/store")
    assert resp.status_code == 429 and resp.headers["X-Lognex-Retry-After"] == "1500"
    srv.moysklad.faults.add(status=429, error_code=1073)
    resp = ms.get("/entity/store")
    assert resp.json()["errors"][0]["code"] == 1073 and "X-Lognex-Retry-After" not in resp.headers


def test_drop_fault_closes_the_connection(make_sandbox, client_for):
    srv = make_sandbox(rate_limit=False)
    ms = client_for(srv)
    srv.moysklad.faults.add(kind="drop")
    with pytest.raises(httpx.RemoteProtocolError):
        ms.get("/entity/store")
    assert ms.get("/entity/store").status_code == 200


def test_timeout_fault(make_sandbox, client_for):
    srv = make_sandbox(rate_limit=False)
    ms = client_for(srv, timeout=0.3)
    srv.moysklad.faults.add(kind="timeout", seconds=1.0)
    with pytest.raises(httpx.ReadTimeout):
        ms.get("/entity/store")
    srv.moysklad.faults.add(kind="timeout", seconds=0.2, then="answer")
    assert client_for(srv, timeout=5).get("/entity/store").status_code == 200


# -- stats and control endpoints ------------------------------------------------------------------
def test_stats_keys_and_reset(make_sandbox, client_for):
    srv = make_sandbox(rate_limit=False)
    ms = client_for(srv)
    pid = srv.moysklad.product_ids()[0]
    ms.get("/entity/product")
    ms.get(f"/entity/product/{pid}")
    ms.get("/entity/product/6b44332f-b0ac-11ea-ac14-000a00000002")
    stats = srv.moysklad.stats()
    assert stats["requests"] == 3
    assert stats["by_endpoint"] == {"entity/product": 1, "entity/product/{id}": 2}
    assert stats["by_status"] == {"200": 2, "404": 1}
    assert stats["by_endpoint_status"]["entity/product/{id}"] == {"200": 1, "404": 1}
    assert stats["units"] == 12 and stats["bytes_out"] > 0
    srv.moysklad.reset_stats()
    assert srv.moysklad.stats()["requests"] == 0


def test_control_endpoints(make_sandbox, client_for):
    srv = make_sandbox()
    ms = client_for(srv)
    ctl = httpx.Client(base_url=srv.control_url("moysklad"), timeout=10)   # no auth needed
    try:
        info = ctl.get("/").json()
        assert info["catalog"]["products"] == 200 and info["auth"]["token"] == "sandbox-token"
        all_ids = ctl.get("/ids").json()
        pid, store = all_ids["products"][0], all_ids["stores"][0]

        assert ctl.post("/faults", json={"status": 500, "count": 1, "path_contains": "entity/store"}).status_code == 201
        assert ms.get("/entity/store").status_code == 500
        assert ctl.get("/stats").json()["by_status"] == {"500": 1}
        ctl.post("/stats/reset")
        assert ctl.get("/stats").json()["requests"] == 0

        patched = ctl.post(f"/products/{pid}", json={"name": "Через API", "salePrice": 55500}).json()
        assert patched["name"] == "Через API" and patched["salePrices"][0]["value"] == 55500.0
        assert ms.get(f"/entity/product/{pid}").json()["name"] == "Через API"

        cells = ctl.post("/stock", json={"assortmentId": pid, "storeId": store, "stock": 9, "reserve": 4}).json()
        assert cells["cells"][0]["freeStock"] == 5
        touched = ctl.post("/touch", json={"count": 3}).json()["ids"]
        assert len(touched) == 3

        created = ctl.post("/products", json={"name": "Новинка", "article": "NEW-1", "salePrice": 10000})
        assert created.status_code == 201 and srv.moysklad.find_sku("NEW-1") == created.json()["id"]

        assert ctl.post(f"/products/{pid}/delete").json() == {"deleted": pid}
        assert ms.get(f"/entity/product/{pid}").status_code == 404
        assert ctl.post(f"/products/{pid}", json={"name": "x"}).status_code == 400

        ctl.post("/config", json={"latency_ms": 1, "request_weight": 2})
        assert srv.moysklad.request_weight == 2 and srv.moysklad.latency_ms == 1
        assert httpx.get(f"{srv.url}/_sandbox/").json()["emulators"]["moysklad"]["base"].endswith("/moysklad")
    finally:
        ctl.close()
