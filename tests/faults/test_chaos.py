"""Chaos: the whole product under real process and infrastructure failures. Real Celery workers
(each in its own process group), a real `redis-server` this test starts on a free port (so it can
FLUSHALL it, SIGKILL it and start it again without touching anybody's Redis), the real
PostgreSQL, and the sandbox's upstreams behind its hostile proxy mode (5xx, 429, connections cut
before and after the upstream did the work, late answers).

While site orders are placed, marketplace orders appear at Ozon, Wildberries and Yandex Market,
MoySklad notifies us of changes and stock moves, the test, at seeded random moments, SIGKILLs a
worker's whole process group (and starts a new one), FLUSHALLs Redis, kills Redis and starts it
again, and terminates the workers' database connections (`pg_terminate_backend`). Then the faults
stop, the beat's sweeps run (as the beat sends them: tasks through the broker) until nothing is
left to do, bounded, and our rows are reconciled with the sandbox's records:

* every order is in MoySklad exactly once (0 duplicates, 0 missing);
* every marketplace order was pulled once, and every status push reached the marketplace and was
  applied exactly once (the sandbox's ledger of applied actions has no pair twice);
* every MoySklad notification answered 2xx was processed;
* every stock level equals MoySklad's.

`make test` runs it CI-sized (about a minute); `make test-faults` (SYNCSITE_FAULTS=full) runs it
longer with more of everything, and bench/faults.py keeps its figures."""
from __future__ import annotations

import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from django.db import connection
from django.utils import timezone

from bench.infra import free_port
from tests.conftest import needs_postgres, needs_redis
from tests.waiting import wait_until

ROOT = Path(__file__).resolve().parents[2]
FULL = os.environ.get("SYNCSITE_FAULTS", "") == "full"
#: how long faults are injected, and how much work is driven meanwhile
SIZE = {"seconds": 150 if FULL else 35, "heal_seconds": 240 if FULL else 90, "workers": 3,
        "products": 40, "fault_every": (1.0, 3.0)}
#: upstream faults per request (each of five kinds)
RATE = 0.03
HOOK_TOKEN = "chaos-hook-" + uuid.uuid4().hex[:8]
LEASE = 3.0

needs_redis_server = pytest.mark.skipif(
    shutil.which("redis-server") is None,
    reason="needs the redis-server binary: the chaos test starts (and kills) a Redis of its own")
pytestmark = [pytest.mark.faults, needs_postgres, needs_redis, needs_redis_server,
              pytest.mark.django_db(transaction=True)]


class Redis:
    """A redis-server of our own, in its own process group, no persistence."""

    def __init__(self, workdir: str):
        self.port = free_port()
        self.workdir = workdir
        self.proc: subprocess.Popen | None = None
        self.url = f"redis://127.0.0.1:{self.port}/0"

    def client(self):
        import redis

        return redis.Redis(host="127.0.0.1", port=self.port, socket_connect_timeout=0.5, socket_timeout=2)

    def start(self) -> None:
        self.proc = subprocess.Popen(["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
                                      "--appendonly", "no", "--dir", self.workdir], stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL, start_new_session=True)

        def up():
            try:
                return self.client().ping()
            except Exception:
                return False

        wait_until(up, timeout=10, interval=0.1, what="redis-server to start")

    def kill(self) -> None:
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(10)

    def flushall(self) -> None:
        self.client().flushall()


class Workers:
    """Celery workers, each a process group of its own (the main process and its pool child)."""

    def __init__(self, env: dict, count: int, logdir: str):
        self.env = env
        self.procs: list[subprocess.Popen | None] = [None] * count
        self.logdir = logdir
        self.started = 0

    def start(self, slot: int) -> None:
        self.started += 1
        log = open(os.path.join(self.logdir, f"worker-{self.started}.log"), "w")
        self.procs[slot] = subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "syncsite", "worker", "-P", "prefork", "-c", "1",
             "-n", f"chaos{self.started}@%h", "--without-gossip", "--without-mingle", "--without-heartbeat",
             "-l", "WARNING"], cwd=ROOT, env=self.env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        log.close()

    def start_all(self) -> None:
        for slot in range(len(self.procs)):
            self.start(slot)

    def kill(self, slot: int) -> None:
        proc = self.procs[slot]
        if proc is not None and proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(10)

    def kill_all(self) -> None:
        for slot in range(len(self.procs)):
            self.kill(slot)

    def pids(self) -> list[int]:
        return [p.pid for p in self.procs if p is not None and p.poll() is None]


