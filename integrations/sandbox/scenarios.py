"""A scripted warehouse manager for the sandbox: moves every open order one step along
Новый → Подтвержден → Собран → (shipments) → Отгружен → Доставлен, each step a change MoySklad
would notify subscribers about. The first shipment of an order with more than one unit ships
about half of it, so a site following along sees `partially_shipped` before `shipped`.

Used by the e2e test (`advance_orders(server.moysklad.orders)`), by `make run` (the sandbox runs
it every SANDBOX_MANAGER_INTERVAL seconds) and by hand: POST /_sandbox/moysklad/orders/advance.

`start_demo` plays the storefront for `make run`: once the site has imported the catalog it places
one demo order through the site's API (SANDBOX_DEMO_SITE_URL, SANDBOX_DEMO_API_TOKEN), which the
site exports here and the manager then moves along.
"""
from __future__ import annotations

import json
import logging
import math
import threading
import time
import urllib.error
import urllib.request

from .moysklad_orders import FINAL_STATES, OrderBook

log = logging.getLogger("integrations.sandbox.manager")

NEXT_STATE = {"Новый": "Подтвержден", "Подтвержден": "Собран", "Отгружен": "Доставлен"}


def _partial(order: dict) -> dict[str, float]:
    """About half of every line (at least one unit of the first line)."""
    out: dict[str, float] = {}
    for i, pos in enumerate(order["_positions"]):
        half = math.floor(pos["quantity"] / 2)
        if i == 0:
            half = max(1.0, half)
        if half:
            out[pos["_assortment"]] = out.get(pos["_assortment"], 0) + half
    return out


def advance_orders(book: OrderBook, *, partial_first: bool = True) -> list[dict]:
    """One step for every open order. Returns what was done: [{order, externalCode, did}]."""
    steps = []
    with book.lock:
        open_orders = [o for o in book.orders.values() if book.state_name(o["_state"]) not in FINAL_STATES]
    for order in open_orders:
        with book.lock:
            state = book.state_name(order["_state"])
            left = sum(p["quantity"] - p["shipped"] for p in order["_positions"])
            shipped_any = any(p["shipped"] for p in order["_positions"])
            units = sum(p["quantity"] for p in order["_positions"])
            if state in NEXT_STATE:
                book.set_state(order["id"], NEXT_STATE[state])
                event, did = ("customerorder", "UPDATE"), f"state → {NEXT_STATE[state]}"
            elif state == "Собран" and left > 0:
                quantities = _partial(order) if partial_first and not shipped_any and units > 1 else None
                demand = book.ship(order["id"], quantities)
                event, did = ("demand", "CREATE"), "shipped " + ("part" if quantities else "the rest")
            elif state == "Собран":
                book.set_state(order["id"], "Отгружен")
                event, did = ("customerorder", "UPDATE"), "state → Отгружен"
            else:
                continue
        ids = [demand["id"]] if event[0] == "demand" else [order["id"]]
        book.notify(*event, ids)
        steps.append({"order": order["id"], "externalCode": order.get("externalCode"), "did": did})
    if steps:
        log.info("sandbox manager: %s", "; ".join(f"{s['order'][:8]} {s['did']}" for s in steps))
    return steps


def run_manager(book: OrderBook, interval: float) -> threading.Thread:
    """Advance orders every `interval` seconds in a daemon thread (for `make run`)."""
    stop = threading.Event()

    def loop() -> None:
        while not stop.wait(interval):
            try:
                advance_orders(book)
            except Exception:  # a demo helper: keep going
                log.exception("sandbox manager step failed")

    thread = threading.Thread(target=loop, name="sandbox-manager", daemon=True)
    thread.stop = stop  # type: ignore[attr-defined]
    thread.start()
    return thread


def demo_sku(emulator, quantity: int) -> str | None:
    """A SKU with at least `quantity` free units in some store (a product without variants or a
    variant), from the start of the catalog."""
    stores = emulator.store_ids()
    candidates = []
    for pid in emulator.product_ids(include_archived=False)[:200]:
        if emulator.product(pid).get("variantsCount"):
            continue
        candidates.append(pid)
    candidates += emulator.variant_ids(include_archived=False)[:200]
    for aid in candidates:
        if any(emulator.stock(aid, s)["freeStock"] >= quantity for s in stores):
            return emulator.sku_of(aid)
    return None


def start_demo(book: OrderBook, site_url: str, api_token: str, *, quantity: int = 3, every: float = 5.0,
               give_up_after: float = 900.0) -> threading.Thread:
    """Place one demo order through the site's storefront API as soon as the site accepts it
    (before its first catalog and stock sync it answers 400 or 409; keep trying)."""

    def loop() -> None:
        deadline = time.monotonic() + give_up_after
        while time.monotonic() < deadline:
            sku = demo_sku(book.emulator, quantity)
            if sku:
                body = json.dumps({"customer": {"name": "Демо Покупатель", "email": "demo@example.com",
                                                "phone": "+7 900 000-00-00"},
                                   "items": [{"sku": sku, "quantity": quantity}],
                                   "shipping": {"method": "courier", "address": "Москва, Демо-улица, 1"},
                                   "comment": "демо-заказ из песочницы"}).encode()
                req = urllib.request.Request(f"{site_url.rstrip('/')}/api/v1/orders", data=body, method="POST",
                                             headers={"Content-Type": "application/json",
                                                      "Authorization": f"Bearer {api_token}",
                                                      "Idempotency-Key": "sandbox-demo-order-1"})
                try:
                    with urllib.request.urlopen(req, timeout=10) as resp:
                        answer = json.loads(resp.read() or b"{}")
                        log.info("sandbox demo: placed order %s (%s × %s) on the site", answer.get("number"), sku,
                                 quantity)
                        print(f"sandbox demo: order {answer.get('number')} placed through {site_url}/api/v1/orders; "
                              "the scripted manager will move it along", flush=True)
                        return
                except (urllib.error.URLError, OSError, ValueError):
                    pass  # the site is not up or has not synced the catalog yet
            time.sleep(every)

    thread = threading.Thread(target=loop, name="sandbox-demo-order", daemon=True)
    thread.start()
    return thread
