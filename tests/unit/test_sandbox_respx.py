"""The in-process sandbox (tests/sandbox_respx.py): our MoySklad client reaches the sandbox through
respx without a socket, and sees its paging, faults, late answers and clock as over the network."""
import socket
import httpx
import pytest

from integrations.http.errors import UpstreamUnavailableError
from integrations.moysklad.client import MoySkladClient
from integrations.sandbox.catalog_gen import DAY_MS, HISTORY_DAYS, now_msk_ms, parse_msk


@pytest.fixture
def ms(sandbox_respx, monkeypatch):
    def no_sockets(self, address):
        raise AssertionError(f"the in-process sandbox opened a socket to {address}")

    monkeypatch.setattr(socket.socket, "connect", no_sockets)
    return sandbox_respx.moysklad


def client() -> MoySkladClient:
    return MoySkladClient()


def test_the_client_pages_through_the_sandbox_without_a_socket(ms, settings):
    for i in range(5):
        ms.add_product(name=f"Товар {i}", article=f"A-{i}")
    settings.MOYSKLAD = {**settings.MOYSKLAD, "PAGE_SIZE": 2}
    rows = list(client().iter_rows("product", filters=["archived=true", "archived=false"], order="id"))
    assert sorted(r["article"] for r in rows) == [f"A-{i}" for i in range(5)]
    reads = ms.logged("entity/product")
    assert [r.params["offset"] for r in reads] == ["0", "2", "4"]
    assert all(r.params["filter"] == "archived=true;archived=false" and r.status == 200 for r in reads)


def test_a_dropped_connection_is_a_transport_error_the_client_retries(ms):
    ms.faults.add(kind="drop", count=1, path_contains="entity/store")
    assert len(client().stores()) == 2
    assert [r.status for r in ms.logged("entity/store")] == [0, 200]


def test_a_late_answer_times_out_and_the_upstream_still_did_the_work(ms, settings):
    settings.MOYSKLAD = {**settings.MOYSKLAD, "TIMEOUT": 0.2}
    fault = ms.faults.add(kind="timeout", count=3, seconds=1.0, then="answer", path_contains="entity/store")
    with pytest.raises(UpstreamUnavailableError):
        client().stores()
    assert fault.fired == 3   # the first try and both retries met a late answer


def test_5xx_and_429_answers_come_in_moysklads_error_format(ms):
    ms.faults.add(status=503, count=3, path_contains="entity/variant")
    with pytest.raises(UpstreamUnavailableError) as info:
        list(client().iter_rows("variant"))
    assert "503" in str(info.value)
    assert [r.status for r in ms.logged("entity/variant")] == [503, 503, 503]


def test_the_rate_limit_can_be_switched_on(sandbox_respx):
    ms = sandbox_respx.moysklad
    sandbox_respx.rate_limit(True, budget=8, request_weight=4)
    http = httpx.Client(base_url=sandbox_respx.moysklad_base_url, transport=httpx.MockTransport(sandbox_respx),
                        headers={"Authorization": "Bearer sandbox-token", "Accept-Encoding": "gzip"})
    statuses = [http.get("/entity/store").status_code for _ in range(3)]
    assert statuses == [200, 200, 429]
    assert ms.logged("entity/store")[-1].status == 429


def test_a_rows_fault_adds_unreadable_rows_to_a_well_formed_page(ms):
    ms.add_product(name="Настоящий", article="REAL-1")
    ms.faults.add(kind="rows", count=1, path_contains="entity/product", body=["junk", {"name": "без id"}])
    page = client().get_json("/entity/product")
    assert [r if isinstance(r, str) else r.get("article") for r in page["rows"]] == ["REAL-1", "junk", None]
    assert page["meta"]["size"] == 1


def test_the_catalog_clock_is_now_not_a_fixed_date(ms):
    ms_now = now_msk_ms()
    assert ms.product_ids() == [] and ms.folder_ids() == []   # an empty account: tests make what they need
    pid = ms.add_product(name="Новый")
    stamp = parse_msk(ms.product(pid)["updated"])
    assert abs(stamp - ms_now) < 60_000
    ms.catalog.advance(3600)
    ms.update_product(pid, name="Через час")
    assert parse_msk(ms.product(pid)["updated"]) - stamp >= 3600 * 1000


@pytest.mark.parametrize("sandbox_options", [{"products": 30, "variant_share": 0.2}])
def test_a_generated_catalog_lies_in_the_half_year_before_now(ms, sandbox_options):
    now = now_msk_ms()
    stamps = [parse_msk(ms.product(pid)["updated"]) for pid in ms.product_ids()]
    assert len(stamps) == 30
    assert all(now - (HISTORY_DAYS + 31) * DAY_MS <= s <= now for s in stamps)