def database_url() -> str:
    s = connection.settings_dict
    auth = s["USER"] + (f":{s['PASSWORD']}" if s["PASSWORD"] else "")
    return f"postgres://{auth}@{s['HOST'] or '127.0.0.1'}:{s['PORT'] or 5432}/{s['NAME']}"


def drop_worker_connections() -> int:
    """pg_terminate_backend on every other connection to the test database: the workers'."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                       "WHERE datname = current_database() AND pid <> pg_backend_pid()")
        return cursor.fetchone()[0]


@pytest.fixture
def stack(settings):
    """The sandbox (proxy mode off until the test turns it on), our settings pointed at it, a
    Redis of our own as the broker of this process and of the workers, and the workers."""
    from django.core.cache import cache

    from integrations.http import ratelimit
    from integrations.sandbox.channels import point_settings, settings_for
    from integrations.sandbox.server import SandboxServer
    from syncsite import publish as publisher
    from syncsite.celery import app

    workdir = tempfile.mkdtemp(prefix="syncsite-chaos-")
    redis = Redis(workdir)
    redis.start()
    srv = SandboxServer(products=SIZE["products"], variant_share=0.0, stores=2, seed=41, rate_limit=False).start()
    ms = {"BASE_URL": srv.moysklad_base_url, "TOKEN": "sandbox-token", "LOGIN": "", "PASSWORD": "",
          "ORGANIZATION_ID": "", "STORE_ID": "", "PRICE_TYPE": "", "BUDGET_UNITS": 10_000, "REQUEST_WEIGHT": 1,
          "TIMEOUT": 2.0, "WEBHOOK_TOKEN": HOOK_TOKEN}
    settings.MOYSKLAD = {**settings.MOYSKLAD, **ms}
    env = settings_for(srv.url)   # the workers' environment
    point_settings(settings, srv.url)
    settings.REDIS_URL = ""
    settings.LEASE_SECONDS = LEASE
    settings.SITE_URL = "http://site.test"
    ratelimit._registry.clear()
    cache.clear()
    worker_env = {**os.environ, **env, "DATABASE_URL": database_url(), "DJANGO_SETTINGS_MODULE": "syncsite.settings",
                  "CELERY_BROKER_URL": redis.url, "REDIS_URL": redis.url, "LEASE_SECONDS": str(LEASE),
                  "MOYSKLAD_BASE_URL": ms["BASE_URL"], "MOYSKLAD_TOKEN": ms["TOKEN"], "MOYSKLAD_LOGIN": "",
                  "MOYSKLAD_PASSWORD": "", "MOYSKLAD_BUDGET_UNITS": "10000", "MOYSKLAD_REQUEST_WEIGHT": "1",
                  "MOYSKLAD_TIMEOUT": str(ms["TIMEOUT"]), "MOYSKLAD_WEBHOOK_TOKEN": HOOK_TOKEN,
                  "UPSTREAM_BREAKER_SECONDS": "2", "RATE_LIMIT_DIR": "", "SITE_URL": "http://site.test",
                  "CELERY_TASK_ALWAYS_EAGER": "0"}
    # This process publishes (orders on commit, webhook signals, the beat's sweeps) to our Redis
    # through the app's own long-lived pooled connection, as the web processes do.
    old_urls = (app.conf.broker_url, app.conf.broker_read_url, app.conf.broker_write_url)
    app.conf.broker_url = app.conf.broker_read_url = app.conf.broker_write_url = redis.url
    app._pool = None
    app.amqp._producer_pool = None
    publisher.reset()
    workers = Workers(worker_env, SIZE["workers"], workdir)
    try:
        yield srv, redis, workers
    finally:
        workers.kill_all()
        srv.stop()
        redis.kill()
        app.conf.broker_url, app.conf.broker_read_url, app.conf.broker_write_url = old_urls
        try:
            app.pool.force_close_all()
        except Exception:
            pass
        app._pool = None
        app.amqp._producer_pool = None
        publisher.reset()
        ratelimit._registry.clear()
        if os.environ.get("SYNCSITE_CHAOS_KEEP_LOGS"):
            print(f"\nchaos logs kept in {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)


def send(task, *args, **kwargs) -> bool:
    """What the beat does: send a task through the broker (False while Redis is away)."""
    try:
        task.apply_async(args=args, kwargs=kwargs, retry=False)
        return True
    except Exception:
        return False


def beat_sweeps() -> None:
    """One round of the beat's every-minute entries that heal lost work."""
    from integrations.marketplace_orders.tasks import actions_flush_task
    from integrations.moysklad.tasks import events_sweep_task
    from integrations.tasks import run_job_task

    send(run_job_task, "orders-export", trigger="beat")
    send(run_job_task, "moysklad-stock", trigger="beat")
    send(run_job_task, "marketplace-orders", trigger="beat")
    send(run_job_task, "marketplace-order-actions", trigger="beat")
    send(actions_flush_task)
    send(events_sweep_task, follow_up=False)


