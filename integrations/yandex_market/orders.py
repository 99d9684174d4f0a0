"""Yandex Market FBS orders: the business order list, status updates in batches of 30, returns
(../shared/docs/api/yandex-market.md §3–5). One YM order is one of ours (`source_order_id` =
`orderId`). Business orders give line TOTALS in rubles (`prices.payment`), times with a Moscow
offset; the unit price is the total over the count."""
from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal
from typing import Iterator

from integrations.http.ratelimit import limiter_for
from integrations.marketplace_orders.types import MSK, OrderIn, OrderLineIn, ReturnIn, money, parse_time

from .client import YandexMarketClient, _scale
from .constants import MAX_PARALLEL

BUSINESS_ORDERS = "/v1/businesses/{business_id}/orders"
STATUS_UPDATE = "/v2/campaigns/{campaign_id}/orders/status-update"
RETURNS = "/v2/campaigns/{campaign_id}/returns"

PAGE_MAX = 50
STATUS_BATCH_MAX = 30
RETURNS_PAGE_MAX = 100
#: orders methods: 10,000 requests an hour
CALLS_PER_HOUR = 10_000
#: the business order list's date ranges are at most 30 days
WINDOW_MAX = timedelta(days=30)
#: return logistics states meaning the units are back with us
RECEIVED_RETURN_STATES = {"PICKED", "FULFILMENT_RECEIVED", "RECEIVED_ON_FULFILLMENT"}


def _msk(moment: datetime) -> str:
    return moment.astimezone(MSK).strftime("%Y-%m-%dT%H:%M:%S+03:00")


class YandexMarketOrdersClient(YandexMarketClient):
    def __init__(self, conf: dict | None = None, **kwargs):
        if "limiter" not in kwargs:
            from django.conf import settings

            business = (conf or settings.YANDEX_MARKET)["BUSINESS_ID"]
            kwargs["limiter"] = limiter_for(f"yandex_market:{business}:orders", units=CALLS_PER_HOUR,
                                            window=3600.0 * _scale("yandex_market"), parallel=MAX_PARALLEL)
        super().__init__(conf, **kwargs)

    @property
    def campaign_id(self) -> str:
        return str(self.conf.get("CAMPAIGN_ID") or "")

    def iter_order_pages(self, *, updated_from: datetime, updated_to: datetime | None = None,
                         limit: int = PAGE_MAX) -> Iterator[list[dict]]:
        """POST /v1/businesses/{businessId}/orders: FBS orders updated in the window (≤ 30
        days), real ones only (`fake: false`), by `pageToken`."""
        updated_to = updated_to or datetime.now(MSK)
        updated_from = max(updated_from, updated_to - WINDOW_MAX)
        body: dict = {"programTypes": ["FBS"], "fake": False,
                      "dates": {"updateDateFrom": _msk(updated_from), "updateDateTo": _msk(updated_to)}}
        if self.campaign_id:
            body["campaignIds"] = [int(self.campaign_id)] if self.campaign_id.isdigit() else [self.campaign_id]
        params = {"limit": max(1, min(limit, PAGE_MAX))}
        path = BUSINESS_ORDERS.format(business_id=self.conf["BUSINESS_ID"])
        seen = set()
        while True:
            data = self.request("POST", path, params=dict(params), json=body, retry=True).json()
            data = data if isinstance(data, dict) else {}
            if isinstance(data.get("result"), dict):
                data = data["result"]
            yield [o for o in data.get("orders") or [] if isinstance(o, dict)]
            token = ((data.get("paging") or {}).get("nextPageToken") or "") if isinstance(data.get("paging"), dict) else ""
            if not token or token in seen:
                return
            seen.add(token)
            params["pageToken"] = token

    def status_update(self, campaign_id: str, orders: list[dict]) -> dict[str, dict]:
        """POST …/orders/status-update with up to 30 `{id, status, substatus}`. Returns {order id:
        {"updateStatus", "errorDetails", …}}. Setting the status an order already has is harmless,
        but the caller reads back before resending after a lost answer anyway."""
        if len(orders) > STATUS_BATCH_MAX:
            raise ValueError(f"at most {STATUS_BATCH_MAX} orders per status update")
        data = self.request("POST", STATUS_UPDATE.format(campaign_id=campaign_id), json={"orders": orders},
                            retry=False).json()
        result = (data.get("result") or {}) if isinstance(data, dict) else {}
        return {str(r.get("id")): r for r in result.get("orders") or [] if isinstance(r, dict)}

    def orders_by_id(self, order_ids: list[str]) -> dict[str, dict]:
        path = BUSINESS_ORDERS.format(business_id=self.conf["BUSINESS_ID"])
        out: dict[str, dict] = {}
        for start in range(0, len(order_ids), PAGE_MAX):
            chunk = [int(i) if str(i).isdigit() else i for i in order_ids[start:start + PAGE_MAX]]
            data = self.request("POST", path, params={"limit": PAGE_MAX}, json={"orderIds": chunk},
                                retry=True).json()
            for row in (data.get("orders") if isinstance(data, dict) else None) or []:
                if isinstance(row, dict):
                    out[str(row.get("orderId"))] = row
        return out

    def iter_return_pages(self, *, campaign_id: str, from_date: datetime, to_date: datetime | None = None,
                          limit: int = RETURNS_PAGE_MAX) -> Iterator[list[dict]]:
        to_date = to_date or datetime.now(MSK)
        params = {"limit": max(1, min(limit, RETURNS_PAGE_MAX)),
                  "fromDate": from_date.astimezone(MSK).strftime("%Y-%m-%d"),
                  "toDate": to_date.astimezone(MSK).strftime("%Y-%m-%d")}
        seen = set()
        while True:
            data = self.get_json(RETURNS.format(campaign_id=campaign_id), params=dict(params))
            result = (data.get("result") or {}) if isinstance(data, dict) else {}
            yield [r for r in result.get("returns") or [] if isinstance(r, dict)]
            token = (result.get("paging") or {}).get("nextPageToken") if isinstance(result.get("paging"), dict) else None
            if not token or token in seen:
                return
            seen.add(token)
            params["pageToken"] = token


