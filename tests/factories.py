"""Small builders for domain rows, shared by every test ring. Each takes keyword overrides for any
model field and fills the rest with unique, valid values, so a test states only what it is about:

    offer = make_offer(sku="A1", price=Decimal("1499.00"))
    make_stock(offer=offer, warehouse=make_warehouse(code="main"), stock=5)

No upstream bindings are made here: integration tests add those explicitly (they are the subject).
"""
from __future__ import annotations

import itertools
from datetime import datetime
from decimal import Decimal
from typing import Any, Iterable

from django.db import models

from catalog.models import Barcode, Category, Offer, Product
from stock.models import StockLevel, Warehouse

_seq = itertools.count(1)


def _n() -> int:
    return next(_seq)


def make_category(*, name: str | None = None, parent: Category | None = None, **fields: Any) -> Category:
    name = name or f"Category {_n()}"
    path = fields.pop("path", f"{parent.path}/{name}" if parent else name)
    return Category.objects.create(name=name, parent=parent, path=path, **fields)


def make_product(*, name: str | None = None, category: Category | None = None, **fields: Any) -> Product:
    return Product.objects.create(name=name or f"Product {_n()}", category=category, **fields)


def make_offer(*, product: Product | None = None, sku: str | None = None, name: str | None = None,
               price: Decimal | int | str | None = Decimal("1499.00"), barcodes: Iterable[str] = (),
               **fields: Any) -> Offer:
    """An offer (and, unless given, a product of the same name). `barcodes` are EAN-13 values."""
    n = _n()
    if product is None:
        product = make_product(name=name or f"Product {n}")
    offer = Offer.objects.create(
        product=product, sku=sku or f"SKU-{n:05d}", name=name or product.name,
        price=None if price is None else Decimal(str(price)), **fields)
    Barcode.objects.bulk_create([Barcode(offer=offer, value=value) for value in barcodes])
    return offer


def make_warehouse(*, code: str | None = None, name: str | None = None, **fields: Any) -> Warehouse:
    n = _n()
    return Warehouse.objects.create(code=code or f"wh{n}", name=name or f"Warehouse {n}", **fields)


def make_stock(*, offer: Offer, warehouse: Warehouse | None = None, stock: Decimal | int | str = 0,
               reserve: Decimal | int | str = 0, available: Decimal | int | str | None = None,
               **fields: Any) -> StockLevel:
    """A stock row; `available` defaults to max(stock − reserve, 0) as the sync computes it."""
    stock, reserve = Decimal(str(stock)), Decimal(str(reserve))
    avail = max(stock - reserve, Decimal(0)) if available is None else Decimal(str(available))
    return StockLevel.objects.create(offer=offer, warehouse=warehouse or make_warehouse(), stock=stock,
                                     reserve=reserve, available=avail, **fields)


def set_updated_at(obj: models.Model, when: datetime) -> None:
    """Backdate or forward-date `updated_at` (auto_now ignores assignment on save)."""
    type(obj).objects.filter(pk=obj.pk).update(updated_at=when)
    obj.updated_at = when  # type: ignore[attr-defined]
