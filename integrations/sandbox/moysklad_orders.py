"""The order side of the MoySklad emulator: counterparties, customer orders with their states
metadata, demands (shipments), webhook subscriptions, and MoySklad-shaped notifications POSTed to
the subscribed URLs when the data changes.

Plugged into ``MoySkladEmulator`` by ``install(emulator)`` (called from its constructor): routes on
``emulator.router`` under ``api/remap/1.2/``, control endpoints under ``/_sandbox/moysklad/orders``,
and ``emulator.orders`` (an ``OrderBook``) for tests and the scripted manager (scenarios.py).

Behaviour copied from /work/shared/docs/api/moysklad.md:

* ``POST entity/customerorder`` with a ``syncId`` that made an order before answers that order (no
  second one); ``organization`` and ``agent`` are required; positions point at product or variant
  metas and ``reserve`` reserves stock at the order's store (the stock reports show it).
* ``GET entity/customerorder?filter=externalCode=…;updated>=…&order=updated,asc;id&expand=positions``
  (expand only up to limit 100), ``GET …/{id}[?expand=positions]``, ``GET …/{id}/positions``,
  ``PUT …/{id}`` (state, description), ``GET entity/customerorder/metadata`` (states: Новый,
  Подтвержден, Собран, Отгружен, Доставлен, Возврат, Отменен).
* ``entity/counterparty`` (filter by externalCode, email, phone; ``search=`` over name, e-mail and
  phone digits; create with syncId), ``entity/demand`` (linked to its order; the order's
  positions count ``shipped``).
* ``entity/webhook`` and ``entity/webhookstock``: unique (entityType, action, url) → error 30003,
  at most 5 per kind → 30007, url ≤ 255 → 30010.
* Notifications: ``POST <url>?requestId=<uuid>`` with ``{"auditContext": …, "events": [{meta,
  action, accountId}]}`` (links only, no data), 1.5 s to answer 200/204, then 3 immediate retries,
  then dropped. A write carrying ``X-Lognex-WebHook-DisableByPrefix`` does not notify subscribers
  under that prefix. Stock subscribers get ``{reportUrl: …/report/stock/<type>/current?changedSince=…}``.

Standard library only, like the rest of the sandbox.
"""
from __future__ import annotations

import copy
import json
import logging
import os
import queue
import threading
import time
import urllib.error
import urllib.request
import uuid
from dataclasses import dataclass, field
from typing import Any, Callable

from .catalog_gen import ORGANIZATION, PRODUCT, STORE, VARIANT, format_msk, parse_msk
from .common import ApiError, Page, Request, Response, drop_response, json_response
from .moysklad import API_ROOT, MEDIA, UI_BASE, parse_filter

log = logging.getLogger("integrations.sandbox.orders")

E_REQUIRED = 3000
E_BAD_REFERENCE = 3002
E_NOT_FOUND = 1021
E_WEBHOOK_DUPLICATE = 30003
E_WEBHOOK_TOO_MANY = 30007
E_WEBHOOK_URL = 30010
DELIVERY_TIMEOUT = 1.5
DELIVERY_ATTEMPTS = 4          # the first try and 3 immediate retries
STATES = (("Новый", "Regular", 15280409), ("Подтвержден", "Regular", 10774205), ("Собран", "Regular", 8825440),
          ("Отгружен", "Regular", 9494304), ("Доставлен", "Successful", 34617), ("Возврат", "Unsuccessful", 10066329),
          ("Отменен", "Unsuccessful", 15106326))
FINAL_STATES = ("Доставлен", "Возврат", "Отменен")


def _ui_id(api_id: str) -> str:
    """The UI's id of an object differs from the API's (meta.uuidHref)."""
    return str(uuid.uuid5(uuid.NAMESPACE_URL, api_id))


def _digits(text: str | None) -> str:
    return "".join(ch for ch in (text or "") if ch.isdigit())


@dataclass
class Delivery:
    url: str
    request_id: str
    body: dict
    attempts: int = 0
    status: int | None = None
    ok: bool = False
    error: str = ""


