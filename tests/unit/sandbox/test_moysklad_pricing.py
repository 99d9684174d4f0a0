"""The MoySklad emulator's pricing quirks of real accounts: rows listing the wholesale price first,
products with no sale price, variants without a price of their own."""
import httpx

from .conftest import AUTH


def _client(srv):
    return httpx.Client(base_url=srv.moysklad_base_url, headers=AUTH, timeout=10)


def _names(prices):
    return [p["priceType"]["name"] for p in prices]


def test_price_type_list_keeps_the_accounts_order_while_rows_list_wholesale_first(make_sandbox):
    srv = make_sandbox(rate_limit=False)
    srv.moysklad.configure(wholesale_first=True)
    with _client(srv) as ms:
        assert [t["name"] for t in ms.get("/context/companysettings/pricetype").json()] == ["Цена продажи",
                                                                                          "Оптовая цена"]
        row = ms.get("/entity/product", params={"limit": 1}).json()["rows"][0]
        assert _names(row["salePrices"]) == ["Оптовая цена", "Цена продажи"]
        assert row["salePrices"][0]["value"] < row["salePrices"][1]["value"]


def test_unpriced_products_list_no_sale_prices_nor_do_their_variants_without_one(make_sandbox):
    srv = make_sandbox(rate_limit=False, variant_share=1.0)
    cat = srv.moysklad.catalog
    srv.moysklad.configure(unpriced_share=0.5)
    assert len(cat.p_unpriced) == 100
    i = min(cat.p_unpriced)
    with _client(srv) as ms:
        pid = cat.id_of(1, i)
        assert ms.get(f"/entity/product/{pid}").json()["salePrices"] == []
        for j in cat.variants_of(i):
            prices = ms.get(f"/entity/variant/{cat.id_of(2, j)}").json()["salePrices"]
            assert (prices == []) == (cat.v_price[j] == 0)


def test_variants_without_an_own_price_show_none_when_the_fallback_is_off(make_sandbox):
    srv = make_sandbox(rate_limit=False, variant_share=1.0)
    cat = srv.moysklad.catalog
    j = next(j for j in range(cat.n_variants) if cat.v_price[j] == 0)
    with _client(srv) as ms:
        shown = ms.get(f"/entity/variant/{cat.id_of(2, j)}").json()["salePrices"]
        assert shown and shown[0]["value"] == cat.p_price[cat.v_product[j]]   # the documented fallback
        srv.moysklad.configure(variant_price_fallback=False)
        assert ms.get(f"/entity/variant/{cat.id_of(2, j)}").json()["salePrices"] == []


def test_a_product_price_can_be_removed_and_restored_through_control(make_sandbox):
    srv = make_sandbox(rate_limit=False)
    pid = srv.moysklad.product_ids()[0]
    with _client(srv) as ms:
        srv.moysklad.update_product(pid, salePrice=None)
        assert ms.get(f"/entity/product/{pid}").json()["salePrices"] == []
        srv.moysklad.update_product(pid, salePrice=0)
        assert ms.get(f"/entity/product/{pid}").json()["salePrices"][0]["value"] == 0.0   # 0 is a price
