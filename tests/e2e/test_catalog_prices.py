"""Prices end to end against the sandbox set up as awkward real accounts are: rows listing the
wholesale price first, a product with no sale price, variants without a price of their own."""
from decimal import Decimal

import pytest

from catalog.models import Offer

from .steps import offer_of, sync

pytestmark = pytest.mark.e2e
RETAIL = "Цена продажи"


def _retail(row) -> Decimal | None:
    for p in row["salePrices"]:
        if p["priceType"]["name"] == RETAIL:
            return Decimal(str(p["value"])) / 100
    return None


def test_the_accounts_sale_price_reaches_every_unit_whatever_the_rows_say(moysklad):
    cat = moysklad.catalog
    parent = next(i for i in range(cat.n_products) if cat.exists(1, i) and cat.p_vcount[i]
                  and any(cat.v_price[j] == 0 for j in cat.variants_of(i)) and i not in cat.p_unpriced)
    simple = next(i for i in range(cat.n_products) if cat.exists(1, i) and not cat.p_vcount[i]
                  and i not in cat.p_unpriced)
    unpriced = next(i for i in range(cat.n_products) if cat.exists(1, i) and not cat.p_vcount[i] and i != simple)
    price_before = cat.p_price[unpriced]
    moysklad.update_product(cat.id_of(1, unpriced), salePrice=None)
    moysklad.configure(wholesale_first=True, variant_price_fallback=False)
    try:
        sync("moysklad-catalog")
        row = moysklad.product(cat.id_of(1, simple))
        assert row["salePrices"][0]["priceType"]["name"] != RETAIL     # the wholesale price comes first
        assert offer_of(cat.id_of(1, simple)).price == _retail(row)
        nothing = offer_of(cat.id_of(1, unpriced))
        assert nothing.price is None and not nothing.archived          # listed, not orderable
        product_price = _retail(moysklad.product(cat.id_of(1, parent)))
        for j in cat.variants_of(parent):
            vrow = moysklad.variant(cat.id_of(2, j))
            expected = _retail(vrow) if cat.v_price[j] else product_price
            assert offer_of(cat.id_of(2, j)).price == expected
            assert (vrow["salePrices"] == []) == (cat.v_price[j] == 0)
        assert Offer.objects.filter(price__isnull=True).count() >= 1
    finally:   # the sandbox lives for the session: leave it as other scenarios expect it
        moysklad.configure(wholesale_first=False, variant_price_fallback=True)
        moysklad.update_product(cat.id_of(1, unpriced), salePrice=price_before)
