"""The whole order loop against the sandbox, with the site served for real (live_server), a real
Celery worker and real HTTP both ways:

    storefront POST /api/v1/orders → task on commit → worker exports to the MoySklad emulator →
    the scripted manager moves the order → the emulator notifies /webhooks/moysklad/<token>/ →
    the view stores the event → worker fetches the order → the site's status follows.
"""
import uuid

import httpx
import pytest
from celery.contrib.testing.worker import start_worker
from celery.signals import task_postrun
from django.core import mail
from django.core.management import call_command
from django.db import connections

from integrations import jobs
from integrations.http import ratelimit
from integrations.models import InboundEvent, JobRun, OrderBinding
from integrations.runs import run_job
from integrations.sandbox.scenarios import advance_orders
from integrations.sandbox.server import SandboxServer
from orders.models import Order, OrderStatus
from stock.models import StockLevel
from syncsite import publish as publisher
from syncsite.celery import app
from tests.waiting import wait_for_quiet, wait_until

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

API_TOKEN = "e2e-storefront-token"
HOOK_TOKEN = "e2e-webhook-token-" + uuid.uuid4().hex[:8]


def _close_connections(**_kwargs):
    connections.close_all()


@pytest.fixture
def stack(settings, live_server, monkeypatch):
    """Sandbox + the site at live_server.url + a worker on a private queue."""
    with SandboxServer(products=40, seed=11) as srv:
        settings.MOYSKLAD = {**settings.MOYSKLAD, "BASE_URL": srv.moysklad_base_url, "TOKEN": "sandbox-token",
                             "LOGIN": "", "PASSWORD": "", "WEBHOOK_TOKEN": HOOK_TOKEN, "ORGANIZATION_ID": "",
                             "STORE_ID": "", "PRICE_TYPE": ""}
        settings.SITE_URL = live_server.url
        settings.STOREFRONT_API_TOKEN = API_TOKEN
        settings.REDIS_URL = ""
        settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
        ratelimit._registry.clear()
        from django.core.cache import cache

        cache.clear()
        queue = f"e2e-orders-{uuid.uuid4().hex[:10]}"

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
        app.loader.import_default_modules()
        task_postrun.connect(_close_connections, weak=False)
        try:
            with start_worker(app, pool="solo", perform_ping_check=False, shutdown_timeout=30, queues=[queue]):
                srv.test_queue = queue
                yield srv
        finally:
            task_postrun.disconnect(_close_connections)
            ratelimit._registry.clear()


def test_site_order_reaches_moysklad_and_the_site_follows_the_manager(stack, live_server):
    for job in ("moysklad-catalog", "moysklad-stock"):
        run = run_job(jobs.get(job), trigger="test")
        assert run.status == JobRun.Status.SUCCESS, run.message
    call_command("moysklad_webhooks", "register", stdout=open("/dev/null", "w"), stderr=open("/dev/null", "w"))
    level = StockLevel.objects.filter(available__gte=3).select_related("offer").order_by("-available").first()
    sku = level.offer.sku

    # The storefront places an order through the API, for real over HTTP.
    body = {"customer": {"name": "Мария", "email": "maria@example.com", "phone": "+7 900 000-00-01"},
            "items": [{"sku": sku, "quantity": 3}], "shipping": {"method": "courier", "address": "Казань"},
            "comment": "e2e"}
    response = httpx.post(f"{live_server.url}/api/v1/orders", json=body, timeout=10,
                          headers={"Authorization": f"Bearer {API_TOKEN}", "Idempotency-Key": "e2e-1"})
    assert response.status_code == 201, response.text
    public_id = response.json()["id"]
    order = Order.objects.get(uid=public_id)

    # It appears in MoySklad, once, with its reserve.
    book = stack.moysklad.orders
    remote = wait_until(lambda: book.order_by_external_code(public_id), timeout=30, interval=0.1,
                        what="the order in the emulator")
    assert len(book.orders) == 1 and remote["_positions"][0]["reserve"] == 3
    wait_until(lambda: OrderBinding.objects.get(order_id=order.pk).export_state == "exported", timeout=30,
               interval=0.1, what="the export to be recorded")

    # The manager works the order; each change reaches the site by webhook.
    expected = ["confirmed", "processing", "partially_shipped", "shipped", "shipped", "completed"]
    for want in expected:
        steps = advance_orders(book)
        assert len(steps) == 1, steps
        assert book.flush()
        wait_until(lambda: Order.objects.get(pk=order.pk).status == want, timeout=30, interval=0.1,
                   what=f"status {want} after {steps[0]['did']}")
        wait_until(lambda: not InboundEvent.objects.filter(status__in=["received", "processing"]).exists(),
                   timeout=30, interval=0.1, what="the events to be processed")

    order.refresh_from_db()
    assert order.status == OrderStatus.COMPLETED
    assert [c.to_status for c in order.status_changes.order_by("at", "id")] == [
        "pending", "confirmed", "processing", "partially_shipped", "shipped", "completed"]
    assert all(line.shipped_quantity == line.quantity for line in order.lines.all())
    assert all(d["ok"] for d in book.delivery_log())
    assert not InboundEvent.objects.filter(status="failed").exists()
    # The storefront sees it too.
    detail = httpx.get(f"{live_server.url}/api/v1/orders/{public_id}", headers={"Authorization": f"Bearer {API_TOKEN}"})
    assert detail.json()["status"] == "completed" and len(detail.json()["history"]) == 6
    # One e-mail per real change (5), none for the repeated "shipped".
    wait_until(lambda: len(mail.outbox) >= 5, timeout=30, interval=0.1, what="the e-mails")
    wait_for_quiet(app, stack.test_queue)   # nothing left that could send a sixth
    assert len(mail.outbox) == 5
