"""Ozon FBS postings: pull (v4 lists by cursor), ship/cancel, returns (../shared/docs/api/ozon.md
§4–6). One posting is one of our orders (`source_order_id` = `posting_number`). Money: v4 prices
are decimal strings in rubles; times are UTC."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone
from decimal import Decimal
from typing import Iterator

from integrations.http.errors import RejectedError
from integrations.http.ratelimit import limiter_for
from integrations.marketplace_orders.types import OrderIn, OrderLineIn, ReturnIn, money, parse_time

from .client import OzonClient, _scale
from .constants import MAX_PARALLEL

POSTINGS_LIST = "/v4/posting/fbs/list"
POSTING_GET = "/v3/posting/fbs/get"
SHIP = "/v4/posting/fbs/ship"
CANCEL = "/v2/posting/fbs/cancel"
RETURNS_LIST = "/v1/returns/list"

PAGE_MAX = 100                 # v4 lists: limit 1–100
RETURNS_PAGE_MAX = 500
#: all methods together: 50 requests a second per Client-Id
CALLS_PER_SECOND = 50
#: "out of stock at the seller's warehouse": the reason a seller-side cancellation gives
CANCEL_REASON_OUT_OF_STOCK = 352
#: postings created this long ago are still looked at for status changes
HISTORY = timedelta(days=90)
#: statuses after which `ship` has nothing left to do
SHIPPED_OR_LATER = {"awaiting_deliver", "delivering", "driver_pickup", "delivered", "sent_by_seller"}
#: return states meaning the units are back with the seller
RECEIVED_RETURN_STATES = {"ReceivedBySeller", "ReturnedToSeller", "PickedUpBySeller"}


def _iso(moment: datetime) -> str:
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def error_names(exc: RejectedError) -> set[str]:
    """Ozon puts its business error name (`POSTING_ALREADY_SHIPPED`, …) in `message`/`details`."""
    names = set()
    for err in exc.errors:
        if isinstance(err, dict):
            for key in ("message", "code", "error"):
                if isinstance(err.get(key), str):
                    names.add(err[key].strip())
            for detail in err.get("details") or []:
                if isinstance(detail, dict) and isinstance(detail.get("value"), str):
                    names.add(detail["value"].strip())
    return names


class OzonOrdersClient(OzonClient):
    """Order calls share Ozon's global budget (50 a second), not the stock updates' 80 a minute."""

    def __init__(self, conf: dict | None = None, **kwargs):
        if "limiter" not in kwargs:
            from django.conf import settings

            client_id = (conf or settings.OZON)["CLIENT_ID"]
            kwargs["limiter"] = limiter_for(f"ozon:{client_id}:orders", units=CALLS_PER_SECOND,
                                            window=1.0 * _scale("ozon"), parallel=MAX_PARALLEL)
        super().__init__(conf, **kwargs)

    def iter_posting_pages(self, *, changed_from: datetime, to: datetime | None = None,
                           limit: int = PAGE_MAX) -> Iterator[list[dict]]:
        """POST /v4/posting/fbs/list: postings whose status changed since `changed_from`, by
        cursor until `has_next` is false (reads: a 429 or a 5xx is retried)."""
        to = to or datetime.now(timezone.utc)
        body = {"filter": {"since": _iso(to - HISTORY), "to": _iso(to),
                           "last_changed_status_date": {"from": _iso(changed_from), "to": _iso(to)}},
                "limit": max(1, min(limit, PAGE_MAX)), "cursor": "", "sort_dir": "ASC",
                "with": {"financial_data": True, "analytics_data": True}}
        seen_cursors = set()
        while True:
            data = self.request("POST", POSTINGS_LIST, json=body, retry=True).json()
            if isinstance(data, dict) and isinstance(data.get("result"), dict):
                data = data["result"]  # some answers wrap the fields in `result`
            data = data if isinstance(data, dict) else {}
            postings = [p for p in data.get("postings") or [] if isinstance(p, dict)]
            yield postings
            cursor = data.get("cursor") or ""
            if not data.get("has_next") or not cursor or cursor in seen_cursors:
                return
            seen_cursors.add(cursor)
            body = {**body, "cursor": cursor}

    def posting_get(self, posting_number: str) -> dict | None:
        data = self.request("POST", POSTING_GET, json={"posting_number": posting_number}, retry=True).json()
        result = data.get("result") if isinstance(data, dict) else None
        return result if isinstance(result, dict) else None

    def ship(self, posting_number: str, products: list[dict]) -> list:
        """POST /v4/posting/fbs/ship with one package holding every product (`product_id` is
        Ozon's SKU). Sent once: the caller reads the posting back before any resend."""
        body = {"posting_number": posting_number, "packages": [{"products": products}],
                "with": {"additional_data": False}}
        data = self.request("POST", SHIP, json=body, retry=False).json()
        return data.get("result") or [] if isinstance(data, dict) else []

    def cancel(self, posting_number: str, *, reason_id: int = CANCEL_REASON_OUT_OF_STOCK, message: str = "") -> bool:
        body = {"posting_number": posting_number, "cancel_reason_id": reason_id, "cancel_reason_message": message}
        data = self.request("POST", CANCEL, json=body, retry=False).json()
        return bool(data.get("result")) if isinstance(data, dict) else False

    def iter_return_pages(self, *, changed_from: datetime, to: datetime | None = None,
                          limit: int = RETURNS_PAGE_MAX) -> Iterator[list[dict]]:
        """POST /v1/returns/list (FBS), by status-change moment, paged by `last_id`."""
        to = to or datetime.now(timezone.utc)
        last_id = 0
        while True:
            body = {"filter": {"visual_status_change_moment": {"time_from": _iso(changed_from), "time_to": _iso(to)},
                               "return_schema": "FBS"},
                    "limit": max(1, min(limit, RETURNS_PAGE_MAX)), "last_id": last_id}
            data = self.request("POST", RETURNS_LIST, json=body, retry=True).json()
            data = data if isinstance(data, dict) else {}
            rows = [r for r in data.get("returns") or [] if isinstance(r, dict)]
            yield rows
            ids = [r.get("id") for r in rows if isinstance(r.get("id"), int)]
            if not data.get("has_next") or not ids or max(ids) <= last_id:
                return
            last_id = max(ids)


# ------------------------------------------------------------------------------------------------
# Mapping (pure)
# ------------------------------------------------------------------------------------------------
def posting_to_order(posting: dict) -> OrderIn:
    products = [p for p in posting.get("products") or [] if isinstance(p, dict)]
    lines = []
    for p in products:
        price = p.get("price")
        amount = price.get("amount") if isinstance(price, dict) else price
        lines.append(OrderLineIn(sku=str(p.get("offer_id") or ""), quantity=Decimal(int(p.get("quantity") or 0)),
                                 price=money(amount), name=str(p.get("name") or "")[:512],
                                 external_sku=str(p.get("sku") or "")))
    delivery = posting.get("delivery_method") if isinstance(posting.get("delivery_method"), dict) else {}
    analytics = posting.get("analytics_data") if isinstance(posting.get("analytics_data"), dict) else {}
    address = ", ".join(x for x in (analytics.get("region"), analytics.get("city")) if x)
    status = str(posting.get("status") or "")
    cancellation = posting.get("cancellation") if isinstance(posting.get("cancellation"), dict) else {}
    return OrderIn(
        source="ozon", source_order_id=str(posting.get("posting_number") or ""), status_keys=[status],
        raw_status=f"{status}/{posting.get('substatus')}" if posting.get("substatus") else status,
        lines=lines, placed_at=parse_time(posting.get("in_process_at")),
        updated_at=None, shipping_method=str(delivery.get("name") or "")[:64], shipping_address=address,
        comment="", data={"skus": {line.sku: line.external_sku for line in lines},
                          "warehouse_id": delivery.get("warehouse_id"),
                          "cancel_reason": cancellation.get("cancel_reason") or "",
                          "order_number": posting.get("order_number") or ""})


def return_to_record(row: dict) -> ReturnIn:
    product = row.get("product") if isinstance(row.get("product"), dict) else {}
    visual = row.get("visual") if isinstance(row.get("visual"), dict) else {}
    status = (visual.get("status") or {}).get("sys_name") or "" if isinstance(visual.get("status"), dict) else ""
    price = product.get("price") if isinstance(product.get("price"), dict) else {}
    logistic = row.get("logistic") if isinstance(row.get("logistic"), dict) else {}
    quantity = int(product.get("quantity") or 0)
    return ReturnIn(source="ozon", return_id=str(row.get("id") or ""),
                    source_order_id=str(row.get("posting_number") or ""), kind=str(row.get("type") or ""),
                    status=status, received=status in RECEIVED_RETURN_STATES,
                    lines=[{"sku": str(product.get("offer_id") or ""), "quantity": quantity}] if quantity else [],
                    amount=money(price.get("price")) * quantity if price.get("price") is not None else None,
                    reason=str(row.get("return_reason_name") or "")[:255],
                    returned_at=parse_time(logistic.get("return_date") or visual.get("change_moment")), raw=row)
