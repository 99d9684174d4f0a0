"""Payload builders in the marketplaces' own shapes (facts sheets)."""
from __future__ import annotations

from integrations.runs import JobContext, JobSpec
from integrations.models import JobRun
from django.utils import timezone


def posting(number="0208245774-0029-1", status="awaiting_packaging", products=None, in_process_at="2026-05-14T08:00:00Z"):
    return {"posting_number": number, "order_id": 1, "order_number": number.rsplit("-", 1)[0], "status": status,
            "substatus": "posting_created", "in_process_at": in_process_at,
            "delivery_method": {"id": 1, "name": "Ozon Логистика", "warehouse_id": 22000},
            "products": products if products is not None else [
                {"sku": 1904686181, "offer_id": "PHONE-1", "name": "Телефон", "quantity": 2,
                 "price": {"amount": "1390.50", "currency": "RUB"}}],
            "analytics_data": {"city": "Москва", "region": ""}, "cancellation": {}}


def postings_page(*postings, cursor="", has_next=False):
    return {"postings": list(postings), "cursor": cursor, "has_next": has_next, "count": len(postings)}


def wb_task(task_id=13833711, chrt=987654321, article="CASE-RED", price=25050, barcodes=("4600000000001",)):
    return {"id": task_id, "rid": f"rid-{task_id}", "orderUid": "u1", "createdAt": "2026-05-14T07:56:29Z",
            "warehouseId": 658434, "nmId": 123, "chrtId": chrt, "article": article, "skus": list(barcodes),
            "price": price, "convertedPrice": price, "currencyCode": 643, "cargoType": 1, "comment": ""}


def ym_order(order_id=123456789, status="PROCESSING", substatus="STARTED", items=None,
             created="2026-05-14T11:00:00+03:00", updated="2026-05-14T11:05:00+03:00"):
    return {"orderId": order_id, "campaignId": 20, "programType": "FBS", "status": status, "substatus": substatus,
            "creationDate": created, "updateDate": updated, "fake": False,
            "items": items if items is not None else [
                {"id": 555, "offerId": "CASE-RED", "offerName": "Чехол", "count": 2,
                 "prices": {"payment": {"value": 501, "currencyId": "RUR"}}}],
            "delivery": {"type": "DELIVERY"}}


def context(job="marketplace-orders", since=None) -> JobContext:
    spec = JobSpec(job, lambda ctx: None, lambda: True, "test")
    run = JobRun.objects.create(job=job, started_at=timezone.now())
    return JobContext(spec=spec, run=run, since=since, owner="test")
