"""Pure translation for each marketplace: request items and per-item answers."""
from datetime import datetime, timezone

from integrations.marketplaces.types import StockLine
from integrations.ozon import mapping as ozon
from integrations.wildberries import mapping as wb
from integrations.yandex_market import mapping as ym


def _lines(*keys, warehouse="22000", qty=5):
    return [StockLine(i + 1, key, warehouse, qty) for i, key in enumerate(keys)]


# -- Ozon ------------------------------------------------------------------------------------------
def test_ozon_items_are_keyed_by_offer_id_and_integer_warehouse():
    assert ozon.stock_items(_lines("A-1")) == [{"offer_id": "A-1", "stock": 5, "warehouse_id": 22000}]


def test_ozon_results_read_each_item_of_a_200():
    lines = _lines("A", "B", "C")
    rows = [
        {"offer_id": "A", "warehouse_id": 22000, "updated": True, "errors": []},
        {"offer_id": "B", "warehouse_id": 22000, "updated": False,
         "errors": [{"code": "offer_id_not_found", "message": "Product not found"}]},
        {"offer_id": "C", "warehouse_id": 22000, "updated": False,
         "errors": [{"code": "TOO_MANY_REQUESTS", "message": "Stock is updated too frequently"}]},
    ]
    a, b, c = ozon.stock_results(lines, rows)
    assert a.ok and not b.ok and not c.ok
    assert "offer_id_not_found" in b.error and not b.retry_later
    assert c.retry_later


def test_ozon_item_missing_from_the_answer_is_retried_not_assumed():
    (result,) = ozon.stock_results(_lines("A"), [])
    assert not result.ok and result.retry_later


# -- Wildberries -----------------------------------------------------------------------------------
def test_wb_items_are_keyed_by_chrt_id():
    assert wb.stock_items(_lines("123")) == [{"chrtId": 123, "amount": 5}]


def test_wb_conflict_fails_the_named_sizes_and_returns_the_rest_for_resending():
    lines = _lines("1", "2", "3")
    results, others = wb.stock_results(lines, [{"code": "NotFound", "message": "Not found",
                                                "data": [{"sku": "", "chrtId": 2, "amount": 5}]}])
    assert [r.ref for r in results] == [2] and "NotFound" in results[0].error
    assert [line.key for line in others] == ["1", "3"]


def test_wb_conflict_naming_no_size_fails_every_line():
    results, others = wb.stock_results(_lines("1", "2"), [{"code": "StoreIsProcessing", "message": "wait"}])
    assert len(results) == 2 and not others and all(r.retry_later for r in results)


def test_wb_sizes_match_by_barcode_then_vendor_code_then_barcode_as_sku():
    cards = [
        {"nmID": 1, "vendorCode": "ART-1", "sizes": [{"chrtID": 11, "skus": ["4600000000011"]},
                                                      {"chrtID": 12, "skus": ["4600000000012"]}]},
        {"nmID": 2, "vendorCode": "SKU-2", "sizes": [{"chrtID": 21, "skus": ["999"]}]},
        {"nmID": 3, "vendorCode": "X", "sizes": [{"chrtID": 31, "skus": ["SKU-3"]}]},
        {"nmID": 4, "vendorCode": "nobody", "sizes": [{"chrtID": 41, "skus": ["000"]}]},
    ]
    matches, problems = wb.match_sizes(wb.card_sizes(cards), offer_by_barcode={"4600000000012": 100},
                                       offer_by_sku={"SKU-2": 200, "SKU-3": 300})
    assert matches == {100: 12, 200: 21, 300: 31}
    assert problems == []


def test_wb_vendor_code_does_not_match_a_card_with_several_sizes():
    cards = [{"nmID": 1, "vendorCode": "SKU-1", "sizes": [{"chrtID": 11, "skus": []}, {"chrtID": 12, "skus": []}]}]
    assert wb.match_sizes(wb.card_sizes(cards), offer_by_barcode={}, offer_by_sku={"SKU-1": 1}) == ({}, [])


def test_wb_ambiguous_matches_are_reported_not_guessed():
    cards = [{"nmID": 1, "vendorCode": "v", "sizes": [{"chrtID": 11, "skus": ["b1", "b2"]}]},
             {"nmID": 2, "vendorCode": "w", "sizes": [{"chrtID": 21, "skus": ["b3"]}, {"chrtID": 22, "skus": ["b4"]}]}]
    matches, problems = wb.match_sizes(wb.card_sizes(cards), offer_by_barcode={"b1": 1, "b2": 2, "b3": 3, "b4": 3},
                                       offer_by_sku={})
    assert matches == {}
    assert len(problems) == 2


# -- Yandex Market ---------------------------------------------------------------------------------
def test_ym_items_carry_sku_warehouse_count_and_read_time():
    at = datetime(2026, 5, 14, 7, 0, tzinfo=timezone.utc)
    assert ym.stock_items(_lines("A-1"), at=at) == [
        {"sku": "A-1", "partnerWarehouseId": 22000, "count": 5, "updatedAt": "2026-05-14T07:00:00+00:00"}]


def test_ym_refusal_naming_offers_fails_them_and_resends_the_rest():
    lines = _lines("A", "B")
    results, others = ym.rejected_results(lines, [{"code": "OFFER_NOT_FOUND", "message": "no such offer", "sku": "B"}])
    assert [r.ref for r in results] == [2] and [line.key for line in others] == ["A"]


def test_ym_refusal_naming_nobody_fails_the_batch():
    results, others = ym.rejected_results(_lines("A", "B"), [{"code": "BAD_REQUEST", "message": "JSON"}])
    assert len(results) == 2 and not others and "BAD_REQUEST" in results[0].error
