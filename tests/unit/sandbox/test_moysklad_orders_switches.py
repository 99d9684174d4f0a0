"""Switches of the MoySklad order side that the order tests lean on: the request log keeps each
request's headers, and a MoySklad that ignores syncId makes a second order on a repeated create."""
from integrations.sandbox.catalog_gen import ORGANIZATION
from tests.sandbox_respx import mounted_sandbox


def _order_body(sb, agent_id: str, sync_id: str) -> dict:
    api = sb.moysklad_base_url
    return {"syncId": sync_id, "externalCode": "ext-1",
            "organization": {"meta": {"href": f"{api}/entity/organization/{sb.catalog.id_of(ORGANIZATION, 0)}",
                                      "type": "organization"}},
            "agent": {"meta": {"href": f"{api}/entity/counterparty/{agent_id}", "type": "counterparty"}}}


def test_request_log_keeps_each_requests_headers():
    with mounted_sandbox() as sb, sb.client() as client:
        client.get("entity/store")
        client.post("entity/counterparty", json={"name": "Иван"},
                    headers={"X-Lognex-WebHook-DisableByPrefix": "https://shop.example.com"})
        (read,) = sb.moysklad.logged("entity/store")
        (write,) = sb.moysklad.logged("entity/counterparty", method="POST")
    assert write.header("x-lognex-webhook-disablebyprefix") == "https://shop.example.com"
    assert write.header("X-Lognex-WebHook-DisableByPrefix") == "https://shop.example.com"
    assert read.header("X-Lognex-WebHook-DisableByPrefix") is None
    assert read.header("authorization") == "Bearer sandbox-token"


def test_sync_id_dedups_creates_unless_switched_off():
    sync_id = "2f4c7a1e-6a0b-4c61-9d7e-2b1f3c9e8a10"
    with mounted_sandbox() as sb, sb.client() as client:
        book = sb.moysklad.orders
        agent, _ = book.create_counterparty({"name": "Иван"})
        first = client.post("entity/customerorder", json=_order_body(sb, agent["id"], sync_id))
        again = client.post("entity/customerorder", json=_order_body(sb, agent["id"], sync_id))
        assert first.status_code == again.status_code == 200
        assert again.json()["id"] == first.json()["id"] and len(book.orders) == 1
        book.honour_sync_id = False
        third = client.post("entity/customerorder", json=_order_body(sb, agent["id"], sync_id))
        assert third.status_code == 200 and third.json()["id"] != first.json()["id"]
        assert len(book.orders) == 2
