"""The order side of the Ozon emulator (/work/shared/docs/api/ozon.md §4–6).

``POST /v4/posting/fbs/list`` and ``/v4/posting/fbs/unfulfilled/list`` (cursor, ``limit`` 1–100,
``filter.last_changed_status_date``), ``POST /v3/posting/fbs/get``, ``POST /v4/posting/fbs/ship``
(awaiting_packaging → awaiting_deliver; ``POSTING_ALREADY_SHIPPED`` after), ``POST
/v2/posting/fbs/cancel`` (``POSTING_ALREADY_CANCELLED``), ``POST /v1/returns/list`` (``last_id``
paging, ``limit`` ≤ 500). Control: ``POST /_sandbox/ozon/orders/new`` ``{"count", "sku"?,
"quantity"?}``, ``POST /_sandbox/ozon/orders/advance`` (Ozon's side moves handed-over postings
on: awaiting_deliver → delivering → delivered), ``POST /_sandbox/ozon/returns/new``
``{"posting_number", "received"?}``, ``GET /_sandbox/ozon/orders``.
"""
from __future__ import annotations

import random
import time
from datetime import datetime, timezone

from .common import ApiError, Request, Response, json_response
from .marketplace import item_by_sku
from .marketplace_orders import OrderBook, decode_cursor, encode_cursor, item_price, iso_to_unix, pick_items

