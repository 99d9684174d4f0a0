"""Under MoySklad's hard limits (weighted units per window, 5 parallel requests), a busy client
must not cause a storm of 429s: MoySklad bans a user for more than 200 429s a minute.
The upstream is the sandbox's MoySklad in-process (tests/sandbox_respx.py) with its limits on:
units in a moving window (scaled to 0.2 s) and the parallel cap."""
import threading

import pytest

from integrations.http.ratelimit import Limiter
from integrations.moysklad.client import MoySkladClient
from tests.sandbox_respx import TOKEN, mounted_sandbox

WINDOW = 0.2
UNITS = 45
WEIGHT = 4
PARALLEL = 5


def run_busy_workers(limiter: Limiter, *, threads: int = 8, requests: int = 8) -> dict:
    """The sandbox's MoySklad stats after `threads` threads made `requests` calls each."""
    errors = []
    with mounted_sandbox(rate_limit=True, budget=UNITS, window=WINDOW, request_weight=WEIGHT,
                         max_parallel=PARALLEL, latency_ms=2) as sandbox:   # a request takes a moment
        conf = {"BASE_URL": sandbox.moysklad_base_url, "TOKEN": TOKEN, "LOGIN": "", "PASSWORD": "",
                "PRICE_TYPE": "", "REQUEST_WEIGHT": WEIGHT, "BUDGET_UNITS": UNITS, "BUDGET_WINDOW": WINDOW,
                "MAX_PARALLEL": PARALLEL, "TIMEOUT": 5.0, "PAGE_SIZE": 1000}
        client = MoySkladClient(conf, limiter=limiter)

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
        stats = sandbox.moysklad.stats()
    assert not errors, errors[:3]
    assert stats["by_endpoint_status"]["entity/organization"]["200"] == threads * requests
    return stats


def test_busy_client_causes_almost_no_429s_under_a_hard_upstream_limit():
    limiter = Limiter("storm:ours", units=UNITS, window=WINDOW, parallel=PARALLEL)
    stats = run_busy_workers(limiter)
    assert stats["rate_limited"] + stats["parallel_limited"] <= 2


@pytest.mark.parametrize("parallel", [50])
def test_without_a_real_budget_the_simulator_does_answer_429s(parallel):
    """Control: the same load through a limiter that does not know the real budget hits 429s (and
    still finishes, because each 429 pauses everyone for upstream's Retry-After)."""
    limiter = Limiter("storm:naive", units=100_000, window=WINDOW, parallel=parallel)
    stats = run_busy_workers(limiter)
    assert stats["rate_limited"] + stats["parallel_limited"] > 3
