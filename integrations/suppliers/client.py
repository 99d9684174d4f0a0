"""The `api` dialect client: paged full and delta reads, and the live check of one SKU.

Default shape (interfaces.md): `GET {url}/stock?page=N&per_page=500[&updated_since=ISO]` ->
`{"items": [{"sku", "stock", "updated_at"}]}`, pages until one has fewer than `per_page` items;
`GET {url}/stock/{sku}` -> `{"sku", "stock"}` (404: not carried). Paths and field names come
from the supplier's dialect. Every request goes through the outbound guard (no internal
addresses, redirects included)."""
from __future__ import annotations

import threading
from datetime import datetime
from typing import Iterator
from urllib.parse import quote

import httpx

from integrations.http.client import BaseClient
from integrations.http.errors import NotFoundError, RejectedError
from integrations.http.outbound import GuardedTransport, check_url

from .feeds import Record, Reject, clean_sku, whole_number
from .models import Supplier

#: a paged read stops here whatever the supplier says (a loop in its paging must not run forever)
MAX_PAGES = 100_000


class SupplierClient(BaseClient):
    #: the supplier's own URL must not lead back to our network: no redirects are followed
    max_redirects = 0

    def __init__(self, supplier: Supplier, *, timeout: float = 60.0, attempts: int | None = None, **kwargs):
        self.system = supplier.source
        self.dialect = supplier.dialect
        self.per_page = max(1, supplier.page_size or 500)
        if attempts is not None:
            self.max_attempts = attempts
        check_url(supplier.url)  # refuse before anything is built or sent
        headers = {"Accept": "application/json", "User-Agent": "SyncSite"}
        token = supplier.token
        if token:
            headers["Authorization"] = f"Bearer {token}"
        kwargs.setdefault("transport", GuardedTransport())
        super().__init__(supplier.url.rstrip("/") + "/", headers=headers, timeout=timeout, **kwargs)

    def auth_hint(self, status: int) -> str:
        return "check the supplier's token in the admin"

    def stock_pages(self, *, since: datetime | None, reject: Reject) -> Iterator[list[Record]]:
        d = self.dialect
        page = int(d["first_page"])
        for _ in range(MAX_PAGES):
            params = {d["page_param"]: page, d["per_page_param"]: self.per_page}
            if since is not None:
                params[d["since_param"]] = since.isoformat()
            data = self.request("GET", d["stock_path"].lstrip("/"), params=params).json()
            items = data.get(d["items_field"]) if isinstance(data, dict) else None
            if not isinstance(items, list):
                raise RejectedError(f"{self.system}: page {page} has no {d['items_field']!r} list", system=self.system)
            yield [r for r in (self._record(item, f"page {page} #{i}", reject) for i, item in enumerate(items)) if r]
            if len(items) < self.per_page:
                return
            page += 1
        raise RejectedError(f"{self.system}: more than {MAX_PAGES} pages", system=self.system)

    def _record(self, item, ref: str, reject: Reject) -> Record | None:
        d = self.dialect
        if not isinstance(item, dict):
            reject(ref, "not an object")
            return None
        sku = clean_sku(item.get(d["sku_field"]))
        if sku is None:
            reject(ref, "no SKU")
            return None
        stock = whole_number(item.get(d["stock_field"]))
        if stock is None:
            reject(f"{ref} {sku}", "stock is not a whole number >= 0")
            return None
        return Record(sku, stock)

    def stock_one(self, sku: str) -> int:
        """The supplier's stock of one SKU now (0 when it does not carry it)."""
        path = self.dialect["item_path"].lstrip("/").replace("{sku}", quote(sku, safe=""))
        try:
            data = self.request("GET", path).json()
        except NotFoundError:
            return 0
        stock = whole_number(data.get(self.dialect["stock_field"])) if isinstance(data, dict) else None
        if stock is None:
            raise RejectedError(f"{self.system}: live answer for {sku!r} has no whole stock figure", system=self.system)
        return stock


# Live checks reuse one client per supplier configuration and process (a TLS handshake per cart
# check would cost more than the check).
_live_clients: dict[tuple, SupplierClient] = {}
_live_lock = threading.Lock()


#: the live check's circuit breaker is the upstream one (integrations.http.ratelimit: kept in Redis or
#: the shared files, so every worker sees it); its budget is never used (the supplier sets none),
#: so a live call costs no limiter round trips, only the breaker's
LIVE_UNITS, LIVE_WINDOW, LIVE_PARALLEL = 100_000, 1.0, 256


def live_breaker(supplier: Supplier):
    """The Limiter whose circuit (circuit_open_for / circuit_failed / circuit_succeeded) guards this
    supplier's live checks."""
    from integrations.http.ratelimit import limiter_for

    return limiter_for(f"supplier-live:{supplier.slug}", units=LIVE_UNITS, window=LIVE_WINDOW, parallel=LIVE_PARALLEL)


def live_client(supplier: Supplier, *, timeout: float) -> SupplierClient:
    """The live-check client of this supplier: one try, `timeout`, reused by the process."""
    key = (supplier.pk, supplier.url, supplier.token_encrypted, repr(supplier.dialect), timeout)
    with _live_lock:
        client = _live_clients.get(key)
        if client is None:
            for old in [k for k in _live_clients if k[0] == supplier.pk]:
                _live_clients.pop(old).close()
            client = SupplierClient(supplier, timeout=timeout, attempts=1)
            _live_clients[key] = client
        return client


def live_clients_reset() -> None:
    """Close the cached live clients (tests)."""
    with _live_lock:
        for client in _live_clients.values():
            client.close()
        _live_clients.clear()


def feed_headers(supplier: Supplier) -> dict:
    headers = {"User-Agent": "SyncSite"}
    token = supplier.token
    if token:
        headers["Authorization"] = f"Bearer {token}"
    return headers


__all__ = ["SupplierClient", "live_client", "feed_headers", "httpx"]
