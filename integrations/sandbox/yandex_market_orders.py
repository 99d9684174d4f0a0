"""The order side of the Yandex Market emulator (/work/shared/docs/api/yandex-market.md §3–5).

``POST /v1/businesses/{businessId}/orders?limit=…&pageToken=…`` (``limit`` ≤ 50, filters
``orderIds``, ``dates.updateDateFrom/To``, ``fake``; line totals in ``prices.payment``; times with
a Moscow offset), ``POST /v2/campaigns/{campaignId}/orders/status-update`` (1–30 orders, per-order
``updateStatus``; READY_TO_SHIP only from PROCESSING/STARTED, CANCELLED/SHOP_FAILED before
shipment), ``GET /v2/campaigns/{campaignId}/returns`` (``limit`` ≤ 100, ``pageToken``).
Control: ``POST /_sandbox/ym/orders/new`` ``{"count", "sku"?, "quantity"?}``, ``POST
/_sandbox/ym/orders/advance`` (Market's side: READY_TO_SHIP → SHIPPED → DELIVERY → DELIVERED),
``POST /_sandbox/ym/returns/new`` ``{"order_id", "picked"?}``.
"""
from __future__ import annotations

import random
from datetime import datetime, timedelta, timezone

from .common import ApiError, Request, Response, json_response
from .marketplace import item_by_sku
from .marketplace_orders import OrderBook, decode_cursor, encode_cursor, item_price, iso_to_unix, pick_items

PAGE_MAX = 50
STATUS_BATCH_MAX = 30
RETURNS_PAGE_MAX = 100
MSK = timezone(timedelta(hours=3))
NEXT = {("PROCESSING", "READY_TO_SHIP"): ("PROCESSING", "SHIPPED"), ("PROCESSING", "SHIPPED"): ("DELIVERY", ""),
        ("DELIVERY", ""): ("DELIVERED", "")}


def _msk(ts: float) -> str:
    return datetime.fromtimestamp(ts, MSK).strftime("%Y-%m-%dT%H:%M:%S+03:00")


