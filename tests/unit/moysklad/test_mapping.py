"""Pure mapping functions: no database, no HTTP."""
from datetime import datetime, timezone
from decimal import Decimal

import pytest

from integrations.http.errors import MappingError
from integrations.moysklad.mapping import (
    PriceType,
    PriceTypeError,
    barcodes,
    choose_price_type,
    kopecks_to_rubles,
    map_folder,
    map_product,
    map_variant,
    parse_msk,
    product_sku,
    rubles_to_kopecks,
    sale_price,
    stock_quantity,
    to_msk_string,
)

from integrations.moysklad.schemas import PriceTypeInfo

from .support import load, product, variant


@pytest.mark.parametrize("kopecks,rubles", [
    (149900.0, Decimal("1499.00")),
    (14990.5, Decimal("149.91")),   # half a kopeck rounds up
    (14990.4, Decimal("149.90")),
    (1, Decimal("0.01")),
    (0, Decimal("0.00")),
    (99999999999.0, Decimal("999999999.99")),
])
def test_kopecks_become_decimal_rubles_rounded_half_up(kopecks, rubles):
    value = kopecks_to_rubles(kopecks)
    assert value == rubles and isinstance(value, Decimal) and value.as_tuple().exponent == -2


@pytest.mark.parametrize("bad", [None, "abc", [], {}])
def test_bad_money_is_a_mapping_error(bad):
    with pytest.raises(MappingError):
        kopecks_to_rubles(bad)


def test_rubles_back_to_kopecks():
    assert rubles_to_kopecks(Decimal("1499.00")) == 149900
    assert rubles_to_kopecks(Decimal("149.905")) == 14991


def test_moscow_time_is_parsed_with_and_without_milliseconds():
    assert parse_msk("2026-11-20 10:45:16.123") == datetime(2026, 11, 20, 7, 45, 16, 123000, tzinfo=timezone.utc)
    assert parse_msk("2026-11-20 10:45:16") == datetime(2026, 11, 20, 7, 45, 16, tzinfo=timezone.utc)
    assert parse_msk("2026-11-20 10:45") == datetime(2026, 11, 20, 7, 45, tzinfo=timezone.utc)
    assert parse_msk(None) is None
    with pytest.raises(MappingError):
        parse_msk("20.11.2026")


def test_filter_times_are_written_in_moscow_time():
    moment = datetime(2026, 11, 20, 21, 30, 0, 5000, tzinfo=timezone.utc)
    assert to_msk_string(moment) == "2026-11-21 00:30:00.005"
    assert to_msk_string(moment, millis=False) == "2026-11-21 00:30:00"


RETAIL = PriceType("p1", "Цена продажи", "cbcf-p1")
TYPES = [PriceTypeInfo("opt", "Оптовая цена", "cbcf-opt"), PriceTypeInfo("p1", "Цена продажи", "cbcf-p1")]


def test_sale_price_is_chosen_by_price_type_not_position():
    record = {"salePrices": [{"value": 100.0, "priceType": {"id": "opt", "name": "Оптовая"}},
                             {"value": 149900.0, "priceType": {"id": "p1", "name": "Цена продажи"}}]}
    assert sale_price(record, RETAIL) == Decimal("1499.00")
    assert sale_price(record, PriceType("opt", "Оптовая")) == Decimal("1.00")
    assert sale_price(record, PriceType("x", "Розница")) is None


def test_price_type_reference_without_an_id_matches_by_name():
    assert sale_price({"salePrices": [{"value": 500.0, "priceType": {"name": "Цена продажи"}}]}, RETAIL) == Decimal("5.00")


@pytest.mark.parametrize("configured", ["p1", "Цена продажи", "cbcf-p1", " Цена продажи "])
def test_configured_price_type_is_found_by_id_name_or_external_code(configured):
    assert choose_price_type(TYPES, configured) == RETAIL


def test_without_a_setting_the_accounts_first_price_type_is_used():
    assert choose_price_type(TYPES, "").id == "opt"   # the account's order, whatever it is


def test_a_configured_price_type_the_account_lacks_names_the_ones_it_has():
    with pytest.raises(PriceTypeError) as info:
        choose_price_type(TYPES, "Розница")
    assert "'Розница'" in str(info.value) and "'Оптовая цена' (id opt" in str(info.value)
    assert "'Цена продажи' (id p1" in str(info.value)


def test_an_account_without_price_types_sells_without_prices():
    assert choose_price_type([], "") is None
    assert sale_price({"salePrices": [{"value": 100.0}]}, None) is None
    with pytest.raises(PriceTypeError, match="available: none"):
        choose_price_type([], "Цена продажи")


