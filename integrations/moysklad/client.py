"""MoySklad JSON API 1.2: endpoints only. The base client does retries and errors; the shared
limiter keeps us inside the weighted budget (45 units / 3 s) and the 5-parallel cap."""
from __future__ import annotations

import base64
from datetime import datetime
from typing import Iterator
from urllib.parse import urlsplit

import httpx
from django.conf import settings

from integrations.http.client import BaseClient
from integrations.http.errors import NotConfigured, RejectedError
from integrations.http.ratelimit import Limiter, limiter_for

from .constants import HEAVY_REPORT_WEIGHT, HEAVY_REPORTS, PAGE_MAX
from .mapping import to_msk_string


def is_configured(conf: dict | None = None) -> bool:
    conf = conf or settings.MOYSKLAD
    return bool(conf["TOKEN"] or (conf["LOGIN"] and conf["PASSWORD"]))


class MoySkladClient(BaseClient):
    system = "moysklad"
    requests_per_connection = 90

    def __init__(self, conf: dict | None = None, *, transport: httpx.BaseTransport | None = None,
                 limiter: Limiter | None = None, **kwargs):
        conf = dict(conf or settings.MOYSKLAD)
        if not is_configured(conf):
            raise NotConfigured("MoySklad is not configured: set MOYSKLAD_TOKEN (or MOYSKLAD_LOGIN and MOYSKLAD_PASSWORD)")
        self.conf = conf
        if conf["TOKEN"]:
            auth_header = f"Bearer {conf['TOKEN']}"
            credential = "token:" + conf["TOKEN"][-8:]
        else:
            raw = f"{conf['LOGIN']}:{conf['PASSWORD']}".encode()
            auth_header = "Basic " + base64.b64encode(raw).decode()
            credential = "login:" + conf["LOGIN"]
        self.request_weight = conf["REQUEST_WEIGHT"]
        if limiter is None:
            limiter = limiter_for(f"moysklad:{credential}", units=conf["BUDGET_UNITS"],
                                  window=conf["BUDGET_WINDOW"], parallel=conf["MAX_PARALLEL"])
        headers = {
            "Authorization": auth_header,
            "Accept-Encoding": "gzip",  # mandatory: without it every call is 415
            "Accept": "application/json;charset=utf-8",
            "User-Agent": "SyncSite/0.1 (+https://github.com/syncsite)",
        }
        super().__init__(conf["BASE_URL"], headers=headers, timeout=conf["TIMEOUT"], limiter=limiter,
                         transport=transport, **kwargs)

    # -- base-client hooks ----------------------------------------------------------------------
    def weight_for(self, method: str, url: str) -> int:
        path = urlsplit(url).path if "://" in url else url
        path = "/" + path.lstrip("/")
        if any(path.endswith(h) for h in HEAVY_REPORTS):
            return HEAVY_REPORT_WEIGHT
        return self.request_weight

    def retry_after(self, response: httpx.Response) -> float | None:
        # X-Lognex-Retry-After is in milliseconds. A 429 without it is the parallel cap (1073):
        # no figure, so the jittered backoff applies.
        value = response.headers.get("X-Lognex-Retry-After")
        try:
            return float(value) / 1000.0 if value is not None else None
        except ValueError:
            return None

    def request_id(self, response: httpx.Response) -> str:
        return response.headers.get("X-Lognex-Request-Id", "") or response.headers.get("X-Request-Id", "")

    # -- addresses ------------------------------------------------------------------------------
    def href(self, entity: str, entity_id: str) -> str:
        return f"{self.base_url}/entity/{entity}/{entity_id}"

    def meta(self, entity: str, entity_id: str, type_: str | None = None) -> dict:
        return {"meta": {"href": self.href(entity, entity_id), "type": type_ or entity, "mediaType": "application/json"}}

    def owns(self, href: str) -> bool:
        """True when `href` points at our configured API (never follow a link to another host)."""
        return isinstance(href, str) and (href == self.base_url or href.startswith(self.base_url + "/"))

    def get_href(self, href: str) -> dict:
        if not self.owns(href):
            raise RejectedError(f"refusing to follow {href!r}: not under MOYSKLAD_BASE_URL", system=self.system)
        return self.get_json(href[len(self.base_url):])

    # -- lists ----------------------------------------------------------------------------------
    def iter_pages(self, entity: str, *, filters: list[str] | None = None, order: str | None = None,
                   limit: int = PAGE_MAX, extra: dict | None = None) -> Iterator[dict]:
        """Yield each page envelope (`meta` + `rows`) of `entity/<entity>`, by offset."""
        params = {"limit": min(limit, PAGE_MAX), "offset": 0}
        if filters:
            params["filter"] = ";".join(filters)
        if order:
            params["order"] = order
        params.update(extra or {})
        while True:
            page = self.get_json(f"/entity/{entity}", params=params)
            yield page
            meta = page.get("meta", {})
            rows = page.get("rows", [])
            size = meta.get("size", 0)
            params["offset"] += len(rows)
            if not rows or not meta.get("nextHref") or params["offset"] >= size:
                return

    def iter_rows(self, entity: str, **kwargs) -> Iterator[dict]:
        for page in self.iter_pages(entity, **kwargs):
            yield from page.get("rows", [])

    # -- catalog --------------------------------------------------------------------------------
    @staticmethod
    def delta_filters(since: datetime | None, *, include_archived: bool = True) -> list[str]:
        filters = []
        if since is not None:
            filters.append(f"updated>={to_msk_string(since)}")
        if include_archived:
            filters += ["archived=true", "archived=false"]
        return filters

    def stores(self) -> list[dict]:
        return list(self.iter_rows("store", filters=["archived=true", "archived=false"]))

    def organizations(self) -> list[dict]:
        return list(self.iter_rows("organization"))

    def price_types(self) -> list[dict]:
        return self.get_json("/context/companysettings/pricetype")

    # -- stock ----------------------------------------------------------------------------------
    def stock_bystore_current(self, stock_type: str = "stock", *, changed_since: datetime | None = None,
                              store_id: str | None = None, assortment_ids: list[str] | None = None) -> list[dict]:
        """Current stock per item and store: a bare array, absolute values (not deltas)."""
        params: dict = {"stockType": stock_type}
        if changed_since is not None:
            params["changedSince"] = to_msk_string(changed_since, millis=False)
        filters = []
        if store_id:
            filters.append(f"storeId={store_id}")
        if assortment_ids:
            filters.append("assortmentId=" + ",".join(assortment_ids))
        if filters:
            params["filter"] = ";".join(filters)
        return self.get_json("/report/stock/bystore/current", params=params)
