"""The sandbox's 1C: its HTTP stock service serves `onec-stock`, and the exchange player drives
/1c/exchange/ the way 1C does, against a running site."""
import httpx
import pytest

from catalog.models import Offer
from integrations import jobs
from integrations.models import JobRun
from integrations.runs import run_job
from integrations.sandbox.marketplace import sellable_items
from integrations.sandbox.onec import PASSWORD, USER, WAREHOUSES, demo_files, play_exchange, settings_for
from integrations.sandbox.server import SandboxServer
from stock.models import StockChange, StockLevel
from tests.factories import make_offer


@pytest.fixture(scope="module")
def sandbox():
    with SandboxServer(products=30, seed=3, rate_limit=False) as srv:
        yield srv


def test_the_emulator_answers_with_basic_auth_and_filters_by_changed_after(sandbox):
    base = settings_for(sandbox.url)["ONEC_BASE_URL"]
    assert httpx.get(f"{base}/hs/stocks/list?format=json").status_code == 401
    rows = httpx.get(f"{base}/hs/stocks/list?format=json", auth=(USER, PASSWORD)).json()["stocks"]
    assert rows and {r["warehouse"] for r in rows} <= {w[1] for w in WAREHOUSES}
    httpx.post(f"{sandbox.control_url('1c')}/stocks", json={"sku": rows[0]["sku"], "quantity": 99})
    later = httpx.get(f"{base}/hs/stocks/list", params={"format": "json", "changedAfter": "2030-01-01T00:00:00+00:00"},
                      auth=(USER, PASSWORD)).json()["stocks"]
    assert later == []
    recent = httpx.get(f"{base}/hs/stocks/list", params={"format": "json", "changedAfter": "2020-01-01T00:00:00+00:00"},
                       auth=(USER, PASSWORD)).json()["stocks"]
    assert len(recent) == len(rows)


@pytest.mark.django_db
def test_onec_stock_reads_the_sandbox(sandbox, settings):
    settings.ONEC = {**settings.ONEC, **{k.removeprefix("ONEC_"): v for k, v in settings_for(sandbox.url).items()}}
    skus = [item.sku for item in sellable_items(sandbox.moysklad.catalog)][:10]
    for sku in skus:
        make_offer(sku=sku)
    run = run_job(jobs.get("onec-stock"), full=True, trigger="command", raise_errors=False)
    assert run.status == JobRun.Status.SUCCESS, run.message
    assert StockLevel.objects.filter(source="1c").exists()
    assert set(StockLevel.objects.values_list("warehouse__code", flat=True)) <= {f"1c:{w[1]}" for w in WAREHOUSES}


@pytest.mark.django_db(transaction=True)
def test_the_player_plays_the_exchange_against_a_running_site(live_server, onec, monkeypatch):
    from syncsite.celery import app

    monkeypatch.setattr(app.conf, "task_always_eager", True)   # the import runs inline: no worker here
    for sku in ("P-1", "P-2", "P-3"):
        make_offer(sku=sku)
    answers = play_exchange(f"{live_server.url}/1c/exchange/", demo_files(["P-1", "P-2", "P-3"]),
                            login="exchange", password="p@ss", log=lambda line: None)
    assert answers == {"import.xml": "success", "offers.xml": "success"}
    # P-1 and P-3 carried no Артикул in offers.xml: matched through the article import.xml gave their Ид.
    assert set(StockLevel.objects.values_list("offer__sku", flat=True)) == {"P-1", "P-2", "P-3"}
    assert StockChange.objects.filter(via="exchange").exists()
    assert Offer.objects.count() == 3


@pytest.mark.django_db(transaction=True)
def test_the_play_command_runs_once_against_a_site(live_server, onec, monkeypatch):
    from django.core.management import call_command

    from syncsite.celery import app

    monkeypatch.setattr(app.conf, "task_always_eager", True)
    make_offer(sku="Q-1")
    call_command("onec_exchange_play", "--url", live_server.url, "--shape", "rests")
    assert StockLevel.objects.filter(offer__sku="Q-1", source="1c").exists()