@dataclass
class OrderBook:
    """All order-side state of one emulator, behind one lock."""

    emulator: Any
    lock: threading.RLock = field(default_factory=threading.RLock)
    counterparties: dict[str, dict] = field(default_factory=dict)
    orders: dict[str, dict] = field(default_factory=dict)
    demands: dict[str, dict] = field(default_factory=dict)
    webhooks: dict[str, dict] = field(default_factory=dict)
    webhookstocks: dict[str, dict] = field(default_factory=dict)
    states: list[dict] = field(default_factory=list)
    deliveries: list[Delivery] = field(default_factory=list)
    suppressed: int = 0
    drop_after_create: int = 0
    #: False: creates ignore ``syncId`` (each POST makes a new order), a MoySklad whose dedup
    #: failed; what our externalCode lookup before a re-create must survive.
    honour_sync_id: bool = True
    _outbox: "queue.Queue[Delivery | None]" = field(default_factory=queue.Queue)
    _sender: threading.Thread | None = None
    _pending: int = 0
    _idle: threading.Condition = field(default_factory=threading.Condition)
    _stock_dirty_since: int | None = None
    _stock_ticker: threading.Thread | None = None
    stock_notify_seconds: float = 1.0

    def __post_init__(self) -> None:
        namespace = uuid.UUID(self.emulator.catalog.account_id) if _is_uuid(self.emulator.catalog.account_id) \
            else uuid.NAMESPACE_OID
        self.states = [{"id": str(uuid.uuid5(namespace, f"state:{name}")), "name": name, "stateType": kind,
                        "color": color} for name, kind, color in STATES]

    # -- addresses --------------------------------------------------------------------------------
    def api(self, request: Request | None = None) -> str:
        if request is not None:
            return self.emulator.api_base(request)
        return f"{self.emulator.default_origin}/{self.emulator.name}/{API_ROOT.rstrip('/')}"

    def meta(self, api: str, entity: str, id_: str, *, ui: str | None = None, type_: str | None = None) -> dict:
        m = {"href": f"{api}/entity/{entity}/{id_}", "metadataHref": f"{api}/entity/{entity}/metadata",
             "type": type_ or entity, "mediaType": MEDIA}
        if ui:
            m["uuidHref"] = f"{UI_BASE}{ui}/edit?id={_ui_id(id_)}"
        return m

    def state_meta(self, api: str, state_id: str) -> dict:
        return {"meta": {"href": f"{api}/entity/customerorder/metadata/states/{state_id}", "type": "state",
                         "mediaType": MEDIA}}

    def state_id(self, name: str) -> str:
        for state in self.states:
            if state["name"] == name:
                return state["id"]
        raise KeyError(f"no state {name!r}")

    def state_name(self, state_id: str) -> str:
        return next((s["name"] for s in self.states if s["id"] == state_id), "")

    # -- rendering --------------------------------------------------------------------------------
    def render_counterparty(self, api: str, row: dict) -> dict:
        out = {k: copy.deepcopy(v) for k, v in row.items() if not k.startswith("_")}
        out["meta"] = self.meta(api, "counterparty", row["id"], ui="company")
        out["updated"] = format_msk(row["_updated"])
        out["created"] = format_msk(row["_created"])
        out["accountId"] = self.emulator.catalog.account_id
        return out

    def render_position(self, api: str, pos: dict) -> dict:
        kind, aid = pos["_kind"], pos["_assortment"]
        return {"meta": {"href": f"{api}/entity/customerorder/{pos['_order']}/positions/{pos['id']}",
                         "type": "customerorderposition", "mediaType": MEDIA},
                "id": pos["id"], "accountId": self.emulator.catalog.account_id, "quantity": pos["quantity"],
                "price": pos["price"], "discount": pos.get("discount", 0), "vat": pos.get("vat", 0),
                "vatEnabled": bool(pos.get("vat")), "reserve": pos.get("reserve", 0), "shipped": pos["shipped"],
                "assortment": {"meta": {"href": f"{api}/entity/{kind}/{aid}", "type": kind, "mediaType": MEDIA}}}

    def render_order(self, api: str, row: dict, *, expand_positions: bool) -> dict:
        out = {k: copy.deepcopy(v) for k, v in row.items() if not k.startswith("_")}
        oid = row["id"]
        out["meta"] = self.meta(api, "customerorder", oid, ui="customerorder")
        out["accountId"] = self.emulator.catalog.account_id
        out["updated"] = format_msk(row["_updated"])
        out["created"] = format_msk(row["_created"])
        out["moment"] = format_msk(row["_moment"])
        out["organization"] = {"meta": self.meta(api, "organization", row["_organization"])}
        out["agent"] = {"meta": self.meta(api, "counterparty", row["_agent"])}
        if row.get("_store"):
            out["store"] = {"meta": self.meta(api, "store", row["_store"])}
        out["state"] = self.state_meta(api, row["_state"])
        positions = row["_positions"]
        out["sum"] = float(sum(p["price"] * p["quantity"] for p in positions))
        out["shippedSum"] = float(sum(p["price"] * p["shipped"] for p in positions))
        out["reservedSum"] = float(sum(p["price"] * p.get("reserve", 0) for p in positions))
        href = f"{api}/entity/customerorder/{oid}/positions"
        out["positions"] = {"meta": {"href": href, "type": "customerorderposition", "mediaType": MEDIA,
                                     "size": len(positions), "limit": 1000, "offset": 0}}
        if expand_positions:
            out["positions"]["rows"] = [self.render_position(api, p) for p in positions]
        if row["_demands"]:
            out["demands"] = [{"meta": self.meta(api, "demand", d)} for d in row["_demands"]]
        out["applicable"] = True
        return out

    def render_demand(self, api: str, row: dict) -> dict:
        out = {"id": row["id"], "meta": self.meta(api, "demand", row["id"], ui="demand"), "name": row["name"],
               "accountId": self.emulator.catalog.account_id, "updated": format_msk(row["_updated"]),
               "created": format_msk(row["_created"]), "moment": format_msk(row["_created"]), "applicable": True,
               "customerOrder": {"meta": self.meta(api, "customerorder", row["_order"])},
               "organization": {"meta": self.meta(api, "organization", row["_organization"])},
               "agent": {"meta": self.meta(api, "counterparty", row["_agent"])}}
        if row.get("_store"):
            out["store"] = {"meta": self.meta(api, "store", row["_store"])}
        out["positions"] = {"meta": {"href": f"{api}/entity/demand/{row['id']}/positions",
                                     "size": len(row["_positions"])},
                            "rows": [{"quantity": p["quantity"], "price": p["price"],
                                      "assortment": {"meta": {"href": f"{api}/entity/{p['_kind']}/{p['_assortment']}",
                                                              "type": p["_kind"], "mediaType": MEDIA}}}
                                     for p in row["_positions"]]}
        return out

    # -- business operations (API handlers and the scripted manager both use these) ---------------
    def tick(self) -> int:
        """A fresh `updated` stamp, strictly after every earlier one of this book."""
        with self.lock:
            now = self.emulator.catalog.now_ms()
            last = getattr(self, "_last_stamp", 0)
            stamp = max(now, last + 1)
            self._last_stamp = stamp
            return stamp

    def create_counterparty(self, body: dict) -> tuple[dict, bool]:
        with self.lock:
            sync_id = body.get("syncId")
            if sync_id:
                for row in self.counterparties.values():
                    if row.get("syncId") == sync_id:
                        return row, False
            if not str(body.get("name") or "").strip():
                raise ApiError(412, E_REQUIRED, "Ошибка сохранения объекта: поле 'name' не может быть пустым "
                               "или отсутствовать", parameter="name")
            cid = str(uuid.uuid4())
            stamp = self.tick()
            row = {"id": cid, "name": str(body["name"])[:255], "companyType": body.get("companyType", "legal"),
                   "externalCode": str(body.get("externalCode") or uuid.uuid4().hex)[:255],
                   "_created": stamp, "_updated": stamp}
            for key in ("email", "phone", "syncId", "actualAddress", "description"):
                if body.get(key) is not None:
                    row[key] = body[key]
            self.counterparties[cid] = row
            return row, True

    def _assortment(self, position: dict, i: int) -> tuple[str, str, int, int]:
        href = ((position.get("assortment") or {}).get("meta") or {}).get("href") or ""
        parts = href.rstrip("/").rsplit("/", 2)
        if len(parts) < 3 or parts[-2] not in ("product", "variant"):
            raise ApiError(412, E_BAD_REFERENCE, f"Ошибка сохранения объекта: позиция {i}: неверная ссылка "
                           "на товар", parameter="positions")
        kind_name, aid = parts[-2], parts[-1]
        hit = self.emulator.catalog.resolve(aid.lower(), PRODUCT if kind_name == "product" else VARIANT)
        if hit is None:
            raise ApiError(412, E_BAD_REFERENCE, f"Ошибка сохранения объекта: позиция {i}: объект "
                           f"'{aid}' не найден", parameter="positions")
        return kind_name, aid, hit[0], hit[1]

    def _reference(self, body: dict, key: str) -> str | None:
        href = ((body.get(key) or {}).get("meta") or {}).get("href")
        return href.rstrip("/").rsplit("/", 1)[-1] if href else None

    def create_order(self, body: dict) -> tuple[dict, bool]:
        """(order, created). A syncId seen before answers the order it made."""
        with self.lock:
            sync_id = body.get("syncId")
            if sync_id and self.honour_sync_id:
                for row in self.orders.values():
                    if row.get("syncId") == sync_id:
                        return row, False
            org, agent, store = (self._reference(body, k) for k in ("organization", "agent", "store"))
            cat = self.emulator.catalog
            if not org:
                raise ApiError(412, E_REQUIRED, "Ошибка сохранения объекта: поле 'organization' не может быть "
                               "пустым или отсутствовать", parameter="organization")
            if org != cat.id_of(ORGANIZATION, 0):
                raise ApiError(412, E_BAD_REFERENCE, f"Организация '{org}' не найдена", parameter="organization")
            if not agent:
                raise ApiError(412, E_REQUIRED, "Ошибка сохранения объекта: поле 'agent' не может быть пустым "
                               "или отсутствовать", parameter="agent")
            if agent not in self.counterparties:
                raise ApiError(412, E_BAD_REFERENCE, f"Контрагент '{agent}' не найден", parameter="agent")
            store_idx = None
            if store:
                hit = cat.resolve(store.lower(), STORE)
                if hit is None:
                    raise ApiError(412, E_BAD_REFERENCE, f"Склад '{store}' не найден", parameter="store")
                store_idx = hit[1]
            positions_in = body.get("positions") or []
            if len(positions_in) > 1000:
                raise ApiError(413, 3004, "Превышено максимальное количество элементов в массиве (1000)")
            oid = str(uuid.uuid4())
            positions = []
            for i, pos in enumerate(positions_in):
                kind_name, aid, kind, idx = self._assortment(pos, i)
                quantity = float(pos.get("quantity") or 0)
                reserve = min(float(pos.get("reserve") or 0), quantity) if store_idx is not None else 0.0
                positions.append({"id": str(uuid.uuid4()), "_order": oid, "_kind": kind_name, "_assortment": aid,
                                  "_k": kind, "_i": idx, "quantity": quantity, "price": float(pos.get("price") or 0),
                                  "discount": pos.get("discount", 0), "vat": pos.get("vat", 0), "reserve": reserve,
                                  "shipped": 0.0})
            state = self._reference(body, "state") or self.state_id("Новый")
            stamp = self.tick()
            moment = body.get("moment")
            row = {"id": oid, "name": body.get("name") or f"{len(self.orders) + 1:05d}",
                   "externalCode": str(body.get("externalCode") or uuid.uuid4().hex)[:255],
                   "_created": stamp, "_updated": stamp, "_moment": parse_msk(moment) if moment else stamp,
                   "_organization": org, "_agent": agent, "_store": store, "_store_idx": store_idx,
                   "_state": state, "_positions": positions, "_demands": []}
            for key in ("syncId", "description", "shipmentAddress", "vatEnabled", "vatIncluded"):
                if body.get(key) is not None:
                    row[key] = body[key]
            self.orders[oid] = row
            self._reserve(row, +1)
            return row, True

    def _reserve(self, order: dict, sign: int) -> None:
        """Add (or take back) the unshipped reserve of the order at its store."""
        if order.get("_store_idx") is None:
            return
        cat = self.emulator.catalog
        for pos in order["_positions"]:
            qty = max(0.0, min(pos.get("reserve", 0), pos["quantity"] - pos["shipped"]))
            if qty:
                st, rs, _it, _moved = cat.cell(pos["_k"], pos["_i"], order["_store_idx"])
                cat.set_stock(pos["_k"], pos["_i"], order["_store_idx"], reserve=max(0.0, rs + sign * qty))
        self.stock_changed()

    def set_state(self, order_id: str, name_or_id: str) -> dict:
        with self.lock:
            order = self._order(order_id)
            state = name_or_id if any(s["id"] == name_or_id for s in self.states) else self.state_id(name_or_id)
            if state == order["_state"]:
                return order
            cancelled_before = self.state_name(order["_state"]) == "Отменен"
            order["_state"] = state
            order["_updated"] = self.tick()
            now_cancelled = self.state_name(state) == "Отменен"
            if now_cancelled and not cancelled_before:
                self._reserve(order, -1)
            elif cancelled_before and not now_cancelled:
                self._reserve(order, +1)
            return order

    def ship(self, order_id: str, quantities: dict[str, float] | None = None) -> dict:
        """Create a demand for the order: ``quantities`` by assortment id (default: all that is
        left). Stock and reserve at the order's store go down by what ships."""
        with self.lock:
            order = self._order(order_id)
            cat = self.emulator.catalog
            shipped = []
            for pos in order["_positions"]:
                left = pos["quantity"] - pos["shipped"]
                qty = left if quantities is None else min(float(quantities.get(pos["_assortment"], 0)), left)
                if qty <= 0:
                    continue
                if order.get("_store_idx") is not None:
                    st, rs, _it, _moved = cat.cell(pos["_k"], pos["_i"], order["_store_idx"])
                    from_reserve = min(qty, max(0.0, pos.get("reserve", 0) - pos["shipped"]))
                    cat.set_stock(pos["_k"], pos["_i"], order["_store_idx"], stock=st - qty,
                                  reserve=max(0.0, rs - from_reserve))
                pos["shipped"] += qty
                shipped.append({"_kind": pos["_kind"], "_assortment": pos["_assortment"], "quantity": qty,
                                "price": pos["price"]})
            if not shipped:
                raise ApiError(412, E_REQUIRED, "Нечего отгружать: заказ отгружен полностью")
            did = str(uuid.uuid4())
            stamp = self.tick()
            demand = {"id": did, "name": f"{len(self.demands) + 1:05d}", "_order": order_id, "_created": stamp,
                      "_updated": stamp, "_organization": order["_organization"], "_agent": order["_agent"],
                      "_store": order.get("_store"), "_positions": shipped}
            self.demands[did] = demand
            order["_demands"].append(did)
            order["_updated"] = stamp
            self.stock_changed()
            return demand

    def _order(self, order_id: str) -> dict:
        order = self.orders.get(order_id)
        if order is None:
            raise ApiError(404, E_NOT_FOUND, f"Объект с типом 'customerorder' и идентификатором '{order_id}' не найден")
        return order

    def order_by_external_code(self, code: str) -> dict | None:
        with self.lock:
            return next((o for o in self.orders.values() if o.get("externalCode") == code), None)

    # -- notifications ------------------------------------------------------------------------------
    def notify(self, entity_type: str, action: str, ids: list[str], *, disabled_prefixes: tuple[str, ...] = (),
               uid: str = "admin@sandbox") -> int:
        """Queue one notification per subscriber of (entity_type, action). Returns how many."""
        with self.lock:
            subscribers = [w for w in self.webhooks.values()
                           if w.get("enabled", True) and w["entityType"] == entity_type and w["action"] == action]
        api = self.api()
        queued = 0
        for sub in subscribers:
            if any(p and sub["url"].startswith(p) for p in disabled_prefixes):
                self.suppressed += 1
                continue
            body = {"auditContext": {"meta": {"type": "audit", "href": f"{api}/audit/{uuid.uuid4()}"}, "uid": uid,
                                     "moment": format_msk(self.emulator.catalog.now_ms(), millis=False)},
                    "events": [{"meta": {"type": entity_type, "href": f"{api}/entity/{entity_type}/{i}"},
                                "action": action, "accountId": self.emulator.catalog.account_id} for i in ids]}
            if action == "UPDATE" and sub.get("diffType") == "FIELDS":
                for event in body["events"]:
                    event["updatedFields"] = ["state"] if entity_type == "customerorder" else []
            self._enqueue(Delivery(sub["url"], str(uuid.uuid4()), body))
            queued += 1
        return queued

    def stock_changed(self) -> None:
        """Stock subscribers hear about it on the next tick (MoySklad batches them)."""
        with self.lock:
            if not self.webhookstocks:
                return
            if self._stock_dirty_since is None:
                self._stock_dirty_since = self.emulator.catalog.now_ms()
            if self._stock_ticker is None or not self._stock_ticker.is_alive():
                self._stock_ticker = threading.Thread(target=self._stock_tick, name="sandbox-stock-notify",
                                                      daemon=True)
                self._stock_ticker.start()

    def _stock_tick(self) -> None:
        time.sleep(self.stock_notify_seconds)
        with self.lock:
            since, self._stock_dirty_since = self._stock_dirty_since, None
            subscribers = [w for w in self.webhookstocks.values() if w.get("enabled", True)]
        if since is None:
            return
        api = self.api()
        changed_since = format_msk(since - 1000, millis=False)
        for sub in subscribers:
            report = sub.get("reportType", "all")
            self._enqueue(Delivery(sub["url"], str(uuid.uuid4()), {
                "accountId": self.emulator.catalog.account_id, "stockType": "stock", "reportType": report,
                "reportUrl": f"{api}/report/stock/{report}/current?changedSince={changed_since}"}))

    def _enqueue(self, delivery: Delivery) -> None:
        with self._idle:
            self._pending += 1
        self._outbox.put(delivery)
        with self.lock:
            if self._sender is None or not self._sender.is_alive():
                self._sender = threading.Thread(target=self._send_loop, name="sandbox-webhooks", daemon=True)
                self._sender.start()

    def _send_loop(self) -> None:
        while True:
            delivery = self._outbox.get()
            if delivery is None:
                return
            try:
                self._deliver(delivery)
            finally:
                with self._idle:
                    self._pending -= 1
                    self._idle.notify_all()

    def _deliver(self, delivery: Delivery) -> None:
        data = json.dumps(delivery.body, ensure_ascii=False).encode("utf-8")
        sep = "&" if "?" in delivery.url else "?"
        url = f"{delivery.url}{sep}requestId={delivery.request_id}"
        for _attempt in range(DELIVERY_ATTEMPTS):   # no pause between attempts, like MoySklad
            delivery.attempts += 1
            req = urllib.request.Request(url, data=data, method="POST", headers={
                "Content-Type": "application/json",
                "User-Agent": "MoySklad webhook touch agent 2.0 (/https://www.moysklad.ru)"})
            try:
                with urllib.request.urlopen(req, timeout=DELIVERY_TIMEOUT) as resp:
                    delivery.status = resp.status
            except urllib.error.HTTPError as exc:
                delivery.status, delivery.error = exc.code, f"HTTP {exc.code}"
            except (urllib.error.URLError, OSError, TimeoutError) as exc:
                delivery.status, delivery.error = None, f"{exc.__class__.__name__}: {exc}"
            if delivery.status in (200, 204):
                delivery.ok, delivery.error = True, ""
                break
        with self.lock:
            self.deliveries.append(delivery)
            del self.deliveries[:-1000]
        if not delivery.ok:
            log.warning("sandbox webhook to %s dropped after %s attempts: %s", delivery.url, delivery.attempts,
                        delivery.error)

    def flush(self, timeout: float = 10.0) -> bool:
        """Wait until every queued notification was delivered (or dropped). Tests call this."""
        deadline = time.monotonic() + timeout
        with self._idle:
            while self._pending:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._idle.wait(left)
        return True

    def delivery_log(self) -> list[dict]:
        with self.lock:
            return [{"url": d.url, "requestId": d.request_id, "attempts": d.attempts, "ok": d.ok, "status": d.status,
                     "error": d.error, "events": [(e["meta"]["type"], e["action"]) for e in d.body.get("events", [])]}
                    for d in self.deliveries]


