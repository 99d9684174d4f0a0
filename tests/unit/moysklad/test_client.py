"""MoySkladClient against respx: headers, paging, filters, 429/5xx/4xx handling, typed errors,
href following. No database, no network."""
import base64
from datetime import datetime, timezone

import httpx
import pytest
import respx

from integrations.http.errors import (
    AuthError,
    NotConfigured,
    NotFoundError,
    RateLimitedError,
    RejectedError,
    UpstreamUnavailableError,
)
from integrations.moysklad.client import MoySkladClient

from .support import BASE, FakeClock, error_response, load, local_limiter, page

CONF = {"BASE_URL": BASE, "TOKEN": "secret-token", "LOGIN": "", "PASSWORD": "", "PRICE_TYPE": "",
        "REQUEST_WEIGHT": 4, "BUDGET_UNITS": 45, "BUDGET_WINDOW": 3.0, "MAX_PARALLEL": 5, "TIMEOUT": 5.0,
        "PAGE_SIZE": 1000}


class Sleeps(list):
    def __call__(self, seconds):
        self.append(seconds)


@pytest.fixture
def sleeps():
    return Sleeps()


@pytest.fixture
def router():
    with respx.mock(base_url=BASE, assert_all_called=False) as mock:
        yield mock


def make_client(sleeps=None, limiter=None, **conf) -> MoySkladClient:
    return MoySkladClient({**CONF, **conf}, limiter=limiter or local_limiter(units=1000),
                          sleep=sleeps if sleeps is not None else Sleeps())


# -- configuration and headers ---------------------------------------------------------------------
def test_unconfigured_client_refuses_to_start():
    with pytest.raises(NotConfigured, match="MOYSKLAD_TOKEN"):
        MoySkladClient({**CONF, "TOKEN": ""}, limiter=local_limiter())


def test_bearer_token_is_sent(router):
    route = router.get("/entity/organization").respond(json=page([], "organization"))
    make_client().organizations()
    assert route.calls.last.request.headers["Authorization"] == "Bearer secret-token"


def test_basic_auth_is_sent_for_login_and_password(router):
    route = router.get("/entity/organization").respond(json=page([], "organization"))
    make_client(TOKEN="", LOGIN="admin@shop", PASSWORD="p@ss:word").organizations()
    expected = "Basic " + base64.b64encode(b"admin@shop:p@ss:word").decode()
    assert route.calls.last.request.headers["Authorization"] == expected


def test_gzip_and_exact_accept_header_are_sent(router):
    route = router.get("/entity/organization").respond(json=page([], "organization"))
    make_client().organizations()
    headers = route.calls.last.request.headers
    assert "gzip" in [e.strip() for e in headers["Accept-Encoding"].split(",")]
    assert headers["Accept"] == "application/json;charset=utf-8"


# -- paging and filters ----------------------------------------------------------------------------
def test_iter_rows_pages_by_limit_and_offset_until_size(router):
    rows = [{"id": str(i)} for i in range(5)]

    def serve(request):
        limit, offset = int(request.url.params["limit"]), int(request.url.params["offset"])
        return httpx.Response(200, json=page(rows[offset:offset + limit], "product", size=5, limit=limit,
                                             offset=offset))

    route = router.get("/entity/product").mock(side_effect=serve)
    got = list(make_client().iter_rows("product", limit=2))
    assert [r["id"] for r in got] == ["0", "1", "2", "3", "4"]
    assert [(c.request.url.params["limit"], c.request.url.params["offset"]) for c in route.calls] == [
        ("2", "0"), ("2", "2"), ("2", "4")]


def test_iter_pages_stops_when_no_next_href(router):
    envelope = page([{"id": "a"}], "product", size=1)
    assert "nextHref" not in envelope["meta"]
    route = router.get("/entity/product").respond(json=envelope)
    assert len(list(make_client().iter_pages("product"))) == 1
    assert route.call_count == 1


def test_iter_pages_stops_on_empty_page_even_with_next_href(router):
    envelope = page([], "product", size=5000)
    envelope["meta"]["nextHref"] = f"{BASE}/entity/product?offset=1000"
    route = router.get("/entity/product").respond(json=envelope)
    assert list(make_client().iter_rows("product")) == []
    assert route.call_count == 1


def test_page_limit_is_capped_at_1000(router):
    route = router.get("/entity/product").respond(json=page([], "product"))
    list(make_client().iter_rows("product", limit=5000))
    assert route.calls.last.request.url.params["limit"] == "1000"


