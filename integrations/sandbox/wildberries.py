"""Wildberries emulators (/work/shared/docs/api/wildberries.md §2, §3, §7).

Marketplace host (``/wb``, WB_BASE_URL): ``PUT /api/v3/stocks/{warehouseId}`` keyed by
``chrtId`` (1..1,000 sizes, ``amount`` 0..100,000), 204 on success, 409 with an array of errors
naming the refused sizes (``NotFound``, ``UploadDataLimit``; the sandbox then applies none of
the batch — whether WB applies the rest is undocumented), field names not validated (an item
without ``chrtId`` is ignored and still answers 204), ``POST`` of the same path reads stock back,
``GET /api/v3/warehouses``. Budget: 300 a minute as a token bucket (burst 20, one every 200 ms),
every 4xx costs 10; 429 carries ``X-Ratelimit-Retry``.

Content host (``/wb-content``, WB_CONTENT_URL): ``POST /content/v2/get/cards/list`` with the
cursor paging of the real API (``limit`` <= 100, ``updatedAt`` + ``nmID``, ascending); one card
per catalog product, one size per sellable item with its barcode, plus a few WB-only cards.
Budget 100 a minute, burst 5.

Auth on both: ``Authorization: Bearer <token>`` (the raw token is accepted too).
"""
from __future__ import annotations

import bisect
import threading
from datetime import datetime, timedelta, timezone
from typing import Iterable

from .catalog_gen import DELETED, MSK_OFFSET_MS, VARIANT, Catalog
from .common import ApiError, LimitDecision, Request, Response, empty_response, json_response
from .marketplace import CHRT_EXTRA, MarketplaceEmulator, TokenBucket, item_by_chrt

BATCH_MAX = 1000
AMOUNT_MAX = 100_000
ERROR_COST = 10
CARDS_PAGE_MAX = 100
NM_BASE = 100_000_000
EXTRA_CARDS = 3
_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)


