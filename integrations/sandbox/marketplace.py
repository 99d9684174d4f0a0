"""What the Ozon, Wildberries and Yandex Market emulators share (each module describes its own
endpoints and formats; common.py runs the pipeline):

* which sellable items the sandbox catalog has (the offers the marketplaces "list"), by SKU and
  barcode, and the WB size ids (chrtID) derived from them;
* header auth: the marketplaces do not use ``Authorization: Bearer`` the way common.Credentials
  expects (Ozon: Client-Id + Api-Key, Yandex Market: Api-Key), so ``handle`` translates their
  headers first and the common pipeline does the rest;
* a token bucket (WB's "limit / interval / burst") with the LimitDecision interface;
* the stock book: what each marketplace was told, per (key, warehouse), with the time — what
  e2e tests and the propagation benchmark read back through ``/_sandbox/<name>/stocks``.

Standard library only, like the rest of the sandbox.
"""
from __future__ import annotations

import hmac
import threading
import time
from dataclasses import dataclass
from typing import Callable, Iterator

from .catalog_gen import PRODUCT, VARIANT, Catalog
from .common import ApiEmulator, Credentials, LimitDecision, Request, Response, json_response

#: the sandbox's internal token: marketplace headers that check out are rewritten to it
_INTERNAL = "sandbox-marketplace-internal"

#: WB size ids: products without variants and variants get disjoint ranges
CHRT_PRODUCT = 200_000_000
CHRT_VARIANT = 300_000_000
CHRT_EXTRA = 900_000_000


@dataclass(frozen=True)
class Item:
    kind: int
    idx: int
    product: int
    sku: str
    barcode: str

    @property
    def chrt(self) -> int:
        return (CHRT_VARIANT if self.kind == VARIANT else CHRT_PRODUCT) + self.idx


def sellable_items(cat: Catalog) -> Iterator[Item]:
    """Every unit the shop sells, as SyncSite imports them: a product without variants, or each
    variant (its product then sells only through them)."""
    for i in range(cat.n_products):
        if not cat.exists(PRODUCT, i):
            continue
        variants = [j for j in cat.variants_of(i) if cat.exists(VARIANT, j)]
        if variants:
            for j in variants:
                yield Item(VARIANT, j, i, cat.v_code(j), cat.v_barcode(j))
        else:
            yield Item(PRODUCT, i, i, cat.p_sku(i), cat.p_barcode(i))


def item_by_sku(cat: Catalog, sku: str) -> Item | None:
    hit = cat.find_sku(sku)
    if hit is None:
        return None
    kind, idx = hit
    if kind == VARIANT:
        return Item(VARIANT, idx, cat.v_product[idx], cat.v_code(idx), cat.v_barcode(idx))
    return Item(PRODUCT, idx, idx, cat.p_sku(idx), cat.p_barcode(idx))


def item_by_chrt(cat: Catalog, chrt: int) -> Item | None:
    if CHRT_VARIANT <= chrt < CHRT_EXTRA:
        j = chrt - CHRT_VARIANT
        if cat.exists(VARIANT, j):
            return Item(VARIANT, j, cat.v_product[j], cat.v_code(j), cat.v_barcode(j))
    elif CHRT_PRODUCT <= chrt < CHRT_VARIANT:
        i = chrt - CHRT_PRODUCT
        if cat.exists(PRODUCT, i) and not any(cat.exists(VARIANT, j) for j in cat.variants_of(i)):
            return Item(PRODUCT, i, i, cat.p_sku(i), cat.p_barcode(i))
    return None


# ---------------------------------------------------------------------------------------------
# Limits
# ---------------------------------------------------------------------------------------------
class TokenBucket:
    """``budget`` tokens, refilled evenly over ``window`` seconds (WB: 20 per 4 s = one every
    200 ms, burst 20). Same interface as common.WeightedWindowLimiter; `charge` takes extra
    tokens after the fact (WB counts every 4xx as 10 requests)."""

    def __init__(self, budget: int, window: float, clock: Callable[[], float] = time.monotonic):
        self.budget, self.window, self.clock = budget, window, clock
        self._tokens: dict[str, tuple[float, float]] = {}
        self._lock = threading.Lock()

    @property
    def rate(self) -> float:
        return self.budget / self.window

    def _level(self, key: str, now: float) -> float:
        tokens, at = self._tokens.get(key, (float(self.budget), now))
        return min(float(self.budget), tokens + (now - at) * self.rate)

    def acquire(self, key: str, weight: int) -> LimitDecision:
        with self._lock:
            now = self.clock()
            level = self._level(key, now)
            window_ms = int(self.window * 1000)
            if level >= weight:
                level -= weight
                self._tokens[key] = (level, now)
                return LimitDecision(True, self.budget, int(level), window_ms, 0,
                                     int((self.budget - level) / self.rate * 1000), weight)
            self._tokens[key] = (level, now)
            wait = (weight - level) / self.rate
            return LimitDecision(False, self.budget, 0, window_ms, max(1, int(wait * 1000 + 0.999)),
                                 int((self.budget - level) / self.rate * 1000), weight)

    def charge(self, key: str, weight: int) -> None:
        """Take `weight` more tokens (may go negative: the debt delays the next requests)."""
        with self._lock:
            now = self.clock()
            self._tokens[key] = (self._level(key, now) - weight, now)

    def peek(self, key: str) -> LimitDecision:
        with self._lock:
            level = self._level(key, self.clock())
            return LimitDecision(True, self.budget, max(0, int(level)), int(self.window * 1000), 0, 0, 0)

    def reset(self) -> None:
        with self._lock:
            self._tokens.clear()