def test_filters_are_joined_with_semicolons_and_order_is_sent(router):
    route = router.get("/entity/product").respond(json=page([], "product"))
    client = make_client()
    since = datetime(2026, 11, 20, 7, 0, 0, 250000, tzinfo=timezone.utc)
    list(client.iter_rows("product", filters=client.delta_filters(since), order="updated,asc;id"))
    params = route.calls.last.request.url.params
    # 07:00 UTC is 10:00 in Moscow (UTC+3, no DST); MoySklad reads naive Moscow time.
    assert params["filter"] == "updated>=2026-11-20 10:00:00.250;archived=true;archived=false"
    assert params["order"] == "updated,asc;id"


def test_full_read_filter_asks_for_archived_and_active():
    assert MoySkladClient.delta_filters(None) == ["archived=true", "archived=false"]


# -- 429 ---------------------------------------------------------------------------------------------
def test_429_with_retry_after_in_milliseconds_waits_that_long_then_succeeds(router, sleeps):
    clock = FakeClock()
    limiter = local_limiter(units=1000, clock=clock.time, sleep=clock.sleep)
    paused = []
    real_pause = limiter.pause
    limiter.pause = lambda seconds: (paused.append(seconds), real_pause(seconds))
    route = router.get("/entity/organization").mock(side_effect=[
        error_response(429, "error_429_rate_limit", {"X-Lognex-Retry-After": "1500", "X-RateLimit-Remaining": "0"}),
        httpx.Response(200, json=page([{"id": "org"}], "organization")),
    ])
    client = make_client(sleeps, limiter=limiter)
    assert client.organizations() == [{"id": "org"}]
    assert route.call_count == 2
    assert paused == [1.5]  # milliseconds → seconds, shared with every user of the limiter
    assert sum(clock.slept) == pytest.approx(1.5)  # this thread waited exactly that long
    assert sleeps == []  # and no extra back-off on top
    assert client.stats.rate_limited == 1 and client.stats.retries == 1


def test_429_without_retry_after_is_the_parallel_cap_and_backs_off_with_jitter(router, sleeps):
    route = router.get("/entity/organization").mock(side_effect=[
        error_response(429, "error_429_parallel"),
        error_response(429, "error_429_parallel"),
        httpx.Response(200, json=page([], "organization")),
    ])
    make_client(sleeps).organizations()
    assert route.call_count == 3
    assert len(sleeps) == 2
    assert 0.25 <= sleeps[0] <= 0.5 and 0.5 <= sleeps[1] <= 1.0  # exponential, jittered


def test_429_with_a_zero_retry_after_still_backs_off(router, sleeps):
    router.get("/entity/organization").mock(side_effect=[
        error_response(429, "error_429_rate_limit", {"X-Lognex-Retry-After": "0"}),
        httpx.Response(200, json=page([], "organization"))])
    make_client(sleeps).organizations()
    assert len(sleeps) == 1 and sleeps[0] >= 0.25


def test_429_jitter_differs_between_waits(router):
    delays = set()
    for _ in range(5):
        sleeps = Sleeps()
        router.get("/entity/organization").mock(side_effect=[error_response(429, "error_429_parallel"),
                                                              httpx.Response(200, json=page([], "organization"))])
        make_client(sleeps).organizations()
        delays.add(sleeps[0])
    assert len(delays) > 1


def test_429_waits_are_capped_then_rate_limited_error(router, sleeps):
    route = router.get("/entity/organization").mock(return_value=error_response(429, "error_429_parallel"))
    client = make_client(sleeps)
    with pytest.raises(RateLimitedError) as info:
        client.organizations()
    assert route.call_count == client.max_rate_limit_waits + 1
    assert info.value.codes == [1073]


def test_429_with_a_very_long_retry_after_is_left_to_the_task(router, sleeps):
    limiter = local_limiter()
    route = router.get("/entity/organization").mock(
        return_value=error_response(429, "error_429_rate_limit", {"X-Lognex-Retry-After": "120000"}))
    with pytest.raises(RateLimitedError) as info:
        make_client(sleeps, limiter=limiter).organizations()
    assert route.call_count == 1
    assert info.value.retry_after == 120.0
    assert limiter.paused_for() > 100  # every other user still holds off


# -- 5xx and timeouts --------------------------------------------------------------------------------
def test_5xx_is_retried_a_capped_number_of_times_then_unavailable(router, sleeps):
    route = router.get("/entity/organization").mock(return_value=error_response(500, "error_500_internal"))
    client = make_client(sleeps)
    with pytest.raises(UpstreamUnavailableError) as info:
        client.organizations()
    assert route.call_count == client.max_attempts == 3
    assert len(sleeps) == 2
    assert info.value.status == 500 and info.value.codes == [1000]


@pytest.mark.parametrize("status", [500, 502, 503, 504])
def test_5xx_then_200_succeeds(router, sleeps, status):
    route = router.get("/entity/organization").mock(
        side_effect=[httpx.Response(status), httpx.Response(200, json=page([], "organization"))])
    make_client(sleeps).organizations()
    assert route.call_count == 2


