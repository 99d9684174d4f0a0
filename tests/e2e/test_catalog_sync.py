"""The spine end to end: MoySklad's catalog and stock arrive, stay current, and never vanish."""
from decimal import Decimal

import pytest

from catalog.models import Offer, Product
from integrations.models import JobRun, ProductBinding
from stock.models import Warehouse

from .steps import active_simple_product, levels_by_store, offer_of, product_of, sync

pytestmark = pytest.mark.e2e
touched: set[str] = set()   # products one test changed in the (session-wide) sandbox


def test_first_sync_imports_whole_demo_catalog(moysklad):
    catalog_run = sync("moysklad-catalog")
    stock_run = sync("moysklad-stock")

    # Every product and every sellable unit, archived ones included, exactly once.
    product_ids = moysklad.product_ids(include_archived=True)
    variant_ids = moysklad.variant_ids(include_archived=True)
    simple = [pid for pid in product_ids if not moysklad.product(pid).get("variantsCount")]
    assert Product.objects.count() == ProductBinding.objects.count() == len(product_ids)
    assert Offer.objects.count() == len(simple) + len(variant_ids)
    assert Offer.objects.filter(is_variant=True).count() == len(variant_ids)
    assert catalog_run.error_count == 0 and stock_run.error_count == 0

    # Prices in rubles (MoySklad sends kopecks), SKUs per the rule: article, else code; variant: code.
    for pid in simple[:20]:
        row = moysklad.product(pid)
        offer = offer_of(pid)
        assert offer.price == Decimal(str(row["salePrices"][0]["value"])) / 100
        assert offer.sku == (row.get("article") or row["code"])
    for vid in variant_ids[:20]:
        row = moysklad.variant(vid)
        assert offer_of(vid).price == Decimal(str(row["salePrices"][0]["value"])) / 100
        assert offer_of(vid).sku == row["code"]

    # Stock per warehouse: what the site holds is what MoySklad reports, store by store.
    assert Warehouse.objects.count() == len(moysklad.store_ids())
    held = levels_by_store()
    checked = 0
    for item in [pid for pid in simple if not moysklad.product(pid)["archived"]] + \
            moysklad.variant_ids(include_archived=False):
        for store in moysklad.store_ids():
            upstream = moysklad.stock(item, store)
            want_stock, want_reserve = Decimal(str(upstream["stock"])), Decimal(str(upstream["reserve"]))
            stock, reserve, available = held.get((item, store), (0, 0, 0))
            assert (stock, reserve) == (want_stock, want_reserve), (item, store)
            assert available == max(want_stock - want_reserve, 0)
            checked += 1
    assert checked > 500 and any(v[0] for v in held.values())


def test_delta_picks_up_a_changed_price(moysklad, sandbox):
    sync("moysklad-catalog")
    pid = active_simple_product(moysklad, skip=touched)
    touched.add(pid)
    moysklad.update_product(pid, salePrice=123_450)     # 1 234.50 ₽, in kopecks as MoySklad has it
    sandbox.moysklad.reset_stats()

    run = sync("moysklad-catalog")

    assert offer_of(pid).price == Decimal("1234.50")
    assert run.counts.get("products_updated") == 1
    stats = sandbox.moysklad.stats()
    # price types (read once per run), folders, products, variants: nothing more
    assert stats["requests"] <= 4, stats["by_endpoint"]


def test_archived_product_is_unpublished(moysklad):
    sync("moysklad-catalog")
    pid = active_simple_product(moysklad, skip=touched)
    touched.add(pid)
    assert not product_of(pid).archived

    moysklad.update_product(pid, archived=True)
    sync("moysklad-catalog")

    product = product_of(pid)
    assert product.archived and offer_of(pid).archived
    assert Product.objects.filter(pk=product.pk).exists()   # unpublished, not deleted


def test_deleted_product_is_archived_by_full_sync(moysklad):
    sync("moysklad-catalog")
    pid = active_simple_product(moysklad, skip=touched)
    touched.add(pid)
    moysklad.delete_product(pid)

    sync("moysklad-catalog")
    assert not product_of(pid).archived     # a delta cannot tell a deletion: it only sees changes

    run = sync("moysklad-catalog", full=True)
    assert product_of(pid).archived and offer_of(pid).archived
    assert run.counts.get("deleted_upstream_products") == 1
    assert ProductBinding.objects.filter(external_id=pid).exists()   # never hard-deleted
    assert JobRun.objects.filter(job="moysklad-catalog", status=JobRun.Status.SUCCESS).count() == 3
