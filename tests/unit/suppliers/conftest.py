"""Suppliers: upstreams mocked with respx; names resolve to a public address (tests have no DNS),
IP literals are checked as they are; the broker is replaced by a recorder."""
from __future__ import annotations

from dataclasses import dataclass, field

import pytest

from integrations.http import outbound
from integrations.http.client import BaseClient

TOKEN = "test-storefront-token"


@pytest.fixture(autouse=True)
def _public_dns(monkeypatch):
    monkeypatch.setattr(outbound, "_resolve", lambda host, port: ["93.184.215.14"])


@pytest.fixture(autouse=True)
def _fast(monkeypatch):
    monkeypatch.setattr(BaseClient, "backoff_base", 0.001)


@pytest.fixture(autouse=True)
def _fresh_live_state(settings):
    """Live-check breakers kept in this process (no Redis or shared files), forgotten per test."""
    from integrations.http import ratelimit
    from integrations.suppliers.client import live_clients_reset

    settings.REDIS_URL = ""
    settings.RATE_LIMIT_DIR = ""
    def forget():
        for limiter in list(ratelimit._registry.values()):
            if limiter.name.startswith("supplier-live:"):
                limiter.reset()
        live_clients_reset()

    forget()
    yield
    forget()


@dataclass
class Published:
    calls: list = field(default_factory=list)

    def names(self) -> list[str]:
        return [name for name, _ in self.calls]


@pytest.fixture
def published(monkeypatch):
    from syncsite import publish as publisher

    record = Published()

    def fake(task, *args, **kwargs):
        record.calls.append((task.name, args))
        return True

    monkeypatch.setattr(publisher, "publish", fake)
    return record


@pytest.fixture
def api(client, settings):
    settings.STOREFRONT_API_TOKEN = TOKEN
    client.defaults["HTTP_AUTHORIZATION"] = f"Bearer {TOKEN}"
    return client


def make_supplier(slug="acme", kind="api", url="https://acme.example/api", **fields):
    from integrations.suppliers.models import Supplier

    token = fields.pop("token", "supplier-token")
    supplier = Supplier(slug=slug, name=fields.pop("name", slug.title()), kind=kind, url=url, **fields)
    supplier.token = token
    supplier.save()
    return supplier
