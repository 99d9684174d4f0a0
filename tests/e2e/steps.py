"""Small steps the e2e scenarios are built from (Saleor e2e style)."""
from __future__ import annotations

from catalog.models import Offer, Product
from integrations import jobs
from integrations.models import JobRun, OfferBinding, WarehouseBinding
from integrations.runs import run_job
from stock.models import StockLevel


def sync(job: str, *, full: bool = False, expect: str = JobRun.Status.SUCCESS) -> JobRun:
    """Run a registry job as beat would; the run must end as `expect`."""
    run = run_job(jobs.get(job), full=full, trigger="e2e", raise_errors=False)
    assert run.status == expect, (run.status, run.message, run.errors[:5])
    return run


def offer_of(assortment_id: str) -> Offer:
    return OfferBinding.objects.select_related("offer").get(system="moysklad", external_id=assortment_id).offer


def product_of(product_id: str) -> Product:
    return Product.objects.get(bindings__system="moysklad", bindings__external_id=product_id)


def active_simple_product(emulator, *, skip: set[str] = frozenset()) -> str:
    """An active product without variants that no other test has touched."""
    for pid in emulator.product_ids(include_archived=False):
        row = emulator.product(pid)
        if not row.get("variantsCount") and pid not in skip and row["salePrices"][0]["value"] > 0:
            return pid
    raise AssertionError("the sandbox has no active product without variants left")


def levels_by_store() -> dict[tuple[str, str], tuple]:
    """{(assortment id, store id): (stock, reserve, available)} as the site holds them."""
    offers = dict(OfferBinding.objects.filter(system="moysklad").values_list("offer_id", "external_id"))
    stores = dict(WarehouseBinding.objects.filter(system="moysklad").values_list("warehouse_id", "external_id"))
    return {(offers[o], stores[w]): (s, r, a) for o, w, s, r, a in StockLevel.objects.values_list(
        "offer_id", "warehouse_id", "stock", "reserve", "available") if o in offers and w in stores}