def _gateway(status: int, title: str, detail: str) -> dict:
    return {"title": title, "detail": detail, "code": title.replace(" ", "-"), "requestId": "sandbox",
            "origin": "s2s-api-auth-marketplace", "status": status, "statusText": title,
            "timestamp": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")}


class _WildberriesBase(MarketplaceEmulator):
    api_root = ""
    seller = "wb-seller"

    def __init__(self, catalog: Catalog, *, token: str, budget: int, window: float, rate_limit: bool = True,
                 latency_ms: float = 0.0, warehouses: Iterable[str] = ()) -> None:
        super().__init__(catalog, warehouses=tuple(warehouses), rate_limit=rate_limit, budget=budget, window=window,
                         max_parallel=50, latency_ms=latency_ms)
        self.token = token
        self.limiter = TokenBucket(budget, window)

    def credentials_ok(self, request: Request) -> bool | None:
        value = (request.header("authorization") or "").strip()
        if not value:
            return None
        scheme, _, rest = value.partition(" ")
        given = rest.strip() if scheme.lower() == "bearer" else value
        return self.same(given, self.token)

    def render_error(self, status: int, code, message: str, parameter: str | None = None,
                     headers: Iterable[tuple[str, str]] = ()) -> Response:
        if status in (401, 402, 429):
            return json_response(_gateway(status, {401: "unauthorized", 402: "payment required",
                                                   429: "too many requests"}[status], message), status, headers)
        return json_response({"code": code or "IncorrectRequest", "message": message}, status, headers)

    def auth_error(self, request: Request, reason: str) -> Response:
        return self.render_error(401, None, "token is malformed or expired")

    def rate_limited_response(self, request: Request, decision: LimitDecision) -> Response:
        seconds = max(1, -(-decision.retry_after_ms // 1000))
        return self.render_error(429, None, "limited by the seller's request budget", headers=[
            ("X-Ratelimit-Retry", str(seconds)), ("X-Ratelimit-Remaining", "0"),
            ("X-Ratelimit-Limit", str(self.limiter.budget)), ("X-Ratelimit-Reset", str(seconds))])

    def parallel_limited_response(self, request: Request, decision: LimitDecision) -> Response:
        return self.rate_limited_response(request, LimitDecision(False, 0, 0, 0, 1000, 0, 1))

    def success_headers(self, request: Request, decision: LimitDecision | None) -> list[tuple[str, str]]:
        remaining = decision.remaining if decision else self.limiter.peek(self.seller).remaining
        return [("X-Ratelimit-Remaining", str(remaining)), ("X-Ratelimit-Limit", str(self.limiter.budget))]

    def handle(self, request: Request) -> Response:
        response = super().handle(request)
        # Every 4xx counts as ERROR_COST requests (one already spent if it passed the budget).
        if self.rate_limit and 400 <= response.status < 500 and response.status != 429:
            self.limiter.charge(self.seller, ERROR_COST - 1)
        return response

    def configure(self, **options) -> dict:
        result = super().configure(**options)
        if "budget" in options or "window" in options:
            self.limiter = TokenBucket(int(self.limiter.budget), float(self.limiter.window))
        return result


class WildberriesEmulator(_WildberriesBase):
    """The marketplace host: seller-warehouse stock by chrtId."""

    name = "wb"

    def __init__(self, catalog: Catalog, *, token: str = "sandbox-wb-token", warehouses: Iterable[str] = ("658434",),
                 rate_limit: bool = True, budget: int = 20, window: float = 4.0, latency_ms: float = 0.0) -> None:
        super().__init__(catalog, token=token, budget=budget, window=window, rate_limit=rate_limit,
                         latency_ms=latency_ms, warehouses=warehouses)
        self.ignored_items = 0
        self.router.add("PUT", "api/v3/stocks/{warehouse}", self._stocks_update, name="PUT api/v3/stocks")
        self.router.add("POST", "api/v3/stocks/{warehouse}", self._stocks_read, name="POST api/v3/stocks")
        self.router.add("GET", "api/v3/warehouses", self._warehouses)

    def knows(self, chrt: int) -> bool:
        if str(chrt) in self.unlisted:
            return False
        return CHRT_EXTRA < chrt <= CHRT_EXTRA + EXTRA_CARDS or item_by_chrt(self.catalog, chrt) is not None

    def _warehouse(self, request: Request) -> str:
        warehouse = request.params["warehouse"]
        if warehouse not in self.warehouses:
            raise ApiError(404, "NotFound", "Склад не найден")
        return warehouse

    def _stocks_update(self, request: Request) -> Response:
        self.book.called()
        warehouse = self._warehouse(request)
        try:
            body = request.json() or {}
        except ValueError:
            raise ApiError(400, "IncorrectRequestBody", "Некорректное тело запроса")
        stocks = body.get("stocks") if isinstance(body, dict) else None
        if not isinstance(stocks, list) or not 1 <= len(stocks) <= BATCH_MAX:
            raise ApiError(400, "IncorrectRequestBody", f"stocks: от 1 до {BATCH_MAX} элементов")
        good, conflicts = [], {}
        for item in stocks:
            if not isinstance(item, dict) or "chrtId" not in item:
                self.ignored_items += 1  # WB does not validate names: a stray field changes nothing
                continue
            chrt, amount = item.get("chrtId"), item.get("amount")
            if not isinstance(chrt, int) or not isinstance(amount, int) or amount < 0:
                raise ApiError(400, "IncorrectParameter", "chrtId и amount должны быть целыми числами >= 0")
            entry = {"sku": "", "chrtId": chrt, "amount": amount}
            if amount > AMOUNT_MAX:
                conflicts.setdefault("UploadDataLimit", []).append(entry)
            elif not self.knows(chrt):
                conflicts.setdefault("NotFound", []).append(entry)
            else:
                good.append((chrt, amount))
        if conflicts:
            self.book.rejected(sum(len(v) for v in conflicts.values()))
            messages = {"UploadDataLimit": "Превышен лимит остатка", "NotFound": "Не найдено"}
            return json_response([{"code": code, "message": messages[code], "data": data}
                                  for code, data in conflicts.items()], 409)
        for chrt, amount in good:
            self.book.set(chrt, warehouse, amount)
        return empty_response(204)

    def _stocks_read(self, request: Request) -> Response:
        warehouse = self._warehouse(request)
        ids = (request.json() or {}).get("chrtIds") or []
        if not isinstance(ids, list) or len(ids) > BATCH_MAX:
            raise ApiError(400, "IncorrectRequestBody", f"chrtIds: до {BATCH_MAX} элементов")
        out = []
        for chrt in ids:
            hit = self.book.get(chrt, warehouse)
            if hit is not None:
                out.append({"chrtId": chrt, "amount": hit[0]})
        return json_response({"stocks": out})

    def _warehouses(self, request: Request) -> Response:
        return json_response([{"id": int(w), "name": f"Sandbox FBS {w}", "officeId": 15, "cargoType": 1,
                               "deliveryType": 1, "isDeleting": False, "isProcessing": False}
                              for w in sorted(self.warehouses)])

    def stats(self) -> dict:
        snap = super().stats()
        snap["stock"]["items_ignored"] = self.ignored_items
        return snap


class WildberriesContentEmulator(_WildberriesBase):
    """The content host: product cards with their sizes (chrtID) and barcodes."""

    name = "wb-content"

    def __init__(self, catalog: Catalog, *, token: str = "sandbox-wb-token", rate_limit: bool = True,
                 budget: int = 5, window: float = 3.0, latency_ms: float = 0.0) -> None:
        super().__init__(catalog, token=token, budget=budget, window=window, rate_limit=rate_limit,
                         latency_ms=latency_ms)
        self._order: tuple[int, list[tuple[str, int, int]]] | None = None  # (catalog version, sorted keys)
        self._order_lock = threading.Lock()
        self.router.add("POST", "content/v2/get/cards/list", self._cards_list, name="POST content/v2/get/cards/list")

    # -- cards -------------------------------------------------------------------------------------
    def _updated(self, i: int) -> str:
        ms = self.catalog.p_updated[i] - MSK_OFFSET_MS  # naive MSK ms -> UTC
        return (_EPOCH + timedelta(milliseconds=ms)).strftime("%Y-%m-%dT%H:%M:%S.") + f"{ms % 1000:03d}Z"

    def _sorted(self) -> list[tuple[str, int, int]]:
        """(updatedAt, nmID, product index or -k for WB-only cards), ascending, cached per version."""
        cat = self.catalog
        with self._order_lock:
            if self._order is None or self._order[0] != cat.version:
                rows = [(self._updated(i), NM_BASE + i, i) for i in range(cat.n_products)
                        if not cat.p_flags[i] & DELETED]
                rows += [("2025-01-01T00:00:00.000Z", NM_BASE - k, -k) for k in range(1, EXTRA_CARDS + 1)]
                rows.sort()
                self._order = (cat.version, rows)
            return self._order[1]

    def _card(self, row: tuple[str, int, int]) -> dict:
        updated, nm, i = row
        cat = self.catalog
        if i < 0:
            k = -i
            return {"nmID": nm, "vendorCode": f"WB-ONLY-{k}", "updatedAt": updated, "title": f"WB only {k}",
                    "sizes": [{"chrtID": CHRT_EXTRA + k, "techSize": "0", "wbSize": "",
                               "skus": [f"29900000000{k:02d}"]}]}
        variants = [j for j in cat.variants_of(i) if cat.exists(VARIANT, j)]
        if variants:
            sizes = [{"chrtID": 300_000_000 + j, "techSize": cat.v_characteristics(j)[1], "wbSize": "",
                      "skus": [cat.v_barcode(j)]} for j in variants]
        else:
            sizes = [{"chrtID": 200_000_000 + i, "techSize": "0", "wbSize": "", "skus": [cat.p_barcode(i)]}]
        return {"nmID": nm, "vendorCode": cat.p_article(i) or cat.p_code(i), "updatedAt": updated,
                "title": cat.p_name(i), "sizes": sizes}

    def newest_updated_at(self) -> str | None:
        """The ``updatedAt`` of the most recently changed card (what a reader's cursor reaches)."""
        rows = self._sorted()
        return rows[-1][0] if rows else None

    def _cards_list(self, request: Request) -> Response:
        try:
            body = request.json() or {}
        except ValueError:
            raise ApiError(400, "IncorrectRequestBody", "Некорректное тело запроса")
        cursor = ((body.get("settings") or {}).get("cursor") or {}) if isinstance(body, dict) else {}
        limit = cursor.get("limit")
        if not isinstance(limit, int) or not 1 <= limit <= CARDS_PAGE_MAX:
            raise ApiError(400, "IncorrectParameter", f"cursor.limit: от 1 до {CARDS_PAGE_MAX}")
        rows = self._sorted()
        if cursor.get("updatedAt") and cursor.get("nmID") is not None:
            start = bisect.bisect_right(rows, (_norm(cursor["updatedAt"]), int(cursor["nmID"]), 10**12))
        elif cursor.get("updatedAt"):
            start = bisect.bisect_left(rows, (_norm(cursor["updatedAt"]), -10**12, -10**12))
        else:
            start = 0
        page = rows[start:start + limit]
        cards = [self._card(row) for row in page]
        last = page[-1] if page else None
        return json_response({"cards": cards, "cursor": {"updatedAt": last[0] if last else cursor.get("updatedAt"),
                                                         "nmID": last[1] if last else cursor.get("nmID"),
                                                         "total": len(cards)}})


def _norm(stamp: str) -> str:
    """A cursor's updatedAt in the cards' own format (UTC, milliseconds), so string order is time
    order."""
    try:
        moment = datetime.fromisoformat(str(stamp).strip().replace("Z", "+00:00"))
    except ValueError:
        raise ApiError(400, "IncorrectParameter", f"cursor.updatedAt: bad date {stamp!r}")
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    moment = moment.astimezone(timezone.utc)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"
