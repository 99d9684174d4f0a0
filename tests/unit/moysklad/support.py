"""Shared helpers for the MoySklad and HTTP tests: captured payloads (for single respx routes of
client-level tests), row builders (for the pure page-import functions), a fake clock and local
limiters. MoySklad itself — paging, filters, stock reports, errors, limits — is the sandbox's,
in-process (tests/sandbox_respx.py)."""
from __future__ import annotations

import json
import threading
import uuid
from pathlib import Path

import httpx

from integrations.http.ratelimit import Limiter

BASE = "https://ms.test/api/remap/1.2"
FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "moysklad"


def load(name: str):
    """A captured payload from tests/fixtures/moysklad/<name>.json (a fresh copy each time)."""
    return json.loads((FIXTURES / f"{name}.json").read_text(encoding="utf-8"))


def error_response(status: int, fixture: str | None = None, headers: dict | None = None) -> httpx.Response:
    if fixture is None:
        return httpx.Response(status, headers=headers or {})
    return httpx.Response(status, json=load(fixture), headers=headers or {})


# -- clocks and limiters -------------------------------------------------------------------------
class FakeClock:
    """time.time + time.sleep that only advance when slept on."""

    def __init__(self, start: float = 1_800_000_000.0):
        self.now = start
        self.slept: list[float] = []
        self._lock = threading.Lock()

    def time(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        with self._lock:
            self.slept.append(seconds)
            self.now += seconds


def local_limiter(*, units: int = 1000, window: float = 3.0, parallel: int = 5, **kwargs) -> Limiter:
    return Limiter(f"test:{uuid.uuid4().hex[:8]}", units=units, window=window, parallel=parallel, **kwargs)


# -- row builders --------------------------------------------------------------------------------
def uid(prefix: str, i: int) -> str:
    return f"{prefix}-0000-0000-0000-{i:012d}"


def meta(entity: str, id_: str) -> dict:
    return {"meta": {"href": f"{BASE}/entity/{entity}/{id_}", "type": entity, "mediaType": "application/json"}}


def price(value, name: str = "Цена продажи") -> list:
    return [{"value": value, "priceType": {"id": "p1", "name": name}}]


def product(i: int, **kw) -> dict:
    id_ = kw.pop("id", uid("11111111", i))
    row = {"meta": meta("product", id_)["meta"], "id": id_, "name": f"Товар {i}", "article": f"ART-{i}",
           "code": f"{i:05d}", "externalCode": f"ext-{i}", "archived": False, "updated": "2026-11-20 10:00:00.000",
           "variantsCount": 0, "salePrices": price(149900.0), "barcodes": [{"ean13": f"2{i:012d}"}]}
    folder = kw.pop("folder", None)
    if folder:
        row["productFolder"] = meta("productfolder", folder)
    row.update(kw)
    return row


def variant(i: int, product_id: str, **kw) -> dict:
    id_ = kw.pop("id", uid("33333333", i))
    row = {"meta": meta("variant", id_)["meta"], "id": id_, "name": f"Вариант {i}", "code": f"VAR-{i}",
           "archived": False, "updated": "2026-11-20 10:00:00.000", "salePrices": price(99900.0),
           "characteristics": [{"name": "Размер", "value": str(i)}], "product": meta("product", product_id)}
    row.update(kw)
    return row


def folder(i: int, parent: str | None = None, **kw) -> dict:
    id_ = kw.pop("id", uid("ffffffff", i))
    row = {"meta": meta("productfolder", id_)["meta"], "id": id_, "name": f"Папка {i}", "archived": False,
           "updated": "2026-11-01 10:00:00.000"}
    if parent:
        row["productFolder"] = meta("productfolder", parent)
    row.update(kw)
    return row


def store(i: int, **kw) -> dict:
    id_ = kw.pop("id", uid("aaaaaaaa", i))
    row = {"meta": meta("store", id_)["meta"], "id": id_, "name": f"Склад {i}", "code": f"st{i}",
           "archived": False, "updated": "2026-11-01 09:00:00.000"}
    row.update(kw)
    return row


def page(rows: list, entity: str, *, size: int | None = None, limit: int = 1000, offset: int = 0) -> dict:
    size = len(rows) if size is None else size
    envelope = {"meta": {"href": f"{BASE}/entity/{entity}?limit={limit}&offset={offset}", "type": entity,
                         "mediaType": "application/json", "size": size, "limit": limit, "offset": offset},
                "rows": rows}
    if offset + limit < size:
        envelope["meta"]["nextHref"] = f"{BASE}/entity/{entity}?limit={limit}&offset={offset + limit}"
    return envelope
