"""A small MoySklad for the order tests, served through respx (no network): organizations,
stores, counterparties, customer orders with states and positions, demands, webhooks, and the
catalog rows webhook events point at. It honours syncId on create (a repeat returns the order
that syncId made), filters by externalCode / email, searches counterparties, and logs every
request so tests can count them and check headers.

Fault injection: `drop_after_create` makes the next N order creates succeed upstream and then
fail to reach us (httpx.ReadError), as a dropped connection would.
"""
from __future__ import annotations

import copy
import json
import re
import uuid
from datetime import datetime, timedelta
from urllib.parse import parse_qs

import httpx
import pytest
import respx

from integrations.moysklad.constants import MSK

BASE = "https://ms.test/api/remap/1.2"

STATES = [("Новый", "Regular"), ("Подтвержден", "Regular"), ("Собран", "Regular"), ("Отгружен", "Regular"),
          ("Доставлен", "Successful"), ("Возврат", "Unsuccessful"), ("Отменен", "Unsuccessful")]


def meta(entity: str, id_: str, type_: str | None = None) -> dict:
    return {"meta": {"href": f"{BASE}/entity/{entity}/{id_}", "type": type_ or entity, "mediaType": "application/json"}}


def _error(status: int, code: int, text: str) -> httpx.Response:
    return httpx.Response(status, json={"errors": [{"error": text, "code": code}]})