def _is_uuid(text: str) -> bool:
    try:
        uuid.UUID(str(text))
        return True
    except ValueError:
        return False


# ---------------------------------------------------------------------------------------------
# Lists: filter, order, page
# ---------------------------------------------------------------------------------------------
_DATETIME_FIELDS = {"updated", "created", "moment"}


def _value(row: dict, name: str) -> Any:
    if name in _DATETIME_FIELDS:
        return row.get(f"_{name}")
    if name in ("agent", "organization", "store"):
        return row.get(f"_{name}")
    if name == "state":
        return row.get("_state")
    if name == "customerOrder":
        return row.get("_order")
    return row.get(name)


def _matches(row: dict, conds: list) -> bool:
    by_field: dict[str, list] = {}
    for c in conds:
        by_field.setdefault(c.field, []).append(c)
    for name, group in by_field.items():
        if name.startswith("http"):
            return False   # attribute filters: none of ours carry attributes
        value = _value(row, name)
        eq = [c.value for c in group if c.op == "="]
        if name in ("agent", "organization", "store", "state", "customerOrder"):
            eq = [v.rstrip("/").rsplit("/", 1)[-1] for v in eq]
        if eq and not any((v == "" and value in (None, "")) or (value is not None and str(value) == v) for v in eq):
            return False
        for c in group:
            if c.op == "!=" and (str(value or "") == c.value):
                return False
            if c.op in (">", "<", ">=", "<="):
                try:
                    bound = parse_msk(c.value)
                except ValueError:
                    raise ApiError(400, 1035, f"Ошибка фильтрации: неверный формат даты параметра фильтрации "
                                   f"'{name}': '{c.value}'", parameter=name) from None
                if value is None or not {">": value > bound, "<": value < bound, ">=": value >= bound,
                                         "<=": value <= bound}[c.op]:
                    return False
            if c.op in ("~", "~=", "=~"):
                text, needle = str(value or "").lower(), c.value.lower()
                if not {"~": needle in text, "~=": text.startswith(needle), "=~": text.endswith(needle)}[c.op]:
                    return False
    return True


