"""Wildberries seller APIs: endpoints only. The marketplace host takes stock, the content host
lists cards (sizes and their barcodes: where chrtIDs come from). Auth: `Authorization: Bearer
<token>` on both (WB's 2026 auth article)."""
from __future__ import annotations

from datetime import datetime
from typing import Iterator

import httpx
from django.conf import settings

from integrations.http.client import BaseClient
from integrations.http.errors import NotConfigured, RejectedError
from integrations.http.ratelimit import Limiter, limiter_for

from .constants import (
    CARDS_BURST,
    CARDS_BURST_WINDOW,
    CARDS_LIST,
    CARDS_PAGE_MAX,
    ERROR_COST,
    MAX_PARALLEL,
    STOCK_BURST,
    STOCK_BURST_WINDOW,
    STOCKS_PATH,
)


def is_configured(conf: dict | None = None) -> bool:
    conf = conf or settings.WILDBERRIES
    return bool(conf["TOKEN"])


def _credential(conf: dict) -> str:
    return conf["TOKEN"][-12:]


def _scale(api: str) -> float:
    """1 except in the bench, which scales rate-limit windows down (MARKETPLACES["RATE_WINDOW_SCALE"])."""
    return float(settings.MARKETPLACES.get("RATE_WINDOW_SCALE", {}).get(api, 1.0))


class _WildberriesBase(BaseClient):
    #: which setting holds this host's URL, and its own budget: (limiter name, units, window s, parallel)
    host_setting = ""
    budget: tuple[str, int, float, int] = ("", 1, 1.0, 1)

    def __init__(self, conf: dict | None = None, *, transport: httpx.BaseTransport | None = None,
                 limiter: Limiter | None = None, timeout: float = 30.0, **kwargs):
        conf = dict(conf or settings.WILDBERRIES)
        if not is_configured(conf):
            raise NotConfigured("Wildberries is not configured: set WB_TOKEN")
        if limiter is None:
            name, units, window, parallel = self.budget
            limiter = limiter_for(f"wildberries:{_credential(conf)}:{name}", units=units,
                                  window=window * _scale(self.system), parallel=parallel)
        base_url = conf[self.host_setting]
        self.conf = conf
        headers = {"Authorization": f"Bearer {conf['TOKEN']}", "Content-Type": "application/json",
                   "User-Agent": "SyncSite/0.1"}
        super().__init__(base_url, headers=headers, timeout=timeout, limiter=limiter, transport=transport,
                         **kwargs)

    def auth_hint(self, status: int) -> str:
        return ("Wildberries rejected the token: check WB_TOKEN (not expired, not read-only, with the "
                "Marketplace and Content categories)")

    def retry_after(self, response: httpx.Response) -> float | None:
        for name in ("X-Ratelimit-Retry", "Retry-After"):
            value = response.headers.get(name)
            if value is not None:
                try:
                    return max(0.0, float(value))
                except ValueError:
                    continue
        return None

    def parse_error_body(self, response: httpx.Response) -> list:
        """Two shapes: business errors `{code, message, data}` (a 409 on stocks is an array of
        them) and gateway errors `{title, detail, code, status, requestId}`."""
        try:
            data = response.json()
        except ValueError:
            return []
        items = data if isinstance(data, list) else [data] if isinstance(data, dict) else []
        out = []
        for item in items:
            if not isinstance(item, dict):
                continue
            if "title" in item or "detail" in item:
                out.append({"code": item.get("code") or item.get("title") or "",
                            "message": item.get("detail") or item.get("title") or "", "data": None})
            else:
                out.append(item)
        return out

    def request_id(self, response: httpx.Response) -> str:
        return response.headers.get("X-Request-Id", "")

    def error_for(self, response: httpx.Response, method: str, url: str):
        # WB charges every 4xx as ERROR_COST requests: pay the difference so our budget stays true.
        if self.limiter is not None and 400 <= response.status_code < 500 and response.status_code not in (420, 429):
            self.limiter.take(ERROR_COST - 1)
        return super().error_for(response, method, url)


class WildberriesClient(_WildberriesBase):
    """The marketplace host: seller-warehouse stock."""

    system = "wildberries"
    host_setting = "BASE_URL"
    budget = ("marketplace", STOCK_BURST, STOCK_BURST_WINDOW, MAX_PARALLEL)

    def stocks_update(self, warehouse_id: int, stocks: list[dict]) -> list[dict]:
        """PUT /api/v3/stocks/{warehouseId}: set `amount` for up to 1,000 sizes (`chrtId`).
        Returns [] on 204; on 409 the error array (`code`, `message`, `data[]` naming the sizes),
        which is this endpoint's per-item answer, not a failure of the call."""
        try:
            self.request("PUT", STOCKS_PATH.format(warehouse_id=warehouse_id), json={"stocks": stocks})
        except RejectedError as exc:
            if exc.status == 409:
                return [e for e in exc.errors if isinstance(e, dict)] or [{"code": "Conflict", "message": str(exc)}]
            raise
        return []


class WildberriesContentClient(_WildberriesBase):
    """The content host: product cards, their sizes (chrtID) and barcodes."""

    system = "wildberries-content"
    host_setting = "CONTENT_URL"
    budget = ("content", CARDS_BURST, CARDS_BURST_WINDOW, 2)

    def iter_cards(self, *, updated_since: datetime | None = None, limit: int = CARDS_PAGE_MAX) -> Iterator[list[dict]]:
        """Yield pages of cards, oldest change first, from `updated_since` (None: all). Paged by
        the cursor WB returns (`updatedAt` + `nmID`) until a page is shorter than the limit."""
        limit = max(1, min(limit, CARDS_PAGE_MAX))
        cursor: dict = {"limit": limit}
        if updated_since is not None:
            cursor["updatedAt"] = updated_since.isoformat().replace("+00:00", "Z")
        while True:
            body = {"settings": {"sort": {"ascending": True}, "cursor": cursor, "filter": {"withPhoto": -1}}}
            data = self.request("POST", CARDS_LIST, json=body, retry=True).json()
            cards = data.get("cards") if isinstance(data, dict) else None
            cards = cards if isinstance(cards, list) else []
            yield cards
            page_cursor = (data.get("cursor") or {}) if isinstance(data, dict) else {}
            total = page_cursor.get("total", len(cards))
            if not cards or not isinstance(total, int) or total < limit:
                return
            if not page_cursor.get("updatedAt") or page_cursor.get("nmID") is None:
                return
            following = {"limit": limit, "updatedAt": page_cursor["updatedAt"], "nmID": page_cursor["nmID"]}
            if following == cursor:
                return  # the cursor did not move: never loop on the same page
            cursor = following
