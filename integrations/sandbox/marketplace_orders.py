"""What the Ozon, Wildberries and Yandex Market order emulators share: a book of orders with
their change times, items picked from the sandbox catalog, returns, and the `make run` buyer that
places orders over time (SANDBOX_MARKETPLACE_ORDERS_INTERVAL seconds, off when unset or 0).

Each marketplace's own shapes and calls live in ozon_orders.py, wildberries_orders.py and
yandex_market_orders.py; `install(emulator)` plugs them into an emulator (channels.py calls it).
Standard library only, like the rest of the sandbox.
"""
from __future__ import annotations

import base64
import logging
import os
import random
import threading
import time
from typing import Any, Callable

from .common import ApiError
from .marketplace import sellable_items

log = logging.getLogger("integrations.sandbox.marketplace_orders")


class OrderBook:
    """Orders by id (insertion order kept), each a dict the emulator renders in its own shape,
    with `_changed` (unix time of the last status change) and `_seq` (a stable sort key)."""

    def __init__(self) -> None:
        self.lock = threading.RLock()
        self.orders: dict[str, dict] = {}
        self.returns: list[dict] = []
        self.calls: dict[str, int] = {}
        #: what the seller's calls changed, one (action, order id) per change applied: the same
        #: pair twice is an action done twice (a retry the marketplace took for a new one)
        self.effects: list[tuple[str, str]] = []
        self._seq = 0

    def next_seq(self) -> int:
        with self.lock:
            self._seq += 1
            return self._seq

    def add(self, order_id: str, record: dict) -> dict:
        with self.lock:
            record.setdefault("_seq", self.next_seq())
            record.setdefault("_changed", time.time())
            record.setdefault("_created", record["_changed"])
            self.orders[order_id] = record
            return record

    def touch(self, record: dict, **fields: Any) -> None:
        with self.lock:
            record.update(fields)
            record["_changed"] = time.time()

    def effect(self, action: str, key: Any) -> None:
        with self.lock:
            self.effects.append((action, str(key)))

    def duplicate_effects(self) -> dict[tuple[str, str], int]:
        """Actions applied more than once: {(action, order id): times}."""
        with self.lock:
            seen: dict[tuple[str, str], int] = {}
            for pair in self.effects:
                seen[pair] = seen.get(pair, 0) + 1
        return {pair: n for pair, n in seen.items() if n > 1}

    def count(self, name: str) -> None:
        with self.lock:
            self.calls[name] = self.calls.get(name, 0) + 1

    def clear(self) -> None:
        with self.lock:
            self.orders.clear()
            self.returns.clear()
            self.calls.clear()
            self.effects.clear()

    def summary(self) -> dict:
        with self.lock:
            return {"orders": len(self.orders), "returns": len(self.returns), "calls": dict(self.calls)}


def pick_items(catalog, n: int = 1, *, rng: random.Random | None = None, among: int = 200) -> list:
    """`n` sellable items of the sandbox catalog (from its first `among`), at random."""
    rng = rng or random
    items = []
    for item in sellable_items(catalog):
        items.append(item)
        if len(items) >= among:
            break
    return [rng.choice(items) for _ in range(n)] if items else []


def item_price(catalog, item) -> int:
    """A price in whole rubles for the item (the catalog's, else a made-up one)."""
    try:
        price = int(catalog.p_price[item.product])
    except (AttributeError, IndexError, TypeError, ValueError):
        price = None
    return int(price / 100) if isinstance(price, int) and price > 0 else 100 + (item.idx % 50) * 10


def encode_cursor(offset: int) -> str:
    return base64.urlsafe_b64encode(f"o{offset}".encode()).decode().rstrip("=") if offset else ""


def decode_cursor(value: str | None) -> int:
    if not value:
        return 0
    try:
        raw = base64.urlsafe_b64decode(value + "=" * (-len(value) % 4)).decode()
        return int(raw[1:]) if raw.startswith("o") else 0
    except (ValueError, UnicodeDecodeError):
        raise ApiError(400, 3, "invalid cursor") from None


def iso_to_unix(value: str | None, default: float) -> float:
    from datetime import datetime

    if not value:
        return default
    try:
        return datetime.fromisoformat(str(value).replace("Z", "+00:00")).timestamp()
    except ValueError:
        raise ApiError(400, 3, f"invalid date-time {value!r}") from None


def run_buyers(emulators: dict[str, Any], interval: float, *, seed: int = 7) -> threading.Thread:
    """Every `interval` seconds one marketplace (in turn) gets a new order, so `make run` shows
    orders from every channel arriving in one list."""
    stop = threading.Event()
    makers: list[Callable[[], Any]] = [getattr(e, "orders_generate") for e in emulators.values()
                                       if hasattr(e, "orders_generate")]
    rng = random.Random(seed)

    def loop() -> None:
        n = 0
        while makers and not stop.wait(interval):
            try:
                makers[n % len(makers)](1, rng=rng)
                n += 1
            except Exception:  # a demo helper: keep going
                log.exception("sandbox buyer failed")

    thread = threading.Thread(target=loop, name="sandbox-marketplace-buyers", daemon=True)
    thread.stop = stop  # type: ignore[attr-defined]
    thread.start()
    return thread


def start_buyers_from_env(emulators: dict[str, Any]) -> threading.Thread | None:
    interval = float(os.environ.get("SANDBOX_MARKETPLACE_ORDERS_INTERVAL") or 0)
    return run_buyers(emulators, interval) if interval > 0 else None
