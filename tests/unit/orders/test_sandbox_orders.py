"""The sandbox's order side, driven by our own client and exporter over real sockets:
syncId-idempotent creates, reserve at the store, demands and `shipped`, webhook subscriptions,
and notifications (with MoySklad's 3 immediate retries and DisableByPrefix)."""
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from integrations import jobs
from integrations.http import ratelimit
from integrations.models import JobRun, OfferBinding, OrderBinding
from integrations.moysklad.client import MoySkladClient
from integrations.moysklad.orders import OrderExportSession
from integrations.runs import run_job
from integrations.sandbox.scenarios import advance_orders
from integrations.sandbox.server import SandboxServer
from orders import services
from stock.models import StockLevel

pytestmark = pytest.mark.django_db


class Receiver:
    """A tiny webhook receiver: records every POST; `fail_first` answers 500 that many times."""

    def __init__(self, fail_first: int = 0):
        self.calls: list[tuple[str, dict]] = []
        self.fail_first = fail_first
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                receiver.calls.append((self.path, json.loads(body)))
                status = 500 if receiver.fail_first > 0 else 200
                receiver.fail_first -= 1
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/hook/"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def sandbox(settings):
    with SandboxServer(products=30, seed=3, rate_limit=False) as srv:
        settings.MOYSKLAD = {**settings.MOYSKLAD, "BASE_URL": srv.moysklad_base_url, "TOKEN": "sandbox-token",
                             "LOGIN": "", "PASSWORD": "", "ORGANIZATION_ID": "", "STORE_ID": "", "PRICE_TYPE": "",
                             "BUDGET_UNITS": 10_000, "REQUEST_WEIGHT": 1}  # the sandbox's limits are off here
        settings.REDIS_URL = ""
        settings.SITE_URL = "http://site.test"
        ratelimit._registry.clear()
        from django.core.cache import cache

        cache.clear()
        yield srv
    ratelimit._registry.clear()


@pytest.fixture
def synced(sandbox, published):
    """Catalog and stock imported from the sandbox; returns an offer with at least 2 available."""
    assert run_job(jobs.get("moysklad-catalog"), trigger="test").status == JobRun.Status.SUCCESS
    assert run_job(jobs.get("moysklad-stock"), trigger="test").status == JobRun.Status.SUCCESS
    level = StockLevel.objects.filter(available__gte=2).select_related("offer").order_by("-available").first()
    assert level is not None
    return level.offer


def place(offer, qty=2, key="k"):
    return services.order_create(customer=services.CustomerData(name="Анна", email="anna@example.com"),
                                 items=[services.LineRequest(sku=offer.sku, quantity=qty)], idempotency_key=key).order


def export(order):
    with MoySkladClient() as client:
        return OrderExportSession(client).export(order.pk)


def test_order_lands_in_the_sandbox_once_with_its_reserve(sandbox, synced, published):
    order = place(synced)
    assert export(order) == "exported"
    book = sandbox.moysklad.orders
    remote = book.order_by_external_code(str(order.uid))
    assert remote is not None and remote["syncId"] == str(order.uid)
    assert len(book.orders) == 1 and len(book.counterparties) == 1
    aid = OfferBinding.objects.get(offer=synced).external_id
    assert remote["_positions"][0]["_assortment"] == aid and remote["_positions"][0]["reserve"] == 2
    store = remote["_store"]
    assert sandbox.moysklad.stock(aid, store)["reserve"] >= 2
    assert OrderBinding.objects.get(order=order).ui_url.startswith("https://online.moysklad.ru/app/#customerorder")


def test_dropped_connection_after_create_makes_one_order(sandbox, synced, published):
    order = place(synced)
    sandbox.moysklad.orders.drop_after_create = 1
    assert export(order) == "exported"
    assert len(sandbox.moysklad.orders.orders) == 1
    assert OrderBinding.objects.get(order=order).external_id in sandbox.moysklad.orders.orders


