"""The fault matrix: the order outbox, the stock sync and the webhook inbox driven against the
sandbox's MoySklad while it fails on purpose — 5xx, 429 with a retry-after, connections dropped
without an answer, and answers that come after the client gave up (MoySklad did the work, we
never heard) — while exporting workers die mid-export and the broker refuses signals. Then our
rows are reconciled with the sandbox's records:

* every order is in MoySklad exactly once (0 duplicates, 0 missing), whatever was lost;
* every stock level equals MoySklad's figures once the syncs got through;
* every webhook notification answered 2xx was processed (none left behind).

`make test` runs it CI-sized (a few hundred faults); `make test-faults` runs the full matrix
(SYNCSITE_FAULTS=full: well over 1,000 faults). Each test prints what it injected."""
from __future__ import annotations

import os
import random
import uuid
from collections import Counter
from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from integrations import jobs
from integrations.models import InboundEvent, JobRun, OfferBinding, OrderBinding, WarehouseBinding
from integrations.moysklad import events as ms_events
from integrations.moysklad import orders as ms_orders
from integrations.runs import run_job
from orders import services
from orders.models import ExportState, Order
from stock.models import StockLevel
from syncsite import publish as publisher
from tests.orders_fixtures import deliver, sandbox_moysklad

pytestmark = [pytest.mark.faults, pytest.mark.django_db]

FULL = os.environ.get("SYNCSITE_FAULTS", "") == "full"
SIZE = {"orders": 450 if FULL else 30, "stock_rounds": 240 if FULL else 12, "notifications": 700 if FULL else 40}
#: faults each test must have injected: the full run's three add up to more than 1,000
AT_LEAST = {"orders": 280 if FULL else 25, "stock": 270 if FULL else 15, "webhooks": 450 if FULL else 15}
HOOK_TOKEN = "faults-hook-" + uuid.uuid4().hex[:8]


class Killed(BaseException):
    """The exporting worker died: nothing after this point ran."""


@pytest.fixture
def ms(settings, published):
    with sandbox_moysklad(settings, products=20, variant_share=0.0, stores=2, seed=31,
                          moysklad={"TIMEOUT": 0.5, "WEBHOOK_TOKEN": HOOK_TOKEN}) as srv:
        assert run_job(jobs.get("moysklad-catalog"), trigger="test").status == JobRun.Status.SUCCESS
        srv.moysklad.faults.seed(7)
        yield srv.moysklad
        srv.moysklad.faults.clear()


def storm(ms, *, writes: bool = True) -> list:
    """The faults every request may meet (the same seeded draw each run)."""
    rules = [ms.faults.add(status=500, count=None, probability=0.15),
             ms.faults.add(status=429, count=None, probability=0.08, error_code=1049, retry_after_ms=20),
             ms.faults.add(kind="drop", count=None, probability=0.05)]
    if writes:   # the answer to a create arrives after we gave up: MoySklad made the order
        rules.append(ms.faults.add(kind="timeout", count=None, probability=0.15, seconds=0.7, then="answer",
                                   method="POST", path_contains="entity/customerorder"))
    return rules


def fired(rules) -> int:
    return sum(r.fired for r in rules)


def test_orders_reach_moysklad_exactly_once_through_every_fault(ms):
    items = [b.offer for b in OfferBinding.objects.filter(kind="product").select_related("offer")[:5]]
    for store in ms.store_ids():
        for binding in OfferBinding.objects.filter(offer__in=items):
            ms.set_stock(binding.external_id, store, stock=1000, reserve=0)
    assert run_job(jobs.get("moysklad-stock"), trigger="test", full=True).status == JobRun.Status.SUCCESS
    rng = random.Random(3)
    orders = [services.order_create(customer=services.CustomerData(name="Покупатель", email=f"c{n % 7}@example.com"),
                                    items=[services.LineRequest(sku=rng.choice(items).sku, quantity=rng.randint(1, 3))],
                                    idempotency_key=f"f{n}").order.pk
              for n in range(SIZE["orders"])]
    rules = storm(ms)
    kills = lost = 0
    bind, release = ms_orders.OrderExportSession._bind, services.order_export_release

    def die(*args, **kwargs):
        raise Killed()

    for round_ in range(80):
        pending = list(OrderBinding.objects.filter(order_id__in=orders).exclude(export_state=ExportState.EXPORTED)
                       .values_list("order_id", flat=True))
        if not pending:
            break
        OrderBinding.objects.filter(order_id__in=pending, export_state=ExportState.FAILED).update(
            export_state=ExportState.PENDING)   # a manager's retry (none should need it)
        if round_ % 3 == 1:   # this round's worker dies after MoySklad answered one order
            ms_orders.OrderExportSession._bind = die
            ms_orders.order_services.order_export_release = lambda **kw: None
            try:
                with ms_orders.MoySkladClient() as client:
                    try:
                        ms_orders.OrderExportSession(client).export(rng.choice(pending))
                    except Exception:
                        pass
            except Killed:
                kills += 1
            finally:
                ms_orders.OrderExportSession._bind = bind
                ms_orders.order_services.order_export_release = release
        if round_ % 4 == 2:
            ms.orders.drop_after_create = 1   # the next create is made upstream, its answer lost
            lost += 1
        run_job(jobs.get("orders-export"), trigger="test", raise_errors=False)
        ms.orders.drop_after_create = 0
        # time passes: a dead worker's lease runs out
        OrderBinding.objects.filter(order_id__in=pending).update(
            export_lease_until=timezone.now() - timedelta(seconds=1))

    injected = fired(rules) + kills + lost
    print(f"\nfaults injected into order export: {injected} ({fired(rules)} upstream, {kills} workers killed, "
          f"{lost} answers lost after create)")
    codes = Counter(row.get("externalCode") for row in ms.orders.orders.values())
    ours = {o.export_code for o in Order.objects.filter(pk__in=orders)}
    assert [c for c, n in codes.items() if n > 1] == [], "duplicates in MoySklad"
    assert ours - set(codes) == set(), "orders missing from MoySklad"
    assert set(codes) - ours == set(), "orders in MoySklad we never placed"
    # every order's one MoySklad binding says exported and names its customerorder
    assert OrderBinding.objects.filter(order_id__in=orders, export_state=ExportState.EXPORTED).count() == len(orders)
    assert OrderBinding.objects.filter(order_id__in=orders).exclude(external_id="").count() == len(orders)
    assert injected >= AT_LEAST["orders"]


