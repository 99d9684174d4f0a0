"""Marketplace test setup: all three marketplaces configured against fake hosts (respx mocks
them; `market` points them at the sandbox's emulators instead), fresh in-process limiters, no
real broker publishing (scheduled pushes are recorded)."""
from __future__ import annotations

import pytest

from integrations.http import ratelimit
from integrations.http.client import BaseClient

OZON = "https://ozon.test"
WB = "https://wb.test"
WB_CONTENT = "https://wb-content.test"
YM = "https://ym.test"
TG = "https://tg.test"


@pytest.fixture
def marketplaces(settings, monkeypatch):
    settings.REDIS_URL = ""
    ratelimit._registry.clear()
    monkeypatch.setattr(BaseClient, "backoff_base", 0.001)
    # Real budgets everywhere except WB's content list (5 per 3 s): big catalogues page fast here.
    monkeypatch.setattr("integrations.wildberries.client.CARDS_BURST", 1000)
    settings.OZON = {**settings.OZON, "BASE_URL": OZON, "CLIENT_ID": "111", "API_KEY": "ozon-key",
                     "WAREHOUSE_ID": "22000"}
    settings.WILDBERRIES = {**settings.WILDBERRIES, "BASE_URL": WB, "CONTENT_URL": WB_CONTENT, "TOKEN": "wb-token",
                            "WAREHOUSE_ID": "658434"}
    settings.YANDEX_MARKET = {**settings.YANDEX_MARKET, "BASE_URL": YM, "API_KEY": "ym-key", "BUSINESS_ID": "10",
                              "CAMPAIGN_ID": "20", "WAREHOUSE_ID": "123456"}
    settings.TELEGRAM = {**settings.TELEGRAM, "API_URL": TG, "BOT_TOKEN": "", "CHAT_ID": ""}
    settings.MARKETPLACES = {**settings.MARKETPLACES, "DEBOUNCE_SECONDS": 5.0, "SANITY_MAX": 100_000}
    yield settings
    ratelimit._registry.clear()


@pytest.fixture
def scheduled(monkeypatch):
    """Pushes the code schedules (debounced task), recorded instead of sent to a broker."""
    from integrations.marketplaces import tasks

    from syncsite import publish as publisher

    publisher.reset()   # a broker-down test before this one leaves the publisher quiet for a while
    calls: list[dict] = []
    monkeypatch.setattr(tasks.push_stock_task, "apply_async", lambda *a, **kw: calls.append(
        {k: v for k, v in kw.items() if k not in ("args", "kwargs")}))
    yield calls
    publisher.reset()


@pytest.fixture
def market(marketplaces, sandbox_respx):
    """Our three marketplaces aimed at the sandbox's emulators, in-process behind respx."""
    from integrations.sandbox import channels

    from .support import SandboxMarket

    settings = marketplaces
    settings.OZON = {**settings.OZON, "BASE_URL": sandbox_respx.base_url("ozon"), "CLIENT_ID": channels.OZON_CLIENT_ID,
                     "API_KEY": channels.OZON_API_KEY}
    settings.WILDBERRIES = {**settings.WILDBERRIES, "BASE_URL": sandbox_respx.base_url("wb"),
                            "CONTENT_URL": sandbox_respx.base_url("wb-content"), "TOKEN": channels.WB_TOKEN}
    settings.YANDEX_MARKET = {**settings.YANDEX_MARKET, "BASE_URL": sandbox_respx.base_url("ym"),
                              "API_KEY": channels.YM_API_KEY, "BUSINESS_ID": channels.YM_BUSINESS,
                              "CAMPAIGN_ID": channels.YM_CAMPAIGN}
    # The seller's Ozon FBS warehouses, as the tests name them (a second one for multi-warehouse tests).
    sandbox_respx.emulators["ozon"].warehouses = {"22000", "33000"}
    return SandboxMarket(sandbox_respx)