@pytest.mark.parametrize("prices", [[], None, [{"value": None, "priceType": {"id": "p1"}}],
                                    [{"value": 100.0, "priceType": {"id": "other", "name": "x"}}]])
def test_missing_or_null_price_is_no_price(prices):
    assert sale_price({"salePrices": prices}, RETAIL) is None


def test_zero_is_a_price():
    assert sale_price({"salePrices": [{"value": 0, "priceType": {"id": "p1"}}]}, RETAIL) == Decimal("0.00")


def test_negative_price_is_a_mapping_error():
    with pytest.raises(MappingError, match="negative"):
        sale_price({"salePrices": [{"value": -100.0, "priceType": {"id": "p1"}}]}, RETAIL)


def test_barcodes_of_every_kind_are_kept():
    assert barcodes({"barcodes": [{"ean13": "2000000000015"}, {"code128": "ALS01"}, {"gtin": ""}, "junk"]}) == [
        ("ean13", "2000000000015"), ("code128", "ALS01")]


def test_product_sku_is_article_or_code_when_article_empty():
    assert product_sku({"article": " ALS-01 ", "code": "1"}) == "ALS-01"
    assert product_sku({"article": "", "code": "00002"}) == "00002"
    assert product_sku({"code": "00002"}) == "00002"
    with pytest.raises(MappingError, match="no SKU"):
        product_sku({"article": " ", "code": ""})


def test_product_without_variants_maps_to_one_offer():
    row = load("product_list_simple")["rows"][0]
    p = map_product(row, price_type=RETAIL)
    assert p.external_id == row["id"] and p.name == "Куртка зимняя «Аляска»" and not p.has_variants
    assert p.folder_external_id == "ffffffff-0000-0000-0000-000000000003"
    assert p.updated == parse_msk("2026-11-20 10:45:16.123")
    assert p.offer.sku == "ALS-01" and p.offer.price == Decimal("1499.00") and p.offer.kind == "product"
    assert p.offer.barcodes == [("ean13", "2000000000015"), ("code128", "ALS01")]
    assert p.vat == 20 and p.external_code == "ext-als-01"


def test_product_with_variants_has_no_offer_of_its_own():
    p = map_product(load("product_list_with_variants")["rows"][0])
    assert p.has_variants and p.offer is None


def test_product_with_variants_needs_no_price():
    p = map_product(product(1, variantsCount=3, salePrices=[]))
    assert p.offer is None


def test_variant_maps_to_an_offer_keyed_by_its_code():
    row = load("variant_list_two")["rows"][0]
    v = map_variant(row, price_type=RETAIL)
    assert v.sku == "TSH-B-M-W" and v.kind == "variant" and v.price == Decimal("999.00")
    assert v.product_external_id == "22222222-0000-0000-0000-000000000001"
    assert v.characteristics == {"Размер": "M", "Цвет": "белый"}


@pytest.mark.parametrize("row,message", [
    ("not a dict", "malformed"),
    ({"name": "no id"}, "malformed"),
    (product(1, name=""), "missing name"),
    (product(1, name=None), "missing name"),
    (product(1, updated="yesterday"), "bad MoySklad datetime"),
])
def test_bad_product_rows_are_mapping_errors(row, message):
    with pytest.raises(MappingError, match=message):
        map_product(row)


@pytest.mark.parametrize("row,message", [
    (variant(1, "p", code=""), "no code"),
    (variant(1, "p", product=None), "no product link"),
    (variant(1, "p", salePrices=[{"value": "lots", "priceType": {"id": "p1"}}]), "malformed variant row"),
])
def test_bad_variant_rows_are_mapping_errors(row, message):
    with pytest.raises(MappingError, match=message):
        map_variant(row)


def test_folder_path_includes_its_own_name():
    rows = {r["name"]: r for r in load("productfolder_tree")["rows"]}
    f = map_folder(rows["Зимние"])
    assert f.path == "Одежда/Куртки/Зимние" and f.parent_external_id == "ffffffff-0000-0000-0000-000000000002"
    assert map_folder(rows["Одежда"]).parent_external_id is None


@pytest.mark.parametrize("value,expected", [(11, Decimal(11)), (46.5, Decimal("46.5")), (-5, Decimal(-5)),
                                            (None, Decimal(0))])
def test_stock_quantity_is_decimal(value, expected):
    assert stock_quantity({"stock": value}, "stock") == expected


@pytest.mark.parametrize("value", ["lots", "NaN", "Infinity", True, [1]])
def test_bad_stock_quantity_is_a_mapping_error(value):
    with pytest.raises(MappingError, match="bad stock"):
        stock_quantity({"stock": value}, "stock")
