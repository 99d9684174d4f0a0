"""The sandbox's proxy mode for the chaos test: a `cut` does the work and loses the answer,
`chaos()` puts every upstream behind seeded faults and counts them by kind, the marketplaces keep
a ledger of applied changes (the same change twice is a duplicate action), and each emulator logs
its failing answers so a run can be judged by MoySklad's rule."""
import httpx
import pytest

from integrations.sandbox.common import _max_in_window


def test_a_cut_does_the_work_and_loses_the_answer(make_sandbox):
    from integrations.sandbox.channels import settings_for

    srv = make_sandbox(rate_limit=False)
    ozon = srv.marketplaces["ozon"]
    posting = ozon.orders_generate(1)[0]
    env = settings_for(srv.url)
    headers = {"Client-Id": env["OZON_CLIENT_ID"], "Api-Key": env["OZON_API_KEY"]}
    ozon.faults.add(kind="cut", path_contains="ship")
    with httpx.Client(base_url=env["OZON_BASE_URL"], headers=headers, timeout=10) as client:
        with pytest.raises(httpx.RemoteProtocolError):
            client.post("/v4/posting/fbs/ship", json={"posting_number": posting["number"], "packages": []})
        # the upstream did the work: shipping it again is refused, and the ledger shows it once
        again = client.post("/v4/posting/fbs/ship", json={"posting_number": posting["number"], "packages": []})
    assert again.status_code == 400 and "ALREADY_SHIPPED" in again.text
    assert posting["status"] == "awaiting_deliver"
    assert ozon.orders.effects == [("ship", posting["number"])]


def test_chaos_faults_every_upstream_and_counts_by_kind(make_sandbox):
    srv = make_sandbox(rate_limit=False)
    rules = srv.chaos(0.2, seed=3)
    headers = {"Authorization": "Bearer sandbox-token", "Accept-Encoding": "gzip"}
    with httpx.Client(base_url=srv.moysklad_base_url, headers=headers, timeout=0.1) as client:
        for _ in range(200):
            try:
                client.get("/entity/store")
            except httpx.HTTPError:
                pass
    counts = srv.chaos_counts(rules)
    assert set(counts) == {"5xx", "429", "drop", "cut", "delay"} and all(counts.values()), counts
    assert srv.moysklad.failure_figures()["failures"] >= counts["5xx"] + counts["429"] + counts["drop"]
    srv.chaos_off(rules)
    assert all(len(srv.emulators[name].faults) == 0 for name in srv.CHAOS_EMULATORS)


def test_the_order_book_ledger_shows_an_action_applied_twice(make_sandbox):
    book = make_sandbox(rate_limit=False).marketplaces["wb"].orders
    book.effect("supply-add", 1)
    book.effect("supply-add", 2)
    assert book.duplicate_effects() == {}
    book.effect("supply-add", 1)
    assert book.duplicate_effects() == {("supply-add", "1"): 2}


def test_the_most_in_any_window():
    assert _max_in_window([], 60) == 0
    assert _max_in_window([0, 10, 59.9, 60, 61, 200], 60) == 4   # 10, 59.9, 60, 61
    assert _max_in_window([0, 60, 120], 60) == 1
