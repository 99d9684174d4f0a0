"""The order loop with a real Celery worker on the real Redis broker: an order placed through the
API is exported by the task queued on commit; a MoySklad notification is stored by the view and
processed by the worker; with the broker down the webhook still answers, and the sweeper gets the
event processed once the broker is back; duplicate deliveries raced against each other make one
status change. MoySklad is the respx fake (respx patches httpx for the worker thread too)."""
import threading
import time
import uuid
from datetime import timedelta

import pytest
from celery.contrib.testing.worker import start_worker
from celery.signals import task_postrun
from django.db import connections
from django.test import Client

from integrations.models import InboundEvent, OrderBinding
from integrations.moysklad.events import events_sweep
from orders import services
from orders.models import ExportState, Order, OrderStatus, OrderStatusChange
from syncsite import publish as publisher
from syncsite.celery import app
from tests.conftest import needs_redis
from tests.orders_fixtures import (  # noqa: F401
    API_TOKEN,
    _fast_backoff,
    deliver,
    ms_sandbox,
    notification,
    order_body,
    post_order,
    shop,
)
from tests.waiting import wait_for_quiet

pytestmark = [pytest.mark.integration, needs_redis, pytest.mark.django_db(transaction=True)]


def _close_connections(**_kwargs):
    connections.close_all()


@pytest.fixture
def worker(monkeypatch):
    """A worker thread on a queue of its own; everything the code publishes goes to that queue."""
    app.loader.import_default_modules()
    queue = f"test-orders-{uuid.uuid4().hex[:12]}"

    def send(task, args, kwargs):
        try:
            task.apply_async(args=args, kwargs=kwargs, retry=False, queue=queue)
            return True
        except Exception:
            return False
        finally:
            with publisher._lock:
                publisher._in_flight -= 1

    monkeypatch.setattr(publisher, "_send", send)
    publisher.reset()
    task_postrun.connect(_close_connections, weak=False)
    try:
        with start_worker(app, pool="solo", perform_ping_check=False, shutdown_timeout=30, queues=[queue]) as w:
            w.test_queue = queue
            yield w
    finally:
        task_postrun.disconnect(_close_connections)
        publisher.reset()


def exported_order(key: str):
    """An order placed on the site and exported by the worker (the task queued on commit)."""
    order = services.order_create(customer=services.CustomerData(name="Иван", email="ivan@example.com"),
                                  items=[services.LineRequest(sku="PHONE-1", quantity=1)], idempotency_key=key).order
    remote_id = wait_until(lambda: OrderBinding.objects.filter(order=order).exclude(external_id="").values_list(
        "external_id", flat=True).first(), what="the export")
    return order, remote_id


def wait_until(check, timeout: float = 20.0, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


@pytest.fixture
def api_client(settings):
    settings.STOREFRONT_API_TOKEN = API_TOKEN
    return Client(HTTP_AUTHORIZATION=f"Bearer {API_TOKEN}")


def test_api_order_is_exported_by_the_task_queued_on_commit(ms_sandbox, shop, worker, api_client):
    response = post_order(api_client, order_body(("PHONE-1", 1), ("CASE-RED", 2)))
    assert response.status_code == 201
    order = Order.objects.get(uid=response.json()["id"])
    wait_until(lambda: OrderBinding.objects.get(order_id=order.pk).export_state == ExportState.EXPORTED,
               what="the export")
    (remote_id,) = ms_sandbox.moysklad.orders.orders
    assert OrderBinding.objects.get(order=order).external_id == remote_id


def test_webhook_is_processed_by_the_worker(ms_sandbox, shop, worker):
    order, remote_id = exported_order("a")
    ms_sandbox.moysklad.orders.set_state(remote_id, "Подтвержден")
    body = notification(("customerorder", remote_id, "UPDATE"), base=ms_sandbox.moysklad_base_url)
    assert deliver(Client(), body).status_code == 200
    wait_until(lambda: Order.objects.get(pk=order.pk).status == OrderStatus.CONFIRMED, what="the status")
    wait_until(lambda: InboundEvent.objects.get().status == "done", what="the event row")


def test_broker_down_webhook_answers_then_the_sweeper_gets_it_processed(ms_sandbox, shop, worker, monkeypatch):
    order, remote_id = exported_order("b")
    ms_sandbox.moysklad.orders.set_state(remote_id, "Собран")

    # The broker goes away while MoySklad notifies us.
    real_send = publisher._send
    monkeypatch.setattr(publisher, "_send", lambda task, args, kwargs: (_fail(task)))
    started = time.monotonic()
    body = notification(("customerorder", remote_id, "UPDATE"), base=ms_sandbox.moysklad_base_url)
    response = deliver(Client(), body, request_id="down")
    assert response.status_code == 200 and time.monotonic() - started < 1.5
    event = InboundEvent.objects.get()
    assert event.status == "received"
    wait_for_quiet(app, worker.test_queue)
    assert Order.objects.get(pk=order.pk).status == OrderStatus.PENDING  # nothing processed it

    # The broker is back; the beat sweeper finds the row (older than a minute) and signals it.
    monkeypatch.setattr(publisher, "_send", real_send)
    publisher.reset()
    InboundEvent.objects.filter(pk=event.pk).update(received_at=event.received_at - timedelta(minutes=2))
    assert events_sweep()["requeued"] == 1
    wait_until(lambda: Order.objects.get(pk=order.pk).status == OrderStatus.PROCESSING, what="the status")


def _fail(task):
    with publisher._lock:
        publisher._in_flight -= 1
        publisher._quiet_until = time.monotonic() + publisher.QUIET_SECONDS
    return False


def test_duplicate_deliveries_raced_make_one_status_change(ms_sandbox, shop, worker):
    order, remote_id = exported_order("c")
    ms_sandbox.moysklad.orders.set_state(remote_id, "Подтвержден")
    body = notification(("customerorder", remote_id, "UPDATE"), base=ms_sandbox.moysklad_base_url)
    barrier = threading.Barrier(6)
    codes = []

    def hit():
        try:
            barrier.wait(timeout=10)
            codes.append(deliver(Client(), body, request_id="dup").status_code)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=hit) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert codes == [200] * 6
    assert InboundEvent.objects.count() == 1
    wait_until(lambda: Order.objects.get(pk=order.pk).status == OrderStatus.CONFIRMED, what="the status")
    wait_for_quiet(app, worker.test_queue)   # every signal of the six deliveries handled
    assert OrderStatusChange.objects.filter(order=order, to_status="confirmed").count() == 1