def _sorted(rows: list[dict], order: str | None) -> list[dict]:
    if not order:
        return rows
    for part in reversed([p for p in order.split(";") if p.strip()]):
        name, _, direction = part.partition(",")
        name = name.strip()
        rows = sorted(rows, key=lambda r: (_value(r, name) is None, _value(r, name) or ""),
                      reverse=direction.strip().lower() == "desc")
    return rows


# ---------------------------------------------------------------------------------------------
# Routes
# ---------------------------------------------------------------------------------------------
def install(emulator) -> OrderBook:
    """Add the order side to a MoySkladEmulator; returns its OrderBook (also ``emulator.orders``)."""
    book = OrderBook(emulator)
    emulator.orders = book
    add = emulator.router.add

    def disabled_prefixes(request: Request) -> tuple[str, ...]:
        value = request.header("x-lognex-webhook-disablebyprefix") or ""
        return tuple(p.strip() for p in value.split("\n") if p.strip().startswith(("http://", "https://")))

    def body_of(request: Request) -> Any:
        try:
            return request.json()
        except ValueError:
            raise ApiError(400, 2016, "Ошибка формата JSON") from None

    def listing(request: Request, type_: str, rows: list[dict], render: Callable[[str, dict, bool], dict]) -> Response:
        limit, offset = emulator._paging(request)
        expand = "positions" in (request.arg("expand") or "") and limit <= 100
        conds = parse_filter(request.args("filter"))
        search = (request.arg("search") or "").strip().lower()
        with book.lock:
            chosen = [r for r in rows if _matches(r, conds)]
            if search:
                chosen = [r for r in chosen if search in str(r.get("name", "")).lower()
                          or search in str(r.get("email", "")).lower()
                          or (search.isdigit() and search in _digits(r.get("phone")))]
            chosen = _sorted(chosen, request.arg("order"))
            page = Page(limit, offset, len(chosen))
            api = book.api(request)
            out = [render(api, r, expand) for r in chosen[page.start:page.stop]]
        from .moysklad import Renderer
        envelope = emulator._collection_envelope(request, Renderer(emulator.catalog, api), type_,
                                                 f"{api}/entity/{type_}", out, page)
        return emulator._json(request, envelope)

    # -- counterparty --
    def counterparty_list(request: Request) -> Response:
        return listing(request, "counterparty", list(book.counterparties.values()),
                       lambda api, r, _e: book.render_counterparty(api, r))

    def counterparty_create(request: Request) -> Response:
        body = body_of(request)
        if not isinstance(body, dict):
            raise ApiError(400, 2016, "Ожидался объект")
        row, created = book.create_counterparty(body)
        if created:
            book.notify("counterparty", "CREATE", [row["id"]], disabled_prefixes=disabled_prefixes(request))
        return emulator._json(request, book.render_counterparty(book.api(request), row))

    def counterparty_get(request: Request) -> Response:
        row = book.counterparties.get(request.params["id"])
        if row is None:
            raise ApiError(404, E_NOT_FOUND, f"Объект с типом 'counterparty' и идентификатором "
                           f"'{request.params['id']}' не найден")
        return emulator._json(request, book.render_counterparty(book.api(request), row))

    # -- customer orders --
    def order_metadata(request: Request) -> Response:
        api = book.api(request)
        states = [{"meta": {"href": f"{api}/entity/customerorder/metadata/states/{s['id']}", "type": "state",
                            "mediaType": MEDIA}, "id": s["id"], "accountId": emulator.catalog.account_id,
                   "name": s["name"], "color": s["color"], "stateType": s["stateType"], "entityType": "customerorder"}
                  for s in book.states]
        return emulator._json(request, {"meta": {"href": f"{api}/entity/customerorder/metadata", "mediaType": MEDIA},
                                        "attributes": [], "states": states, "createShared": False})

    def order_list(request: Request) -> Response:
        return listing(request, "customerorder", list(book.orders.values()),
                       lambda api, r, expand: book.render_order(api, r, expand_positions=expand))

    def order_create(request: Request) -> Response:
        body = body_of(request)
        if isinstance(body, list):
            raise ApiError(400, 2016, "Пакетное создание заказов в песочнице не поддерживается")
        if not isinstance(body, dict):
            raise ApiError(400, 2016, "Ожидался объект")
        row, created = book.create_order(body)
        if created:
            book.notify("customerorder", "CREATE", [row["id"]], disabled_prefixes=disabled_prefixes(request))
            with book.lock:
                if book.drop_after_create > 0:
                    book.drop_after_create -= 1
                    return drop_response()   # created, but the answer never reaches the client
        return emulator._json(request, book.render_order(book.api(request), row, expand_positions=False))

    def order_get(request: Request) -> Response:
        with book.lock:
            row = book._order(request.params["id"])
            expand = "positions" in (request.arg("expand") or "")
            return emulator._json(request, book.render_order(book.api(request), row, expand_positions=expand))

    def order_positions(request: Request) -> Response:
        with book.lock:
            row = book._order(request.params["id"])
            api = book.api(request)
            rows = [book.render_position(api, p) for p in row["_positions"]]
        return emulator._json(request, {"meta": {"href": f"{api}/entity/customerorder/{row['id']}/positions",
                                                 "type": "customerorderposition", "mediaType": MEDIA,
                                                 "size": len(rows), "limit": 1000, "offset": 0}, "rows": rows})

    def order_update(request: Request) -> Response:
        body = body_of(request) or {}
        with book.lock:
            row = book._order(request.params["id"])
            state = book._reference(body, "state")
            if state:
                if not any(s["id"] == state for s in book.states):
                    raise ApiError(412, E_BAD_REFERENCE, f"Статус '{state}' не найден", parameter="state")
                book.set_state(row["id"], state)
            for key in ("description", "shipmentAddress"):
                if key in body:
                    row[key] = body[key]
                    row["_updated"] = book.tick()
            out = book.render_order(book.api(request), row, expand_positions=False)
        book.notify("customerorder", "UPDATE", [row["id"]], disabled_prefixes=disabled_prefixes(request))
        return emulator._json(request, out)

    # -- demands --
    def demand_list(request: Request) -> Response:
        return listing(request, "demand", list(book.demands.values()), lambda api, r, _e: book.render_demand(api, r))

    def demand_get(request: Request) -> Response:
        row = book.demands.get(request.params["id"])
        if row is None:
            raise ApiError(404, E_NOT_FOUND, f"Объект с типом 'demand' и идентификатором "
                           f"'{request.params['id']}' не найден")
        return emulator._json(request, book.render_demand(book.api(request), row))

    def demand_create(request: Request) -> Response:
        body = body_of(request) or {}
        order_id = book._reference(body, "customerOrder")
        if not order_id:
            raise ApiError(412, E_REQUIRED, "Песочница создаёт отгрузки только по заказу: укажите 'customerOrder'",
                           parameter="customerOrder")
        quantities = None
        if body.get("positions"):
            quantities = {}
            for i, pos in enumerate(body["positions"]):
                _kind, aid, _k, _i = book._assortment(pos, i)
                quantities[aid] = quantities.get(aid, 0) + float(pos.get("quantity") or 0)
        demand = book.ship(order_id, quantities)
        book.notify("demand", "CREATE", [demand["id"]], disabled_prefixes=disabled_prefixes(request))
        return emulator._json(request, book.render_demand(book.api(request), demand))

    # -- webhooks --
    def hooks(kind: str) -> dict[str, dict]:
        return book.webhooks if kind == "webhook" else book.webhookstocks

    def render_hook(api: str, kind: str, row: dict) -> dict:
        return {"meta": {"href": f"{api}/entity/{kind}/{row['id']}", "metadataHref": f"{api}/entity/{kind}/metadata",
                         "type": kind, "mediaType": MEDIA}, "accountId": emulator.catalog.account_id,
                "method": "POST", **copy.deepcopy(row)}

    def hook_list(kind: str, request: Request) -> Response:
        with book.lock:
            api = book.api(request)
            rows = [render_hook(api, kind, r) for r in hooks(kind).values()]
        return emulator._json(request, {"meta": {"href": f"{api}/entity/{kind}", "type": kind, "mediaType": MEDIA,
                                                 "size": len(rows), "limit": 1000, "offset": 0}, "rows": rows})

    def hook_create(kind: str, request: Request) -> Response:
        body = body_of(request)
        items = body if isinstance(body, list) else [body]
        out = []
        with book.lock:
            for item in items:
                if not isinstance(item, dict) or not item.get("url"):
                    raise ApiError(412, E_REQUIRED, "Ошибка сохранения объекта: поле 'url' не может быть пустым",
                                   parameter="url")
                url = str(item["url"])
                if len(url) > 255:
                    raise ApiError(412, E_WEBHOOK_URL, "Длина url вебхука не может превышать 255 символов",
                                   parameter="url")
                if kind == "webhook":
                    entity, action = item.get("entityType"), str(item.get("action") or "").upper()
                    if not entity or action not in ("CREATE", "UPDATE", "DELETE", "PROCESSED"):
                        raise ApiError(412, E_REQUIRED, "Ошибка сохранения объекта: укажите 'entityType' и 'action'")
                    same = [w for w in book.webhooks.values() if (w["entityType"], w["action"]) == (entity, action)]
                    row = {"url": url, "entityType": entity, "action": action,
                           "diffType": item.get("diffType", "NONE"), "enabled": bool(item.get("enabled", True))}
                else:
                    report = item.get("reportType", "all")
                    if item.get("stockType", "stock") != "stock" or report not in ("all", "bystore"):
                        raise ApiError(412, 30001, "Неверные параметры вебхука на изменение остатков")
                    same = [w for w in book.webhookstocks.values() if w.get("reportType") == report]
                    row = {"url": url, "stockType": "stock", "reportType": item.get("reportType", "all"),
                           "enabled": bool(item.get("enabled", True))}
                if any(w["url"] == url for w in same):
                    raise ApiError(412, E_WEBHOOK_DUPLICATE, "Вебхук с такими параметрами уже существует")
                if len(same) >= 5:
                    raise ApiError(412, E_WEBHOOK_TOO_MANY, "Превышено максимальное количество вебхуков (5) "
                                   "для одного типа сущности и действия")
                row["id"] = str(uuid.uuid4())
                hooks(kind)[row["id"]] = row
                out.append(render_hook(book.api(request), kind, row))
        return emulator._json(request, out if isinstance(body, list) else out[0])

    def hook_one(kind: str, request: Request) -> Response:
        with book.lock:
            row = hooks(kind).get(request.params["id"])
            if row is None:
                raise ApiError(404, E_NOT_FOUND, f"Объект с типом '{kind}' и идентификатором "
                               f"'{request.params['id']}' не найден")
            if request.method == "DELETE":
                del hooks(kind)[row["id"]]
                return Response(200)
            if request.method == "PUT":
                body = body_of(request) or {}
                for key in ("enabled", "url", "diffType"):
                    if key in body:
                        row[key] = body[key]
            return emulator._json(request, render_hook(book.api(request), kind, row))

    add("GET", "entity/counterparty", counterparty_list)
    add("POST", "entity/counterparty", counterparty_create)
    add("GET", "entity/counterparty/{id}", counterparty_get)
    add("GET", "entity/customerorder/metadata", order_metadata)
    add("GET", "entity/customerorder", order_list)
    add("POST", "entity/customerorder", order_create)
    add("GET", "entity/customerorder/{id}/positions", order_positions)
    add("GET", "entity/customerorder/{id}", order_get)
    add("PUT", "entity/customerorder/{id}", order_update)
    add("GET", "entity/demand", demand_list)
    add("POST", "entity/demand", demand_create)
    add("GET", "entity/demand/{id}", demand_get)
    for kind in ("webhook", "webhookstock"):
        add("GET", f"entity/{kind}", lambda req, k=kind: hook_list(k, req))
        add("POST", f"entity/{kind}", lambda req, k=kind: hook_create(k, req))
        for method in ("GET", "PUT", "DELETE"):
            add(method, f"entity/{kind}/{{id}}", lambda req, k=kind: hook_one(k, req))

    _wrap_catalog_changes(emulator, book)
    _install_control(emulator, book)
    # `make run`: a scripted manager and a demo storefront order (off unless configured).
    interval = float(os.environ.get("SANDBOX_MANAGER_INTERVAL") or 0)
    if interval > 0:
        from .scenarios import run_manager

        run_manager(book, interval)
    demo_site, demo_token = os.environ.get("SANDBOX_DEMO_SITE_URL"), os.environ.get("SANDBOX_DEMO_API_TOKEN")
    if demo_site and demo_token:
        from .scenarios import start_demo

        start_demo(book, demo_site, demo_token)
    return book


