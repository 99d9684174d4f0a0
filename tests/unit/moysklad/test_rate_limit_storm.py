"""Under MoySklad's hard limits (weighted units per window, 5 parallel requests), a busy client
must not cause a storm of 429s: MoySklad bans a user for more than 200 429s a minute.
The upstream is simulated with respx counting units in a moving window (scaled to 0.2 s)."""
import threading
import time
from collections import deque

import httpx
import pytest
import respx

from integrations.http.ratelimit import Limiter
from integrations.moysklad.client import MoySkladClient

from .support import BASE, load, page

WINDOW = 0.2
UNITS = 45
WEIGHT = 4
PARALLEL = 5
CONF = {"BASE_URL": BASE, "TOKEN": "t", "LOGIN": "", "PASSWORD": "", "PRICE_TYPE": "", "REQUEST_WEIGHT": WEIGHT,
        "BUDGET_UNITS": UNITS, "BUDGET_WINDOW": WINDOW, "MAX_PARALLEL": PARALLEL, "TIMEOUT": 5.0, "PAGE_SIZE": 1000}


class HardLimitedMoySklad:
    """Answers 429 + X-Lognex-Retry-After (ms) when a request would push the units spent in the
    last WINDOW over UNITS, and 429 without it (code 1073) above PARALLEL requests in flight."""

    def __init__(self):
        self.lock = threading.Lock()
        self.arrivals: deque = deque()
        self.in_flight = 0
        self.ok = 0
        self.rate_limited = 0
        self.parallel_limited = 0

    def __call__(self, request):
        now = time.monotonic()
        with self.lock:
            while self.arrivals and self.arrivals[0][0] <= now - WINDOW:
                self.arrivals.popleft()
            if self.in_flight >= PARALLEL:
                self.parallel_limited += 1
                return httpx.Response(429, json=load("error_429_parallel"))
            spent = sum(w for _, w in self.arrivals)
            if spent + WEIGHT > UNITS:
                self.rate_limited += 1
                retry_ms = int((self.arrivals[0][0] + WINDOW - now) * 1000) + 1
                return httpx.Response(429, json=load("error_429_rate_limit"),
                                      headers={"X-Lognex-Retry-After": str(retry_ms), "X-RateLimit-Remaining": "0"})
            self.arrivals.append((now, WEIGHT))
            self.in_flight += 1
        time.sleep(0.002)  # the request takes a moment: parallel requests overlap
        with self.lock:
            self.in_flight -= 1
            self.ok += 1
        return httpx.Response(200, json=page([], "organization"))


def run_busy_workers(limiter: Limiter, *, threads: int = 8, requests: int = 8) -> HardLimitedMoySklad:
    upstream = HardLimitedMoySklad()
    errors = []
    with respx.mock(base_url=BASE) as router:
        router.get("/entity/organization").mock(side_effect=upstream)
        client = MoySkladClient(CONF, limiter=limiter)

        def work():
            try:
                for _ in range(requests):
                    client.organizations()
            except Exception as exc:  # noqa: BLE001 - collected and asserted below
                errors.append(exc)

        workers = [threading.Thread(target=work) for _ in range(threads)]
        for w in workers:
            w.start()
        for w in workers:
            w.join(timeout=60)
    assert not errors, errors[:3]
    assert upstream.ok == threads * requests
    return upstream


def test_busy_client_causes_almost_no_429s_under_a_hard_upstream_limit():
    limiter = Limiter("storm:ours", units=UNITS, window=WINDOW, parallel=PARALLEL)
    upstream = run_busy_workers(limiter)
    assert upstream.rate_limited + upstream.parallel_limited <= 2


@pytest.mark.parametrize("parallel", [50])
def test_without_a_real_budget_the_simulator_does_answer_429s(parallel):
    """Control: the same load through a limiter that does not know the real budget hits 429s (and
    still finishes, because each 429 pauses everyone for upstream's Retry-After)."""
    limiter = Limiter("storm:naive", units=100_000, window=WINDOW, parallel=parallel)
    upstream = run_busy_workers(limiter)
    assert upstream.rate_limited + upstream.parallel_limited > 3
