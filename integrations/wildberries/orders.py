"""Wildberries FBS assembly tasks: new tasks, status batches, the supply flow, cancel, buyer
claims (../shared/docs/api/wildberries.md §4–6).

One task is one unit of one size: it is one of our orders (`source_order_id` = task `id`) with
one line. Lists carry no status: `orders/status` (≤ 1,000 ids a call) is asked for every task we
hold open. Money is ×100 integers (kopecks); `createdAt` is UTC; claims' `dt` is Moscow time
without an offset."""
from __future__ import annotations

from decimal import Decimal
from typing import Iterable, Iterator

from integrations.marketplace_orders.types import MSK, OrderIn, OrderLineIn, ReturnIn, money, parse_time

from .client import WildberriesClient, _WildberriesBase

ORDERS_NEW = "/api/v3/orders/new"
ORDERS_STATUS = "/api/v3/orders/status"
SUPPLIES = "/api/v3/supplies"
SUPPLY_ADD = "/api/marketplace/v3/supplies/{supply_id}/orders"
SUPPLY_DELIVER = "/api/v3/supplies/{supply_id}/deliver"
ORDER_CANCEL = "/api/v3/orders/{order_id}/cancel"
CLAIMS = "/api/v1/claims"

STATUS_BATCH_MAX = 1000
SUPPLY_ADD_MAX = 100
CLAIMS_PAGE_MAX = 200
#: claim `status_ex` values meaning the goods go back to the seller
CLAIM_BACK_TO_SELLER = {10}


class WildberriesOrdersClient(WildberriesClient):
    """The marketplace host's order and supply calls (they share the marketplace group budget
    with stock updates: the same limiter)."""

    def orders_new(self) -> list[dict]:
        data = self.get_json(ORDERS_NEW)
        rows = data.get("orders") if isinstance(data, dict) else None
        return [r for r in rows or [] if isinstance(r, dict)]

    def orders_status(self, ids: Iterable[int]) -> dict[int, dict]:
        """{task id: {"supplierStatus", "wbStatus"}} in batches of 1,000 (a read: retried)."""
        ids = [int(i) for i in ids]
        out: dict[int, dict] = {}
        for start in range(0, len(ids), STATUS_BATCH_MAX):
            chunk = ids[start:start + STATUS_BATCH_MAX]
            data = self.request("POST", ORDERS_STATUS, json={"orders": chunk}, retry=True).json()
            for row in (data.get("orders") if isinstance(data, dict) else None) or []:
                if isinstance(row, dict) and row.get("id") is not None:
                    out[int(row["id"])] = row
        return out

    def supplies_open(self) -> list[dict]:
        rows, next_ = [], 0
        while True:
            data = self.get_json(SUPPLIES, params={"limit": 1000, "next": next_})
            page = [r for r in (data.get("supplies") if isinstance(data, dict) else None) or [] if isinstance(r, dict)]
            rows += [r for r in page if not r.get("done")]
            following = data.get("next") if isinstance(data, dict) else None
            if not page or not following or following == next_:
                return rows
            next_ = following

    def supply_create(self, name: str) -> str:
        data = self.request("POST", SUPPLIES, json={"name": name}, retry=False).json()
        return str(data.get("id") or "") if isinstance(data, dict) else ""

    def supply_add(self, supply_id: str, task_ids: list[int]) -> None:
        """PATCH …/supplies/{id}/orders (≤ 100 tasks): each goes new -> confirm. Adding a task
        already in the supply again changes nothing, so this may be retried."""
        for start in range(0, len(task_ids), SUPPLY_ADD_MAX):
            self.request("PATCH", SUPPLY_ADD.format(supply_id=supply_id),
                         json={"orders": task_ids[start:start + SUPPLY_ADD_MAX]}, retry=True)

    def supply_deliver(self, supply_id: str) -> None:
        self.request("PATCH", SUPPLY_DELIVER.format(supply_id=supply_id), retry=False)

    def order_cancel(self, task_id: int) -> None:
        self.request("PATCH", ORDER_CANCEL.format(order_id=task_id), retry=False)


class WildberriesReturnsClient(_WildberriesBase):
    """The returns host (WB_RETURNS_URL): buyer claims, 20 a minute (burst 10)."""

    system = "wildberries-returns"
    host_setting = "RETURNS_URL"
    budget = ("returns", 10, 30.0, 1)

    def iter_claim_pages(self, *, archive: bool = False, limit: int = CLAIMS_PAGE_MAX) -> Iterator[list[dict]]:
        limit, offset = max(1, min(limit, CLAIMS_PAGE_MAX)), 0
        while True:
            data = self.get_json(CLAIMS, params={"is_archive": "true" if archive else "false", "limit": limit,
                                                 "offset": offset})
            rows = [r for r in (data.get("claims") if isinstance(data, dict) else None) or [] if isinstance(r, dict)]
            yield rows
            total = data.get("total") if isinstance(data, dict) else None
            offset += len(rows)
            if len(rows) < limit or (isinstance(total, int) and offset >= total):
                return


# ------------------------------------------------------------------------------------------------
# Mapping (pure)
# ------------------------------------------------------------------------------------------------
def status_keys(status: dict | None) -> tuple[list[str], str]:
    status = status or {}
    wb, supplier = str(status.get("wbStatus") or ""), str(status.get("supplierStatus") or "")
    keys = [k for k in (f"wb:{wb}" if wb else "", f"supplier:{supplier}" if supplier else "") if k]
    return keys, "/".join(x for x in (supplier, wb) if x)


def task_to_order(task: dict, status: dict | None = None) -> OrderIn:
    keys, raw = status_keys(status or {"supplierStatus": "new"})
    price_field = "convertedPrice" if task.get("convertedPrice") is not None else "price"
    barcodes = tuple(str(b) for b in task.get("skus") or [] if b)
    line = OrderLineIn(sku=str(task.get("article") or ""), quantity=Decimal(1),
                       price=money(task.get(price_field), minor_units=True), name=str(task.get("article") or ""),
                       external_sku=str(task.get("chrtId") or ""), barcodes=barcodes)
    address = task.get("address") if isinstance(task.get("address"), dict) else {}
    return OrderIn(source="wb", source_order_id=str(task.get("id") or ""), status_keys=keys, raw_status=raw,
                   lines=[line], placed_at=parse_time(task.get("createdAt")),
                   shipping_method="fbs", shipping_address=str(address.get("fullAddress") or "")[:2000],
                   comment=str(task.get("comment") or ""),
                   data={"rid": task.get("rid") or "", "warehouse_id": task.get("warehouseId"),
                         "cargo_type": task.get("cargoType") or 1, "order_uid": task.get("orderUid") or "",
                         "nm_id": task.get("nmId")})


def claim_to_return(claim: dict) -> ReturnIn:
    status_ex = claim.get("status_ex")
    received = claim.get("status") == 2 and status_ex in CLAIM_BACK_TO_SELLER
    return ReturnIn(source="wb", return_id=str(claim.get("id") or ""), source_order_id=str(claim.get("srid") or ""),
                    kind=f"claim:{claim.get('claim_type')}", status=f"{claim.get('status')}/{status_ex}",
                    received=received, lines=[],  # one claim is one task, one unit: the order's line
                    amount=money(claim.get("price")), reason=str(claim.get("user_comment") or "")[:255],
                    returned_at=parse_time(claim.get("dt_update") or claim.get("dt"), naive_tz=MSK), raw=claim)