def _wrap_catalog_changes(emulator, book: OrderBook) -> None:
    """Catalog edits made through the emulator's python API or control endpoints notify
    product/variant subscribers, and stock edits the stock subscribers, as MoySklad would."""

    def wrap(name: str, after: Callable[[tuple, dict, Any], None]) -> None:
        original = getattr(emulator, name)

        def wrapper(*args, **kwargs):
            result = original(*args, **kwargs)
            after(args, kwargs, result)
            return result

        setattr(emulator, name, wrapper)

    wrap("update_product", lambda a, k, r: book.notify("product", "UPDATE", [a[0]]))
    wrap("update_variant", lambda a, k, r: book.notify("variant", "UPDATE", [a[0]]))
    wrap("delete_product", lambda a, k, r: book.notify("product", "DELETE", [a[0]]))
    wrap("delete_variant", lambda a, k, r: book.notify("variant", "DELETE", [a[0]]))
    wrap("add_product", lambda a, k, r: book.notify("product", "CREATE", [r]))
    wrap("set_stock", lambda a, k, r: book.stock_changed())


def _install_control(emulator, book: OrderBook) -> None:
    """``/_sandbox/moysklad/orders…``: look at orders and deliveries, act as the manager."""
    add = emulator.control_router.add

    def orders(_req: Request) -> Response:
        with book.lock:
            api = book.api()
            rows = [dict(book.render_order(api, o, expand_positions=True), stateName=book.state_name(o["_state"]))
                    for o in book.orders.values()]
            return json_response({"orders": rows,
                                  "counterparties": len(book.counterparties), "demands": len(book.demands)})

    def advance(req: Request) -> Response:
        from .scenarios import advance_orders

        steps = advance_orders(book, partial_first=bool((req.json() or {}).get("partial_first", True)))
        return json_response({"steps": steps})

    def set_state(req: Request) -> Response:
        data = req.json() or {}
        order = book.set_state(req.params["id"], data["state"])
        book.notify("customerorder", "UPDATE", [order["id"]])
        return json_response({"id": order["id"], "state": book.state_name(order["_state"])})

    def ship(req: Request) -> Response:
        demand = book.ship(req.params["id"], (req.json() or {}).get("quantities"))
        book.notify("demand", "CREATE", [demand["id"]])
        return json_response({"demand": demand["id"]})

    def faults(req: Request) -> Response:
        data = req.json() or {}
        with book.lock:
            book.drop_after_create = int(data.get("drop_after_create", book.drop_after_create))
        return json_response({"drop_after_create": book.drop_after_create})

    add("GET", "orders", orders)
    add("POST", "orders/advance", advance)
    add("POST", "orders/faults", faults)
    add("POST", "orders/{id}/state", set_state)
    add("POST", "orders/{id}/ship", ship)
    add("GET", "webhooks/deliveries", lambda req: json_response({"deliveries": book.delivery_log(),
                                                                  "suppressed": book.suppressed}))


__all__ = ["OrderBook", "install"]
