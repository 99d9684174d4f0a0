"""The sandbox's marketplace emulators over real loopback sockets: auth, batch maximums, per-item
answers, each API's own rate-limit answer, and the record of what they were told. No database."""
from email.utils import parsedate_to_datetime

import httpx
import pytest

from integrations.sandbox.channels import (
    OZON_API_KEY, OZON_CLIENT_ID, OZON_WAREHOUSE, WB_TOKEN, WB_WAREHOUSE, YM_API_KEY, YM_BUSINESS, YM_WAREHOUSE,
)
from integrations.sandbox.marketplace import sellable_items
from integrations.sandbox.server import SandboxServer

OZON_AUTH = {"Client-Id": OZON_CLIENT_ID, "Api-Key": OZON_API_KEY}
WB_AUTH = {"Authorization": f"Bearer {WB_TOKEN}"}
YM_AUTH = {"Api-Key": YM_API_KEY}
YM_STOCKS = f"/ym/v3/businesses/{YM_BUSINESS}/offers/stocks/update"


class Clock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self):
        return self.now


@pytest.fixture
def sandbox():
    with SandboxServer(products=60, seed=3) as srv:
        yield srv


@pytest.fixture
def http(sandbox):
    with httpx.Client(base_url=sandbox.url, timeout=10) as client:
        yield client


@pytest.fixture
def items(sandbox):
    return list(sellable_items(sandbox.moysklad.catalog))


def _ozon(http, stocks, **kw):
    return http.post("/ozon/v2/products/stocks", json={"stocks": stocks}, headers=kw.pop("headers", OZON_AUTH))


# -- Ozon ------------------------------------------------------------------------------------------
def test_ozon_refuses_missing_or_wrong_keys(http):
    assert _ozon(http, [], headers={}).status_code == 401
    wrong = _ozon(http, [], headers={"Client-Id": OZON_CLIENT_ID, "Api-Key": "nope"})
    assert wrong.status_code == 401 and wrong.json()["code"] == 16


def test_ozon_answers_each_item_inside_a_200_and_records_what_it_accepted(http, sandbox, items):
    sandbox.marketplaces["ozon"].unlisted.add(items[1].sku)
    wh = int(OZON_WAREHOUSE)
    answer = _ozon(http, [{"offer_id": items[0].sku, "stock": 4, "warehouse_id": wh},
                          {"offer_id": items[1].sku, "stock": 4, "warehouse_id": wh},
                          {"offer_id": "NOT-OURS", "stock": 1, "warehouse_id": wh},
                          {"offer_id": items[2].sku, "stock": 1, "warehouse_id": 1},
                          {"offer_id": items[3].sku, "stock": 1_000_000, "warehouse_id": wh}])
    assert answer.status_code == 200
    result = answer.json()["result"]
    assert [r["updated"] for r in result] == [True, False, False, False, False]
    assert [r["errors"][0]["code"] for r in result[1:]] == ["offer_id_not_found", "offer_id_not_found",
                                                            "WAREHOUSE_NOT_FOUND", "STOCK_TOO_BIG"]
    told = http.get("/_sandbox/ozon/stocks", params={"key": items[0].sku}).json()
    assert told["stocks"][0]["quantity"] == 4 and told["items_rejected"] == 4


def test_ozon_batch_maximum_is_100_pairs(http, items):
    stocks = [{"offer_id": f"X{i}", "stock": 1, "warehouse_id": int(OZON_WAREHOUSE)} for i in range(101)]
    assert _ozon(http, stocks).status_code == 400


def test_ozon_pair_may_change_once_in_30_seconds(http, items):
    item = {"offer_id": items[0].sku, "stock": 1, "warehouse_id": int(OZON_WAREHOUSE)}
    assert _ozon(http, [item]).json()["result"][0]["updated"] is True
    second = _ozon(http, [item]).json()["result"][0]
    assert second["updated"] is False and second["errors"][0]["code"] == "TOO_MANY_REQUESTS"


def test_ozon_81st_call_in_a_minute_is_429_with_retry_after(http, sandbox):
    clock = Clock()
    sandbox.marketplaces["ozon"].limiter.clock = clock
    item = [{"offer_id": "OZ-ONLY-1", "stock": 1, "warehouse_id": int(OZON_WAREHOUSE)}]
    assert all(_ozon(http, item).status_code == 200 for _ in range(80))
    limited = _ozon(http, item)
    assert limited.status_code == 429 and limited.json()["code"] == 8 and int(limited.headers["Retry-After"]) >= 1
    clock.now += 60.1
    assert _ozon(http, item).status_code == 200


# -- Wildberries -----------------------------------------------------------------------------------
def _wb(http, stocks, warehouse=WB_WAREHOUSE, headers=WB_AUTH):
    return http.put(f"/wb/api/v3/stocks/{warehouse}", json={"stocks": stocks}, headers=headers)


def test_wb_accepts_bearer_or_raw_token_and_answers_204(http, items):
    assert _wb(http, [{"chrtId": items[0].chrt, "amount": 3}]).status_code == 204
    assert _wb(http, [{"chrtId": items[0].chrt, "amount": 4}], headers={"Authorization": WB_TOKEN}).status_code == 204
    assert _wb(http, [{"chrtId": items[0].chrt, "amount": 4}], headers={}).status_code == 401
    back = http.post(f"/wb/api/v3/stocks/{WB_WAREHOUSE}", json={"chrtIds": [items[0].chrt]}, headers=WB_AUTH)
    assert back.json() == {"stocks": [{"chrtId": items[0].chrt, "amount": 4}]}


