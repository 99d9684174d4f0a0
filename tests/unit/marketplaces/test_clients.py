"""The three stock clients and the Telegram client against respx: auth, bodies, the per-item
answers and each API's own rate-limit answer."""
import json
from email.utils import format_datetime
from datetime import datetime, timedelta, timezone

import httpx
import pytest
import respx

from integrations.http.errors import AuthError, NotConfigured, RateLimitedError
from integrations.http.ratelimit import Limiter
from integrations.ozon.client import OzonClient
from integrations.telegram.client import TelegramClient
from integrations.wildberries.client import WildberriesClient, WildberriesContentClient
from integrations.yandex_market.client import YandexMarketClient, until_to_seconds

from .conftest import OZON, TG, WB, WB_CONTENT, YM

pytestmark = pytest.mark.usefixtures("marketplaces")


def test_ozon_sends_client_id_and_api_key_and_returns_item_results():
    with respx.mock(base_url=OZON) as mock:
        route = mock.post("/v2/products/stocks").respond(json={"result": [
            {"offer_id": "A", "warehouse_id": 1, "updated": True, "errors": []}]})
        with OzonClient() as client:
            rows = client.stocks_update([{"offer_id": "A", "stock": 3, "warehouse_id": 1}])
    request = route.calls.last.request
    assert request.headers["Client-Id"] == "111" and request.headers["Api-Key"] == "ozon-key"
    assert json.loads(request.content) == {"stocks": [{"offer_id": "A", "stock": 3, "warehouse_id": 1}]}
    assert rows[0]["updated"] is True


def test_ozon_429_is_waited_out_then_the_batch_goes_once_more():
    with respx.mock(base_url=OZON) as mock:
        route = mock.post("/v2/products/stocks").mock(side_effect=[
            httpx.Response(429, json={"code": 8, "message": "You have reached request rate limit per second"},
                           headers={"Retry-After": "0.2"}),
            httpx.Response(200, json={"result": []})])
        with OzonClient() as client:
            client.stocks_update([{"offer_id": "A", "stock": 3, "warehouse_id": 1}])
            assert client.limiter.stats.paused_seconds > 0.1  # waited as told, through the limiter
    assert route.call_count == 2


def test_ozon_rejected_key_is_an_auth_error_with_a_hint():
    with respx.mock(base_url=OZON) as mock:
        mock.post("/v2/products/stocks").respond(403, json={"code": 7, "message": "Invalid Api-Key, please check the key"})
        with OzonClient() as client, pytest.raises(AuthError) as exc:
            client.stocks_update([])
    assert "OZON_API_KEY" in str(exc.value)


def test_client_without_credentials_is_not_configured(settings):
    settings.OZON = {**settings.OZON, "API_KEY": ""}
    with pytest.raises(NotConfigured):
        OzonClient()


def test_wb_204_means_every_size_applied():
    with respx.mock(base_url=WB) as mock:
        route = mock.put("/api/v3/stocks/658434").respond(204)
        with WildberriesClient() as client:
            assert client.stocks_update(658434, [{"chrtId": 1, "amount": 2}]) == []
    assert route.calls.last.request.headers["Authorization"] == "Bearer wb-token"


def test_wb_409_returns_the_refused_sizes_and_charges_ten_requests():
    limiter = Limiter("test:wb", units=20, window=4.0, parallel=2)
    with respx.mock(base_url=WB) as mock:
        mock.put("/api/v3/stocks/1").respond(409, json=[
            {"code": "NotFound", "message": "Not found", "data": [{"sku": "", "chrtId": 7, "amount": 2}]}])
        with WildberriesClient(limiter=limiter) as client:
            conflicts = client.stocks_update(1, [{"chrtId": 7, "amount": 2}])
    assert conflicts[0]["code"] == "NotFound"
    assert limiter.stats.units == 10  # the call (1) + the 4xx penalty (9)


def test_wb_429_waits_for_x_ratelimit_retry():
    with respx.mock(base_url=WB) as mock:
        route = mock.put("/api/v3/stocks/1").mock(side_effect=[
            httpx.Response(429, json={"title": "too many requests", "status": 429}, headers={"X-Ratelimit-Retry": "0.2"}),
            httpx.Response(204)])
        with WildberriesClient() as client:
            client.stocks_update(1, [{"chrtId": 7, "amount": 2}])
            assert client.limiter.stats.paused_seconds > 0.1
    assert route.call_count == 2


