"""Fixtures shared by the order and webhook tests (imported by their conftest.py files)."""
from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass
from decimal import Decimal

import pytest

from integrations.http.client import BaseClient
from integrations.models import OfferBinding, System
from tests.factories import make_offer, make_product, make_stock, make_warehouse


@dataclass
class Published:
    calls: list

    def names(self) -> list[str]:
        return [name for name, _args in self.calls]

    def args_of(self, name: str) -> list:
        return [args for n, args in self.calls if n == name]


@pytest.fixture
def published(monkeypatch):
    """Record what would be published to the broker instead of publishing it."""
    from syncsite import publish as publisher

    record = Published([])

    def fake(task, *args, **kwargs):
        record.calls.append((task.name, args))
        return True

    monkeypatch.setattr(publisher, "publish", fake)
    return record


@pytest.fixture(autouse=True)
def _fast_backoff(monkeypatch):
    monkeypatch.setattr(BaseClient, "backoff_base", 0.001)


@dataclass
class Shop:
    warehouse: object
    phone: object   # offer, product without variants, bound to MoySklad product
    case: object    # offer, a variant, bound to MoySklad variant
    phone_ms_id: str
    case_ms_id: str


def bind(offer, external_id: str, kind: str) -> None:
    OfferBinding.objects.create(system=System.MOYSKLAD, offer=offer, external_id=external_id, kind=kind,
                                external_code=offer.sku)


@pytest.fixture
def shop(db):
    """Two offers in stock in one warehouse, linked to MoySklad (a product and a variant)."""
    warehouse = make_warehouse(code="main", name="Основной склад")
    phone = make_offer(sku="PHONE-1", name="Телефон", price=Decimal("1499.00"),
                       product=make_product(name="Телефон", vat=20))
    case = make_offer(sku="CASE-RED", name="Чехол (красный)", price=Decimal("250.50"), is_variant=True)
    make_stock(offer=phone, warehouse=warehouse, stock=5)
    make_stock(offer=case, warehouse=warehouse, stock=3)
    phone_id, case_id = "11111111-0000-0000-0000-000000000001", "33333333-0000-0000-0000-000000000001"
    bind(phone, phone_id, "product")
    bind(case, case_id, "variant")
    return Shop(warehouse, phone, case, phone_id, case_id)


def order_body(*items, name="Иван Петров", email="ivan@example.com", phone="+7 (926) 123-45-67", **extra) -> dict:
    body = {"customer": {"name": name, "email": email, "phone": phone},
            "items": [{"sku": sku, "quantity": qty} for sku, qty in items],
            "shipping": {"method": "courier", "address": "Москва, ул. Примерная, 1"}, "comment": "позвонить"}
    body.update(extra)
    return body


API_TOKEN = "test-storefront-token"


@pytest.fixture
def api(client, settings):
    """The Django test client, authenticated as the storefront."""
    settings.STOREFRONT_API_TOKEN = API_TOKEN
    client.defaults["HTTP_AUTHORIZATION"] = f"Bearer {API_TOKEN}"
    return client


def post_order(api, body: dict, key: str | None = "checkout-1"):
    headers = {"HTTP_IDEMPOTENCY_KEY": key} if key is not None else {}
    return api.post("/api/v1/orders", data=body, content_type="application/json", **headers)


WEBHOOK_TOKEN = "hook-secret-token"  # ms_respx and ms_sandbox set MOYSKLAD["WEBHOOK_TOKEN"] to this
MS_BASE = "https://sandbox.test/moysklad/api/remap/1.2"   # ms_respx's MOYSKLAD BASE_URL


def notification(*events: tuple[str, str, str], base: str = MS_BASE) -> dict:
    """A MoySklad notification body: events as (entity type, id, action)."""
    return {"auditContext": {"meta": {"type": "audit", "href": f"{base}/audit/1"}, "uid": "admin@shop",
                             "moment": "2026-11-23 15:51:16"},
            "events": [{"meta": {"type": t, "href": f"{base}/entity/{t}/{i}"}, "action": a, "accountId": "acc"}
                       for t, i, a in events]}


def deliver(client, body, *, request_id: str = "req-1", token: str = WEBHOOK_TOKEN, raw: bytes | None = None):
    """POST a notification to the webhook as MoySklad does (requestId in the query string)."""
    import json

    data = raw if raw is not None else json.dumps(body).encode()
    url = f"/webhooks/moysklad/{token}/" + (f"?requestId={request_id}" if request_id else "")
    return client.generic("POST", url, data, content_type="application/json")


