"""What tests read back from the marketplace emulators: each request with its body in the request
log, the stock each marketplace now shows, the newest WB card stamp, and injected failures in the
marketplace's own error format."""
import httpx
import pytest

from integrations.sandbox import channels
from integrations.sandbox.marketplace import sellable_items
from integrations.sandbox.server import SandboxServer

OZON_AUTH = {"Client-Id": channels.OZON_CLIENT_ID, "Api-Key": channels.OZON_API_KEY}
WB_AUTH = {"Authorization": f"Bearer {channels.WB_TOKEN}"}


@pytest.fixture
def sandbox():
    server = SandboxServer(products=5, variant_share=0, seed=1, rate_limit=False)
    client = httpx.Client(base_url="http://sandbox.test", transport=httpx.WSGITransport(app=server.app))
    yield server, client
    client.close()
    server.app.close()


def test_request_log_keeps_each_body_and_the_book_shows_what_was_accepted(sandbox):
    server, http = sandbox
    ozon, wb = server.marketplaces["ozon"], server.marketplaces["wb"]
    ozon.log_requests()
    wb.log_requests()
    items = list(sellable_items(server.moysklad.catalog))
    batch = [{"offer_id": items[0].sku, "stock": 3, "warehouse_id": int(channels.OZON_WAREHOUSE)},
             {"offer_id": "NOT-LISTED", "stock": 1, "warehouse_id": int(channels.OZON_WAREHOUSE)}]
    assert http.post("/ozon/v2/products/stocks", json={"stocks": batch}, headers=OZON_AUTH).status_code == 200
    assert http.put(f"/wb/api/v3/stocks/{channels.WB_WAREHOUSE}", json={"stocks": [
        {"chrtId": items[1].chrt, "amount": 7}]}, headers=WB_AUTH).status_code == 204

    (logged,) = ozon.logged("v2/products/stocks")
    assert logged.json() == {"stocks": batch} and logged.status == 200
    assert wb.logged()[0].json()["stocks"] == [{"chrtId": items[1].chrt, "amount": 7}]
    assert ozon.book.shown() == {(items[0].sku, channels.OZON_WAREHOUSE): 3}, "the refused line shows nothing"
    assert wb.book.shown() == {(str(items[1].chrt), channels.WB_WAREHOUSE): 7}


def test_injected_failure_answers_in_the_marketplace_format_and_is_logged(sandbox):
    server, http = sandbox
    ozon = server.marketplaces["ozon"]
    ozon.log_requests()
    ozon.faults.add(status=403, path_contains="v2/products/stocks", skip=1, error_code=7,
                    message="Api-key is deactivated")
    item = next(sellable_items(server.moysklad.catalog))
    body = {"stocks": [{"offer_id": item.sku, "stock": 1, "warehouse_id": int(channels.OZON_WAREHOUSE)}]}
    first = http.post("/ozon/v2/products/stocks", json=body, headers=OZON_AUTH)
    second = http.post("/ozon/v2/products/stocks", json=body, headers=OZON_AUTH)
    assert first.status_code == 200
    assert second.status_code == 403 and second.json()["code"] == 7
    assert [(r.status, r.fault, r.json()) for r in ozon.logged()] == [(200, False, body), (403, True, body)]


def test_newest_card_stamp_is_the_last_card_a_full_read_returns(sandbox):
    server, http = sandbox
    content = server.marketplaces["wb-content"]
    cards = http.post("/wb-content/content/v2/get/cards/list", headers=WB_AUTH,
                      json={"settings": {"cursor": {"limit": 100}}}).json()["cards"]
    assert len(cards) == 5 + 3, "every product's card and WB's own"
    assert content.newest_updated_at() == max(card["updatedAt"] for card in cards)
