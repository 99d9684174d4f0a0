"""Ozon Seller API emulator: FBS stock update (/work/shared/docs/api/ozon.md §3, §7).

``POST /v2/products/stocks`` with ``Client-Id`` + ``Api-Key``: at most 100 (offer, warehouse)
pairs, 80 calls a minute per seller (429 ``{"code": 8, ...}`` with Retry-After beyond it), each
pair at most once in 30 s (per-item ``TOO_MANY_REQUESTS``), HTTP 200 with per-item ``result[]``
(``offer_id_not_found`` for keys Ozon does not list, ``WAREHOUSE_NOT_FOUND``, ``STOCK_TOO_BIG``
from a million). Offers: every sellable item of the sandbox catalog by SKU, less the
"unlisted" ones, plus a few Ozon-only offers. Mounted at ``/ozon`` (OZON_BASE_URL).
"""
from __future__ import annotations

import threading
import time
from typing import Any, Iterable

from .catalog_gen import Catalog
from .common import ApiError, LimitDecision, Request, Response, json_response
from .marketplace import MarketplaceEmulator, item_by_sku

BATCH_MAX = 100
STOCK_MAX = 999_999
EXTRA_OFFERS = ("OZ-ONLY-1", "OZ-ONLY-2", "OZ-ONLY-3")
_GRPC = {400: 3, 401: 16, 403: 7, 404: 5, 409: 6, 429: 8, 500: 13, 503: 14}


class OzonEmulator(MarketplaceEmulator):
    name = "ozon"
    api_root = ""
    seller = "ozon-seller"

    def __init__(self, catalog: Catalog, *, client_id: str = "sandbox-client", api_key: str = "sandbox-ozon-key",
                 warehouses: Iterable[str] = ("22222222222000",), rate_limit: bool = True, budget: int = 80,
                 window: float = 60.0, pair_interval: float = 30.0, latency_ms: float = 0.0) -> None:
        super().__init__(catalog, warehouses=tuple(warehouses), rate_limit=rate_limit, budget=budget, window=window,
                         max_parallel=50, latency_ms=latency_ms)
        self.client_id, self.api_key = client_id, api_key
        self.pair_interval = pair_interval
        self._last_pair: dict[tuple[str, str], float] = {}
        self._pair_lock = threading.Lock()
        self.router.add("POST", "v2/products/stocks", self._stocks_update, name="POST v2/products/stocks")
        self.router.add("POST", "v2/warehouse/list", self._warehouse_list, name="POST v2/warehouse/list")
        # POST /_sandbox/ozon/pairs/forget: as if 30 s had passed since every pair's last update
        self.control_router.add("POST", "pairs/forget", lambda req: (self.forget_pairs(), json_response({}))[1])

    # -- formats -----------------------------------------------------------------------------------
    def credentials_ok(self, request: Request) -> bool | None:
        cid, key = request.header("client-id"), request.header("api-key")
        if not cid and not key:
            return None
        return self.same(cid, self.client_id) and self.same(key, self.api_key)

    def render_error(self, status: int, code: int | None, message: str, parameter: str | None = None,
                     headers: Iterable[tuple[str, str]] = ()) -> Response:
        return json_response({"code": code if code is not None else _GRPC.get(status, 2), "message": message,
                              "details": []}, status, headers)

    def auth_error(self, request: Request, reason: str) -> Response:
        return self.render_error(401, 16, "Invalid Api-Key, please check the key and try again")

    def rate_limited_response(self, request: Request, decision: LimitDecision) -> Response:
        seconds = max(1, -(-decision.retry_after_ms // 1000))
        return self.render_error(429, 8, "You have reached request rate limit per second",
                                 headers=[("Retry-After", str(seconds))])

    def parallel_limited_response(self, request: Request, decision: LimitDecision) -> Response:
        return self.render_error(429, 8, "You have reached request rate limit per second",
                                 headers=[("Retry-After", "1")])

    # -- endpoints ---------------------------------------------------------------------------------
    def knows(self, offer_id: str) -> bool:
        if not offer_id or offer_id in self.unlisted:
            return False
        return offer_id in EXTRA_OFFERS or item_by_sku(self.catalog, offer_id) is not None

    def _stocks_update(self, request: Request) -> Response:
        self.book.called()
        try:
            body = request.json() or {}
        except ValueError:
            raise ApiError(400, 3, "invalid request body: not JSON")
        stocks = body.get("stocks") if isinstance(body, dict) else None
        if not isinstance(stocks, list) or not 1 <= len(stocks) <= BATCH_MAX:
            raise ApiError(400, 3, f"invalid ProductsStocksRequest.Stocks: value must contain between 1 and "
                                   f"{BATCH_MAX} items")
        for n, item in enumerate(stocks):
            ok = (isinstance(item, dict) and isinstance(item.get("stock"), int) and item["stock"] >= 0
                  and isinstance(item.get("warehouse_id"), int))
            if not ok:
                raise ApiError(400, 3, f"Request validation error: invalid ProductsStocksRequest.Stocks[{n}]: "
                                       f"embedded message failed validation")
        now = time.time()
        result = []
        for item in stocks:
            offer_id, warehouse = str(item.get("offer_id") or ""), str(item["warehouse_id"])
            error = None
            if warehouse not in self.warehouses:
                error = ("WAREHOUSE_NOT_FOUND", f"Warehouse {warehouse} not found")
            elif not self.knows(offer_id):
                error = ("offer_id_not_found", "Product with such ID doesn't exist in your personal account")
            elif item["stock"] > STOCK_MAX:
                error = ("STOCK_TOO_BIG", "Set a quantity less than a million")
            else:
                with self._pair_lock:
                    last = self._last_pair.get((offer_id, warehouse))
                    if last is not None and now - last < self.pair_interval:
                        error = ("TOO_MANY_REQUESTS", "Stock is updated too frequently")
                    else:
                        self._last_pair[(offer_id, warehouse)] = now
            if error:
                self.book.rejected()
                result.append({"offer_id": offer_id, "product_id": 0, "warehouse_id": int(warehouse),
                               "updated": False, "errors": [{"code": error[0], "message": error[1]}]})
            else:
                self.book.set(offer_id, warehouse, item["stock"])
                result.append({"offer_id": offer_id, "product_id": 0, "warehouse_id": int(warehouse),
                               "updated": True, "errors": []})
        return json_response({"result": result})

    def _warehouse_list(self, request: Request) -> Response:
        rows = [{"warehouse_id": int(w), "name": f"Sandbox FBS {w}", "status": "created", "is_rfbs": False,
                 "is_kgt": False} for w in sorted(self.warehouses)]
        return json_response({"warehouses": rows, "cursor": "", "has_next": False})

    # -- python API --------------------------------------------------------------------------------
    def forget_pairs(self) -> None:
        """Let every pair be updated again at once (tests that do not want to wait 30 s)."""
        with self._pair_lock:
            self._last_pair.clear()

    def configure(self, **options: Any) -> dict:
        if "pair_interval" in options:
            self.pair_interval = float(options.pop("pair_interval"))
        return super().configure(**options)

    def config(self) -> dict:
        return {**super().config(), "pair_interval": self.pair_interval}

    def info(self) -> dict:
        return {**super().info(), "client_id": self.client_id}
