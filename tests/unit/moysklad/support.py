"""Shared helpers for the MoySklad, HTTP and job tests: fixture files, row builders, a fake clock
and a small respx-backed MoySklad that pages, filters by store and records every request."""
from __future__ import annotations

import copy
import json
import re
import threading
import uuid
from pathlib import Path
from urllib.parse import parse_qs

import httpx
import pytest
import respx

from integrations.http import ratelimit
from integrations.http.client import BaseClient
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


# -- a small MoySklad ----------------------------------------------------------------------------
class Upstream:
    """Entity lists paged by limit/offset (as MoySklad does), the current-stock report per store
    and stock type, and a log of every request. `fail[entity]` may hold a function
    (request, offset) -> Response or None to inject failures."""

    def __init__(self, router: respx.MockRouter):
        self.entities: dict[str, list] = {"store": [], "productfolder": [], "product": [], "variant": []}
        self.stock: dict[str, list] = {"stock": [], "reserve": []}
        #: the account's price types, as `context/companysettings/pricetype` lists them
        self.price_types: list = [{"id": "p1", "name": "Цена продажи", "externalCode": "cbcf-p1"},
                                  {"id": "opt", "name": "Оптовая цена", "externalCode": "cbcf-opt"}]
        self.fail: dict[str, object] = {}
        #: ids a plain list read skips (as offset paging on moving data can); an id lookup finds them
        self.skipped_by_paging: set[str] = set()
        self.requests: list[httpx.Request] = []
        router.get(url__regex=rf"^{re.escape(BASE)}/entity/(?P<entity>[a-z]+)(\?.*)?$").mock(side_effect=self._list)
        router.get(url__regex=rf"^{re.escape(BASE)}/report/stock/bystore/current(\?.*)?$").mock(
            side_effect=self._stock)
        router.get(f"{BASE}/context/companysettings/pricetype").mock(side_effect=self._price_types)

    # helpers for assertions
    def calls(self, path_suffix: str) -> list[httpx.Request]:
        return [r for r in self.requests if r.url.path.endswith(path_suffix)]

    @staticmethod
    def params(request: httpx.Request) -> dict:
        return {k: v[0] for k, v in parse_qs(request.url.query.decode(), keep_blank_values=True).items()}

    def _list(self, request: httpx.Request, entity: str) -> httpx.Response:
        self.requests.append(request)
        params = self.params(request)
        limit, offset = int(params.get("limit", 1000)), int(params.get("offset", 0))
        if entity in self.fail:
            response = self.fail[entity](request, offset)
            if response is not None:
                return response
        rows = self.entities.get(entity)
        if rows is None:
            return httpx.Response(404, json=load("error_404_not_found"))
        conditions = [c for c in (params.get("filter") or "").split(";") if c]
        wanted_ids = {c[3:] for c in conditions if c.startswith("id=")}
        if wanted_ids:  # several `=` on one field are an OR
            rows = [r for r in rows if isinstance(r, dict) and r.get("id") in wanted_ids]
        else:
            rows = [r for r in rows if not (isinstance(r, dict) and r.get("id") in self.skipped_by_paging)]
        return httpx.Response(200, json=page(copy.deepcopy(rows[offset:offset + limit]), entity, size=len(rows),
                                             limit=limit, offset=offset))

    def _price_types(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        if "pricetype" in self.fail:
            response = self.fail["pricetype"](request, 0)
            if response is not None:
                return response
        return httpx.Response(200, json=copy.deepcopy(self.price_types))

    def _stock(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        params = self.params(request)
        kind = params.get("stockType", "stock")
        store_ids = set()
        for cond in (params.get("filter") or "").split(";"):
            if cond.startswith("storeId="):
                store_ids.update(cond[len("storeId="):].split(","))
        rows = [r for r in self.stock.get(kind, [])
                if not store_ids or not isinstance(r, dict) or r.get("storeId") in store_ids]
        return httpx.Response(200, json=copy.deepcopy(rows))


@pytest.fixture
def ms(moysklad_settings, isolated_limiters, fast_backoff):
    """A configured MoySklad at BASE, served by `Upstream` through respx (no network)."""
    with respx.mock(assert_all_called=False) as router:
        yield Upstream(router)
