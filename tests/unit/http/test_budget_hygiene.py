"""Budget hygiene on a small full sync: with the sandbox enforcing every upstream's documented
limits (MoySklad 45 units per 3 s, weight 4 a request, 5 in parallel), our limiters pace the
catalog, the stock, an order export and the marketplace push so that no upstream answers 429 and
no request fails over and over (MoySklad turns API access off after 200 rate-limited or identical
failing requests in a minute). bench/scenarios/budget.py measures the same at a larger size."""
from __future__ import annotations

import uuid

import httpx
import pytest

from bench.child_budget import full_sync
from tests.orders_fixtures import published, sandbox_moysklad  # noqa: F401  (published: a fixture)

pytestmark = pytest.mark.django_db


@pytest.fixture
def limited_sandbox(settings):
    from integrations.sandbox.channels import point_settings

    token = f"budget-{uuid.uuid4().hex[:10]}"   # a budget of its own
    limits = {"TOKEN": token, "REQUEST_WEIGHT": 4, "BUDGET_UNITS": 45, "BUDGET_WINDOW": 3.0, "MAX_PARALLEL": 5}
    with sandbox_moysklad(settings, moysklad=limits, products=120, stores=2, seed=17, rate_limit=True,
                          token=token) as server:
        point_settings(settings, server.url)   # the marketplaces too
        yield server


def test_a_full_sync_at_the_real_limits_is_never_told_to_slow_down(limited_sandbox, published):
    out = full_sync(limited_sandbox, orders=3)

    assert {k: v["status"] for k, v in out["runs"].items()} == dict.fromkeys(out["runs"], "success"), out["runs"]
    assert out["requests"]["moysklad"] > 10, "the sync did not reach MoySklad"
    assert out["rate_limited"] == 0, out["by_upstream"]   # < 10 an hour: none in a run of seconds
    assert out["max_identical_failures_per_minute"] <= 50, out["worst_identical"]


def test_the_sandbox_counts_what_an_impatient_client_earns(limited_sandbox):
    """The measure itself: requests sent with no limiter in front get 429s, and the same failing
    request repeated is counted as identical failures."""
    ms = limited_sandbox.moysklad
    ms.reset_stats()
    headers = {"Authorization": f"Bearer {ms.credentials.token}", "Accept-Encoding": "gzip"}
    with httpx.Client(base_url=limited_sandbox.moysklad_base_url, headers=headers) as client:
        statuses = [client.get("entity/store").status_code for _ in range(30)]
    figures = ms.failure_figures()
    assert statuses.count(429) == figures["rate_limited"] > 0
    assert figures["max_identical_failures_per_window"] == figures["rate_limited"]
    assert figures["worst"].endswith("entity/store")
