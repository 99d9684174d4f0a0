"""Marketplace order tests: the three marketplaces configured against fake hosts (respx mocks
them), the shop of the order tests (two offers in one warehouse), broker publishing recorded."""
from __future__ import annotations

import pytest

from integrations.http import ratelimit
from integrations.http.client import BaseClient
from tests.orders_fixtures import _fast_backoff, api, published, shop  # noqa: F401

OZON = "https://ozon.test"
WB = "https://wb.test"
WB_RETURNS = "https://wb-returns.test"
YM = "https://ym.test"
TG = "https://tg.test"
MS = "https://ms.test/api/remap/1.2"


@pytest.fixture
def marketplaces(settings, monkeypatch):
    settings.REDIS_URL = ""
    ratelimit._registry.clear()
    monkeypatch.setattr(BaseClient, "backoff_base", 0.001)
    settings.OZON = {**settings.OZON, "BASE_URL": OZON, "CLIENT_ID": "111", "API_KEY": "ozon-key",
                     "WAREHOUSE_ID": "22000"}
    settings.WILDBERRIES = {**settings.WILDBERRIES, "BASE_URL": WB, "RETURNS_URL": WB_RETURNS, "TOKEN": "wb-token",
                            "WAREHOUSE_ID": "658434"}
    settings.YANDEX_MARKET = {**settings.YANDEX_MARKET, "BASE_URL": YM, "API_KEY": "ym-key", "BUSINESS_ID": "10",
                              "CAMPAIGN_ID": "20", "WAREHOUSE_ID": "123456"}
    settings.TELEGRAM = {**settings.TELEGRAM, "API_URL": TG, "BOT_TOKEN": "", "CHAT_ID": ""}
    settings.MOYSKLAD = {**settings.MOYSKLAD, "TOKEN": "", "LOGIN": "", "PASSWORD": ""}
    yield settings
    ratelimit._registry.clear()


@pytest.fixture
def kicks(monkeypatch):
    """Offer ids the stock-changed hook handed to the marketplace push."""
    calls: list[list[int]] = []
    monkeypatch.setattr("integrations.marketplaces.kick", lambda ids, **kw: calls.append(sorted(ids)) or len(ids))
    return calls
