"""Shared building blocks: limiter, parallel gate, faults, routing, encodings, filter parsing."""
import pytest

from integrations.sandbox.common import (
    ConcurrencyGate, Credentials, FaultInjector, Request, Router, WeightedWindowLimiter, accepts_gzip,
    basic_auth_header, page_href,
)
from integrations.sandbox.moysklad import Cond, parse_filter, split_conditions

from .conftest import ManualClock


def test_limiter_admits_up_to_budget_and_rejects_without_consuming():
    clock = ManualClock()
    lim = WeightedWindowLimiter(budget=45, window=3.0, clock=clock)
    decisions = [lim.acquire("u", 4) for _ in range(11)]
    assert all(d.allowed for d in decisions)
    assert decisions[-1].remaining == 1
    rejected = lim.acquire("u", 4)
    assert not rejected.allowed and rejected.retry_after_ms == 3000 and rejected.window_ms == 3000
    assert lim.acquire("u", 1).allowed          # the rejected request consumed nothing
    assert not lim.acquire("other", 46).allowed and lim.acquire("other", 45).allowed  # per key


def test_limiter_is_a_moving_window():
    clock = ManualClock()
    lim = WeightedWindowLimiter(budget=10, window=3.0, clock=clock)
    assert lim.acquire("u", 5).allowed
    clock.advance(1.0)
    assert lim.acquire("u", 5).allowed
    denied = lim.acquire("u", 5)
    assert not denied.allowed and denied.retry_after_ms == 2000   # when the first 5 units leave
    assert denied.reset_ms == 3000                                 # when the window is empty
    clock.advance(2.0)
    assert lim.acquire("u", 5).allowed


def test_gate_caps_parallel_requests_per_key():
    gate = ConcurrencyGate(5)
    assert all(gate.acquire("u") for _ in range(5))
    assert not gate.acquire("u")
    assert gate.acquire("v")
    gate.release("u")
    assert gate.acquire("u")
    assert gate.max_seen == 5


def req(path="api/x/entity/product", qs="", method="GET"):
    return Request(method=method, path=path, query_string=qs)


def test_faults_match_count_and_skip():
    faults = FaultInjector()
    faults.add(status=500, count=2, path_contains="entity/product", skip=1)
    assert faults.take(req(path="entity/variant")) is None
    assert faults.take(req()) is None                # skipped
    assert faults.take(req()).status == 500
    assert faults.take(req()).status == 500
    assert faults.take(req()) is None and len(faults) == 0
    forever = faults.add(kind="drop", count=None, method="POST")
    assert faults.take(req()) is None
    assert faults.take(req(method="POST")) is forever and faults.take(req(method="POST")) is forever
    faults.clear()
    with pytest.raises(ValueError):
        faults.add(kind="explode")


def test_fault_matches_query_string():
    faults = FaultInjector()
    faults.add(status=503, path_contains="changedSince")
    assert faults.take(req(path="report/stock/all/current")) is None
    assert faults.take(req(path="report/stock/all/current", qs="changedSince=2026-01-01")).status == 503


def test_router_templates_and_405():
    router = Router()
    router.add("GET", "entity/product", lambda r: None)
    router.add("GET", "entity/product/{id}", lambda r: None)
    route, params, _ = router.match("GET", "entity/product/abc")
    assert route.endpoint == "entity/product/{id}" and params == {"id": "abc"}
    assert router.match("GET", "entity/product/")[0].template == "entity/product"
    route, _, known = router.match("POST", "entity/product")
    assert route is None and known
    assert router.match("GET", "entity/other") == (None, {}, False)


@pytest.mark.parametrize("header,ok", [
    ("gzip", True), ("gzip, deflate, br", True), ("deflate, gzip;q=0.5", True), ("*", True),
    ("identity", False), ("gzip;q=0", False), ("", False), (None, False), ("br, deflate", False),
])
def test_accepts_gzip(header, ok):
    assert accepts_gzip(header) is ok


def test_credentials():
    creds = Credentials("tok", "admin@x", "pw")
    assert creds.authenticate("Bearer tok")[0] == "admin@x"
    assert creds.authenticate(basic_auth_header("admin@x", "pw"))[0] == "admin@x"   # same user, same bucket
    assert creds.authenticate("Bearer nope")[0] is None
    assert creds.authenticate(basic_auth_header("admin@x", "bad"))[0] is None
    assert creds.authenticate("Basic !!!")[0] is None
    assert creds.authenticate(None)[0] is None


def test_page_href_keeps_filters():
    href = page_href("http://h/entity/product", {"filter": ["updated>=2026-01-01 00:00:00"], "limit": ["2"]}, 2, 4)
    assert href == "http://h/entity/product?filter=updated%3E=2026-01-01%2000:00:00&limit=2&offset=4"


def test_filter_parsing():
    assert split_conditions(r"name=a\;b;code=c") == ["name=a;b", "code=c"]
    conds = parse_filter(["updated>=2026-01-01 00:00:00;archived=true", "name~=Кро;code=~-L;article!=;x<=1"])
    assert conds == [Cond("updated", ">=", "2026-01-01 00:00:00"), Cond("archived", "=", "true"),
                     Cond("name", "~=", "Кро"), Cond("code", "=~", "-L"), Cond("article", "!=", ""),
                     Cond("x", "<=", "1")]
    href = "https://api.moysklad.ru/api/remap/1.2/entity/productfolder/6b44332f-b0ac-11ea-ac14-000a00000002"
    assert parse_filter([f"productFolder={href}"]) == [Cond("productFolder", "=", href)]