def test_timeouts_are_retried_then_unavailable(router, sleeps):
    route = router.get("/entity/organization").mock(side_effect=httpx.ReadTimeout("slow"))
    with pytest.raises(UpstreamUnavailableError, match="timed out"):
        make_client(sleeps).organizations()
    assert route.call_count == 3


def test_connect_error_then_success(router, sleeps):
    route = router.get("/entity/organization").mock(
        side_effect=[httpx.ConnectError("refused"), httpx.Response(200, json=page([], "organization"))])
    make_client(sleeps).organizations()
    assert route.call_count == 2


def test_answer_that_is_not_json_is_a_typed_error(router):
    router.get("/entity/organization").respond(200, text="<html>proxy</html>")
    with pytest.raises(UpstreamUnavailableError, match="not JSON"):
        make_client().organizations()


# -- 4xx: never retried, typed, carry MoySklad's errors -----------------------------------------------
@pytest.mark.parametrize("status,fixture,error_class,code", [
    (400, "error_400_bad_filter", RejectedError, 1014),
    (404, "error_404_not_found", NotFoundError, 1021),
    (409, "error_409_in_use", RejectedError, 1019),
    (412, "error_412_missing_field", RejectedError, 3000),
    (415, None, RejectedError, None),  # MoySklad answers a missing gzip with an empty 415
])
def test_4xx_is_never_retried_and_carries_the_errors_array(router, sleeps, status, fixture, error_class, code):
    route = router.get("/entity/organization").mock(return_value=error_response(status, fixture))
    with pytest.raises(error_class) as info:
        make_client(sleeps).organizations()
    err = info.value
    assert route.call_count == 1 and sleeps == []
    assert err.status == status
    assert err.url.startswith(f"{BASE}/entity/organization")
    assert err.system == "moysklad" and err.method == "GET"
    if fixture:
        expected = load(fixture)["errors"]
        assert err.errors == expected
        assert err.codes == [code]
        assert expected[0]["error"] in str(err) and f"code {code}" in str(err)
    else:
        assert err.errors == []


def test_401_is_auth_error_telling_to_check_the_token(router, sleeps):
    route = router.get("/entity/organization").mock(return_value=error_response(401, "error_401"))
    with pytest.raises(AuthError) as info:
        make_client(sleeps).organizations()
    assert route.call_count == 1
    assert "check MOYSKLAD_TOKEN" in str(info.value)
    assert info.value.codes == [1056] and info.value.status == 401


def test_401_with_login_tells_to_check_login_and_password(router):
    router.get("/entity/organization").mock(return_value=error_response(401, "error_401"))
    with pytest.raises(AuthError, match="check MOYSKLAD_LOGIN and MOYSKLAD_PASSWORD"):
        make_client(TOKEN="", LOGIN="admin@shop", PASSWORD="x").organizations()


def test_403_is_auth_error_telling_to_check_the_token(router):
    router.get("/entity/organization").mock(return_value=error_response(403, "error_403"))
    with pytest.raises(AuthError, match="check MOYSKLAD_TOKEN") as info:
        make_client().organizations()
    assert info.value.codes == [1061]


# -- writes --------------------------------------------------------------------------------------
def test_post_is_not_retried_on_5xx(router, sleeps):
    route = router.post("/entity/customerorder").mock(return_value=httpx.Response(503))
    with pytest.raises(UpstreamUnavailableError):
        make_client(sleeps).request("POST", "/entity/customerorder", json={"name": "1"})
    assert route.call_count == 1 and sleeps == []


def test_post_is_not_retried_on_timeout_or_429(router, sleeps):
    route = router.post("/entity/customerorder").mock(side_effect=httpx.ReadTimeout("slow"))
    with pytest.raises(UpstreamUnavailableError):
        make_client(sleeps).request("POST", "/entity/customerorder", json={})
    assert route.call_count == 1
    route = router.post("/entity/counterparty").mock(
        return_value=error_response(429, "error_429_rate_limit", {"X-Lognex-Retry-After": "10"}))
    with pytest.raises(RateLimitedError):
        make_client(sleeps).request("POST", "/entity/counterparty", json={})
    assert route.call_count == 1


def test_post_is_retried_when_explicitly_allowed(router, sleeps):
    route = router.post("/entity/customerorder").mock(
        side_effect=[httpx.Response(502), httpx.Response(200, json={"id": "o1"})])
    response = make_client(sleeps).request("POST", "/entity/customerorder", json={"syncId": "x"}, retry=True)
    assert response.json() == {"id": "o1"} and route.call_count == 2


def test_post_sends_json_content_type(router):
    route = router.post("/entity/customerorder").respond(json={"id": "o1"})
    make_client().request("POST", "/entity/customerorder", json={"name": "1"})
    assert route.calls.last.request.headers["Content-Type"] == "application/json"


