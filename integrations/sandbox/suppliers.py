"""Dropshipping supplier emulators: the `api` dialect (paged, delta, live check), a Windows-1251
CSV price list, a YML feed and a signing webhook sender (interfaces.md, "Dropshipping suppliers").

Each emulator carries a share of the sandbox catalog's sellable items (every `stride`-th one from
`offset`, so two suppliers carry different goods), a few items by barcode instead of SKU (the
second matching rule) and a few SKUs the shop does not have (they show as unmapped). Mounted at
``/sup-alpha`` and ``/sup-beta``; Bearer ``sandbox-supplier-token``.

    GET  /sup-alpha/stock?page=1&per_page=500[&updated_since=ISO]  {"items": [{"sku","stock","updated_at"}]}
    GET  /sup-alpha/stock/{sku}        {"sku","stock"} (404 when not carried); `live_latency_ms`,
                                       `live_fail_every` (every Nth live answer is a 503) in config
    GET  /sup-beta/price.csv           header `sku;stock;name`, Windows-1251
    GET  /sup-beta/feed.xml            YML with <vendorCode>, <count> or available="true|false"
    control /_sandbox/sup-alpha/:      POST stock {"sku","stock"} | POST churn {"n"} | POST webhook
                                       {"url","secret","n"} (changes n figures and sends them signed)

Standard library only, like the rest of the sandbox.
"""
from __future__ import annotations

import hashlib
import hmac
import json
import random
import threading
import time
import urllib.error
import urllib.request
from datetime import datetime, timezone
from typing import Any
from xml.sax.saxutils import escape, quoteattr

from .catalog_gen import Catalog
from .common import ApiEmulator, Credentials, Request, Response, json_response
from .marketplace import sellable_items

TOKEN = "sandbox-supplier-token"
WEBHOOK_SECRET = "sandbox-supplier-secret"
EXTRA_SKUS = 3


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, tz=timezone.utc).isoformat(timespec="seconds")


def sign(secret: str, timestamp: int, body: bytes) -> str:
    return "sha256=" + hmac.new(secret.encode(), str(timestamp).encode() + b"." + body, hashlib.sha256).hexdigest()


def webhook_send(url: str, secret: str, items: list[dict], *, timeout: float = 10.0) -> int:
    """POST `{"items": items}` signed as a supplier signs it; returns the HTTP status."""
    body = json.dumps({"items": items}).encode()
    ts = int(time.time())
    request = urllib.request.Request(url, data=body, method="POST", headers={
        "Content-Type": "application/json", "X-Timestamp": str(ts), "X-Signature": sign(secret, ts, body)})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310 (sandbox tool)
            return response.status
    except urllib.error.HTTPError as exc:
        return exc.code