def install(emulator, *, campaign_id: str = "20000001") -> OrderBook:
    book = OrderBook()
    emulator.orders = book
    emulator.campaign_id = str(campaign_id)

    def render(o: dict) -> dict:
        return {"orderId": o["id"], "campaignId": int(emulator.campaign_id), "programType": "FBS",
                "status": o["status"], "substatus": o["substatus"] or None, "externalOrderId": None,
                "creationDate": _msk(o["_created"]), "updateDate": _msk(o["_changed"]), "paymentType": "PREPAID",
                "fake": False, "buyerType": "PERSON", "cancelRequested": False, "notes": "",
                "items": [{"id": o["id"] * 10 + n, "offerId": it["sku"], "offerName": it["sku"], "count": it["count"],
                           "prices": {"payment": {"value": it["price"] * it["count"], "currencyId": "RUR"}}}
                          for n, it in enumerate(o["items"])],
                "delivery": {"type": "DELIVERY", "serviceName": "Маркет", "warehouseId": "123456",
                             "shipment": {"id": 777, "shipmentDate": datetime.fromtimestamp(o["_created"], MSK)
                                          .strftime("%Y-%m-%d")}}}

    def generate(count: int = 1, *, rng: random.Random | None = None, sku: str | None = None,
                 quantity: int = 1) -> list[dict]:
        made = []
        for _ in range(count):
            items = [item_by_sku(emulator.catalog, sku)] if sku else pick_items(emulator.catalog, 1, rng=rng)
            items = [i for i in items if i is not None]
            if not items:
                break
            seq = book.next_seq()
            order = {"id": 900_000_000 + seq, "status": "PROCESSING", "substatus": "STARTED",
                     "items": [{"sku": i.sku, "count": quantity, "price": item_price(emulator.catalog, i)} for i in items]}
            made.append(book.add(str(order["id"]), order))
        return made

    emulator.orders_generate = generate

    def body(request: Request) -> dict:
        try:
            data = request.json() or {}
        except ValueError:
            raise ApiError(400, "BAD_REQUEST", "body is not JSON")
        return data if isinstance(data, dict) else {}

    def listing(request: Request) -> Response:
        book.count("orders_list")
        if request.params.get("business") != emulator.business_id:
            raise ApiError(403, "FORBIDDEN", "no access to this business")
        try:
            limit = int(request.arg("limit", "50"))
        except ValueError:
            raise ApiError(400, "BAD_REQUEST", "limit must be a number")
        if not 1 <= limit <= PAGE_MAX:
            raise ApiError(400, "BAD_REQUEST", f"limit must be at most {PAGE_MAX}")
        data = body(request)
        ids = {str(i) for i in data.get("orderIds") or []}
        dates = data.get("dates") or {}
        since = iso_to_unix(dates.get("updateDateFrom"), 0)
        until = iso_to_unix(dates.get("updateDateTo"), float("inf"))
        with book.lock:
            rows = sorted((o for o in book.orders.values()
                           if ((str(o["id"]) in ids) if ids else int(since) <= int(o["_changed"]) <= until)),
                          key=lambda o: (o["_changed"], o["_seq"]))
        start = decode_cursor(request.arg("pageToken"))
        page = rows[start:start + limit]
        more = start + limit < len(rows)
        return json_response({"orders": [render(o) for o in page],
                              "paging": {"nextPageToken": encode_cursor(start + limit)} if more else {}})

    def status_update(request: Request) -> Response:
        book.count("status_update")
        if request.params.get("campaign") != emulator.campaign_id:
            raise ApiError(404, "NOT_FOUND", "campaign not found")
        orders = body(request).get("orders")
        if not isinstance(orders, list) or not 1 <= len(orders) <= STATUS_BATCH_MAX:
            raise ApiError(400, "BAD_REQUEST", f"orders: 1..{STATUS_BATCH_MAX}")
        result = []
        with book.lock:
            for item in orders:
                order = book.orders.get(str(item.get("id")))
                want = (item.get("status"), item.get("substatus"))
                ok, error = False, None
                if order is None:
                    error = "ORDER_NOT_FOUND"
                elif want == ("PROCESSING", "READY_TO_SHIP") and (order["status"], order["substatus"]) == (
                        "PROCESSING", "STARTED"):
                    ok = True
                elif want[0] == "CANCELLED" and order["status"] == "PROCESSING" and order["substatus"] in (
                        "STARTED", "READY_TO_SHIP"):
                    ok = True
                else:
                    error = f"STATUS_NOT_ALLOWED: {order['status']}/{order['substatus']} -> {want[0]}/{want[1]}"
                if ok:
                    book.touch(order, status=want[0], substatus=want[1] or "")
                    book.effect(f"{want[0]}/{want[1] or ''}", order["id"])
                result.append({"id": item.get("id"), "status": order["status"] if order else None,
                               "substatus": order["substatus"] if order else None,
                               "updateStatus": "OK" if ok else "ERROR", "errorDetails": error})
        return json_response({"status": "OK", "result": {"orders": result}})

    def returns(request: Request) -> Response:
        book.count("returns_list")
        try:
            limit = int(request.arg("limit", "100"))
        except ValueError:
            raise ApiError(400, "BAD_REQUEST", "limit must be a number")
        if not 1 <= limit <= RETURNS_PAGE_MAX:
            raise ApiError(400, "BAD_REQUEST", f"limit must be at most {RETURNS_PAGE_MAX}")
        start = decode_cursor(request.arg("pageToken"))
        with book.lock:
            rows = list(book.returns)
        page = rows[start:start + limit]
        more = start + limit < len(rows)
        return json_response({"status": "OK", "result": {
            "paging": {"nextPageToken": encode_cursor(start + limit)} if more else {}, "returns": page}})

    def control_new(request: Request) -> Response:
        data = body(request)
        made = generate(int(data.get("count") or 1), sku=data.get("sku"), quantity=int(data.get("quantity") or 1))
        return json_response({"orders": [render(o) for o in made]})

    def control_advance(request: Request) -> Response:
        moved = []
        with book.lock:
            for order in book.orders.values():
                step = NEXT.get((order["status"], order["substatus"]))
                if step:
                    book.touch(order, status=step[0], substatus=step[1])
                    moved.append(order["id"])
        return json_response({"moved": moved})

    def control_return(request: Request) -> Response:
        data = body(request)
        order = book.orders.get(str(data.get("order_id")))
        now = datetime.now(MSK).timestamp()
        with book.lock:
            row = {"id": len(book.returns) + 1, "orderId": int(data.get("order_id") or 0), "returnType": "RETURN",
                   "creationDate": _msk(now), "updateDate": _msk(now),
                   "shipmentStatus": "PICKED" if data.get("picked", True) else "IN_TRANSIT",
                   "amount": {"value": sum(i["price"] * i["count"] for i in order["items"]) if order else 0,
                              "currencyId": "RUR"},
                   "items": [{"shopSku": i["sku"], "count": i["count"], "decisions": []}
                             for i in (order["items"] if order else [])]}
            book.returns.append(row)
        return json_response(row)

    r = emulator.router
    r.add("POST", "v1/businesses/{business}/orders", listing, name="POST v1/businesses/{businessId}/orders")
    r.add("POST", "v2/campaigns/{campaign}/orders/status-update", status_update,
          name="POST v2/campaigns/{campaignId}/orders/status-update")
    r.add("GET", "v2/campaigns/{campaign}/returns", returns, name="GET v2/campaigns/{campaignId}/returns")
    c = emulator.control_router
    c.add("GET", "orders", lambda req: json_response({**book.summary(), "orders": [render(o) for o in book.orders.values()]}))
    c.add("POST", "orders/new", control_new)
    c.add("POST", "orders/advance", control_advance)
    c.add("POST", "orders/clear", lambda req: (book.clear(), json_response(book.summary()))[1])
    c.add("POST", "returns/new", control_return)
    return book
