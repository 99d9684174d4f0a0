"""An answer is freed as soon as nobody holds it (no reference cycle left for the cyclic
collector: a MoySklad page is 4 MB of JSON), and jobs run with the collector tuned for bulk
work, restored afterwards."""
import gc
import threading
import weakref

import httpx
import pytest
import respx

from integrations.http.client import BaseClient
from syncsite import gctune

BASE = "https://upstream.test/api"


@pytest.fixture
def collector_off():
    gc.collect()
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


def test_a_read_answer_is_freed_when_dropped_without_the_cyclic_collector(collector_off):
    with respx.mock() as router:
        router.get(f"{BASE}/items").respond(200, json={"rows": [{"id": i} for i in range(100)]})
        with BaseClient(BASE) as client:
            response = client.request("GET", "/items")
            assert response.json()["rows"][99] == {"id": 99} and response.elapsed is not None
            gone = weakref.ref(response)
            del response
            assert gone() is None


def test_an_answer_from_httpx_alone_would_wait_for_the_collector(collector_off):
    """What the client undoes: httpx binds the stream back to its response."""
    with respx.mock() as router:
        router.get(f"{BASE}/items").respond(200, json={})
        with httpx.Client() as http:
            response = http.get(f"{BASE}/items")
            gone = weakref.ref(response)
            del response
            assert gone() is not None
            gc.collect()
            assert gone() is None


def test_bulk_work_raises_the_young_threshold_and_the_last_one_out_restores_it():
    before = gc.get_threshold()
    entered, leave = threading.Event(), threading.Event()

    def other_job():
        with gctune.for_bulk_work():
            entered.set()
            leave.wait(5)

    with gctune.for_bulk_work():
        assert gc.get_threshold()[0] == max(gctune.YOUNG_THRESHOLD, before[0])
        assert gc.get_freeze_count() > 0
        thread = threading.Thread(target=other_job)
        thread.start()
        assert entered.wait(5)
    assert gc.get_threshold()[0] == max(gctune.YOUNG_THRESHOLD, before[0])   # the other job still runs
    leave.set()
    thread.join(5)
    assert gc.get_threshold() == before and gc.get_freeze_count() == 0


@pytest.mark.django_db
def test_a_job_runs_with_the_collector_tuned_and_it_is_restored_after(monkeypatch):
    from integrations.runs import JobSpec, run_job

    seen = []
    before = gc.get_threshold()
    spec = JobSpec(name="gc-probe", func=lambda ctx: seen.append(gc.get_threshold()), configured=lambda: True,
                   description="probe")
    run = run_job(spec, trigger="test")
    assert run.status == "success"
    assert seen == [(max(gctune.YOUNG_THRESHOLD, before[0]), before[1], before[2])]
    assert gc.get_threshold() == before