def test_stock_sync_after_export_does_not_count_the_order_twice(sandbox, synced, published):
    before = StockLevel.objects.filter(offer=synced).values_list("available", flat=True)
    total_before = sum(before)
    order = place(synced)
    assert sum(StockLevel.objects.filter(offer=synced).values_list("available", flat=True)) == total_before - 2
    export(order)
    run_job(jobs.get("moysklad-stock"), trigger="test", full=True)
    assert sum(StockLevel.objects.filter(offer=synced).values_list("available", flat=True)) == total_before - 2


def test_manager_steps_are_seen_by_the_poll_job(sandbox, synced, published):
    order = place(synced)
    export(order)
    book = sandbox.moysklad.orders
    seen = []
    for _ in range(6):
        advance_orders(book)
        run_job(jobs.get("moysklad-order-statuses"), trigger="test", full=True)
        order.refresh_from_db()
        seen.append(order.status)
    assert seen == ["confirmed", "processing", "partially_shipped", "shipped", "shipped", "completed"]


def test_webhooks_register_and_notifications_with_retries(sandbox, settings, published):
    from django.core.management import call_command

    receiver = Receiver(fail_first=2)
    try:
        settings.SITE_URL = receiver.url.rstrip("/").rsplit("/", 1)[0]
        settings.MOYSKLAD = {**settings.MOYSKLAD, "WEBHOOK_TOKEN": "tok"}
        call_command("moysklad_webhooks", "register", stdout=open("/dev/null", "w"), stderr=open("/dev/null", "w"))
        book = sandbox.moysklad.orders
        assert len(book.webhooks) == 9 and len(book.webhookstocks) == 1
        product_id = sandbox.moysklad.product_ids()[0]
        sandbox.moysklad.update_product(product_id, name="Новое имя")
        assert book.flush()
        (delivery,) = book.delivery_log()
        assert delivery["ok"] and delivery["attempts"] == 3  # two 500s, then 200
        path, body = receiver.calls[-1]
        assert path.startswith("/webhooks/moysklad/tok/?requestId=")
        assert body["events"][0]["meta"]["href"].endswith(f"/entity/product/{product_id}")
        assert {p.split("requestId=")[1] for p, _ in receiver.calls} == {delivery["requestId"]}  # same id on retries
    finally:
        receiver.close()


def test_notifications_are_dropped_after_three_retries_and_suppressed_by_prefix(sandbox, published):
    import httpx

    receiver = Receiver(fail_first=10)
    try:
        book = sandbox.moysklad.orders
        headers = {"Authorization": "Bearer sandbox-token", "Accept-Encoding": "gzip"}
        with httpx.Client(base_url=sandbox.moysklad_base_url, headers=headers) as ms:
            hook = {"url": receiver.url, "entityType": "counterparty", "action": "CREATE"}
            assert ms.post("/entity/webhook", json=hook).status_code == 200
            dup = ms.post("/entity/webhook", json=hook)
            assert dup.status_code == 412 and dup.json()["errors"][0]["code"] == 30003
            ms.post("/entity/counterparty", json={"name": "A", "syncId": "0b1e4f2a-0000-0000-0000-000000000001"})
            assert book.flush()
            assert book.delivery_log()[-1]["attempts"] == 4 and not book.delivery_log()[-1]["ok"]
            ms.post("/entity/counterparty", json={"name": "B"},
                    headers={"X-Lognex-WebHook-DisableByPrefix": receiver.url.rsplit("/hook", 1)[0]})
            assert book.flush()
            assert len(book.delivery_log()) == 1 and book.suppressed == 1
    finally:
        receiver.close()


def test_demo_storefront_places_one_order_on_the_site(sandbox):
    from integrations.sandbox.scenarios import demo_sku, start_demo

    receiver = Receiver()
    try:
        site = receiver.url.rsplit("/hook", 1)[0]
        assert demo_sku(sandbox.moysklad, 3)
        start_demo(sandbox.moysklad.orders, site, "tok", every=0.05).join(timeout=10)
        (path, body), = receiver.calls
        assert path == "/api/v1/orders" and body["items"][0]["quantity"] == 3
    finally:
        receiver.close()