# ------------------------------------------------------------------------------------------------
# Mapping (pure)
# ------------------------------------------------------------------------------------------------
def order_to_order(row: dict) -> OrderIn:
    lines = []
    for item in row.get("items") or []:
        if not isinstance(item, dict):
            continue
        count = int(item.get("count") or 0)
        payment = ((item.get("prices") or {}).get("payment") or {}) if isinstance(item.get("prices"), dict) else {}
        total = money(payment.get("value"))
        unit = (total / count).quantize(Decimal("0.01")) if count else total
        lines.append(OrderLineIn(sku=str(item.get("offerId") or ""), quantity=Decimal(count), price=unit,
                                 name=str(item.get("offerName") or "")[:512], external_sku=str(item.get("id") or "")))
    status, substatus = str(row.get("status") or ""), str(row.get("substatus") or "")
    delivery = row.get("delivery") if isinstance(row.get("delivery"), dict) else {}
    return OrderIn(source="ym", source_order_id=str(row.get("orderId") or ""),
                   status_keys=[f"{status}/{substatus}" if substatus else "", status],
                   raw_status=f"{status}/{substatus}" if substatus else status, lines=lines,
                   placed_at=parse_time(row.get("creationDate"), naive_tz=MSK),
                   updated_at=parse_time(row.get("updateDate"), naive_tz=MSK),
                   shipping_method=str(delivery.get("type") or "")[:64], comment=str(row.get("notes") or ""),
                   data={"campaign_id": str(row.get("campaignId") or ""), "fake": bool(row.get("fake"))})


def return_to_record(row: dict) -> ReturnIn:
    lines = [{"sku": str(i.get("shopSku") or ""), "quantity": int(i.get("count") or 0)}
             for i in row.get("items") or [] if isinstance(i, dict) and i.get("count")]
    amount = row.get("amount") if isinstance(row.get("amount"), dict) else {}
    shipment = str(row.get("shipmentStatus") or "")
    return ReturnIn(source="ym", return_id=str(row.get("id") or ""), source_order_id=str(row.get("orderId") or ""),
                    kind=str(row.get("returnType") or ""), status=shipment,
                    received=shipment in RECEIVED_RETURN_STATES, lines=lines,
                    amount=money(amount.get("value")) if amount.get("value") is not None else None,
                    returned_at=parse_time(row.get("updateDate") or row.get("creationDate"), naive_tz=MSK), raw=row)