def test_wb_conflict_names_the_refused_sizes_and_applies_nothing(http, sandbox, items):
    answer = _wb(http, [{"chrtId": items[0].chrt, "amount": 3}, {"chrtId": 1, "amount": 3},
                        {"chrtId": items[1].chrt, "amount": 100_001}])
    assert answer.status_code == 409
    codes = {e["code"]: [d["chrtId"] for d in e["data"]] for e in answer.json()}
    assert codes == {"NotFound": [1], "UploadDataLimit": [items[1].chrt]}
    assert sandbox.marketplaces["wb"].book.summary()["items"] == 0


def test_wb_misspelled_field_answers_204_and_changes_nothing(http, sandbox, items):
    assert _wb(http, [{"sku": items[0].barcode, "amount": 3}]).status_code == 204
    assert sandbox.marketplaces["wb"].book.summary()["items"] == 0
    assert http.get("/_sandbox/wb/stats").json()["stock"]["items_ignored"] == 1


def test_wb_batch_maximum_and_unknown_warehouse(http, items):
    assert _wb(http, [{"chrtId": items[0].chrt, "amount": 1}] * 1001).status_code == 400
    assert _wb(http, [{"chrtId": items[0].chrt, "amount": 1}], warehouse="1").status_code == 404


def test_wb_burst_of_20_then_429_and_every_4xx_costs_ten(http, sandbox, items):
    clock = Clock()
    sandbox.marketplaces["wb"].limiter.clock = clock
    ok = [{"chrtId": items[0].chrt, "amount": 1}]
    assert all(_wb(http, ok).status_code == 204 for _ in range(20))
    limited = _wb(http, ok)
    assert limited.status_code == 429 and limited.headers["X-Ratelimit-Retry"] == "1"
    assert limited.json()["title"] == "too many requests"
    clock.now += 4.0  # the bucket refills 20 tokens
    assert _wb(http, [{"chrtId": 1, "amount": 1}]).status_code == 409  # 1 + 9 penalty
    assert _wb(http, [{"chrtId": 1, "amount": 1}]).status_code == 409  # 10 more: empty
    assert _wb(http, ok).status_code == 429


def test_wb_content_lists_cards_with_catalog_barcodes_by_cursor(http, sandbox, items):
    pages, cursor = [], {"limit": 25}
    while True:
        body = http.post("/wb-content/content/v2/get/cards/list", headers=WB_AUTH,
                         json={"settings": {"sort": {"ascending": True}, "cursor": cursor, "filter": {"withPhoto": -1}}}).json()
        pages.append(body["cards"])
        if body["cursor"]["total"] < 25:
            break
        cursor = {"limit": 25, "updatedAt": body["cursor"]["updatedAt"], "nmID": body["cursor"]["nmID"]}
    cards = [c for page in pages for c in page]
    assert len(cards) == 60 + 3  # one per product, plus WB-only cards
    by_chrt = {s["chrtID"]: s["skus"] for c in cards for s in c["sizes"]}
    assert all(by_chrt[item.chrt] == [item.barcode] for item in items)
    stamps = [(c["updatedAt"], c["nmID"]) for c in cards]
    assert stamps == sorted(stamps)


# -- Yandex Market ---------------------------------------------------------------------------------
def _ym(http, items, headers=YM_AUTH):
    return http.post(YM_STOCKS, json={"skuItems": items}, headers=headers)


def test_ym_accepts_business_stock_with_api_key(http, sandbox, items):
    answer = _ym(http, [{"sku": items[0].sku, "partnerWarehouseId": int(YM_WAREHOUSE), "count": 7,
                         "updatedAt": "2026-05-14T10:00:00+03:00"}])
    assert answer.status_code == 200 and answer.json() == {"status": "OK"}
    assert "X-RateLimit-Resource-Remaining" in answer.headers
    assert sandbox.marketplaces["ym"].book.get(items[0].sku, YM_WAREHOUSE)[0] == 7
    assert _ym(http, [], headers={"Api-Key": "wrong"}).status_code == 401


def test_ym_unknown_offer_fails_the_call_naming_it(http, sandbox, items):
    answer = _ym(http, [{"sku": items[0].sku, "partnerWarehouseId": int(YM_WAREHOUSE), "count": 1},
                        {"sku": "NOT-OURS", "partnerWarehouseId": int(YM_WAREHOUSE), "count": 1}])
    assert answer.status_code == 400
    assert answer.json()["errors"] == [{"code": "OFFER_NOT_FOUND", "message": "Offer 'NOT-OURS' not found",
                                        "sku": "NOT-OURS"}]
    assert sandbox.marketplaces["ym"].book.summary()["items"] == 0


def test_ym_batch_maximum_is_2000(http):
    many = [{"sku": f"S{i}", "partnerWarehouseId": int(YM_WAREHOUSE), "count": 1} for i in range(2001)]
    assert _ym(http, many).status_code == 400


def test_ym_throttles_with_420_and_a_reset_date(http, sandbox, items):
    clock = Clock()
    sandbox.marketplaces["ym"].limiter.clock = clock
    one = [{"sku": "YM-ONLY-1", "partnerWarehouseId": int(YM_WAREHOUSE), "count": 1}]
    assert all(_ym(http, one).status_code == 200 for _ in range(50))
    limited = _ym(http, one)
    assert limited.status_code == 420
    assert parsedate_to_datetime(limited.headers["X-RateLimit-Resource-Until"])
    sandbox.marketplaces["ym"].gate.limit = 0  # every request over the parallel cap
    clock.now += 61
    capped = _ym(http, one)
    assert capped.status_code == 420 and "parallel" in capped.json()["errors"][0]["message"]
