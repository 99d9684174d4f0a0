"""The event-driven stock push on the real stack: PostgreSQL, Redis (the "already scheduled"
lease and the shared rate limiters) and a real Celery worker. A burst of 300 separate stock
changes, each announced with `kick`, becomes one debounced push of full batches."""
import time
import uuid

import pytest
from celery.contrib.testing.worker import start_worker
from celery.signals import task_postrun
from django.db import connections, transaction

from integrations import marketplaces
from integrations.http import ratelimit
from integrations.marketplaces import tasks
from integrations.models import JobRun
from syncsite.celery import app
from tests.conftest import needs_redis, redis_url
from integrations.sandbox import channels
from tests.sandbox_respx import mounted_sandbox
from tests.unit.marketplaces.support import SandboxMarket, push, pushed_catalog, set_stock
from tests.waiting import wait_until, worker_idle

pytestmark = [pytest.mark.integration, needs_redis]


def _close_connections(**_kwargs):
    connections.close_all()


@pytest.fixture
def sandbox():
    """Ozon, WB and YM: the sandbox's emulators in-process behind respx (the worker's thread too)."""
    with mounted_sandbox() as sb:
        yield sb


@pytest.fixture
def configured(settings, sandbox):
    import redis

    settings.REDIS_URL = redis_url()
    client = redis.Redis.from_url(redis_url())
    for key in client.scan_iter("syncsite:*"):
        client.delete(key)
    for key in client.scan_iter("LIMITS*"):
        client.delete(key)
    ratelimit._registry.clear()
    ozon = sandbox.emulators["ozon"]
    ozon.client_id = f"it-{uuid.uuid4().hex[:6]}"   # a seller of its own: fresh limiter keys in Redis
    ozon.warehouses = {"22000"}
    settings.OZON = {**settings.OZON, "BASE_URL": sandbox.base_url("ozon"), "CLIENT_ID": ozon.client_id,
                     "API_KEY": channels.OZON_API_KEY, "WAREHOUSE_ID": "22000"}
    settings.WILDBERRIES = {**settings.WILDBERRIES, "BASE_URL": sandbox.base_url("wb"),
                            "CONTENT_URL": sandbox.base_url("wb-content"), "TOKEN": channels.WB_TOKEN,
                            "WAREHOUSE_ID": channels.WB_WAREHOUSE}
    settings.YANDEX_MARKET = {**settings.YANDEX_MARKET, "BASE_URL": sandbox.base_url("ym"),
                              "API_KEY": channels.YM_API_KEY, "BUSINESS_ID": channels.YM_BUSINESS,
                              "WAREHOUSE_ID": channels.YM_WAREHOUSE}
    settings.MARKETPLACES = {**settings.MARKETPLACES, "DEBOUNCE_SECONDS": 3.0}
    yield settings
    ratelimit._registry.clear()


@pytest.fixture
def worker(configured, monkeypatch):
    app.loader.import_default_modules()
    # Fresh broker pools built from the configured URL (an earlier test may have left pools that
    # point at a dead broker); monkeypatch puts the old ones back afterwards.
    for key in ("broker_url", "broker_write_url", "broker_read_url"):
        monkeypatch.setattr(app.conf, key, redis_url())
    monkeypatch.setattr(app, "_pool", None)
    monkeypatch.setattr(app.amqp, "_producer_pool", None)
    queue = f"test-{uuid.uuid4().hex[:12]}"
    original = tasks.push_stock_task.apply_async
    monkeypatch.setattr(tasks.push_stock_task, "apply_async", lambda *a, **kw: original(*a, queue=queue, **kw))
    task_postrun.connect(_close_connections, weak=False)
    try:
        with start_worker(app, pool="solo", perform_ping_check=False, shutdown_timeout=30, queues=[queue]) as w:
            w.test_queue = queue
            yield w
    finally:
        task_postrun.disconnect(_close_connections)
        import redis

        redis.Redis.from_url(redis_url()).delete(queue)


def wait_for(predicate, timeout=30.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.1)
    return False


@pytest.mark.django_db(transaction=True)
def test_burst_of_kicks_becomes_one_push_through_the_worker(worker, sandbox):
    market = SandboxMarket(sandbox)
    warehouse, offers = pushed_catalog(market)
    set_stock(offers, warehouse, 2)
    # 300 announcements, one per change, as an import or webhooks make them. They are made in
    # one transaction so that all of them land inside one debounce window however slow the
    # machine is: each schedules its push after commit, and the claim lets one through.
    with transaction.atomic():
        for offer in offers:
            marketplaces.kick([offer.pk])
    done = wait_for(lambda: JobRun.objects.filter(job="marketplace-stock", trigger="event")
                    .exclude(status=JobRun.Status.RUNNING).exists())
    assert done, list(JobRun.objects.values("job", "trigger", "status", "message"))
    # Every kick was made (and its push scheduled, or not) before that run finished: once the
    # queue is empty and the worker holds nothing (a countdown push waits reserved in the
    # worker), a second push would have run.
    import redis

    queued = redis.Redis.from_url(redis_url())
    wait_until(lambda: queued.llen(worker.test_queue) == 0 and worker_idle(), timeout=30,
               what="nothing left queued or held by the worker")
    run = JobRun.objects.get(job="marketplace-stock", trigger="event")
    assert run.status == JobRun.Status.SUCCESS, run.message
    assert [len(b) for b in market.calls["ozon"]] == [100, 100, 100]
    assert len(market.calls["wildberries"]) == 1 and len(market.calls["yandex_market"]) == 1
    assert all(market.ozon[(o.sku, 22000)] == 2 for o in offers)