def test_stock_converges_on_moysklad_through_every_fault(ms):
    rules = storm(ms, writes=False)
    rng = random.Random(5)
    # Goods on sale (an archived one is off the site, its stock not kept)
    items = [i for i in OfferBinding.objects.filter(kind="product").values_list("external_id", flat=True)
             if not ms.product(i).get("archived")]
    stores = ms.store_ids()
    failed = 0
    for round_ in range(SIZE["stock_rounds"]):
        for _ in range(5):
            ms.set_stock(rng.choice(items), rng.choice(stores), stock=rng.randint(0, 50), reserve=rng.randint(0, 3))
        run = run_job(jobs.get("moysklad-stock"), trigger="test", full=round_ % 5 == 4, raise_errors=False)
        failed += run.status == JobRun.Status.FAILED
    for _ in range(20):   # the next scheduled runs, until one gets through
        if run_job(jobs.get("moysklad-stock"), trigger="test", full=True,
                   raise_errors=False).status == JobRun.Status.SUCCESS:
            break
    print(f"\nfaults injected into stock sync: {fired(rules)} ({failed} runs failed and were retried)")
    warehouse = {b.external_id: b.warehouse_id for b in WarehouseBinding.objects.all()}
    offer_of = dict(OfferBinding.objects.filter(kind="product").values_list("external_id", "offer_id"))
    for item in items:
        for store in stores:
            cell = ms.stock(item, store)
            level = StockLevel.objects.filter(offer_id=offer_of[item], warehouse_id=warehouse[store]).first()
            ours = (level.stock, level.reserve) if level else (Decimal(0), Decimal(0))
            assert ours == (Decimal(str(cell["stock"])), Decimal(str(cell["reserve"]))), (item, store)
    assert not StockLevel.objects.filter(available__lt=0).exists()
    assert fired(rules) >= AT_LEAST["stock"]


def test_every_notification_answered_2xx_is_processed(ms, client, monkeypatch, django_capture_on_commit_callbacks):
    """Notifications arrive twice and out of order while the broker refuses half the signals and
    the reads they cause fail on purpose; the sweeper and the retries leave none unprocessed."""
    items = list(OfferBinding.objects.filter(kind="product").values_list("external_id", flat=True))
    rng = random.Random(9)
    refused = []

    def flaky_publish(task, *args, **kwargs):
        if rng.random() < 0.5:
            refused.append(task.name)
            return False
        return True   # taken, never delivered: the sweeper must find these too

    monkeypatch.setattr(publisher, "publish", flaky_publish)
    monkeypatch.setattr(ms_events, "SWEEP_AFTER", timedelta(0))
    rules = storm(ms, writes=False)
    from django.conf import settings

    base = settings.MOYSKLAD["BASE_URL"]
    answered = 0
    for n in range(SIZE["notifications"]):
        picked = rng.sample(items, 3)
        for item in picked:
            ms.update_product(item, name=f"Товар {n}-{item[:4]}")
        body = {"events": [{"meta": {"type": "product", "href": f"{base}/entity/product/{i}"}, "action": "UPDATE",
                            "accountId": "acc"} for i in picked]}
        request_id = f"r{n}"
        for _ in range(1 + (n % 3 == 0)):   # every third is delivered twice
            with django_capture_on_commit_callbacks(execute=True):   # the view signals after commit
                response = deliver(client, body, request_id=request_id, token=HOOK_TOKEN)
            assert response.status_code == 200, response.content
            answered += 1
        if rng.random() < 0.5:   # a worker takes what was signalled so far (its reads may fail)
            ids = list(InboundEvent.objects.filter(status=InboundEvent.Status.RECEIVED).values_list("pk", flat=True))
            try:
                ms_events.events_process(event_ids=ids)
            except Exception:
                pass
    for _ in range(40):   # the sweeper every minute, the worker processing what it signals
        ms_events.events_sweep(follow_up=False)
        ids = list(InboundEvent.objects.filter(status=InboundEvent.Status.RECEIVED).values_list("pk", flat=True))
        if not ids:
            break
        try:
            ms_events.events_process(event_ids=ids)
        except Exception:
            pass
    statuses = Counter(InboundEvent.objects.values_list("status", flat=True))
    print(f"\nfaults injected into webhook processing: {fired(rules) + len(refused)} ({fired(rules)} upstream, "
          f"{len(refused)} signals refused by the broker); {answered} deliveries answered 200; {dict(statuses)}")
    assert set(statuses) <= {InboundEvent.Status.DONE, InboundEvent.Status.IGNORED}, statuses
    assert len(refused) > 0 and fired(rules) > 0
    assert fired(rules) + len(refused) >= AT_LEAST["webhooks"]
