"""The circuit breaker per upstream: failures in a row open it, every caller then fails fast with
no request sent, one trial call after the cool-down decides. Kept where the budget is kept (Redis,
the shared files of the embedded default, or the process), so all workers stop together."""
import time
import uuid

import httpx
import pytest
import respx

from integrations.http.client import BaseClient
from integrations.http.errors import CircuitOpenError, NotFoundError, UpstreamUnavailableError
from integrations.http.ratelimit import Limiter, open_circuits
from tests.conftest import redis_url

BASE = "https://upstream.test/api"


class Clock:
    def __init__(self):
        self.now = time.time()   # open_circuits() (the health page) reads the real clock

    def __call__(self):
        return self.now


def storages(tmp_path):
    kinds = [("memory", ""), ("file", f"file://{tmp_path}")]
    if redis_url():
        kinds.append(("redis", redis_url()))
    return kinds


@pytest.fixture(params=["memory", "file", "redis"])
def limiter(request, tmp_path, settings):
    url = {"memory": "", "file": f"file://{tmp_path}", "redis": redis_url()}[request.param]
    if request.param == "redis" and not url:
        pytest.skip("needs Redis: set CELERY_BROKER_URL=redis://127.0.0.1:6379/14 (as .ci/run does)")
    settings.UPSTREAM_BREAKER_FAILURES = 3
    settings.UPSTREAM_BREAKER_SECONDS = 60
    settings.REDIS_URL = url if request.param == "redis" else ""
    settings.RATE_LIMIT_DIR = str(tmp_path) if request.param == "file" else ""
    clock = Clock()
    made = Limiter(f"breaker-test:{uuid.uuid4().hex[:8]}", units=1000, window=1.0, parallel=4, storage_url=url,
                   clock=clock)
    made.clock = clock
    yield made
    made.reset()


def client(limiter):
    c = BaseClient(BASE, limiter=limiter, sleep=lambda s: None)
    c.system = "upstream"
    return c


def test_failures_in_a_row_open_the_circuit_and_calls_then_fail_fast(limiter):
    with respx.mock() as router:
        route = router.get(f"{BASE}/items").respond(503)
        with client(limiter) as c:
            with pytest.raises(UpstreamUnavailableError):
                c.request("GET", "/items")        # 3 tries: the third failure in a row opens it
            assert route.call_count == 3
            with pytest.raises(CircuitOpenError) as caught:
                c.request("GET", "/items")
            assert route.call_count == 3           # nothing sent
    assert "failed 3 times in a row" in str(caught.value) and 0 < caught.value.retry_after <= 60
    if limiter.shared:   # what the health page lists (in-process limiters: those of limiter_for's registry)
        assert limiter.name in [c["name"] for c in open_circuits()]


def test_another_worker_sharing_the_upstream_is_stopped_too(limiter):
    other = Limiter(limiter.name, units=1000, window=1.0, parallel=4, storage_url=limiter._storage_url
                    if limiter.shared else "", clock=limiter.clock)
    if not limiter.shared:
        pytest.skip("in-process state: only this process's callers share it")
    with respx.mock() as router:
        route = router.get(f"{BASE}/items").respond(500)
        with client(limiter) as c, pytest.raises(UpstreamUnavailableError):
            c.request("GET", "/items")
        with client(other) as c, pytest.raises(CircuitOpenError):
            c.request("GET", "/items")
        assert route.call_count == 3


def test_after_the_cool_down_one_trial_call_decides(limiter):
    with respx.mock() as router:
        route = router.get(f"{BASE}/items")
        route.side_effect = [httpx.Response(502)] * 3 + [httpx.Response(502), httpx.Response(200, json={"ok": 1})]
        with client(limiter) as c:
            with pytest.raises(UpstreamUnavailableError):
                c.request("GET", "/items")
            limiter.clock.now += 61
            with pytest.raises(UpstreamUnavailableError):   # the trial fails: open again at once
                c.request("GET", "/items", retry=False)
            assert route.call_count == 4
            with pytest.raises(CircuitOpenError):
                c.request("GET", "/items")
            limiter.clock.now += 61
            assert c.get_json("/items") == {"ok": 1}        # the trial succeeds: closed
            assert limiter.circuit() == (0, 0.0)


def test_clear_answers_and_rate_limits_are_not_failures(limiter):
    with respx.mock() as router:
        router.get(f"{BASE}/gone").respond(404)
        router.get(f"{BASE}/busy").respond(429, headers={"Retry-After": "0"})
        with client(limiter) as c:
            for _ in range(5):
                with pytest.raises(NotFoundError):
                    c.request("GET", "/gone")
            assert limiter.circuit()[0] == 0
            c.max_rate_limit_waits = 0
            for _ in range(5):
                with pytest.raises(Exception):
                    c.request("GET", "/busy")
            assert limiter.circuit_open_for() <= 0


def test_refused_credentials_count_so_a_wrong_token_is_not_hammered(limiter):
    with respx.mock() as router:
        route = router.get(f"{BASE}/items").respond(401)
        with client(limiter) as c:
            for _ in range(3):
                with pytest.raises(Exception):
                    c.request("GET", "/items")
            with pytest.raises(CircuitOpenError):
                c.request("GET", "/items")
        assert route.call_count == 3


def test_off_when_the_setting_is_zero(limiter, settings):
    settings.UPSTREAM_BREAKER_FAILURES = 0
    with respx.mock() as router:
        route = router.get(f"{BASE}/items").respond(500)
        with client(limiter) as c:
            for _ in range(3):
                with pytest.raises(UpstreamUnavailableError):
                    c.request("GET", "/items", retry=False)
        assert route.call_count == 3
