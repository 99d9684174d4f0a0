"""MoySklad JSON API 1.2: endpoints only. The base client does retries and errors; the shared
limiter keeps us inside the weighted budget (45 units / 3 s) and the 5-parallel cap."""
from __future__ import annotations

import base64
import hashlib
from datetime import datetime
from typing import Iterator
from urllib.parse import urlsplit

import httpx
from django.conf import settings
from django.core.cache import cache

from integrations.http.client import BaseClient
from integrations.http.errors import NotConfigured, RejectedError
from integrations.http.paging import map_ordered
from integrations.http.ratelimit import Limiter, limiter_for

from .constants import HEAVY_REPORT_WEIGHT, HEAVY_REPORTS, PAGE_MAX, PAGE_MAX_EXPANDED
from .hrefs import href_relative
from .mapping import PriceType, choose_price_type, to_msk_string
from .schemas import PRICE_TYPES, Page, stock_report_decode


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

    def auth_hint(self, status: int) -> str:
        setting = "MOYSKLAD_TOKEN" if self.conf["TOKEN"] else "MOYSKLAD_LOGIN and MOYSKLAD_PASSWORD"
        if status == 403:
            return f"MoySklad refused access: check {setting} (that user needs API access and rights to this data)"
        return f"MoySklad rejected the credentials: check {setting}"

    # -- addresses ------------------------------------------------------------------------------
    def href(self, entity: str, entity_id: str) -> str:
        return f"{self.base_url}/entity/{entity}/{entity_id}"

    def meta(self, entity: str, entity_id: str, type_: str | None = None) -> dict:
        return {"meta": {"href": self.href(entity, entity_id), "type": type_ or entity, "mediaType": "application/json"}}

    def owns(self, href: str) -> bool:
        """True when `href` points at our configured API (never follow a link anywhere else: our
        Authorization header would go with it). The rules are in `hrefs.href_relative`."""
        return href_relative(href, self.base_url) is not None

    def get_href(self, href: str) -> dict:
        """GET a `meta.href` (or `nextHref`, a webhook's link) that MoySklad gave us."""
        relative = href_relative(href, self.base_url)
        if relative is None:
            raise RejectedError(f"refusing to follow {str(href)[:300]!r}: not under MOYSKLAD_BASE_URL",
                                system=self.system, url=str(href)[:500])
        return self.get_json(relative)

    # -- lists ----------------------------------------------------------------------------------
    def iter_pages(self, entity: str, *, filters: list[str] | None = None, order: str | None = None,
                   limit: int | None = None, extra: dict | None = None, parallel: int = 1,
                   parse=None) -> Iterator[dict | Page]:
        """Yield each page envelope (`meta` + `rows`) of `entity/<entity>`, by offset, until a page
        has no `nextHref`, comes back empty, or `meta.size` rows were read. With `parse` (a
        schemas.PageDecoder) each page comes as a typed `Page`, decoded in the thread that
        fetched it.

        `parallel` > 1: when more pages than that are left after a page (the first gives
        `meta.size`), they are fetched that many at a time (capped by the limiter's parallel
        slots), still yielded in order. The limiter spaces them by the weighted budget as ever, so
        this only hides each request's latency behind the others: a long list then takes the
        budget's time, not the sum of the latencies. Short lists (every delta) stay sequential."""
        limit = limit or self.conf.get("PAGE_SIZE") or PAGE_MAX
        params = {"limit": max(1, min(limit, PAGE_MAX)), "offset": 0}
        if filters:
            params["filter"] = ";".join(filters)
        if order:
            params["order"] = order
        params.update(extra or {})
        if self.limiter is not None:
            parallel = min(parallel, self.limiter.parallel)
        while True:
            page = self.get_json(f"/entity/{entity}", params=params, parse=parse)
            yield page
            meta, got = _envelope(page)
            page = None   # hold no page while the consumer works on the next ones (memory stays flat)
            size = meta.get("size")
            params["offset"] += got
            if not got or not meta.get("nextHref") or (isinstance(size, int) and params["offset"] >= size):
                return
            if parallel > 1 and isinstance(size, int) and size - params["offset"] > parallel * params["limit"]:
                offsets = range(params["offset"], size, params["limit"])
                base = dict(params)

                def fetch(offset: int) -> dict:
                    return self.get_json(f"/entity/{entity}", params={**base, "offset": offset}, parse=parse)

                for page in map_ordered(fetch, offsets, workers=parallel):
                    yield page
                    (meta, got), page = _envelope(page), None
                    if not got:
                        return
                # The list may have grown while we paged: carry on one page at a time.
                params["offset"] = offsets[-1] + got
                size = meta.get("size")
                if not meta.get("nextHref") or (isinstance(size, int) and params["offset"] >= size):
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

    def price_types(self) -> list:
        """The account's price types, in the account's order (`id, name, externalCode`)."""
        return self.get_json("/context/companysettings/pricetype", parse=PRICE_TYPES.decode)

    def sale_price_type(self, *, max_age: int = 0) -> PriceType | None:
        """The price type the site sells at (MOYSKLAD_PRICE_TYPE, else the account's first), read
        once per client (one run). With `max_age`, an answer read by any process in the last
        `max_age` seconds serves (webhook batches: not one extra request per batch).
        PriceTypeError when the configured one does not exist; None when the account has none."""
        if hasattr(self, "_sale_price_type"):
            return self._sale_price_type
        key = "moysklad:sale-price-type:" + hashlib.sha256(
            f"{self.base_url}|{self.conf.get('PRICE_TYPE', '')}".encode()).hexdigest()[:32]
        cached = cache.get(key) if max_age else None
        if cached is not None:
            self._sale_price_type = cached[0]
            return self._sale_price_type
        self._sale_price_type = choose_price_type(self.price_types(), self.conf.get("PRICE_TYPE", ""))
        cache.set(key, (self._sale_price_type,), max_age or 600)
        return self._sale_price_type

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
        return self.get_json("/report/stock/bystore/current", params=params, parse=stock_report_decode)

    # ------------------------------------------------------------------------------------------
    # Orders, counterparties, shipments, webhooks (issue 3). Writes carry
    # X-Lognex-WebHook-DisableByPrefix so our own changes do not come back to us as webhooks.
    # A POST is retried by the base client only where MoySklad makes it idempotent (a create
    # with a syncId returns the object that syncId already made).
    # ------------------------------------------------------------------------------------------
    def write_headers(self) -> dict:
        site = getattr(settings, "SITE_URL", "")
        return {"X-Lognex-WebHook-DisableByPrefix": site} if site.startswith(("http://", "https://")) else {}

    @staticmethod
    def filter_value(value: str) -> str:
        """A literal `;` inside a filter value is written `\\;` (it separates conditions)."""
        return str(value).replace("\\", "\\\\").replace(";", "\\;")

    def find_first(self, entity: str, filters: list[str], *, expand: str | None = None) -> dict | None:
        params: dict = {"filter": ";".join(filters), "limit": 1}
        if expand:
            params["expand"] = expand
        rows = self.get_json(f"/entity/{entity}", params=params).get("rows") or []
        return rows[0] if rows else None

    # -- counterparties --
    def counterparty_find_by_external_code(self, code: str) -> dict | None:
        return self.find_first("counterparty", [f"externalCode={self.filter_value(code)}"])

    def counterparty_find_by_email(self, email: str) -> dict | None:
        return self.find_first("counterparty", [f"email={self.filter_value(email)}"])

    def counterparty_search(self, text: str, *, limit: int = 20) -> list[dict]:
        """Fuzzy search (name, email, phone, contact persons): verify the hit yourself."""
        return self.get_json("/entity/counterparty", params={"search": text, "limit": limit}).get("rows") or []

    def counterparty_create(self, body: dict) -> dict:
        if not body.get("syncId"):
            raise ValueError("counterparty_create needs a syncId: it is what makes a retried create safe")
        return self.request("POST", "/entity/counterparty", json=body, headers=self.write_headers(),
                            retry=True).json()

    # -- account defaults --
    def organization_get(self, organization_id: str) -> dict:
        return self.get_json(f"/entity/organization/{organization_id}")

    def store_get(self, store_id: str) -> dict:
        return self.get_json(f"/entity/store/{store_id}")

    # -- customer orders --
    def customerorder_metadata(self) -> dict:
        """`{states: [{id, name, stateType, …}], attributes: […]}`."""
        return self.get_json("/entity/customerorder/metadata")

    def customerorder_find_by_external_code(self, code: str) -> dict | None:
        return self.find_first("customerorder", [f"externalCode={self.filter_value(code)}"])

    def customerorder_create(self, body: dict) -> dict:
        if not body.get("syncId"):
            raise ValueError("customerorder_create needs a syncId: it is what makes a retried create safe")
        return self.request("POST", "/entity/customerorder", json=body, headers=self.write_headers(),
                            retry=True).json()

    def customerorder_get(self, order_id: str, *, expand: str | None = "positions") -> dict:
        params = {"expand": expand} if expand else None
        return self.get_json(f"/entity/customerorder/{order_id}", params=params)

    def customerorder_positions(self, order_id: str) -> list[dict]:
        rows: list[dict] = []
        params = {"limit": PAGE_MAX, "offset": 0}
        while True:
            page = self.get_json(f"/entity/customerorder/{order_id}/positions", params=dict(params))
            batch = page.get("rows") or []
            rows += batch
            if not batch or not (page.get("meta") or {}).get("nextHref"):
                return rows
            params["offset"] += len(batch)

    def iter_customerorder_pages(self, *, since: datetime | None) -> Iterator[dict]:
        """Pages of orders changed since `since`, oldest change first, positions expanded (hence
        pages of 100: MoySklad silently ignores expand above that)."""
        filters = [f"updated>={to_msk_string(since)}"] if since is not None else []
        return self.iter_pages("customerorder", filters=filters, order="updated,asc;id",
                               limit=PAGE_MAX_EXPANDED, extra={"expand": "positions"})

    # -- shipments --
    def demand_get(self, demand_id: str) -> dict:
        return self.get_json(f"/entity/demand/{demand_id}")

    # -- webhooks --
    def webhooks(self) -> list[dict]:
        return list(self.iter_rows("webhook"))

    def webhook_create(self, body: dict) -> dict:
        return self.request("POST", "/entity/webhook", json=body, retry=False).json()

    def webhook_update(self, webhook_id: str, body: dict) -> dict:
        return self.request("PUT", f"/entity/webhook/{webhook_id}", json=body).json()

    def webhook_delete(self, webhook_id: str) -> None:
        self.request("DELETE", f"/entity/webhook/{webhook_id}")

    def webhookstocks(self) -> list[dict]:
        return list(self.iter_rows("webhookstock"))

    def webhookstock_create(self, body: dict) -> dict:
        return self.request("POST", "/entity/webhookstock", json=body, retry=False).json()

    def webhookstock_update(self, webhook_id: str, body: dict) -> dict:
        return self.request("PUT", f"/entity/webhookstock/{webhook_id}", json=body).json()

    def webhookstock_delete(self, webhook_id: str) -> None:
        self.request("DELETE", f"/entity/webhookstock/{webhook_id}")


def _envelope(page) -> tuple[dict, int]:
    """(meta as a dict, rows the page held) of a page, typed or not."""
    if isinstance(page, Page):
        return {"size": page.meta.size, "nextHref": page.meta.nextHref}, page.count
    if not isinstance(page, dict):
        return {}, 0
    return page.get("meta") or {}, len(page.get("rows") or [])