def fault_kinds(rng: random.Random):
    """Kill a worker, FLUSHALL, restart Redis, drop connections: in blocks of nine (3:2:1:3),
    each shuffled, so every kind comes up within any nine faults."""
    while True:
        block = ["kill"] * 3 + ["flush"] * 2 + ["restart"] + ["drop"] * 3
        rng.shuffle(block)
        yield from block


def time_passes() -> None:
    """The sweepers wait a minute (a lost signal) or for a backoff; the test does not: received
    events are made a minute older, and backed-off marketplace actions due now."""
    from integrations.marketplace_orders.models import ActionState, MarketplaceAction
    from integrations.models import InboundEvent

    InboundEvent.objects.filter(status=InboundEvent.Status.RECEIVED).update(
        received_at=timezone.now() - timedelta(minutes=2))
    MarketplaceAction.objects.filter(state=ActionState.PENDING, next_attempt_at__gt=timezone.now()).update(
        next_attempt_at=timezone.now())


def test_chaos_reconciles_with_the_sandbox(stack, client):
    from integrations import jobs
    from integrations.marketplace_orders.machine import IllegalTransition, status_change
    from integrations.marketplace_orders.models import ActionState, MarketplaceAction
    from integrations.models import InboundEvent, JobRun, OfferBinding, WarehouseBinding
    from integrations.runs import run_job
    from integrations.tasks import run_job_task
    from orders import services
    from orders.models import Order
    from stock.models import StockLevel
    from tests.orders_fixtures import deliver

    srv, redis, workers = stack
    ms = srv.moysklad
    rng = random.Random(20261204)

    # Before the storm: the catalog and the stock on the site, the marketplaces' offers matched.
    assert run_job(jobs.get("moysklad-catalog"), trigger="test").status == JobRun.Status.SUCCESS
    items = [b for b in OfferBinding.objects.filter(kind="product").select_related("offer")
             if not ms.product(b.external_id).get("archived")]
    stores = ms.store_ids()
    for binding in items:
        for store in stores:
            ms.set_stock(binding.external_id, store, stock=20_000, reserve=0)
    assert run_job(jobs.get("moysklad-stock"), trigger="test", full=True).status == JobRun.Status.SUCCESS
    run_job(jobs.get("marketplace-stock"), trigger="test", full=True, raise_errors=False)
    skus = [b.offer.sku for b in items]
    marketplaces = {"ozon": srv.marketplaces["ozon"], "wb": srv.marketplaces["wb"], "ym": srv.marketplaces["ym"]}
    workers.start_all()
    for name in srv.CHAOS_EMULATORS:
        srv.emulators[name].reset_stats()
    rules = srv.chaos(RATE, seed=7)

    kills = flushes = restarts = drops = drop_rounds = 0
    kinds = fault_kinds(random.Random(7))
    site_orders: list[int] = []
    made = Counter()
    answered = 0
    pushed: set[int] = set()
    changed: set[tuple[str, str]] = set()
    started = time.monotonic()
    next_fault = started + rng.uniform(*SIZE["fault_every"])
    n = 0
    while time.monotonic() - started < SIZE["seconds"]:
        n += 1
        # Work: site orders (exported by the task queued on commit), new marketplace orders and a
        # pull as the beat sends it, MoySklad notifications, stock moves and a stock sync, and
        # status pushes for marketplace orders already pulled.
        for _ in range(2):
            result = services.order_create(
                customer=services.CustomerData(name="Покупатель", email=f"c{n % 9}@example.com"),
                items=[services.LineRequest(sku=rng.choice(skus), quantity=rng.randint(1, 2))],
                idempotency_key=f"chaos-{n}-{_}")
            site_orders.append(result.order.pk)
        name = rng.choice(list(marketplaces))
        marketplaces[name].orders_generate(1, rng=rng)
        made[name] += 1
        if n % 2 == 0:
            send(run_job_task, "marketplace-orders", trigger="beat")
        picked = rng.sample(items, 2)
        for binding in picked:
            ms.update_product(binding.external_id, name=f"Товар {n}-{binding.external_id[:4]}")
            store = rng.choice(stores)
            ms.set_stock(binding.external_id, store, stock=rng.randint(50, 5000), reserve=rng.randint(0, 3))
            changed.add((binding.external_id, store))
        base = srv.moysklad_base_url
        body = {"events": [{"meta": {"type": "product", "href": f"{base}/entity/product/{b.external_id}"},
                            "action": "UPDATE", "accountId": "acc"} for b in picked]}
        for _ in range(1 + (n % 3 == 0)):   # every third is delivered twice
            response = deliver(client, body, request_id=f"chaos-{n}", token=HOOK_TOKEN)
            assert response.status_code == 200, response.content
            answered += 1
        if n % 3 == 0:
            send(run_job_task, "moysklad-stock", trigger="beat")
        for order in Order.objects.exclude(source="site").exclude(pk__in=pushed).order_by("pk")[:2]:
            try:
                status_change(order=order, status="processing", by="moysklad")
            except IllegalTransition:
                pass
            pushed.add(order.pk)

        now = time.monotonic()
        if now >= next_fault:
            next_fault = now + rng.uniform(*SIZE["fault_every"])
            fault = next(kinds)
            if fault == "kill":
                slot = rng.randrange(len(workers.procs))
                workers.kill(slot)
                workers.start(slot)
                kills += 1
            elif fault == "flush":
                redis.flushall()
                flushes += 1
            elif fault == "restart":
                redis.kill()
                time.sleep(rng.uniform(0.2, 1.5))
                redis.start()
                restarts += 1
            else:
                drops += drop_worker_connections()
                drop_rounds += 1
        time.sleep(0.05)

    # The storm ends; the workers left standing (and the new ones) and the beat's sweeps heal.
    srv.chaos_off(rules)
    upstream = srv.chaos_counts(rules)
    requests_under_fire = sum(srv.emulators[name].stats()["requests"] for name in srv.CHAOS_EMULATORS)
    for slot, proc in enumerate(workers.procs):
        if proc is None or proc.poll() is not None:
            workers.start(slot)
    mp_ids = {name: set(m.orders.orders) for name, m in marketplaces.items()}

    def reconciled() -> bool:
        for order in Order.objects.exclude(source="site").exclude(pk__in=pushed):
            try:
                status_change(order=order, status="processing", by="moysklad")
            except IllegalTransition:
                pass
            pushed.add(order.pk)
        codes = Counter(row.get("externalCode") for row in ms.orders.orders.values())
        ours = {o.export_code for o in Order.objects.all()}
        pulled = sum(len(ids) for ids in mp_ids.values())
        return (not (ours - set(codes))
                and Order.objects.exclude(source="site").count() >= pulled
                and not MarketplaceAction.objects.filter(state=ActionState.PENDING).exists()
                and not InboundEvent.objects.filter(status__in=("received", "processing")).exists()
                and all(stock_equal(*cell) for cell in changed))

    warehouse = {b.external_id: b.warehouse_id for b in WarehouseBinding.objects.all()}
    offer_of = dict(OfferBinding.objects.filter(kind="product").values_list("external_id", "offer_id"))

    def stock_equal(item: str, store: str) -> bool:
        cell = ms.stock(item, store)
        level = StockLevel.objects.filter(offer_id=offer_of[item], warehouse_id=warehouse[store]).first()
        ours = (level.stock, level.reserve) if level else (Decimal(0), Decimal(0))
        return ours == (Decimal(str(cell["stock"])), Decimal(str(cell["reserve"])))

    heal_started = time.monotonic()
    healed = False
    while time.monotonic() - heal_started < SIZE["heal_seconds"]:
        time_passes()
        beat_sweeps()
        time.sleep(2.0)
        if reconciled():
            healed = True
            break
    heal_seconds = time.monotonic() - heal_started

    # Reconcile.
    codes = Counter(row.get("externalCode") for row in ms.orders.orders.values())
    ours = {o.export_code for o in Order.objects.all()}
    duplicates = sorted(c for c, k in codes.items() if k > 1)
    missing = sorted(ours - set(codes))
    stray = sorted(set(codes) - ours)
    pulled = Counter(Order.objects.exclude(source="site").values_list("source", "source_order_id"))
    mp_duplicates = {k: v for k, v in pulled.items() if v > 1}
    mp_missing = sum(len(ids) for ids in mp_ids.values()) - len(pulled)
    action_dups = {name: m.orders.duplicate_effects() for name, m in marketplaces.items()}
    actions = Counter(MarketplaceAction.objects.values_list("state", flat=True))
    # Each action done here is one order changed at its marketplace (the ledger of applied changes)
    done_here = Counter(MarketplaceAction.objects.filter(state=ActionState.DONE, target="marketplace")
                        .values_list("source", flat=True))
    applied = {name: len({key for action, key in m.orders.effects if action != "deliver"})
               for name, m in marketplaces.items()}
    events = Counter(InboundEvent.objects.values_list("status", flat=True))
    stock_off = sorted(cell for cell in changed if not stock_equal(*cell))
    faults = {"workers killed": kills, "redis flushes": flushes, "redis restarts": restarts,
              "db connections dropped": drops, **{f"upstream {k}": v for k, v in sorted(upstream.items())}}
    total = sum(faults.values())
    figures = {"faults": total, **faults, "site orders": len(site_orders), "marketplace orders": sum(made.values()),
               "notifications answered 2xx": answered, "upstream requests under fire": requests_under_fire,
               "marketplace actions done": actions.get(ActionState.DONE, 0), "duplicate orders in MoySklad": len(duplicates),
               "missing orders in MoySklad": len(missing),
               "duplicate marketplace actions": sum(len(d) for d in action_dups.values()),
               "duplicate marketplace orders": len(mp_duplicates), "missing marketplace orders": mp_missing,
               "marketplace actions not done": sum(v for k, v in actions.items()
                                                   if k in (ActionState.PENDING, ActionState.FAILED)),
               "marketplace actions done, not applied": sum(abs(done_here[k] - v) for k, v in applied.items()),
               "notifications answered 2xx, never processed": sum(
                   v for k, v in events.items() if k not in (InboundEvent.Status.DONE, InboundEvent.Status.IGNORED)),
               "stock levels differing from MoySklad": len(stock_off), "seconds under fire": SIZE["seconds"],
               "seconds to heal": round(heal_seconds, 1)}
    detail = ", ".join(f"{v} {k}" for k, v in faults.items())
    print(f"\nfaults injected into chaos: {total} ({detail})")
    print("chaos figures: " + json.dumps(figures, ensure_ascii=False))
    assert duplicates == [], "orders twice in MoySklad"
    assert missing == [], "orders missing from MoySklad"
    assert stray == [], "orders in MoySklad we never placed"
    assert mp_duplicates == {} and mp_missing == 0, (mp_duplicates, mp_missing)
    assert action_dups == {name: {} for name in marketplaces}, "marketplace actions applied twice"
    assert not {ActionState.PENDING, ActionState.FAILED} & set(actions), actions
    assert {name: done_here[name] for name in marketplaces} == applied, "actions done here, not at the marketplace"
    assert sum(applied.values()) > 0
    left = list(InboundEvent.objects.exclude(status__in=(InboundEvent.Status.DONE, InboundEvent.Status.IGNORED))
                .values("pk", "status", "attempts", "error")[:5])
    assert set(events) <= {InboundEvent.Status.DONE, InboundEvent.Status.IGNORED}, (events, left)
    assert stock_off == [], "stock differing from MoySklad"
    assert healed
    assert kills and flushes and restarts and drop_rounds, faults
    assert sum(upstream.values()) > 0