# -- following hrefs -------------------------------------------------------------------------------
def test_get_href_follows_links_under_the_base_url(router):
    route = router.get("/entity/product/abc").respond(json={"id": "abc"})
    assert make_client().get_href(f"{BASE}/entity/product/abc") == {"id": "abc"}
    assert route.called


def test_get_href_keeps_the_query_of_a_next_href(router):
    route = router.get("/entity/product").respond(json=page([], "product"))
    make_client().get_href(f"{BASE}/entity/product?limit=1000&offset=1000")
    assert route.calls.last.request.url.params["offset"] == "1000"


@pytest.mark.parametrize("href", [
    "https://evil.test/api/remap/1.2/entity/product/abc",
    "http://ms.test/api/remap/1.2/entity/product/abc",               # downgraded scheme
    "https://ms.test:8443/api/remap/1.2/entity/product/abc",         # other port
    "https://ms.test/api/remap/1.2evil/entity/product",              # prefix trick
    "https://ms.test.evil.test/api/remap/1.2/entity/product",        # host prefix trick
    "https://ms.test@evil.test/api/remap/1.2/entity/product",        # user info
    "https://ms.test/api/remap/1.2/../../admin",                     # climbing out
    "https://ms.test/api/remap/1.1/entity/product",                  # other API version
    "https://online.moysklad.ru/app/#good/edit?id=abc",              # a UI link (uuidHref)
    None,
])
def test_get_href_refuses_links_outside_the_base_url(router, href):
    catch_all = router.route().respond(json={})
    with pytest.raises(RejectedError, match="MOYSKLAD_BASE_URL"):
        make_client().get_href(href)
    assert not catch_all.called


# -- weights -----------------------------------------------------------------------------------------
def test_request_weight_defaults_to_configured_units_and_heavy_reports_cost_5():
    client = make_client()
    assert client.weight_for("GET", "/entity/product") == 4
    assert client.weight_for("GET", "/report/stock/bystore/current") == 4
    assert client.weight_for("GET", f"{BASE}/report/stock/bystore") == 5
    assert client.weight_for("GET", "/report/stock/all") == 5


def test_each_request_spends_its_weight_from_the_limiter(router):
    limiter = local_limiter(units=45)
    router.get("/entity/organization").respond(json=page([], "organization"))
    client = make_client(limiter=limiter)
    client.organizations()
    client.organizations()
    assert limiter.stats.units == 8 and limiter.stats.acquired == 2


def test_default_budget_is_45_units_per_3_seconds_weight_4_and_5_parallel(monkeypatch, settings, isolated_limiters):
    import importlib

    import syncsite.settings.integrations as integration_settings

    for name in ("MOYSKLAD_BUDGET_UNITS", "MOYSKLAD_BUDGET_WINDOW", "MOYSKLAD_REQUEST_WEIGHT", "MOYSKLAD_MAX_PARALLEL"):
        monkeypatch.delenv(name, raising=False)
    defaults = importlib.reload(integration_settings).MOYSKLAD
    assert (defaults["BUDGET_UNITS"], defaults["BUDGET_WINDOW"], defaults["REQUEST_WEIGHT"],
            defaults["MAX_PARALLEL"]) == (45, 3.0, 4, 5)
    settings.MOYSKLAD = {**defaults, "BASE_URL": BASE, "TOKEN": "t"}
    client = MoySkladClient()
    assert (client.limiter.units, client.limiter.window, client.limiter.parallel) == (45, 3.0, 5)
    assert client.weight_for("GET", "/entity/product") == 4
    assert MoySkladClient().limiter is client.limiter  # one limiter per credential in a process


def test_stock_report_decodes_into_typed_rows_or_plain_json_or_fails_typed(router):
    """Well-formed rows decode as small typed rows; a report with a row that does not fit decodes
    as plain JSON (the stock job then records that row and keeps the rest); a body cut short is
    the typed upstream error, so the job fails and writes nothing."""
    from integrations.moysklad.schemas import StockReportRow

    route = router.get("/report/stock/bystore/current")
    route.respond(200, json=[{"assortmentId": "a", "storeId": "s", "stock": 2.5}])
    with make_client() as client:
        assert client.stock_bystore_current("stock", store_id="s") == [
            StockReportRow(assortmentId="a", storeId="s", stock=2.5)]
        route.respond(200, json=[{"assortmentId": "a", "storeId": "s", "stock": True}, "junk"])
        assert client.stock_bystore_current("stock") == [{"assortmentId": "a", "storeId": "s", "stock": True}, "junk"]
        route.respond(200, content=b'[{"assortmentId": "a", "storeId": "s", "sto')
        with pytest.raises(UpstreamUnavailableError, match="not JSON"):
            client.stock_bystore_current("stock")
