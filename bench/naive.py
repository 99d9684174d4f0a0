"""The naive catalog import the issue compares us with: 100 rows a page, one request after the
other, no limiter, and `update_or_create` per row for products, offers and bindings (plus
`get_or_create` per barcode). It reads the same MoySklad lists and uses the same pure mapping
functions as the real job, so the difference measured is how the work is done, not what is done.

This is what a first implementation usually looks like; it is here only to be measured.
"""
from __future__ import annotations

from collections import Counter

import httpx
from django.utils import timezone

from catalog.models import Barcode, Category, Offer, Product
from integrations.http.errors import MappingError
from integrations.models import CategoryBinding, OfferBinding, ProductBinding, System
from integrations.moysklad.mapping import map_folder, map_product, map_variant

MS = System.MOYSKLAD


def _rows(client: httpx.Client, entity: str, page_size: int, counts: Counter):
    offset = 0
    while True:
        response = client.get(f"/entity/{entity}", params={"limit": page_size, "offset": offset,
                                                          "filter": "archived=true;archived=false", "order": "id"})
        counts["requests"] += 1
        response.raise_for_status()
        page = response.json()
        rows = page.get("rows") or []
        yield from rows
        offset += len(rows)
        if not rows or not page["meta"].get("nextHref"):
            return


def import_catalog(*, base_url: str, token: str, page_size: int = 100) -> dict:
    counts: Counter = Counter()
    now = timezone.now()
    headers = {"Authorization": f"Bearer {token}", "Accept-Encoding": "gzip",
               "Accept": "application/json;charset=utf-8"}
    with httpx.Client(base_url=base_url, headers=headers, timeout=60) as client:
        for row in _rows(client, "productfolder", page_size, counts):
            f = map_folder(row)
            category, _ = Category.objects.update_or_create(
                bindings__system=MS, bindings__external_id=f.external_id,
                defaults={"name": f.name, "path": f.path, "archived": f.archived})
            CategoryBinding.objects.update_or_create(system=MS, external_id=f.external_id, defaults={
                "category": category, "external_updated_at": f.updated, "synced_at": now})
            counts["folders"] += 1

        for row in _rows(client, "product", page_size, counts):
            try:
                p = map_product(row)
            except MappingError:
                counts["errors"] += 1
                continue
            category_id = (CategoryBinding.objects.filter(system=MS, external_id=p.folder_external_id)
                           .values_list("category_id", flat=True).first() if p.folder_external_id else None)
            product, _ = Product.objects.update_or_create(
                bindings__system=MS, bindings__external_id=p.external_id,
                defaults={"name": p.name, "description": p.description, "category_id": category_id,
                          "archived": p.archived, "vat": p.vat})
            ProductBinding.objects.update_or_create(system=MS, external_id=p.external_id, defaults={
                "product": product, "external_code": p.external_code, "external_updated_at": p.updated,
                "synced_at": now})
            counts["products"] += 1
            if p.offer:
                _offer(p.offer, product.pk, now)
                counts["offers"] += 1

        for row in _rows(client, "variant", page_size, counts):
            try:
                v = map_variant(row)
            except MappingError:
                counts["errors"] += 1
                continue
            binding = ProductBinding.objects.filter(system=MS, external_id=v.product_external_id).first()
            if binding is None:
                counts["errors"] += 1
                continue
            _offer(v, binding.product_id, now)
            counts["variants"] += 1
    return dict(counts)


def _offer(o, product_id: int, now) -> None:
    offer, _ = Offer.objects.update_or_create(sku=o.sku, defaults={
        "product_id": product_id, "name": o.name[:512], "price": o.price, "article": o.article, "code": o.code,
        "is_variant": o.kind == "variant", "characteristics": o.characteristics, "archived": o.archived})
    OfferBinding.objects.update_or_create(system=MS, external_id=o.external_id, defaults={
        "offer": offer, "kind": o.kind, "external_code": o.sku, "external_updated_at": o.updated, "synced_at": now})
    for kind, value in dict.fromkeys(o.barcodes):
        Barcode.objects.get_or_create(offer=offer, value=value, defaults={"kind": kind})