PAGE_MAX = 100
RETURNS_PAGE_MAX = 500
NEXT = {"awaiting_deliver": "delivering", "delivering": "delivered"}
UNFULFILLED = {"awaiting_registration", "acceptance_in_progress", "awaiting_approve", "awaiting_packaging",
               "awaiting_deliver", "arbitration", "client_arbitration", "delivering", "driver_pickup",
               "cancelled", "not_accepted"}


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def install(emulator) -> OrderBook:
    book = OrderBook()
    emulator.orders = book
    warehouse = int(sorted(emulator.warehouses)[0]) if emulator.warehouses else 0

    def render(p: dict) -> dict:
        return {"posting_number": p["number"], "order_id": p["order_id"], "order_number": p["number"].rsplit("-", 1)[0],
                "status": p["status"], "substatus": "", "in_process_at": _iso(p["_created"]),
                "shipment_date": _iso(p["_created"] + 86400), "delivery_method": {
                    "id": 1, "name": "Ozon Логистика", "warehouse_id": warehouse, "tpl_provider": "Ozon Логистика"},
                "products": [{"sku": pr["sku"], "offer_id": pr["offer_id"], "name": pr["offer_id"],
                              "quantity": pr["quantity"], "price": {"amount": f"{pr['price']}.00", "currency": "RUB"}}
                             for pr in p["products"]],
                "analytics_data": {"city": "Москва", "region": "Москва", "warehouse_id": warehouse},
                "customer": None, "addressee": None, "cancellation": {},
                "available_actions": ["ship", "cancel"] if p["status"] == "awaiting_packaging" else []}

    def generate(count: int = 1, *, rng: random.Random | None = None, sku: str | None = None,
                 quantity: int = 1) -> list[dict]:
        made = []
        for _ in range(count):
            seq = book.next_seq()
            items = [item_by_sku(emulator.catalog, sku)] if sku else pick_items(emulator.catalog, 1, rng=rng)
            items = [i for i in items if i is not None]
            if not items:
                break
            number = f"{70000000 + seq:08d}-{seq % 10000:04d}-1"
            record = {"number": number, "order_id": 30000000000 + seq, "status": "awaiting_packaging",
                      "products": [{"sku": 1_000_000_000 + i.idx * 10 + i.kind, "offer_id": i.sku,
                                    "quantity": quantity, "price": item_price(emulator.catalog, i)} for i in items]}
            made.append(book.add(number, record))
        return made

    emulator.orders_generate = generate

    def body(request: Request) -> dict:
        try:
            data = request.json() or {}
        except ValueError:
            raise ApiError(400, 3, "invalid request body: not JSON")
        return data if isinstance(data, dict) else {}

    def listing(request: Request, *, unfulfilled: bool) -> Response:
        book.count("posting_list")
        data = body(request)
        limit = data.get("limit", 100)
        if not isinstance(limit, int) or not 1 <= limit <= PAGE_MAX:
            raise ApiError(400, 3, f"invalid GetFbsPostingListRequestV4.Limit: value must be inside range [1, {PAGE_MAX}]")
        flt = data.get("filter") or {}
        changed = flt.get("last_changed_status_date") or flt.get("last_change_status_date") or {}
        since, until = iso_to_unix(changed.get("from"), 0), iso_to_unix(changed.get("to"), time.time() + 1)
        statuses = set(flt.get("statuses") or [])
        with book.lock:
            rows = sorted((p for p in book.orders.values()
                           if int(since) <= int(p["_changed"]) <= until and (not statuses or p["status"] in statuses)
                           and (not unfulfilled or p["status"] in UNFULFILLED)), key=lambda p: (p["_changed"], p["_seq"]))
        start = decode_cursor(data.get("cursor"))
        page = rows[start:start + limit]
        more = start + limit < len(rows)
        return json_response({"postings": [render(p) for p in page], "cursor": encode_cursor(start + limit) if more else "",
                              "has_next": more, "count": len(rows)})

    def posting(request: Request) -> dict:
        number = str(body(request).get("posting_number") or "")
        record = book.orders.get(number)
        if record is None:
            raise ApiError(404, 5, "POSTING_NOT_FOUND")
        return record

    def get(request: Request) -> Response:
        book.count("posting_get")
        return json_response({"result": render(posting(request))})

    def ship(request: Request) -> Response:
        book.count("ship")
        record = posting(request)
        with book.lock:
            if record["status"] == "cancelled":
                raise ApiError(400, 3, "POSTING_ALREADY_CANCELLED")
            if record["status"] != "awaiting_packaging":
                raise ApiError(400, 3, "POSTING_ALREADY_SHIPPED")
            book.touch(record, status="awaiting_deliver")
            book.effect("ship", record["number"])
        return json_response({"result": [record["number"]], "additional_data": []})

    def cancel(request: Request) -> Response:
        book.count("cancel")
        record = posting(request)
        with book.lock:
            if record["status"] == "cancelled":
                raise ApiError(400, 3, "POSTING_ALREADY_CANCELLED")
            if record["status"] not in ("awaiting_packaging", "awaiting_deliver"):
                raise ApiError(400, 3, "HAS_INCORRECT_STATUS")
            book.touch(record, status="cancelled")
            book.effect("cancel", record["number"])
        return json_response({"result": True})

    def returns_list(request: Request) -> Response:
        book.count("returns_list")
        data = body(request)
        limit = data.get("limit", 500)
        if not isinstance(limit, int) or not 1 <= limit <= RETURNS_PAGE_MAX:
            raise ApiError(400, 3, f"invalid limit: at most {RETURNS_PAGE_MAX}")
        last_id = int(data.get("last_id") or 0)
        with book.lock:
            rows = [r for r in book.returns if r["id"] > last_id][:limit]
            more = len([r for r in book.returns if r["id"] > last_id]) > limit
        return json_response({"returns": rows, "has_next": more})

    def control_new(request: Request) -> Response:
        data = body(request)
        made = generate(int(data.get("count") or 1), sku=data.get("sku"), quantity=int(data.get("quantity") or 1))
        return json_response({"postings": [render(p) for p in made]})

    def control_advance(request: Request) -> Response:
        moved = []
        with book.lock:
            for record in book.orders.values():
                if record["status"] in NEXT:
                    book.touch(record, status=NEXT[record["status"]])
                    moved.append(record["number"])
        return json_response({"moved": moved})

    def control_return(request: Request) -> Response:
        data = body(request)
        record = book.orders.get(str(data.get("posting_number") or ""))
        number = record["number"] if record else str(data.get("posting_number") or "")
        product = record["products"][0] if record else {"sku": 1, "offer_id": str(data.get("sku") or "?"),
                                                        "quantity": 1, "price": 100}
        status = "ReceivedBySeller" if data.get("received", True) else "MovingToSeller"
        with book.lock:
            row = {"id": len(book.returns) + 1, "posting_number": number, "order_number": number.rsplit("-", 1)[0],
                   "schema": "FBS", "type": "ClientReturn", "return_reason_name": "Не подошёл",
                   "product": {"sku": product["sku"], "offer_id": product["offer_id"], "quantity": product["quantity"],
                               "price": {"price": float(product["price"]), "currency_code": "RUB"}},
                   "visual": {"status": {"id": 1, "sys_name": status, "display_name": status},
                              "change_moment": _iso(time.time())},
                   "logistic": {"return_date": _iso(time.time())}}
            book.returns.append(row)
        return json_response(row)

    r = emulator.router
    r.add("POST", "v4/posting/fbs/list", lambda req: listing(req, unfulfilled=False), name="POST v4/posting/fbs/list")
    r.add("POST", "v4/posting/fbs/unfulfilled/list", lambda req: listing(req, unfulfilled=True),
          name="POST v4/posting/fbs/unfulfilled/list")
    r.add("POST", "v3/posting/fbs/get", get, name="POST v3/posting/fbs/get")
    r.add("POST", "v4/posting/fbs/ship", ship, name="POST v4/posting/fbs/ship")
    r.add("POST", "v2/posting/fbs/cancel", cancel, name="POST v2/posting/fbs/cancel")
    r.add("POST", "v1/returns/list", returns_list, name="POST v1/returns/list")
    c = emulator.control_router
    c.add("GET", "orders", lambda req: json_response({**book.summary(),
                                                      "postings": [render(p) for p in book.orders.values()]}))
    c.add("POST", "orders/new", control_new)
    c.add("POST", "orders/advance", control_advance)
    c.add("POST", "orders/clear", lambda req: (book.clear(), json_response(book.summary()))[1])
    c.add("POST", "returns/new", control_return)
    return book
