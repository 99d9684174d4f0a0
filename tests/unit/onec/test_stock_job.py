"""`onec-stock`: 1C's HTTP service polled with Basic auth; delta by changedAfter from the last
successful run minus the overlap; a full read zeroes what 1C no longer lists; wrong credentials
fail the run with a clear message and change nothing."""
from datetime import timedelta
from decimal import Decimal

import httpx
import pytest
import respx

from catalog.models import ExternalSku
from integrations import jobs
from integrations.models import JobRun, JobState
from integrations.runs import run_job
from stock.models import StockChange, StockLevel, Warehouse

from .conftest import ONEC_URL

pytestmark = pytest.mark.django_db


def answer(*stocks):
    return httpx.Response(200, json={"stocks": list(stocks)})


def levels():
    return {(lv.offer.sku, lv.warehouse.code): lv.stock for lv in StockLevel.objects.select_related("offer", "warehouse")}


def run(full=False):
    return run_job(jobs.get("onec-stock"), full=full, trigger="command", raise_errors=False)


def test_the_job_is_registered_by_the_wing_and_scheduled():
    from integrations.schedule import SCHEDULE

    assert "onec-stock" in jobs.JOBS
    assert {e.full for e in SCHEDULE if e.job == "onec-stock"} == {False, True}


def test_not_configured_succeeds_without_a_request(settings, db):
    settings.ONEC = {**settings.ONEC, "BASE_URL": "", "USER": ""}
    assert run().status == JobRun.Status.NOT_CONFIGURED


@respx.mock
def test_a_full_read_writes_each_warehouse_logs_changes_and_kicks_the_marketplaces(
        onec, goods, kicks, django_capture_on_commit_callbacks):
    route = respx.get(f"{ONEC_URL}/hs/stocks/list").mock(return_value=answer(
        {"sku": "A-1", "quantity": 5, "warehouse": "Основной"},
        {"sku": "A-1", "quantity": 2, "warehouse": "Магазин"},
        {"sku": "4600000000031", "quantity": 7},            # matched by our barcode, no warehouse: `1c`
        {"sku": "THEIRS-9", "quantity": 1, "warehouse": "Основной"}))
    with django_capture_on_commit_callbacks(execute=True):
        result = run(full=True)
    assert result.status == JobRun.Status.SUCCESS, result.message
    request = route.calls.last.request
    assert request.url.params["format"] == "json" and "changedAfter" not in request.url.params
    assert request.headers["Authorization"].startswith("Basic ")
    assert levels() == {("A-1", "1c:Основной"): 5, ("A-1", "1c:Магазин"): 2, ("C-3", "1c"): 7}
    assert set(Warehouse.objects.filter(source="1c").values_list("code", flat=True)) == {
        "1c:Основной", "1c:Магазин", "1c"}
    changes = StockChange.objects.filter(source="1c")
    assert changes.count() == 3 and set(changes.values_list("via", flat=True)) == {"full"}
    assert sorted(o for kick in kicks for o in kick) == sorted([goods.a.pk, goods.a.pk, goods.c.pk])
    assert ExternalSku.objects.get(source="1c", sku="THEIRS-9").offer is None   # listed for a manager
    assert result.counts["unmatched"] == 1


@respx.mock
def test_a_delta_asks_for_changes_since_the_last_run_minus_the_overlap_and_zeroes_nothing(onec, goods):
    respx.get(f"{ONEC_URL}/hs/stocks/list").mock(return_value=answer(
        {"sku": "A-1", "quantity": 5}, {"sku": "B-2", "quantity": 3}))
    first = run(full=True)
    route = respx.get(f"{ONEC_URL}/hs/stocks/list").mock(return_value=answer({"sku": "A-1", "quantity": 4}))
    second = run()
    assert second.status == JobRun.Status.SUCCESS
    changed_after = route.calls.last.request.url.params["changedAfter"]
    assert changed_after == (first.started_at - timedelta(seconds=300)).isoformat(timespec="seconds")
    assert levels() == {("A-1", "1c"): 4, ("B-2", "1c"): 3}
    assert StockChange.objects.filter(via="sync").count() == 1


@respx.mock
def test_a_complete_full_read_zeroes_what_1c_no_longer_lists(onec, goods):
    respx.get(f"{ONEC_URL}/hs/stocks/list").mock(return_value=answer(
        {"sku": "A-1", "quantity": 5, "warehouse": "Основной"}, {"sku": "B-2", "quantity": 3, "warehouse": "Склад 2"}))
    run(full=True)
    respx.get(f"{ONEC_URL}/hs/stocks/list").mock(return_value=answer({"sku": "B-2", "quantity": 1, "warehouse": "Склад 2"}))
    assert run(full=True).status == JobRun.Status.SUCCESS
    assert levels() == {("A-1", "1c:Основной"): 0, ("B-2", "1c:Склад 2"): 1}


@respx.mock
def test_bad_items_are_recorded_skipped_and_make_a_full_read_incomplete(onec, goods):
    respx.get(f"{ONEC_URL}/hs/stocks/list").mock(return_value=answer({"sku": "A-1", "quantity": 5}))
    run(full=True)
    respx.get(f"{ONEC_URL}/hs/stocks/list").mock(return_value=answer(
        {"sku": "B-2", "quantity": 2}, {"sku": "", "quantity": 1}, {"sku": "C-3", "quantity": -1},
        {"sku": "A-1", "quantity": 1.5}))
    result = run(full=True)
    assert result.status == JobRun.Status.SUCCESS and result.error_count == 3
    assert levels() == {("A-1", "1c"): 5, ("B-2", "1c"): 2}   # A-1 not zeroed on an incomplete read


@respx.mock
def test_wrong_credentials_fail_the_run_with_a_clear_message_and_change_nothing(onec, goods):
    respx.get(f"{ONEC_URL}/hs/stocks/list").mock(return_value=httpx.Response(401, text="Unauthorized"))
    result = run(full=True)
    assert result.status == JobRun.Status.FAILED
    assert "ONEC_USER" in result.message and "ONEC_PASSWORD" in result.message
    assert not StockLevel.objects.exists() and not StockChange.objects.exists()
    assert JobState.objects.get(job="onec-stock").cursor is None


@respx.mock
def test_an_answer_that_is_not_the_expected_json_fails_and_changes_nothing(onec, goods, monkeypatch):
    monkeypatch.setattr("integrations.http.client.BaseClient.backoff", lambda self, n: 0)
    respx.get(f"{ONEC_URL}/hs/stocks/list").mock(return_value=httpx.Response(200, json={"items": []}))
    result = run(full=True)
    assert result.status == JobRun.Status.FAILED and "stocks" in result.message
    assert not StockLevel.objects.exists()


@respx.mock
def test_two_of_their_skus_mapped_to_one_offer_add_up(onec, goods):
    ExternalSku.objects.create(source="1c", sku="X", offer=goods.b)
    ExternalSku.objects.create(source="1c", sku="Y", offer=goods.b)
    respx.get(f"{ONEC_URL}/hs/stocks/list").mock(return_value=answer({"sku": "X", "quantity": 2}, {"sku": "Y", "quantity": 3}))
    run(full=True)
    assert levels() == {("B-2", "1c"): Decimal(5)}