def process_all() -> dict:
    """Process every stored event (what the worker does after the signal)."""
    from integrations.models import InboundEvent
    from integrations.moysklad.events import events_process

    ids = list(InboundEvent.objects.filter(status=InboundEvent.Status.RECEIVED).values_list("pk", flat=True))
    return events_process(event_ids=ids)


@contextmanager
def sandbox_moysklad(settings, *, moysklad: dict | None = None, **server):
    """A SandboxServer whose MoySklad the settings point at (no rate limit unless asked, local
    limiters, an empty cache): the one way tests run our MoySklad code against the sandbox over
    real sockets. `moysklad` adds or overrides MOYSKLAD settings; `server` goes to SandboxServer.
    Yields the server."""
    from django.core.cache import cache

    from integrations.http import ratelimit
    from integrations.sandbox.server import SandboxServer

    server.setdefault("rate_limit", False)
    with SandboxServer(**server) as srv:
        settings.MOYSKLAD = {**settings.MOYSKLAD, "BASE_URL": srv.moysklad_base_url, "TOKEN": "sandbox-token",
                             "LOGIN": "", "PASSWORD": "", "ORGANIZATION_ID": "", "STORE_ID": "", "PRICE_TYPE": "",
                             "BUDGET_UNITS": 10_000, "REQUEST_WEIGHT": 1, **(moysklad or {})}
        settings.REDIS_URL = ""
        settings.SITE_URL = "http://site.test"
        ratelimit._registry.clear()
        cache.clear()
        try:
            yield srv
        finally:
            ratelimit._registry.clear()


def bind_shop_to(moysklad, shop) -> None:
    """Point the shop's two offers at one product and one variant of the sandbox's catalog."""
    shop.phone_ms_id = moysklad.product_ids(include_archived=False)[0]
    shop.case_ms_id = moysklad.variant_ids(include_archived=False)[0]
    OfferBinding.objects.filter(offer=shop.phone).update(external_id=shop.phone_ms_id)
    OfferBinding.objects.filter(offer=shop.case).update(external_id=shop.case_ms_id)


@pytest.fixture
def ms_respx(settings, shop):
    """The sandbox's MoySklad in-process behind respx (no socket; tests/sandbox_respx.py), holding
    the shop's two offers as `ms_sandbox` does; our webhook takes `deliver`'s token, writes carry
    SITE_URL as the webhook-echo prefix. In-process limiters, an empty cache. Yields the
    InProcessSandbox (`.moysklad.orders` is the order book, `.moysklad.logged(...)` the requests,
    `.catalog.advance(s)` MoySklad's clock, derived from now)."""
    from django.core.cache import cache

    from integrations.http import ratelimit
    from tests.sandbox_respx import mounted_sandbox, point_moysklad_at

    settings.REDIS_URL = ""
    settings.SITE_URL = "https://shop.example.com"
    ratelimit._registry.clear()
    cache.clear()
    with mounted_sandbox(products=4, variant_share=0.5, stores=1, seed=7) as sb:
        assert sb.moysklad_base_url == MS_BASE
        point_moysklad_at(settings, sb, WEBHOOK_TOKEN=WEBHOOK_TOKEN)
        bind_shop_to(sb.moysklad, shop)
        yield sb
    ratelimit._registry.clear()


def foreign_order(moysklad) -> dict:
    """An order a manager made in MoySklad itself (no site order behind it)."""
    from integrations.sandbox.catalog_gen import ORGANIZATION

    book = moysklad.orders
    agent, _ = book.create_counterparty({"name": "Покупатель из магазина"})
    api = book.api()
    row, _ = book.create_order({
        "organization": {"meta": {"href": f"{api}/entity/organization/{moysklad.catalog.id_of(ORGANIZATION, 0)}"}},
        "agent": {"meta": {"href": f"{api}/entity/counterparty/{agent['id']}"}}})
    return row


@pytest.fixture
def ms_sandbox(settings, shop):
    """The sandbox's MoySklad (integrations/sandbox, the product's own emulator, over real sockets)
    holding the shop's two offers: their bindings point at one of its products and one of its
    variants, so an export lands in the emulator's order book (`ms_sandbox.moysklad.orders`), and
    our webhook takes `deliver`'s token. Yields the server."""
    with sandbox_moysklad(settings, moysklad={"WEBHOOK_TOKEN": WEBHOOK_TOKEN}, products=4, variant_share=0.5,
                          stores=1, seed=7) as srv:
        bind_shop_to(srv.moysklad, shop)
        yield srv
