"""Yandex Market Partner API emulator: business-level stock (/work/shared/docs/api/yandex-market.md
§2.2, §6).

``POST /v3/businesses/{businessId}/offers/stocks/update`` with ``Api-Key``: 1..2,000 ``skuItems``
(``sku``, ``partnerWarehouseId``, ``count`` 0..2e9, optional ``updatedAt``), each (sku, warehouse)
pair once per request, bodies up to 512 KB; ``{"status": "OK"}`` on success. A bad item makes the
whole call a 400 (``{"status": "ERROR", "errors": [...]}``), nothing applied; unknown offers are
named in the error items' ``sku`` field (an assumption: the real per-item shape is not
documented — see docs/api-notes.md). Limits: 50 calls a minute and at most 4 in parallel, both
answered with HTTP 420 Enhance Your Calm and ``X-RateLimit-Resource-Until`` (RFC 822) for the
budget; every answer carries ``X-RateLimit-Resource-Limit``/``-Remaining``/``-Until``; 4xx answers
count against the limit. Offers: the sandbox catalog's SKUs less the "unlisted" ones, plus a few
Market-only offers. Mounted at ``/ym`` (YM_BASE_URL).
"""
from __future__ import annotations

import time
from email.utils import formatdate
from typing import Iterable

from .catalog_gen import Catalog
from .common import ApiError, LimitDecision, Request, Response, json_response
from .marketplace import MarketplaceEmulator, item_by_sku

BATCH_MAX = 2000
COUNT_MAX = 2_000_000_000
BODY_MAX = 512 * 1024
EXTRA_OFFERS = ("YM-ONLY-1", "YM-ONLY-2", "YM-ONLY-3")


class YandexMarketEmulator(MarketplaceEmulator):
    name = "ym"
    api_root = ""
    seller = "ym-business"

    def __init__(self, catalog: Catalog, *, api_key: str = "sandbox-ym-key", business_id: str = "10000001",
                 warehouses: Iterable[str] = ("123456",), rate_limit: bool = True, budget: int = 50,
                 window: float = 60.0, max_parallel: int = 4, latency_ms: float = 0.0) -> None:
        super().__init__(catalog, warehouses=tuple(warehouses), rate_limit=rate_limit, budget=budget, window=window,
                         max_parallel=max_parallel, latency_ms=latency_ms)
        self.api_key, self.business_id = api_key, str(business_id)
        self.router.add("POST", "v3/businesses/{business}/offers/stocks/update", self._stocks_update,
                        name="POST v3/businesses/{businessId}/offers/stocks/update")

    # -- formats -----------------------------------------------------------------------------------
    def credentials_ok(self, request: Request) -> bool | None:
        key = request.header("api-key")
        if not key:
            return None
        return self.same(key, self.api_key)

    def render_error(self, status: int, code, message: str, parameter: str | None = None,
                     headers: Iterable[tuple[str, str]] = ()) -> Response:
        return json_response({"status": "ERROR", "errors": [{"code": str(code or status), "message": message}]},
                             status, headers)

    def auth_error(self, request: Request, reason: str) -> Response:
        if request.headers.get("authorization") == "Bearer rejected":
            return self.render_error(401, "UNAUTHORIZED", "Api-Key token is invalid")
        return self.render_error(401, "UNAUTHORIZED", "Credentials are not specified")

    def _until(self, ms: int) -> str:
        return formatdate(time.time() + max(ms, 0) / 1000.0, usegmt=True)

    def rate_limited_response(self, request: Request, decision: LimitDecision) -> Response:
        return self.render_error(420, "LIMIT_EXCEEDED", f"Hit rate limit of {decision.limit} requests per "
                                 f"{decision.window_ms // 1000} seconds for resource 'offers stocks update'",
                                 headers=[("X-RateLimit-Resource-Until", self._until(decision.retry_after_ms)),
                                          ("X-RateLimit-Resource-Limit", str(decision.limit)),
                                          ("X-RateLimit-Resource-Remaining", "0")])

    def parallel_limited_response(self, request: Request, decision: LimitDecision) -> Response:
        return self.render_error(420, "LIMIT_EXCEEDED",
                                 f"Hit rate limit of {self.gate.limit} parallel requests for businessId {self.business_id}")

    def success_headers(self, request: Request, decision: LimitDecision | None) -> list[tuple[str, str]]:
        if decision is None:
            return []
        return [("X-RateLimit-Resource-Limit", str(decision.limit)),
                ("X-RateLimit-Resource-Remaining", str(decision.remaining)),
                ("X-RateLimit-Resource-Until", self._until(decision.reset_ms))]

    # -- endpoints ---------------------------------------------------------------------------------
    def knows(self, sku: str) -> bool:
        if not sku or sku in self.unlisted:
            return False
        return sku in EXTRA_OFFERS or item_by_sku(self.catalog, sku) is not None

    def _stocks_update(self, request: Request) -> Response:
        self.book.called()
        if request.params["business"] != self.business_id:
            raise ApiError(403, "FORBIDDEN", f"Access denied for business {request.params['business']}")
        if len(request.body) > BODY_MAX:
            raise ApiError(400, "BAD_REQUEST", "The request is too big: more than 512 KB")
        try:
            body = request.json() or {}
        except ValueError as exc:
            raise ApiError(400, "BAD_REQUEST", f"JSON: {exc}")
        items = body.get("skuItems") if isinstance(body, dict) else None
        if not isinstance(items, list) or not 1 <= len(items) <= BATCH_MAX:
            raise ApiError(400, "BAD_REQUEST", f"skuItems: size must be between 1 and {BATCH_MAX}")
        errors, seen = [], set()
        for item in items:
            ok = (isinstance(item, dict) and isinstance(item.get("sku"), str) and item["sku"].strip()
                  and isinstance(item.get("partnerWarehouseId"), int) and isinstance(item.get("count"), int)
                  and 0 <= item["count"] <= COUNT_MAX)
            if not ok:
                raise ApiError(400, "BAD_REQUEST", "skuItems: sku (string), partnerWarehouseId (integer) and count "
                                                   f"(0..{COUNT_MAX}) are required")
            pair = (item["sku"], item["partnerWarehouseId"])
            if pair in seen:
                raise ApiError(400, "BAD_REQUEST", f"duplicate sku {item['sku']!r} for warehouse {pair[1]}")
            seen.add(pair)
            if str(item["partnerWarehouseId"]) not in self.warehouses:
                errors.append({"code": "WAREHOUSE_NOT_FOUND",
                               "message": f"Warehouse {item['partnerWarehouseId']} not found"})
            elif not self.knows(item["sku"]):
                errors.append({"code": "OFFER_NOT_FOUND", "message": f"Offer {item['sku']!r} not found",
                               "sku": item["sku"]})
        if errors:
            self.book.rejected(len(errors))
            return json_response({"status": "ERROR", "errors": errors}, 400)
        for item in items:
            self.book.set(item["sku"], item["partnerWarehouseId"], item["count"])
        return json_response({"status": "OK"})
