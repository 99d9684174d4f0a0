from __future__ import annotations

import pytest

from catalog.models import Barcode
from tests.factories import make_offer

ONEC_URL = "https://1c.shop.test/base"
WEBHOOK_TOKEN = "onec-webhook-token-123"


@pytest.fixture
def onec(settings, tmp_path):
    settings.ONEC = {**settings.ONEC, "BASE_URL": ONEC_URL, "USER": "site", "PASSWORD": "secret",
                     "WEBHOOK_TOKEN": WEBHOOK_TOKEN, "EXCHANGE_LOGIN": "exchange", "EXCHANGE_PASSWORD": "p@ss",
                     "EXCHANGE_FILE_LIMIT": 4096, "EXCHANGE_MAX_FILE": 64 * 1024,
                     "EXCHANGE_DIR": str(tmp_path / "exchange"), "OVERLAP_SECONDS": 300}
    return settings.ONEC


@pytest.fixture
def kicks(monkeypatch):
    """Offer ids the marketplaces were kicked for, one list per kick."""
    calls: list[list[int]] = []
    monkeypatch.setattr("integrations.marketplaces.kick", lambda offer_ids, **kw: calls.append(sorted(offer_ids)))
    return calls


class Published(list):
    def names(self) -> list[str]:
        return [name for name, _ in self]


@pytest.fixture
def published(monkeypatch):
    """What would go to the broker, recorded instead."""
    from syncsite import publish as publisher

    record = Published()
    monkeypatch.setattr(publisher, "publish", lambda task, *args, **kw: record.append((task.name, args)) or True)
    return record


class Goods:
    def __init__(self):
        self.a = make_offer(sku="A-1")
        self.b = make_offer(sku="B-2")
        self.c = make_offer(sku="C-3")
        Barcode.objects.create(offer=self.c, value="4600000000031")


@pytest.fixture
def goods(db):
    return Goods()
