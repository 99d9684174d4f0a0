"""The order side of the Wildberries emulator (/work/shared/docs/api/wildberries.md §4–6).

Marketplace host: ``GET /api/v3/orders/new`` (every task still ``new``, no paging),
``POST /api/v3/orders/status`` (1–1,000 ids), supplies (``POST/GET /api/v3/supplies``,
``PATCH /api/marketplace/v3/supplies/{id}/orders`` ≤ 100 tasks: new → confirm, 409 for a
cancelled task or a closed supply; ``PATCH /api/v3/supplies/{id}/deliver``: the supply closes,
its tasks → complete; 409 ``SupplyHasZeroOrders``), ``PATCH /api/v3/orders/{id}/cancel`` (409
``StatusChangeNotAllowed`` once complete). One task is one unit; money in kopecks.

Returns host (``/wb-returns``, WB_RETURNS_URL): ``GET /api/v1/claims`` (``limit`` ≤ 200,
``offset``), ``dt`` in Moscow time without an offset.

Control: ``POST /_sandbox/wb/orders/new`` ``{"count", "sku"?}``, ``POST /_sandbox/wb/orders/advance``
(WB's side: complete tasks are sold), ``POST /_sandbox/wb-returns/claims/new`` ``{"task_id"}``.
"""
from __future__ import annotations

import random
import uuid
from datetime import datetime, timedelta, timezone

from .common import ApiError, Request, Response, empty_response, json_response
from .marketplace import item_by_sku
from .marketplace_orders import OrderBook, item_price, pick_items
from .wildberries import _WildberriesBase

STATUS_MAX = 1000
SUPPLY_ADD_MAX = 100
CLAIMS_PAGE_MAX = 200
MSK = timezone(timedelta(hours=3))


