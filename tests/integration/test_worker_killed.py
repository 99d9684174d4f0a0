"""A worker killed mid-work (SIGKILL: no cleanup, no release) loses its leases when they run out,
and the work resumes: webhook events, an order export, a job's lock. Each worker is a real process
on the real PostgreSQL, stuck inside the work with its heartbeat renewing a short lease (3 s here,
30 s in production) until it is killed. While it lives, nobody else gets the work, however long it
runs; once it is dead, the work is taken up as soon as the lease runs out."""
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from django.db import connection

from integrations.models import InboundEvent, JobRun, JobState, OrderBinding
from integrations.moysklad.events import events_process, events_sweep
from orders.models import ExportState, Order
from tests.conftest import needs_postgres
from tests.orders_fixtures import (  # noqa: F401
    MS_BASE,
    _fast_backoff,
    deliver,
    ms_respx,
    ms_sandbox,
    notification,
    published,
    shop,
)

pytestmark = [needs_postgres, pytest.mark.django_db(transaction=True)]
ROOT = Path(__file__).resolve().parents[2]
LEASE = 3.0


def database_url() -> str:
    s = connection.settings_dict
    auth = s["USER"] + (f":{s['PASSWORD']}" if s["PASSWORD"] else "")
    return f"postgres://{auth}@{s['HOST'] or '127.0.0.1'}:{s['PORT'] or 5432}/{s['NAME']}"


def start_worker(code: str) -> subprocess.Popen:
    """A worker process on the test database, stuck inside the work once it prints `claimed`."""
    env = {**os.environ, "DATABASE_URL": database_url(), "DJANGO_SETTINGS_MODULE": "syncsite.settings",
           "LEASE_SECONDS": str(LEASE), "MOYSKLAD_TOKEN": "worker-token",
           "MOYSKLAD_BASE_URL": MS_BASE}
    proc = subprocess.Popen([sys.executable, "-c", "import django, sys, time\ndjango.setup()\n" + code], cwd=ROOT,
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)
    line = proc.stdout.readline()
    assert line.strip() == "claimed", f"worker did not start: {line!r} {proc.stderr.read() if proc.poll() else ''}"
    return proc


def kill(proc: subprocess.Popen) -> float:
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(10)
    return time.monotonic()


def while_alive(proc: subprocess.Popen, check, seconds: float) -> None:
    """For `seconds` (several leases), `check()` must hold: the heartbeat keeps the work ours."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        assert proc.poll() is None
        check()
        time.sleep(0.3)


def until(action, timeout: float):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = action()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError("timed out")


def test_a_killed_workers_events_are_processed_once_its_lease_runs_out(client, ms_respx, published):
    from tests.unit.webhooks.test_event_processing import add_products

    (product_id,) = add_products(ms_respx, 1)
    deliver(client, notification(("product", product_id, "UPDATE")))
    event_id = InboundEvent.objects.get().pk
    worker = start_worker(
        "from integrations.moysklad import events\n"
        "def stuck(self, named, evs):\n    print('claimed', flush=True)\n    time.sleep(3600)\n"
        "events.Batch.catalog = stuck\n"
        f"events.events_process(event_ids=[{event_id}])\n")
    try:
        assert InboundEvent.objects.get().status == "processing"

        def nobody_else_gets_it():
            assert events_process(event_ids=[event_id]) == {}
            assert events_sweep(follow_up=False)["freed"] == 0

        while_alive(worker, nobody_else_gets_it, 3 * LEASE)
        killed = kill(worker)
    finally:
        if worker.poll() is None:
            kill(worker)
    assert until(lambda: events_process(event_ids=[event_id]), timeout=LEASE + 5) == {"imported": 1}
    assert time.monotonic() - killed <= LEASE + 2
    event = InboundEvent.objects.get()
    assert (event.status, event.attempts, event.lease_owner) == ("done", 2, "")


def test_the_sweeper_frees_a_killed_workers_events(client, ms_respx, published):
    from tests.unit.webhooks.test_event_processing import add_products

    (product_id,) = add_products(ms_respx, 1)
    deliver(client, notification(("product", product_id, "UPDATE")))
    event_id = InboundEvent.objects.get().pk
    worker = start_worker(
        "from integrations.moysklad import events\n"
        "def stuck(self, named, evs):\n    print('claimed', flush=True)\n    time.sleep(3600)\n"
        "events.Batch.catalog = stuck\n"
        f"events.events_process(event_ids=[{event_id}])\n")
    kill(worker)
    assert until(lambda: events_sweep(follow_up=False)["freed"], timeout=LEASE + 5) == 1
    assert InboundEvent.objects.get().status == "received"
    assert events_process(event_ids=[event_id]) == {"imported": 1}


def test_a_killed_exporters_order_is_exported_once_its_lease_runs_out(ms_sandbox, shop, published):
    from tests.unit.orders.test_export import export, make_order

    order = make_order(shop)
    worker = start_worker(
        "from integrations.moysklad import orders\n"
        "from integrations.moysklad.client import MoySkladClient\n"
        "def stuck(self, order):\n    print('claimed', flush=True)\n    time.sleep(3600)\n"
        "orders.OrderExportSession.payload = stuck\n"
        f"orders.OrderExportSession(MoySkladClient()).export({order.pk})\n")
    try:
        assert OrderBinding.objects.get(order_id=order.pk).export_lease_owner.split(":")[1] == str(worker.pid)

        def nobody_else_exports_it():
            assert export(order.pk) == "skipped"

        while_alive(worker, nobody_else_exports_it, 3 * LEASE)
        killed = kill(worker)
    finally:
        if worker.poll() is None:
            kill(worker)
    assert until(lambda: export(order.pk) == "exported", timeout=LEASE + 5)
    assert time.monotonic() - killed <= LEASE + 2
    assert OrderBinding.objects.get(order_id=order.pk).export_state == ExportState.EXPORTED
    assert len(ms_sandbox.moysklad.orders.orders) == 1


def test_a_killed_jobs_lock_frees_itself_once_its_lease_runs_out():
    from datetime import timedelta

    from integrations.runs import JobSpec, run_job

    def spec(func=lambda ctx: None):
        return JobSpec("kill-test-job", func, lambda: True, "a test job", overlap=timedelta(seconds=1))

    worker = start_worker(
        "from datetime import timedelta\n"
        "from integrations.runs import JobSpec, run_job\n"
        "def stuck(ctx):\n    print('claimed', flush=True)\n    time.sleep(3600)\n"
        "run_job(JobSpec('kill-test-job', stuck, lambda: True, 'a test job', overlap=timedelta(seconds=1)))\n")
    try:
        while_alive(worker, lambda: run_job(spec()).status == JobRun.Status.SKIPPED or pytest.fail("ran twice"),
                    3 * LEASE)
        killed = kill(worker)
    finally:
        if worker.poll() is None:
            kill(worker)
    assert until(lambda: run_job(spec()).status == JobRun.Status.SUCCESS, timeout=LEASE + 5)
    assert time.monotonic() - killed <= LEASE + 2
    assert JobState.objects.get(job="kill-test-job").locked_by == ""