def test_wb_cards_are_paged_by_cursor_until_a_short_page():
    pages = [
        {"cards": [{"nmID": i, "updatedAt": "2026-01-01T00:00:00Z", "sizes": []} for i in range(2)],
         "cursor": {"updatedAt": "2026-01-01T00:00:00Z", "nmID": 1, "total": 2}},
        {"cards": [{"nmID": 9, "updatedAt": "2026-01-02T00:00:00Z", "sizes": []}],
         "cursor": {"updatedAt": "2026-01-02T00:00:00Z", "nmID": 9, "total": 1}},
    ]
    with respx.mock(base_url=WB_CONTENT) as mock:
        route = mock.post("/content/v2/get/cards/list").mock(side_effect=[httpx.Response(200, json=p) for p in pages])
        with WildberriesContentClient() as client:
            got = list(client.iter_cards(limit=2))
    assert [len(p) for p in got] == [2, 1]
    second = json.loads(route.calls[1].request.content)
    assert second["settings"]["cursor"] == {"limit": 2, "updatedAt": "2026-01-01T00:00:00Z", "nmID": 1}


def test_ym_sends_api_key_and_business_level_sku_items():
    with respx.mock(base_url=YM) as mock:
        route = mock.post("/v3/businesses/10/offers/stocks/update").respond(json={"status": "OK"})
        with YandexMarketClient() as client:
            assert client.stocks_update([{"sku": "A", "partnerWarehouseId": 1, "count": 2}]) == {"status": "OK"}
    assert route.calls.last.request.headers["Api-Key"] == "ym-key"


def test_ym_420_is_rate_limited_and_waits_until_the_resource_resets():
    until = format_datetime(datetime.now(timezone.utc) + timedelta(seconds=1), usegmt=True)
    with respx.mock(base_url=YM) as mock:
        route = mock.post("/v3/businesses/10/offers/stocks/update").mock(side_effect=[
            httpx.Response(420, json={"status": "ERROR", "errors": [{"code": "LIMIT_EXCEEDED",
                                                                     "message": "Hit rate limit for resource"}]},
                           headers={"X-RateLimit-Resource-Until": until}),
            httpx.Response(200, json={"status": "OK"})])
        with YandexMarketClient() as client:
            client.stocks_update([])
            assert client.stats.rate_limited == 1
    assert route.call_count == 2


def test_ym_420_gives_up_after_the_allowed_waits(monkeypatch):
    from integrations.http.client import BaseClient

    monkeypatch.setattr(BaseClient, "max_rate_limit_waits", 1)
    with respx.mock(base_url=YM) as mock:
        mock.post("/v3/businesses/10/offers/stocks/update").respond(
            420, json={"status": "ERROR", "errors": [{"code": "LIMIT", "message": "Hit rate limit of 4 parallel requests"}]})
        with YandexMarketClient() as client, pytest.raises(RateLimitedError):
            client.stocks_update([])


def test_until_header_is_read_as_seconds_from_now():
    now = datetime(2026, 5, 14, 12, 0, 0, tzinfo=timezone.utc)
    assert until_to_seconds("Thu, 14 May 2026 12:00:30 GMT", now) == 30
    assert until_to_seconds("garbage", now) is None


def test_telegram_sends_the_message_and_keeps_the_token_out_of_errors(settings):
    settings.TELEGRAM = {**settings.TELEGRAM, "BOT_TOKEN": "123:secret", "CHAT_ID": "-100"}
    with respx.mock(base_url=TG) as mock:
        ok = mock.post("/bot123:secret/sendMessage").mock(side_effect=[
            httpx.Response(200, json={"ok": True, "result": {"message_id": 5}}),
            httpx.Response(401, json={"ok": False, "error_code": 401, "description": "Unauthorized"})])
        with TelegramClient() as bot:
            assert bot.send_message("hello")["message_id"] == 5
            with pytest.raises(AuthError) as exc:
                bot.send_message("again")
    assert json.loads(ok.calls[0].request.content) == {"chat_id": "-100", "text": "hello",
                                                       "disable_web_page_preview": True}
    assert "secret" not in str(exc.value) and "secret" not in exc.value.url