class FakeMoySklad:
    def __init__(self, router: respx.MockRouter):
        self.requests: list[httpx.Request] = []
        # MoySklad's clock (naive Moscow time), derived from now: tests never depend on the date.
        self.clock = datetime.now(MSK).replace(tzinfo=None, microsecond=0)
        self.organizations = [{"id": str(uuid.UUID(int=1)), "name": "ООО Ромашка", "archived": False}]
        self.stores = [{"id": str(uuid.UUID(int=2)), "name": "Основной склад", "archived": False}]
        self.states = [{"id": str(uuid.UUID(int=100 + i)), "name": name, "stateType": kind,
                        **meta("customerorder/metadata/states", str(uuid.UUID(int=100 + i)), "state")}
                       for i, (name, kind) in enumerate(STATES)]
        self.counterparties: dict[str, dict] = {}
        self.orders: dict[str, dict] = {}
        self.demands: dict[str, dict] = {}
        self.entities: dict[str, dict[str, dict]] = {"product": {}, "variant": {}}
        self.webhooks: dict[str, dict] = {}
        self.webhookstocks: dict[str, dict] = {}
        self.drop_after_create = 0
        self.honour_sync_id = True
        self.fail_next: list[httpx.Response] = []
        router.route(url__startswith=BASE).mock(side_effect=self._handle)

    # -- helpers for tests -----------------------------------------------------------------------
    def tick(self, seconds: int = 1) -> str:
        self.clock += timedelta(seconds=seconds)
        return self.clock.strftime("%Y-%m-%d %H:%M:%S.000")

    def state_id(self, name: str) -> str:
        return next(s["id"] for s in self.states if s["name"] == name)

    def calls(self, method: str | None = None, path: str | None = None) -> list[httpx.Request]:
        return [r for r in self.requests if (method is None or r.method == method)
                and (path is None or r.url.path.endswith(path))]

    def set_state(self, order_id: str, name: str) -> dict:
        order = self.orders[order_id]
        order["state"] = meta("customerorder/metadata/states", self.state_id(name), "state")
        order["updated"] = self.tick()
        return copy.deepcopy(order)

    def ship(self, order_id: str, quantities: dict[str, float] | None = None) -> dict:
        """Create a demand for the order: `quantities` by assortment id (default: everything left)."""
        order = self.orders[order_id]
        demand_id = str(uuid.uuid4())
        positions = []
        for pos in order["_positions"]:
            item = pos["assortment"]["meta"]["href"].rsplit("/", 1)[-1]
            left = pos["quantity"] - pos["shipped"]
            qty = left if quantities is None else min(quantities.get(item, 0), left)
            if qty > 0:
                pos["shipped"] += qty
                positions.append({"assortment": copy.deepcopy(pos["assortment"]), "quantity": qty,
                                  "price": pos["price"]})
        now = self.tick()
        self.demands[demand_id] = {"id": demand_id, **meta("demand", demand_id), "updated": now,
                                   "customerOrder": meta("customerorder", order_id), "positions": positions}
        order["updated"] = now
        order.setdefault("demands", []).append(meta("demand", demand_id))
        return copy.deepcopy(self.demands[demand_id])

    def order_by_code(self, code: str) -> dict | None:
        return next((o for o in self.orders.values() if o.get("externalCode") == code), None)

    # -- dispatch ---------------------------------------------------------------------------------
    def _handle(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        if self.fail_next:
            return self.fail_next.pop(0)
        path = request.url.path[len("/api/remap/1.2"):]
        params = {k: v[0] for k, v in parse_qs(request.url.query.decode(), keep_blank_values=True).items()}
        body = json.loads(request.content) if request.content else None
        m = request.method
        if m == "GET" and path == "/entity/organization":
            return self._list(self.organizations)
        if m == "GET" and path == "/entity/store":
            return self._list(self.stores)
        if m == "GET" and path == "/entity/customerorder/metadata":
            return httpx.Response(200, json={"states": copy.deepcopy(self.states), "attributes": []})
        if m == "GET" and path == "/context/companysettings/pricetype":   # the account's price types
            return httpx.Response(200, json=[{"id": "pt", "name": "Цена продажи", "externalCode": "pt-ext"},
                                             {"id": "opt", "name": "Оптовая цена", "externalCode": "opt-ext"}])
        if path == "/entity/counterparty":
            return self._counterparty(m, params, body)
        if path == "/entity/customerorder":
            return self._customerorders(m, params, body)
        match = re.fullmatch(r"/entity/customerorder/([^/]+)(/positions)?", path)
        if match and m == "GET":
            order = self.orders.get(match.group(1))
            if order is None:
                return _error(404, 1021, "not found")
            if match.group(2):
                return self._list(copy.deepcopy(order["_positions"]))
            return httpx.Response(200, json=self._order_out(order, "positions" in params.get("expand", "")))
        match = re.fullmatch(r"/entity/demand/([^/]+)", path)
        if match and m == "GET":
            demand = self.demands.get(match.group(1))
            return httpx.Response(200, json=copy.deepcopy(demand)) if demand else _error(404, 1021, "not found")
        match = re.fullmatch(r"/entity/(product|variant|demand)", path)
        if match and m == "GET":
            # Lists read by id (`filter=id=a;id=b;…`), as the webhook events are fetched in bulk.
            store = self.demands if match.group(1) == "demand" else self.entities[match.group(1)]
            ids = self._ids(params)
            return self._list([row for key, row in store.items() if ids is None or key in ids])
        match = re.fullmatch(r"/entity/(product|variant)/([^/]+)", path)
        if match and m == "GET":
            row = self.entities[match.group(1)].get(match.group(2))
            return httpx.Response(200, json=copy.deepcopy(row)) if row else _error(404, 1021, "not found")
        match = re.fullmatch(r"/entity/(webhook|webhookstock)(?:/([^/]+))?", path)
        if match:
            return self._webhooks(m, match.group(1), match.group(2), body)
        if m == "GET" and path.startswith("/report/stock/bystore/current"):
            return httpx.Response(200, json=[])
        return _error(404, 1005, f"fake MoySklad does not know {m} {path}")

    def _list(self, rows: list) -> httpx.Response:
        return httpx.Response(200, json={"meta": {"size": len(rows), "limit": 1000, "offset": 0},
                                         "rows": copy.deepcopy(rows)})

    @staticmethod
    def _filters(params: dict) -> dict[str, str]:
        out = {}
        for cond in re.split(r"(?<!\\);", params.get("filter", "")):
            if "=" in cond and not any(op in cond for op in (">=", "<=")):
                k, v = cond.split("=", 1)
                if k != "id":  # several ids mean "any of them": see _ids
                    out[k] = v.replace("\\;", ";")
        return out

    @staticmethod
    def _ids(params: dict) -> set[str] | None:
        ids = {cond[3:] for cond in params.get("filter", "").split(";") if cond.startswith("id=")}
        return ids or None

    def _counterparty(self, m: str, params: dict, body) -> httpx.Response:
        if m == "GET":
            rows = list(self.counterparties.values())
            for k, v in self._filters(params).items():
                rows = [r for r in rows if str(r.get(k, "")) == v]
            if params.get("search"):
                text = params["search"]
                rows = [r for r in rows if text in re.sub(r"\D", "", r.get("phone", "")) or text in r.get("email", "")
                        or text in r.get("name", "")]
            return self._list(rows[:int(params.get("limit", 1000))])
        if m == "POST":
            for row in self.counterparties.values():
                if body.get("syncId") and row.get("syncId") == body["syncId"]:
                    return httpx.Response(200, json=copy.deepcopy(row))
            cid = str(uuid.uuid4())
            row = {"id": cid, **meta("counterparty", cid), "updated": self.tick(), **body}
            self.counterparties[cid] = row
            return httpx.Response(200, json=copy.deepcopy(row))
        return _error(405, 1005, "method")

    def _customerorders(self, m: str, params: dict, body) -> httpx.Response:
        if m == "GET":
            rows = list(self.orders.values())
            for k, v in self._filters(params).items():
                rows = [r for r in rows if str(r.get(k, "")) == v]
            ids = self._ids(params)
            rows = [r for r in rows if ids is None or r["id"] in ids]
            expand = "positions" in params.get("expand", "")
            return self._list([self._order_out(r, expand) for r in rows][:int(params.get("limit", 1000))])
        if m == "POST":
            missing = [f for f in ("organization", "agent") if not body.get(f)]
            if missing:
                return _error(412, 3000, f"missing {missing[0]}")
            if self.honour_sync_id:
                for row in self.orders.values():
                    if row.get("syncId") == body.get("syncId"):
                        return httpx.Response(200, json=self._order_out(row, False))
            oid = str(uuid.uuid4())
            positions = [{"id": str(uuid.uuid4()), "shipped": 0, **p} for p in body.get("positions", [])]
            row = {k: v for k, v in body.items() if k != "positions"}
            row.update({"id": oid, **meta("customerorder", oid), "name": f"{len(self.orders) + 1:05d}",
                        "updated": self.tick(), "_positions": positions,
                        "state": row.get("state")
                        or meta("customerorder/metadata/states", self.state_id("Новый"), "state")})
            row["meta"]["uuidHref"] = f"https://online.moysklad.ru/app/#customerorder/edit?id=ui-{oid}"
            self.orders[oid] = row
            if self.drop_after_create:
                self.drop_after_create -= 1
                raise httpx.ReadError("connection dropped after the order was created", request=None)
            return httpx.Response(200, json=self._order_out(row, False))
        return _error(405, 1005, "method")

    def _order_out(self, row: dict, expand: bool) -> dict:
        out = {k: copy.deepcopy(v) for k, v in row.items() if not k.startswith("_")}
        href = f"{BASE}/entity/customerorder/{row['id']}/positions"
        if expand:
            out["positions"] = {"meta": {"href": href, "size": len(row["_positions"])},
                                "rows": copy.deepcopy(row["_positions"])}
        else:
            out["positions"] = {"meta": {"href": href, "size": len(row["_positions"])}}
        return out

    def _webhooks(self, m: str, kind: str, wid: str | None, body) -> httpx.Response:
        store = self.webhooks if kind == "webhook" else self.webhookstocks
        if m == "GET" and wid is None:
            return self._list(list(store.values()))
        if m == "POST":
            for w in store.values():
                same = (w["url"] == body["url"] and (w.get("entityType"), w.get("action")) ==
                        (body.get("entityType"), body.get("action"))) if kind == "webhook" else (
                    w["url"] == body["url"] and w.get("reportType") == body.get("reportType"))
                if same:
                    return _error(412, 30003, "duplicate webhook")
            new_id = str(uuid.uuid4())
            store[new_id] = {"id": new_id, "enabled": True, **body}
            return httpx.Response(200, json=copy.deepcopy(store[new_id]))
        if wid not in store:
            return _error(404, 1021, "not found")
        if m == "PUT":
            store[wid].update(body)
            return httpx.Response(200, json=copy.deepcopy(store[wid]))
        if m == "DELETE":
            del store[wid]
            return httpx.Response(200)
        return httpx.Response(200, json=copy.deepcopy(store[wid]))


@pytest.fixture
def fake_ms(settings):
    """A configured MoySklad at BASE backed by FakeMoySklad; in-process limiters, fast back-off."""
    from integrations.http import ratelimit

    settings.MOYSKLAD = {**settings.MOYSKLAD, "BASE_URL": BASE, "TOKEN": "test-token", "LOGIN": "", "PASSWORD": "",
                         "BUDGET_UNITS": 10_000, "REQUEST_WEIGHT": 1, "ORGANIZATION_ID": "", "STORE_ID": "",
                         "PRICE_TYPE": "", "WEBHOOK_TOKEN": "hook-secret-token"}
    settings.REDIS_URL = ""
    settings.SITE_URL = "https://shop.example.com"
    ratelimit._registry.clear()
    from django.core.cache import cache

    cache.clear()
    with respx.mock(assert_all_called=False) as router:
        yield FakeMoySklad(router)
    ratelimit._registry.clear()
