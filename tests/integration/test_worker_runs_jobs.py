"""A real Celery worker (in-process thread, solo pool) on the real Redis broker and the real
database runs `integrations.run_job` from the queue; MoySklad is the sandbox in-process behind
respx (tests/sandbox_respx.py), which patches httpx globally and so also answers inside the worker
thread."""
import uuid

import pytest
from celery.contrib.testing.worker import start_worker
from celery.signals import task_postrun
from django.db import connections

from catalog.models import Offer
from integrations.http import ratelimit
from integrations.models import JobRun, JobState
from integrations.tasks import run_job_task
from syncsite.celery import app
from tests.conftest import needs_redis, redis_url
from tests.sandbox_respx import mounted_sandbox, point_moysklad_at
from tests.waiting import wait_for_idle_worker, wait_until

pytestmark = [pytest.mark.integration, needs_redis]


def _close_worker_connections(**_kwargs):
    connections.close_all()  # the worker thread's own connections: let the test database go


@pytest.fixture
def worker(settings, monkeypatch):
    import redis

    settings.REDIS_URL = redis_url()
    # Pin the broker for this test: a test that points Celery at a dead broker must not leak here.
    for key in ("broker_url", "broker_read_url", "broker_write_url"):
        monkeypatch.setattr(app.conf, key, redis_url())
    client = redis.Redis.from_url(redis_url())
    for pattern in ("syncsite:*", "LIMITS*"):  # limiter state left by earlier runs
        for key in client.scan_iter(pattern):
            client.delete(key)
    ratelimit._registry.clear()
    app.loader.import_default_modules()
    # A queue of our own: another test session on the same Redis neither steals nor feeds it.
    queue = f"test-{uuid.uuid4().hex[:12]}"
    task_postrun.connect(_close_worker_connections, weak=False)
    try:
        with start_worker(app, pool="solo", perform_ping_check=False, shutdown_timeout=30, queues=[queue]) as w:
            w.test_queue = queue
            yield w
    finally:
        task_postrun.disconnect(_close_worker_connections)
        ratelimit._registry.clear()
        client.delete(queue)


def enqueue(worker, job: str):
    with app.connection_for_write() as conn:  # not the app's pool: it may hold an older broker
        run_job_task.apply_async(args=(job,), kwargs={"trigger": "test"}, queue=worker.test_queue,
                                 connection=conn)


def wait_for_run(job: str, timeout: float = 30.0) -> JobRun:
    """The job's run once it finished, and the worker done with the task (lock released, nothing
    left running)."""
    wait_until(lambda: JobRun.objects.filter(job=job).exclude(status=JobRun.Status.RUNNING).exists(),
               timeout=timeout, what=f"a finished {job} run")
    wait_for_idle_worker(timeout)
    return JobRun.objects.filter(job=job).exclude(status=JobRun.Status.RUNNING).first()


@pytest.fixture
def upstream(settings):
    """MoySklad: three folders, three simple products and one with two variants."""
    with mounted_sandbox(stores=2) as sandbox:
        point_moysklad_at(settings, sandbox)
        ms = sandbox.moysklad
        winter = ms.add_folder("Зимние", ms.add_folder("Куртки", ms.add_folder("Одежда")))
        for i in range(1, 4):
            ms.add_product(name=f"Товар {i}", article=f"ART-{i}", productFolder=winter)
        tshirt = ms.add_product(name="Футболка", article="TSH")
        ms.add_variant(tshirt, code="TSH-M")
        ms.add_variant(tshirt, code="TSH-L")
        yield ms


@pytest.mark.django_db(transaction=True)
def test_worker_runs_the_catalog_job_from_the_queue(upstream, worker):
    enqueue(worker, "moysklad-catalog")
    run = wait_for_run("moysklad-catalog")
    assert run.status == JobRun.Status.SUCCESS, run.message
    assert run.trigger == "test"
    assert run.counts["products_created"] == 4 and run.counts["variants_created"] == 2
    assert Offer.objects.count() == 5
    # wait_for_run waited for the worker to finish the task: the job's lock is released by then.
    state = JobState.objects.get(job="moysklad-catalog")
    assert state.cursor == run.started_at and state.locked_by == ""
    assert len(upstream.logged("entity/product")) == 1


@pytest.mark.django_db(transaction=True)
def test_worker_records_an_auth_failure_with_the_clear_message(upstream, worker, settings):
    settings.MOYSKLAD = {**settings.MOYSKLAD, "TOKEN": "a-revoked-token"}
    enqueue(worker, "moysklad-stock")
    run = wait_for_run("moysklad-stock")
    assert run.status == JobRun.Status.FAILED and "check MOYSKLAD_TOKEN" in run.message
    assert JobState.objects.get(job="moysklad-stock").cursor is None
    assert [r.status for r in upstream.logged()] == [401]


@pytest.mark.django_db(transaction=True)
def test_worker_reports_not_configured_as_a_successful_noop(settings, worker):
    settings.MOYSKLAD = {**settings.MOYSKLAD, "TOKEN": "", "LOGIN": "", "PASSWORD": ""}
    enqueue(worker, "moysklad-catalog")
    assert wait_for_run("moysklad-catalog").status == JobRun.Status.NOT_CONFIGURED
