"""Ozon Seller API: endpoints only. Auth is `Client-Id` + `Api-Key`; the base client does
timeouts, retries and typed errors; the shared limiter keeps stock updates inside 80 a minute."""
from __future__ import annotations

import httpx
from django.conf import settings

from integrations.http.client import BaseClient
from integrations.http.errors import NotConfigured
from integrations.http.ratelimit import Limiter, limiter_for

from .constants import MAX_PARALLEL, STOCK_CALLS_PER_MINUTE, STOCKS_UPDATE


def is_configured(conf: dict | None = None) -> bool:
    conf = conf or settings.OZON
    return bool(conf["CLIENT_ID"] and conf["API_KEY"])


def _scale(api: str) -> float:
    """1 except in the bench, which scales rate-limit windows down (MARKETPLACES["RATE_WINDOW_SCALE"])."""
    return float(settings.MARKETPLACES.get("RATE_WINDOW_SCALE", {}).get(api, 1.0))


class OzonClient(BaseClient):
    system = "ozon"

    def __init__(self, conf: dict | None = None, *, transport: httpx.BaseTransport | None = None,
                 limiter: Limiter | None = None, timeout: float = 30.0, **kwargs):
        conf = dict(conf or settings.OZON)
        if not is_configured(conf):
            raise NotConfigured("Ozon is not configured: set OZON_CLIENT_ID and OZON_API_KEY")
        self.conf = conf
        if limiter is None:
            # Every call this client makes is a stock update: its budget is the one that binds.
            limiter = limiter_for(f"ozon:{conf['CLIENT_ID']}:stocks", units=STOCK_CALLS_PER_MINUTE,
                                  window=60.0 * _scale("ozon"),
                                  parallel=MAX_PARALLEL)
        headers = {"Client-Id": str(conf["CLIENT_ID"]), "Api-Key": conf["API_KEY"],
                   "Content-Type": "application/json", "User-Agent": "SyncSite/0.1"}
        super().__init__(conf["BASE_URL"], headers=headers, timeout=timeout, limiter=limiter,
                         transport=transport, **kwargs)

    # -- base-client hooks ----------------------------------------------------------------------
    def auth_hint(self, status: int) -> str:
        return ("Ozon rejected the credentials: check OZON_CLIENT_ID and OZON_API_KEY (the key must be "
                "active, have the role for product stocks and allow this server's IP)")

    def request_id(self, response: httpx.Response) -> str:
        return response.headers.get("X-O3-Trace-Id", "") or response.headers.get("X-Request-Id", "")

    # -- endpoints ------------------------------------------------------------------------------
    def stocks_update(self, stocks: list[dict]) -> list[dict]:
        """POST /v2/products/stocks: set absolute stock for up to 100 (offer, warehouse) pairs.
        Answers 200 even when items fail: returns `result[]` (`offer_id`, `warehouse_id`,
        `updated`, `errors[]`) for the caller to read item by item. Absolute values make a resend
        harmless, so a 429 is waited out and retried."""
        data = self.request("POST", STOCKS_UPDATE, json={"stocks": stocks}, retry=True).json()
        result = data.get("result") if isinstance(data, dict) else None
        return result if isinstance(result, list) else []
