"""The push sends from a thread of its own while the next batches are prepared: a call that stops
the channel mid-run stops the calls behind it, and what was answered before it is recorded."""
import pytest

from integrations.models import Channel, ChannelOffer, JobRun, StockAudit

from tests.factories import make_warehouse

from .support import catalog, push

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("marketplaces", "scheduled")]


@pytest.fixture
def warehouse():
    return make_warehouse(code="main")


def test_credentials_refused_mid_run_stop_the_calls_behind_and_keep_what_was_answered(market, warehouse):
    offers = catalog(250, warehouse=warehouse, market=market, stock=4)
    # Ozon takes 100 a call: the first call is answered, the second is refused, the third never goes.
    market.ozon_api.faults.add(status=403, path_contains="v2/products/stocks", skip=1, error_code=7,
                               message="Api-key is deactivated, use another one or generate a new one")
    run = push()
    assert run.status == JobRun.Status.SUCCESS
    assert [len(b) for b in market.calls["ozon"]] == [100, 100], "nothing is sent after the refusal"
    rows = ChannelOffer.objects.filter(channel__system="ozon").order_by("pk")
    sent_first = {item["offer_id"] for item in market.calls["ozon"][0]}
    answered = [co for co in rows if co.offer.sku in sent_first]
    assert len(answered) == 100 and all((co.status, co.synced_qty) == ("ok", 4) for co in answered)
    assert StockAudit.objects.filter(channel_offer__channel__system="ozon").count() == 100
    others = [co for co in rows if co.offer.sku not in sent_first]
    assert len(others) == 150 and all(co.status == "pending" and co.synced_at is None for co in others)
    assert Channel.objects.get(system="ozon").health == "unhealthy"
    assert len(market.wb) == 250 and len(market.ym) == 250, "the other channels carry on"


def test_batches_go_out_in_order_and_every_line_is_answered_across_pages(market, warehouse, monkeypatch):
    monkeypatch.setattr("integrations.marketplaces.services.PAGE", 70)   # several pages, batches across them
    offers = catalog(430, warehouse=warehouse, market=market, stock=2)
    run = push()
    assert run.status == JobRun.Status.SUCCESS, run.message
    sent = [item["offer_id"] for batch in market.calls["ozon"] for item in batch]
    assert [len(b) for b in market.calls["ozon"]] == [100, 100, 100, 100, 30]
    in_pages = list(ChannelOffer.objects.filter(channel__system="ozon").order_by("pk")
                    .values_list("external_key", flat=True))
    assert sent == in_pages, "each offer once, in page order"
    assert not ChannelOffer.objects.exclude(status="ok").exists()
    assert run.counts["ozon_calls"] == 5 and run.counts["ozon_wait_ms"] >= 0
