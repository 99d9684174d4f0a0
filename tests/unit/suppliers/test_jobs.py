import pytest
import respx
from django.core.management import call_command

from integrations import jobs
from integrations.http.errors import UpstreamUnavailableError
from integrations.runs import run_job
from integrations.schedule import SCHEDULE, beat_schedule
from integrations.suppliers import tasks
from tests.factories import make_offer

from .conftest import make_supplier

pytestmark = pytest.mark.django_db


def test_job_registered_and_scheduled():
    assert "supplier-stock" in jobs.JOBS
    entries = [e for e in SCHEDULE if e.job == "supplier-stock"]
    assert {e.human for e in entries} == {"every 30 min", "nightly 02:33"}
    assert [e.full for e in entries].count(True) == 1
    assert "supplier-events-sweep" in beat_schedule()


def test_not_configured_without_active_suppliers():
    run = run_job(jobs.get("supplier-stock"), trigger="beat")
    assert run.status == "not_configured"


def test_beat_run_fans_out_one_task_per_supplier(published):
    make_supplier(slug="a")
    make_supplier(slug="b", url="https://b.example/api")
    make_supplier(slug="c", url="https://c.example/api", active=False)
    run = run_job(jobs.get("supplier-stock"), trigger="beat", full=True)
    assert run.status == "success" and run.counts["queued"] == 2
    assert published.calls == [("suppliers.read", ("a", True)), ("suppliers.read", ("b", True))]


def test_command_runs_the_reads_in_this_process(capsys):
    make_offer(sku="A-1")
    make_supplier(slug="a")
    make_supplier(slug="b", url="https://b.example/api")
    with respx.mock() as mock:
        mock.get("https://acme.example/api/stock").respond(200, json={"items": [{"sku": "A-1", "stock": 1}]})
        mock.get("https://b.example/api/stock").respond(500)
        call_command("sync", "supplier-stock")
    from integrations.models import JobRun

    run = JobRun.objects.filter(job="supplier-stock").latest("started_at")
    assert run.counts["suppliers_ok"] == 1 and run.counts["suppliers_failed"] == 1
    assert run.status == "success" and run.error_count == 1  # one supplier's failure is recorded, not fatal


def test_task_retries_1_5_15_minutes_then_gives_up(monkeypatch):
    make_supplier(slug="a")
    monkeypatch.setattr("integrations.suppliers.sync.supplier_read",
                        lambda supplier, full: (_ for _ in ()).throw(UpstreamUnavailableError("down")))
    countdowns = []

    class Retry(Exception):
        pass

    def fake_retry(*args, countdown=None, **kwargs):
        countdowns.append(countdown)
        return Retry()

    monkeypatch.setattr(tasks.supplier_read_task, "retry", fake_retry)
    for n in range(3):
        tasks.supplier_read_task.push_request(retries=n)
        with pytest.raises(Retry):
            tasks.supplier_read_task.run("a", False)
        tasks.supplier_read_task.pop_request()
    tasks.supplier_read_task.push_request(retries=3)
    assert tasks.supplier_read_task.run("a", False)["status"] == "failed"
    tasks.supplier_read_task.pop_request()
    assert countdowns == [60, 300, 900]


def test_task_busy_supplier_is_not_retried(monkeypatch):
    from integrations.runs import acquire_lock
    from integrations.suppliers.sync import lock_name

    make_supplier(slug="a")
    lease = acquire_lock(lock_name("a"), "other")
    assert tasks.supplier_read_task.run("a", False) == {"status": "busy"}
    lease.release()