# ---------------------------------------------------------------------------------------------
# The stock book
# ---------------------------------------------------------------------------------------------
class StockBook:
    """What a marketplace was told: {(key, warehouse): (quantity, unix time)}, plus counters."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.stocks: dict[tuple[str, str], tuple[int, float]] = {}
        self.items_accepted = 0
        self.items_rejected = 0
        self.calls = 0

    def set(self, key, warehouse, quantity: int) -> None:
        with self._lock:
            self.stocks[(str(key), str(warehouse))] = (int(quantity), time.time())
            self.items_accepted += 1

    def rejected(self, n: int = 1) -> None:
        with self._lock:
            self.items_rejected += n

    def called(self) -> None:
        with self._lock:
            self.calls += 1

    def get(self, key, warehouse) -> tuple[int, float] | None:
        return self.stocks.get((str(key), str(warehouse)))

    def rows(self, keys: list[str] | None = None) -> list[dict]:
        with self._lock:
            wanted = set(keys) if keys else None
            return [{"key": k, "warehouse": w, "quantity": q, "at": at}
                    for (k, w), (q, at) in sorted(self.stocks.items()) if wanted is None or k in wanted]

    def shown(self) -> dict[tuple[str, str], int]:
        """{(key, warehouse): quantity} as the marketplace now shows it to buyers."""
        with self._lock:
            return {pair: q for pair, (q, _at) in self.stocks.items()}

    def summary(self) -> dict:
        return {"items": len(self.stocks), "items_accepted": self.items_accepted,
                "items_rejected": self.items_rejected, "stock_calls": self.calls}

    def clear(self) -> None:
        with self._lock:
            self.stocks.clear()
            self.items_accepted = self.items_rejected = self.calls = 0


# ---------------------------------------------------------------------------------------------
# The base of the three emulators
# ---------------------------------------------------------------------------------------------
class MarketplaceEmulator(ApiEmulator):
    """Marketplace auth headers -> the common pipeline; the stock book and the "unlisted" keys
    (offers the marketplace does not know, for per-item errors) behind control endpoints:

    ``GET /_sandbox/<name>/stocks[?key=A&key=B]``, ``POST /_sandbox/<name>/stocks/clear``,
    ``GET|POST|DELETE /_sandbox/<name>/unlisted`` (``{"keys": [...]}``)."""

    seller = "seller"

    def __init__(self, catalog: Catalog, *, warehouses: tuple[str, ...], **options) -> None:
        super().__init__(credentials=Credentials(token=_INTERNAL, login=self.seller, password=None), **options)
        self.catalog = catalog
        self.warehouses = {str(w) for w in warehouses}
        self.book = StockBook()
        self.unlisted: set[str] = set()
        r = self.control_router
        r.add("GET", "stocks", self._control_stocks)
        r.add("POST", "stocks/clear", lambda req: (self.book.clear(), json_response(self.book.summary()))[1])
        r.add("GET", "unlisted", lambda req: json_response({"keys": sorted(self.unlisted)}))
        r.add("POST", "unlisted", self._control_unlisted)
        r.add("DELETE", "unlisted", lambda req: (self.unlisted.clear(), json_response({"keys": []}))[1])

    # -- auth --------------------------------------------------------------------------------------
    def credentials_ok(self, request: Request) -> bool | None:
        """True/False for present-and-right/wrong credentials, None when none were sent."""
        raise NotImplementedError

    def handle(self, request: Request) -> Response:
        verdict = self.credentials_ok(request)
        request.headers.pop("authorization", None)
        if verdict is True:
            request.headers["authorization"] = f"Bearer {_INTERNAL}"
        elif verdict is False:
            request.headers["authorization"] = "Bearer rejected"
        return super().handle(request)

    @staticmethod
    def same(given: str | None, expected: str | None) -> bool:
        return bool(given) and bool(expected) and hmac.compare_digest(given.encode(), expected.encode())

    # -- control -----------------------------------------------------------------------------------
    def _control_stocks(self, request: Request) -> Response:
        rows = self.book.rows(request.args("key") or None)
        return json_response({"stocks": rows, **self.book.summary()})

    def _control_unlisted(self, request: Request) -> Response:
        keys = (request.json() or {}).get("keys") or []
        self.unlisted.update(str(k) for k in keys)
        return json_response({"keys": sorted(self.unlisted)})

    def stats(self) -> dict:
        snap = super().stats()
        snap["stock"] = self.book.summary()
        return snap

    def info(self) -> dict:
        return {**super().info(), "warehouses": sorted(self.warehouses), "unlisted": len(self.unlisted)}