class SupplierEmulator(ApiEmulator):
    name = "supplier"
    api_root = ""

    def __init__(self, catalog: Catalog, *, name: str = "supplier", offset: int = 0, stride: int = 3,
                 limit: int | None = None, seed: int = 7, token: str = TOKEN, latency_ms: float = 0.0,
                 live_latency_ms: float = 0.0, live_fail_every: int = 0, rows: int | None = None) -> None:
        super().__init__(credentials=Credentials(token=token, login=None, password=None), rate_limit=False,
                         latency_ms=latency_ms)
        self.name = name
        self.live_latency_ms, self.live_fail_every = live_latency_ms, live_fail_every
        self._live_calls = 0
        self._lock = threading.Lock()
        self._rng = random.Random(seed)
        now = time.time()
        # sku -> [stock, updated_at, barcode, name]
        self.stock: dict[str, list] = {}
        self.by_barcode: set[str] = set()
        if rows is not None:   # a synthetic supplier of `rows` SKUs (benchmarks)
            for n in range(rows):
                self.stock[f"BENCH-{n:07d}"] = [n % 50, now, "", f"Товар {n}"]
        else:
            items = [it for n, it in enumerate(sellable_items(catalog)) if n % stride == offset]
            for n, item in enumerate(items[:limit] if limit else items):
                key = item.barcode if (n % 10 == 5 and item.barcode) else item.sku
                if key != item.sku:
                    self.by_barcode.add(key)
                self.stock[key] = [self._rng.choice((0, 1, 2, 5, 10, 25)), now, item.barcode, f"Товар {item.sku}"]
            for n in range(EXTRA_SKUS):
                self.stock[f"{name.upper()}-ONLY-{n + 1}"] = [3, now, "", "Только у поставщика"]
        self.router.add("GET", "stock", self._page, name="GET stock")
        self.router.add("GET", "stock/{sku:path}", self._one, name="GET stock/{sku}")
        self.router.add("GET", "price.csv", self._csv, name="GET price.csv")
        self.router.add("GET", "feed.xml", self._yml, name="GET feed.xml")
        self.control_router.add("POST", "stock", self._control_set)
        self.control_router.add("POST", "churn", lambda req: json_response({"changed": self.churn(
            int((req.json() or {}).get("n", 5)))}))
        self.control_router.add("POST", "webhook", self._control_webhook)
        self.control_router.add("GET", "stock", lambda req: json_response(
            {k: v[0] for k, v in sorted(self.stock.items())}))

    # -- api dialect ---------------------------------------------------------------------------
    def _page(self, request: Request) -> Response:
        page = max(1, int(request.arg("page", "1") or 1))
        per_page = max(1, min(5000, int(request.arg("per_page", "500") or 500)))
        since = request.arg("updated_since")
        since_ts = datetime.fromisoformat(since.replace(" ", "+")).timestamp() if since else None
        with self._lock:
            rows = [(sku, v) for sku, v in self.stock.items() if since_ts is None or v[1] >= since_ts]
        chunk = rows[(page - 1) * per_page: page * per_page]
        return json_response({"items": [{"sku": sku, "stock": v[0], "updated_at": _iso(v[1])} for sku, v in chunk]})

    def _one(self, request: Request) -> Response:
        with self._lock:
            self._live_calls += 1
            fail = self.live_fail_every and self._live_calls % self.live_fail_every == 0
            row = self.stock.get(request.params["sku"])
        if self.live_latency_ms:
            self.closing.wait(self.live_latency_ms / 1000.0)
        if fail:
            return json_response({"error": "temporarily unavailable"}, 503)
        if row is None:
            return json_response({"error": "not carried"}, 404)
        return json_response({"sku": request.params["sku"], "stock": row[0]})

    # -- feeds ---------------------------------------------------------------------------------
    def _csv(self, request: Request) -> Response:
        with self._lock:
            lines = ["sku;stock;name"] + [f"{sku};{v[0]};{v[3]}" for sku, v in self.stock.items()]
        body = ("\r\n".join(lines) + "\r\n").encode("cp1251", errors="replace")
        return Response(200, body, [], "text/csv; charset=windows-1251")

    def _yml(self, request: Request) -> Response:
        parts = ['<?xml version="1.0" encoding="UTF-8"?>\n<yml_catalog date=%s><shop><name>%s</name><offers>'
                 % (quoteattr(_iso(time.time())), escape(self.name))]
        with self._lock:
            for n, (sku, v) in enumerate(self.stock.items()):
                if n % 4 == 3:   # no <count>: available says it
                    parts.append(f'<offer id="o{n}" available="{"true" if v[0] else "false"}">'
                                 f'<vendorCode>{escape(sku)}</vendorCode><name>{escape(v[3])}</name></offer>')
                else:
                    barcode = f"<barcode>{escape(v[2])}</barcode>" if v[2] else ""
                    parts.append(f'<offer id="o{n}" available="true"><vendorCode>{escape(sku)}</vendorCode>'
                                 f'<name>{escape(v[3])}</name>{barcode}<count>{v[0]}</count></offer>')
        parts.append("</offers></shop></yml_catalog>\n")
        return Response(200, "".join(parts).encode(), [], "application/xml")

    # -- changes -------------------------------------------------------------------------------
    def set_stock(self, sku: str, stock: int) -> None:
        with self._lock:
            row = self.stock.setdefault(sku, [0, 0.0, "", sku])
            row[0], row[1] = int(stock), time.time()

    def churn(self, n: int) -> list[dict]:
        """Change `n` random figures (their updated_at moves, so a delta read sees them)."""
        with self._lock:
            skus = self._rng.sample(sorted(self.stock), min(n, len(self.stock)))
        changed = []
        for sku in skus:
            value = self._rng.choice((0, 0, 1, 3, 7, 12))
            self.set_stock(sku, value)
            changed.append({"sku": sku, "stock": value})
        return changed

    def _control_set(self, request: Request) -> Response:
        data = request.json() or {}
        self.set_stock(str(data["sku"]), int(data["stock"]))
        return json_response({"ok": True})

    def _control_webhook(self, request: Request) -> Response:
        data = request.json() or {}
        items = self.churn(int(data.get("n", 3)))
        status = webhook_send(str(data["url"]), str(data.get("secret", WEBHOOK_SECRET)), items)
        return json_response({"sent": items, "status": status})

    def configure(self, **options: Any) -> dict:
        for key in ("live_latency_ms", "live_fail_every"):
            if key in options:
                setattr(self, key, type(getattr(self, key))(options.pop(key)))
        return super().configure(**options)

    def config(self) -> dict:
        return {**super().config(), "live_latency_ms": self.live_latency_ms, "live_fail_every": self.live_fail_every}


def mount_suppliers(app, catalog: Catalog) -> dict[str, SupplierEmulator]:
    emulators = {
        "sup-alpha": SupplierEmulator(catalog, name="sup-alpha", offset=0, stride=3, seed=11),
        "sup-beta": SupplierEmulator(catalog, name="sup-beta", offset=1, stride=3, seed=12),
    }
    for name, emulator in emulators.items():
        app.mount(emulator, name)
    return emulators


def demo_suppliers(url: str) -> list[list[str]]:
    """`manage.py supplier add ...` argument lists for the two demo suppliers of `make run`."""
    return [
        ["supplier", "add", "alpha", "--kind", "api", "--url", f"{url}/sup-alpha", "--name", "Альфа (API)",
         "--token", TOKEN, "--secret", WEBHOOK_SECRET, "--realtime", "--zero-missing"],
        ["supplier", "add", "beta", "--kind", "csv", "--url", f"{url}/sup-beta/price.csv",
         "--name", "Бета (CSV, Windows-1251)", "--token", TOKEN],
    ]


def describe(url: str) -> list[str]:
    return ["", "Dropshipping suppliers:",
            f"  alpha (api): {url}/sup-alpha/stock  (live: /stock/<sku>; Bearer {TOKEN})",
            f"  beta (csv, cp1251): {url}/sup-beta/price.csv   YML: {url}/sup-beta/feed.xml",
            f"  webhook sender: POST {url}/_sandbox/sup-alpha/webhook "
            '{"url": "<site>/webhooks/suppliers/alpha/stock/", "n": 3}']
