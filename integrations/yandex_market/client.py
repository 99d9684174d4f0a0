"""Yandex Market Partner API: endpoints only. Auth: `Api-Key`. Market throttles with HTTP 420
(the base client treats it as 429): the wait comes from `X-RateLimit-Resource-Until`, an RFC 822
date; a 420 for the 4-parallel cap has none and is backed off with jitter."""
from __future__ import annotations

from datetime import datetime, timezone
from email.utils import parsedate_to_datetime

import httpx
from django.conf import settings

from integrations.http.client import BaseClient
from integrations.http.errors import NotConfigured
from integrations.http.ratelimit import Limiter, limiter_for

from .constants import MAX_PARALLEL, STOCK_CALLS_PER_MINUTE, STOCKS_UPDATE


def is_configured(conf: dict | None = None) -> bool:
    conf = conf or settings.YANDEX_MARKET
    return bool(conf["API_KEY"] and conf["BUSINESS_ID"])


def until_to_seconds(value: str | None, now: datetime | None = None) -> float | None:
    """Seconds from now to an RFC 822 date (X-RateLimit-Resource-Until); None if unreadable."""
    if not value:
        return None
    try:
        until = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if until.tzinfo is None:
        until = until.replace(tzinfo=timezone.utc)
    return max(0.0, (until - (now or datetime.now(timezone.utc))).total_seconds())


def _scale(api: str) -> float:
    """1 except in the bench, which scales rate-limit windows down (MARKETPLACES["RATE_WINDOW_SCALE"])."""
    return float(settings.MARKETPLACES.get("RATE_WINDOW_SCALE", {}).get(api, 1.0))


class YandexMarketClient(BaseClient):
    system = "yandex_market"

    def __init__(self, conf: dict | None = None, *, transport: httpx.BaseTransport | None = None,
                 limiter: Limiter | None = None, timeout: float = 30.0, **kwargs):
        conf = dict(conf or settings.YANDEX_MARKET)
        if not is_configured(conf):
            raise NotConfigured("Yandex Market is not configured: set YM_API_KEY and YM_BUSINESS_ID")
        self.conf = conf
        if limiter is None:
            limiter = limiter_for(f"yandex_market:{conf['BUSINESS_ID']}:stocks", units=STOCK_CALLS_PER_MINUTE,
                                  window=60.0 * _scale("yandex_market"),
                                  parallel=MAX_PARALLEL)
        headers = {"Api-Key": conf["API_KEY"], "Content-Type": "application/json", "User-Agent": "SyncSite/0.1"}
        super().__init__(conf["BASE_URL"], headers=headers, timeout=timeout, limiter=limiter,
                         transport=transport, **kwargs)

    # -- base-client hooks ----------------------------------------------------------------------
    def auth_hint(self, status: int) -> str:
        return ("Yandex Market rejected the credentials: check YM_API_KEY (an Api-Key token, no "
                "'Bearer' prefix, scope offers-and-cards-management) and YM_BUSINESS_ID")

    def retry_after(self, response: httpx.Response) -> float | None:
        seconds = until_to_seconds(response.headers.get("X-RateLimit-Resource-Until"))
        if seconds is not None:
            return seconds
        return super().retry_after(response)

    def request_id(self, response: httpx.Response) -> str:
        return response.headers.get("X-Market-Request-Id", "") or response.headers.get("X-Request-Id", "")

    # -- endpoints ------------------------------------------------------------------------------
    def stocks_update(self, sku_items: list[dict]) -> dict:
        """POST /v3/businesses/{businessId}/offers/stocks/update with up to 2,000 `skuItems`
        (`sku`, `partnerWarehouseId`, `count`, `updatedAt`). Answers `{"status": "OK"}`; a bad
        item makes the whole call a 400 (raised as RejectedError with `errors[]`). Absolute values
        make a resend harmless, so a 420 is waited out and retried."""
        path = STOCKS_UPDATE.format(business_id=self.conf["BUSINESS_ID"])
        data = self.request("POST", path, json={"skuItems": sku_items}, retry=True).json()
        return data if isinstance(data, dict) else {}
