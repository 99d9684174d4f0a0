"""The spine under a misbehaving or strict upstream: 5xx retried, a bad token stops the job with
a clear message, and the weighted budget is never overrun."""
import threading

import pytest

from catalog.models import Product
from integrations.models import JobRun, JobState
from integrations.moysklad.client import MoySkladClient

from .steps import sync

pytestmark = pytest.mark.e2e


def test_upstream_500s_are_retried_and_run_succeeds(moysklad):
    moysklad.reset_stats()
    moysklad.faults.add(status=500, count=2, path_contains="entity/product")

    run = sync("moysklad-catalog")

    stats = moysklad.stats()
    assert stats["faults"] == 2 and stats["by_status"]["500"] == 2
    assert run.counts.get("retries", 0) >= 2
    assert Product.objects.count() == len(moysklad.product_ids(include_archived=True))
    assert JobState.objects.get(job="moysklad-catalog").cursor == run.started_at


def test_401_stops_the_job_with_a_clear_message(moysklad, settings):
    settings.MOYSKLAD = {**settings.MOYSKLAD, "TOKEN": "not-the-sandbox-token"}
    moysklad.reset_stats()

    run = sync("moysklad-catalog", expect=JobRun.Status.FAILED)

    assert "check MOYSKLAD_TOKEN" in run.message
    assert moysklad.stats()["by_status"] == {"401": 1}   # one refusal, never retried
    assert JobState.objects.get(job="moysklad-catalog").cursor is None
    assert not Product.objects.exists()


def test_rate_limited_sandbox_never_sees_a_429_storm(moysklad):
    """More than the budget allows, sequentially and from many threads: the limiter paces every
    request (45 units per 3 s, 4 a request, at most 5 at once), so the sandbox answers no 429."""
    moysklad.reset_stats()
    sync("moysklad-catalog")
    sync("moysklad-stock")
    sync("moysklad-catalog", full=True)

    errors: list[Exception] = []

    def hammer():
        try:
            with MoySkladClient() as client:
                for _ in range(3):
                    client.get_json("/entity/store")
        except Exception as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=hammer) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    stats = moysklad.stats()
    assert not errors
    assert stats["requests"] >= 35 and stats["units"] > 45 * 3   # well over one window's budget
    assert stats["throttled"] == 0, stats["by_status"]
    assert stats["max_parallel_admitted"] <= 5
