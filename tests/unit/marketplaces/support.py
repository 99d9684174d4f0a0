"""Catalog builders for the marketplace tests (bulk: hundreds of offers in a few statements)."""
from __future__ import annotations

from decimal import Decimal

from django.utils import timezone

from catalog.models import Barcode, Offer, Product
from integrations import jobs
from integrations.runs import run_job
from stock.models import StockLevel, Warehouse


def barcode(i: int) -> str:
    return f"46{i:011d}"


def chrt(i: int) -> int:
    return 10_000 + i


def catalog(n: int, *, warehouse: Warehouse, stock: int = 5, start: int = 1) -> list[Offer]:
    """`n` offers SKU-00001… with one barcode each and `stock` units in `warehouse`."""
    products = Product.objects.bulk_create([Product(name=f"P{i}") for i in range(start, start + n)])
    offers = Offer.objects.bulk_create([Offer(product=p, sku=f"SKU-{i:05d}", name=f"P{i}")
                                        for i, p in zip(range(start, start + n), products)])
    Barcode.objects.bulk_create([Barcode(offer=o, value=barcode(i)) for i, o in zip(range(start, start + n), offers)])
    StockLevel.objects.bulk_create([StockLevel(offer=o, warehouse=warehouse, stock=Decimal(stock), available=Decimal(stock))
                                    for o in offers])
    return offers


def cards_for(offers: list[Offer]) -> list[dict]:
    """WB cards: one single-size card per offer, its size carrying the offer's barcode."""
    out = []
    for o in offers:
        i = int(o.sku.split("-")[1])
        out.append({"nmID": 500_000 + i, "vendorCode": f"WB-{i}", "updatedAt": "2026-01-01T00:00:00Z",
                    "sizes": [{"chrtID": chrt(i), "techSize": "0", "skus": [barcode(i)]}]})
    return out


def set_stock(offers: list[Offer], warehouse: Warehouse, qty) -> None:
    """Change stock the way an import does: new figures and a fresh updated_at."""
    now = timezone.now()
    StockLevel.objects.filter(offer__in=offers, warehouse=warehouse).update(
        stock=Decimal(qty), available=Decimal(qty), updated_at=now)


def push(*, full: bool = False, trigger: str = "test", **kwargs):
    return run_job(jobs.get("marketplace-stock"), full=full, trigger=trigger, **kwargs)


def age(seconds: int = 31) -> None:
    """Let time pass for Ozon's once-per-30-s rule: every last push moves `seconds` back."""
    from datetime import timedelta

    from integrations.models import ChannelOffer

    ChannelOffer.objects.exclude(pushed_at=None).update(pushed_at=timezone.now() - timedelta(seconds=seconds))