def install(emulator) -> OrderBook:
    book = OrderBook()
    emulator.orders = book
    emulator.supplies = {}
    warehouse = int(sorted(emulator.warehouses)[0]) if emulator.warehouses else 0

    def render(t: dict) -> dict:
        return {"id": t["id"], "rid": t["rid"], "orderUid": t["rid"][:12], "createdAt":
                datetime.fromtimestamp(t["_created"], timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
                "warehouseId": warehouse, "officeId": 1, "offices": ["Коледино"], "nmId": 100_000_000 + t["product"],
                "chrtId": t["chrt"], "article": t["article"], "skus": [t["barcode"]], "colorCode": "", "comment": "",
                "price": t["price"], "finalPrice": t["price"], "salePrice": t["price"], "convertedPrice": t["price"],
                "convertedFinalPrice": t["price"], "currencyCode": 643, "convertedCurrencyCode": 643,
                "scanPrice": None, "cargoType": 1, "crossBorderType": 0, "deliveryType": "fbs", "isZeroOrder": False,
                "requiredMeta": [], "optionalMeta": [], "address": None, "supplyId": t.get("supply")}

    def generate(count: int = 1, *, rng: random.Random | None = None, sku: str | None = None) -> list[dict]:
        made = []
        for _ in range(count):
            items = [item_by_sku(emulator.catalog, sku)] if sku else pick_items(emulator.catalog, 1, rng=rng)
            if not items or items[0] is None:
                break
            item = items[0]
            seq = book.next_seq()
            task = {"id": 5_000_000 + seq, "rid": uuid.uuid4().hex, "chrt": item.chrt, "article": item.sku,
                    "barcode": item.barcode, "product": item.product,
                    "price": item_price(emulator.catalog, item) * 100, "supplier": "new", "wb": "waiting"}
            made.append(book.add(str(task["id"]), task))
        return made

    emulator.orders_generate = generate

    def body(request: Request) -> dict:
        try:
            data = request.json() or {}
        except ValueError:
            raise ApiError(400, "IncorrectRequest", "body is not JSON")
        return data if isinstance(data, dict) else {}

    def new(request: Request) -> Response:
        book.count("orders_new")
        with book.lock:
            rows = [render(t) for t in book.orders.values() if t["supplier"] == "new" and t["wb"] == "waiting"]
        return json_response({"orders": rows})

    def status(request: Request) -> Response:
        book.count("orders_status")
        ids = body(request).get("orders")
        if not isinstance(ids, list) or not 1 <= len(ids) <= STATUS_MAX:
            raise ApiError(400, "IncorrectRequest", f"orders: 1..{STATUS_MAX} ids")
        with book.lock:
            rows = [{"id": t["id"], "supplierStatus": t["supplier"], "wbStatus": t["wb"]}
                    for t in (book.orders.get(str(i)) for i in ids) if t]
        return json_response({"orders": rows})

    def supply_create(request: Request) -> Response:
        book.count("supply_create")
        name = str(body(request).get("name") or "")[:128]
        supply_id = f"WB-GI-{len(emulator.supplies) + 1000001}"
        emulator.supplies[supply_id] = {"id": supply_id, "name": name, "done": False, "orders": [],
                                        "createdAt": datetime.now(timezone.utc).isoformat()}
        return json_response({"id": supply_id}, 201)

    def supply_list(request: Request) -> Response:
        rows = [{k: v for k, v in s.items() if k != "orders"} for s in emulator.supplies.values()]
        return json_response({"supplies": rows, "next": 0})

    def supply_of(request: Request) -> dict:
        supply = emulator.supplies.get(request.params.get("supply", ""))
        if supply is None:
            raise ApiError(404, "NotFound", "supply not found")
        return supply

    def supply_add(request: Request) -> Response:
        book.count("supply_add")
        supply = supply_of(request)
        ids = body(request).get("orders")
        if not isinstance(ids, list) or not 1 <= len(ids) <= SUPPLY_ADD_MAX:
            raise ApiError(400, "IncorrectRequest", f"orders: 1..{SUPPLY_ADD_MAX} ids")
        with book.lock:
            if supply["done"]:
                raise ApiError(409, "FailedToAddSupplyOrder", "the supply is closed")
            for i in ids:
                task = book.orders.get(str(i))
                if task is None or task["supplier"] in ("cancel", "complete"):
                    raise ApiError(409, "FailedToAddSupplyOrder", f"task {i} cannot be added")
            for i in ids:
                task = book.orders[str(i)]
                if task.get("supply") and task["supply"] != supply["id"]:
                    old = emulator.supplies.get(task["supply"])
                    if old and i in old["orders"]:
                        old["orders"].remove(i)
                if i not in supply["orders"]:
                    supply["orders"].append(i)
                if task.get("supply") != supply["id"]:
                    book.effect("supply-add", i)
                book.touch(task, supplier="confirm", supply=supply["id"])
        return empty_response(204)

    def supply_deliver(request: Request) -> Response:
        book.count("supply_deliver")
        supply = supply_of(request)
        with book.lock:
            if not supply["orders"]:
                raise ApiError(409, "SupplyHasZeroOrders", "the supply has no tasks")
            if not supply["done"]:
                book.effect("deliver", supply["id"])
            supply["done"] = True
            for i in supply["orders"]:
                task = book.orders.get(str(i))
                if task and task["supplier"] == "confirm":
                    book.touch(task, supplier="complete", wb="sorted")
        return empty_response(204)

    def cancel(request: Request) -> Response:
        book.count("cancel")
        task = book.orders.get(request.params.get("order", ""))
        if task is None:
            raise ApiError(404, "NotFound", "order not found")
        with book.lock:
            if task["supplier"] in ("complete", "cancel"):
                raise ApiError(409, "StatusChangeNotAllowed", "status change not allowed")
            book.touch(task, supplier="cancel", wb="canceled")
            book.effect("cancel", task["id"])
        return empty_response(204)

    def control_new(request: Request) -> Response:
        data = body(request)
        return json_response({"orders": [render(t) for t in generate(int(data.get("count") or 1), sku=data.get("sku"))]})

    def control_advance(request: Request) -> Response:
        moved = []
        with book.lock:
            for task in book.orders.values():
                if task["supplier"] == "complete" and task["wb"] != "sold":
                    book.touch(task, wb="sold")
                    moved.append(task["id"])
        return json_response({"moved": moved})

    r = emulator.router
    r.add("GET", "api/v3/orders/new", new, name="GET api/v3/orders/new")
    r.add("POST", "api/v3/orders/status", status, name="POST api/v3/orders/status")
    r.add("POST", "api/v3/supplies", supply_create, name="POST api/v3/supplies")
    r.add("GET", "api/v3/supplies", supply_list, name="GET api/v3/supplies")
    r.add("PATCH", "api/marketplace/v3/supplies/{supply}/orders", supply_add, name="PATCH supplies/orders")
    r.add("PATCH", "api/v3/supplies/{supply}/deliver", supply_deliver, name="PATCH supplies/deliver")
    r.add("PATCH", "api/v3/orders/{order}/cancel", cancel, name="PATCH api/v3/orders/cancel")
    c = emulator.control_router
    c.add("GET", "orders", lambda req: json_response({**book.summary(), "orders": [
        {**render(t), "supplierStatus": t["supplier"], "wbStatus": t["wb"]} for t in book.orders.values()]}))
    c.add("POST", "orders/new", control_new)
    c.add("POST", "orders/advance", control_advance)
    c.add("POST", "orders/clear", lambda req: (book.clear(), emulator.supplies.clear(), json_response({}))[2])
    return book


class WildberriesReturnsEmulator(_WildberriesBase):
    """The returns host: buyer claims (20 a minute, burst 10)."""

    name = "wb-returns"

    def __init__(self, catalog, *, token: str = "sandbox-wb-token", marketplace=None, rate_limit: bool = True,
                 budget: int = 10, window: float = 30.0, latency_ms: float = 0.0) -> None:
        super().__init__(catalog, token=token, budget=budget, window=window, rate_limit=rate_limit,
                         latency_ms=latency_ms)
        self.marketplace = marketplace
        self.claims: list[dict] = []
        self.router.add("GET", "api/v1/claims", self._claims, name="GET api/v1/claims")
        self.control_router.add("POST", "claims/new", self._control_new)
        self.control_router.add("GET", "claims", lambda req: json_response({"claims": self.claims}))

    def _claims(self, request: Request) -> Response:
        try:
            limit, offset = int(request.arg("limit", "50")), int(request.arg("offset", "0"))
        except ValueError:
            raise ApiError(400, "IncorrectRequest", "limit and offset must be numbers")
        if not 1 <= limit <= CLAIMS_PAGE_MAX:
            raise ApiError(400, "IncorrectRequest", f"limit: 1..{CLAIMS_PAGE_MAX}")
        archive = request.arg("is_archive", "false") == "true"
        rows = [c for c in self.claims if c.get("_archive", False) == archive]
        page = [{k: v for k, v in c.items() if not k.startswith("_")} for c in rows[offset:offset + limit]]
        return json_response({"claims": page, "total": len(rows)})

    def _control_new(self, request: Request) -> Response:
        data = request.json() or {}
        book = getattr(self.marketplace, "orders", None)
        task = book.orders.get(str(data.get("task_id"))) if book else None
        now = datetime.now(MSK).strftime("%Y-%m-%dT%H:%M:%S")
        claim = {"id": str(uuid.uuid4()), "claim_type": 1, "status": int(data.get("status", 2)),
                 "status_ex": int(data.get("status_ex", 10)), "nm_id": 100_000_000 + (task["product"] if task else 0),
                 "srid": task["rid"] if task else str(data.get("srid") or uuid.uuid4().hex),
                 "imt_name": task["article"] if task else "", "user_comment": "Не подошёл", "wb_comment": "",
                 "price": (task["price"] // 100) if task else 100, "currency_code": "643", "dt": now,
                 "order_dt": now, "dt_update": now, "photos": [], "video_paths": [], "actions": []}
        self.claims.append(claim)
        return json_response(claim)
