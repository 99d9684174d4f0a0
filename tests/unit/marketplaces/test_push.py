"""The `marketplace-stock` job end to end against the sandbox's Ozon, WB and YM (in-process
behind respx): what is sent, how many calls, what each marketplace then shows, and what is
recorded per offer and channel."""
import math
from datetime import datetime, timedelta
from datetime import timezone as dt_timezone
from email.utils import format_datetime
from decimal import Decimal

import httpx
import pytest
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from catalog.models import Offer
from integrations.http import ratelimit
from integrations.http.errors import RateLimitedError
from integrations.models import Channel, ChannelOffer, ChannelWarehouse, JobRun, StockAudit
from integrations.sandbox.marketplace import CHRT_EXTRA
from stock.models import StockLevel
from tests.factories import make_warehouse

from .support import catalog, push, set_stock

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("marketplaces", "scheduled")]

#: a size of a card WB has that no barcode of ours matches (a key only a manager can map)
WB_ONLY_SIZE = CHRT_EXTRA + 1


@pytest.fixture
def warehouse():
    return make_warehouse(code="main")


def _co(system, offer):
    return ChannelOffer.objects.get(channel__system=system, offer=offer)


def test_first_push_sends_every_offer_in_full_batches(market, warehouse):
    offers = catalog(250, warehouse=warehouse, market=market, stock=7)
    run = push()
    assert run.status == JobRun.Status.SUCCESS, run.message
    assert [len(b) for b in market.calls["ozon"]] == [100, 100, 50]
    assert [len(b) for b in market.calls["wildberries"]] == [250]
    assert [len(b) for b in market.calls["yandex_market"]] == [250]
    assert market.ozon[("SKU-00001", 22000)] == 7
    assert market.wb[(658434, market.chrt(offers[0]))] == 7
    assert market.ym[("SKU-00001", 123456)] == 7
    co = _co("ozon", offers[0])
    assert (co.status, co.synced_qty, co.published_qty, co.error) == ("ok", 7, 7, "")
    assert co.synced_at is not None and run.counts["ozon_calls"] == 3


def test_delta_pushes_only_offers_whose_figure_changed(market, warehouse):
    offers = catalog(30, warehouse=warehouse, market=market)
    push()
    market.reset_calls()
    market.age()
    set_stock(offers[:3], warehouse, 2)
    run = push()
    assert [len(b) for b in market.calls["ozon"]] == [3]
    assert [len(b) for b in market.calls["wildberries"]] == [3]
    assert [len(b) for b in market.calls["yandex_market"]] == [3]
    assert run.counts["ozon_looked_at"] == 3
    market.reset_calls()
    push()
    assert not market.calls, "nothing changed: no call at all"


def test_stock_rewritten_with_the_same_figure_costs_no_call(market, warehouse):
    offers = catalog(5, warehouse=warehouse, market=market)
    push()
    market.reset_calls()
    set_stock(offers, warehouse, 5)  # updated_at moved, figure did not
    run = push()
    assert not market.calls and run.counts["ozon_in_sync"] == 5


def test_one_percent_changed_costs_ceil_changed_over_batch_max_calls(market, warehouse):
    offers = catalog(1500, warehouse=warehouse, market=market)
    push()
    market.reset_calls()
    changed = offers[::10]  # 150, spread over every page of the scan
    market.age()
    set_stock(changed, warehouse, 1)
    push()
    assert len(market.calls["ozon"]) == math.ceil(150 / 100)
    assert len(market.calls["wildberries"]) == math.ceil(150 / 1000)
    assert len(market.calls["yandex_market"]) == math.ceil(150 / 2000)


def test_unknown_offer_records_its_error_and_the_rest_of_the_batch_applies(market, warehouse):
    offers = catalog(3, warehouse=warehouse, market=market)
    market.ozon_api.unlisted.add("SKU-00002")
    market.ym_api.unlisted.add("SKU-00003")
    run = push()
    assert run.status == JobRun.Status.SUCCESS
    bad = _co("ozon", offers[1])
    assert bad.status == "error" and "offer_id_not_found" in bad.error and bad.synced_qty is None
    assert _co("ozon", offers[0]).status == "ok" and market.ozon[("SKU-00003", 22000)] == 5
    ym_bad = _co("yandex_market", offers[2])
    assert ym_bad.status == "error" and "OFFER_NOT_FOUND" in ym_bad.error
    assert market.ym[("SKU-00001", 123456)] == 5 and ("SKU-00003", 123456) not in market.ym
    assert run.error_count == 2


def test_refused_figure_is_not_resent_until_it_changes(market, warehouse):
    offers = catalog(2, warehouse=warehouse, market=market)
    market.ozon_api.unlisted.add("SKU-00001")
    push()
    market.reset_calls()
    set_stock(offers[:1], warehouse, 5)  # touched, same figure
    push()
    assert not market.calls["ozon"]
    market.age()
    set_stock(offers[:1], warehouse, 9)
    push()
    assert market.calls["ozon"] == [[{"offer_id": "SKU-00001", "stock": 9, "warehouse_id": 22000}]]


def test_wb_conflict_records_the_size_and_resends_the_others(market, warehouse):
    offers = catalog(3, warehouse=warehouse, market=market)
    market.wb_api.unlisted.add(str(market.chrt(offers[1])))
    push()
    assert [len(b) for b in market.calls["wildberries"]] == [3, 2]
    assert _co("wildberries", offers[1]).status == "error" and "NotFound" in _co("wildberries", offers[1]).error
    assert market.wb[(658434, market.chrt(offers[0]))] == 5 and market.wb[(658434, market.chrt(offers[2]))] == 5


def test_rejected_credentials_mark_the_channel_unhealthy_and_others_carry_on(market, warehouse):
    offers = catalog(3, warehouse=warehouse, market=market)
    market.ozon_api.faults.add(status=403, path_contains="v2/products/stocks", error_code=7,
                               message="Api-key is deactivated, use another one or generate a new one")
    run = push()
    assert run.status == JobRun.Status.SUCCESS
    ozon = Channel.objects.get(system="ozon")
    assert ozon.health == "unhealthy" and "deactivated" in ozon.health_message and "OZON_API_KEY" in ozon.health_message
    assert _co("ozon", offers[0]).status == "pending"
    assert len(market.ym) == 3 and len(market.wb) == 3
    assert Channel.objects.get(system="yandex_market").health == "ok"
    market.age()
    push()  # credentials fixed: the next run sends and the channel is healthy again
    assert Channel.objects.get(system="ozon").health == "ok" and len(market.ozon) == 3


def test_rate_limited_channel_waits_then_leaves_offers_pending_and_the_run_retries(market, warehouse, scheduled):
    offers = catalog(3, warehouse=warehouse, market=market)
    until = format_datetime(datetime.now(dt_timezone.utc) + timedelta(seconds=90), usegmt=True)
    market.ym_api.faults.add(status=420, path_contains="offers/stocks/update", error_code="LIMIT_EXCEEDED",
                             message="Hit rate limit of 50 requests per 60 seconds for resource "
                                     "'offers stocks update'", headers={"X-RateLimit-Resource-Until": until})
    with pytest.raises(RateLimitedError):
        push()
    assert len(market.calls["yandex_market"]) == 1, "a wait beyond the cap is not hammered"
    assert _co("yandex_market", offers[0]).status == "pending"
    assert len(market.ozon) == 3 and len(market.wb) == 3, "the other channels were pushed first"
    run = JobRun.objects.filter(job="marketplace-stock").latest("started_at")
    assert run.status == JobRun.Status.FAILED
    assert scheduled and scheduled[-1]["countdown"] >= 30
    ratelimit._registry.clear()  # ... 90 seconds later
    push()
    assert len(market.ym) == 3


def test_negative_and_absurd_quantities_never_leave_the_system(market, warehouse):
    offers = catalog(3, warehouse=warehouse, market=market)
    StockLevel.objects.filter(offer=offers[0]).update(available=Decimal("-4"))
    StockLevel.objects.filter(offer=offers[1]).update(available=Decimal("1e9"))
    run = push()
    assert market.ozon[("SKU-00001", 22000)] == 0
    assert ("SKU-00002", 22000) not in market.ozon and ("SKU-00002", 123456) not in market.ym
    absurd = _co("ozon", offers[1])
    assert absurd.status == "error" and "sanity maximum" in absurd.error
    assert run.counts["ozon_refused"] == 1


def test_api_maximum_and_cap_bound_the_figure(market, warehouse, settings):
    settings.MARKETPLACES = {**settings.MARKETPLACES, "SANITY_MAX": 10**9}
    offers = catalog(1, warehouse=warehouse, market=market, stock=150_000)
    Channel.objects.create(system="yandex_market", cap=40)
    push()
    assert market.wb[(658434, market.chrt(offers[0]))] == 100_000
    assert market.ozon[("SKU-00001", 22000)] == 150_000
    assert market.ym[("SKU-00001", 123456)] == 40


def test_buffers_per_channel_and_override_per_offer(market, warehouse):
    offers = catalog(2, warehouse=warehouse, market=market, stock=20)
    Channel.objects.create(system="ozon", buffer_absolute=2, buffer_percent=Decimal(10))
    push()
    assert market.ozon[("SKU-00001", 22000)] == 16  # 20 - 2 - 2
    co = _co("ozon", offers[1])
    co.buffer_absolute, co.buffer_percent = 0, Decimal(0)
    co.save()
    ChannelOffer.objects.filter(pk=co.pk).update(kicked_at=timezone.now())
    market.age()
    push()
    assert market.ozon[("SKU-00002", 22000)] == 20


def test_switched_off_and_archived_offers_show_zero(market, warehouse):
    offers = catalog(2, warehouse=warehouse, market=market)
    push()
    ChannelOffer.objects.filter(channel__system="ozon", offer=offers[0]).update(enabled=False, kicked_at=timezone.now())
    Offer.objects.filter(pk=offers[1].pk).update(archived=True, updated_at=timezone.now())
    market.age()
    push()
    assert market.ozon[("SKU-00001", 22000)] == 0 and market.ozon[("SKU-00002", 22000)] == 0
    assert market.wb[(658434, market.chrt(offers[0]))] == 5 and market.wb[(658434, market.chrt(offers[1]))] == 0


def test_ozon_pair_updated_within_30_seconds_is_deferred_not_refused(market, warehouse, scheduled):
    offers = catalog(2, warehouse=warehouse, market=market)
    push()
    market.reset_calls()
    set_stock(offers[:1], warehouse, 3)
    run = push()
    assert not market.calls["ozon"], "Ozon would refuse it: wait instead"
    assert market.calls["wildberries"] and market.calls["yandex_market"]
    assert run.counts["ozon_deferred"] == 1
    assert 0 < scheduled[-1]["countdown"] <= 31
    market.age()   # 31 s on: Ozon takes the pair again
    push()
    assert market.calls["ozon"] == [[{"offer_id": "SKU-00001", "stock": 3, "warehouse_id": 22000}]]


def test_ozon_too_frequent_item_stays_pending_and_goes_again(market, warehouse, settings):
    offers = catalog(1, warehouse=warehouse, market=market)
    # The pair was just set from elsewhere (the seller's cabinet): Ozon refuses it for 30 s.
    seller = httpx.Client(base_url=market.sandbox.base_url("ozon"),
                          headers={"Client-Id": settings.OZON["CLIENT_ID"], "Api-Key": settings.OZON["API_KEY"]})
    assert seller.post("/v2/products/stocks", json={"stocks": [
        {"offer_id": "SKU-00001", "stock": 1, "warehouse_id": 22000}]}).json()["result"][0]["updated"]
    push()
    co = _co("ozon", offers[0])
    assert co.status == "pending" and "too frequently" in co.error
    market.age()
    push()
    assert _co("ozon", offers[0]).status == "ok" and market.ozon[("SKU-00001", 22000)] == 5


def test_audit_row_for_each_accepted_change(market, warehouse):
    offers = catalog(1, warehouse=warehouse, market=market)
    push(trigger="beat")
    market.age()
    set_stock(offers, warehouse, 2)
    push(trigger="event")
    rows = list(StockAudit.objects.filter(channel_offer__channel__system="wildberries").order_by("at", "pk")
                .values_list("old", "new", "source"))
    assert rows == [(None, 5, "beat"), (5, 2, "event")]


def test_full_push_sends_every_offer_even_in_sync(market, warehouse):
    offers = catalog(120, warehouse=warehouse, market=market)
    push()
    market.reset_calls()
    ChannelOffer.objects.update(pushed_at=timezone.now() - timedelta(minutes=5))
    run = push(full=True)
    assert [len(b) for b in market.calls["ozon"]] == [100, 20]
    assert len(market.calls["wildberries"]) == 1 and len(market.calls["yandex_market"]) == 1
    assert StockAudit.objects.filter(source="test-full").count() == 0  # nothing changed on the marketplaces
    assert run.full


def test_channel_settings_change_rechecks_every_offer(market, warehouse):
    offers = catalog(4, warehouse=warehouse, market=market, stock=10)
    push()
    market.reset_calls()
    from integrations.marketplaces.services import channel_settings_changed

    channel = Channel.objects.get(system="yandex_market")
    channel.buffer_absolute = 3
    channel.save()
    channel_settings_changed(channel=channel)
    market.age()
    push()
    assert [len(b) for b in market.calls["yandex_market"]] == [4]
    assert not market.calls["ozon"] and market.ym[("SKU-00001", 123456)] == 7


def test_channel_draws_only_from_chosen_warehouses_and_maps_them(market, warehouse):
    second = make_warehouse(code="second")
    offers = catalog(1, warehouse=warehouse, market=market, stock=5)
    StockLevel.objects.create(offer=offers[0], warehouse=second, stock=4, available=4)
    ozon = Channel.objects.create(system="ozon")
    ChannelWarehouse.objects.create(channel=ozon, warehouse=second, external_id="33000")
    wb = Channel.objects.create(system="wildberries")
    wb.warehouses.set([second])
    push()
    assert market.ozon == {("SKU-00001", 22000): 5, ("SKU-00001", 33000): 4}
    assert market.wb == {(658434, market.chrt(offers[0])): 4}
    assert market.ym == {("SKU-00001", 123456): 9}
    co = _co("ozon", offers[0])
    assert co.synced == {"22000": 5, "33000": 4} and co.synced_qty == 9


def test_channel_without_a_marketplace_warehouse_is_unhealthy(market, warehouse, settings):
    settings.OZON = {**settings.OZON, "WAREHOUSE_ID": ""}
    offers = catalog(1, warehouse=warehouse, market=market)
    run = push()
    assert run.status == JobRun.Status.SUCCESS
    ozon = Channel.objects.get(system="ozon")
    assert ozon.health == "unhealthy" and "OZON_WAREHOUSE_ID" in ozon.health_message
    assert not market.calls["ozon"] and market.ym


def test_channel_without_credentials_is_skipped_and_the_job_succeeds(market, warehouse, settings):
    settings.WILDBERRIES = {**settings.WILDBERRIES, "TOKEN": ""}
    catalog(1, warehouse=warehouse, market=market)
    run = push()
    assert run.status == JobRun.Status.SUCCESS and run.counts["wildberries_not_configured"] == 1
    assert not market.calls["wildberries"] and market.calls["ozon"]


def test_no_marketplace_configured_reports_not_configured(market, warehouse, settings):
    settings.OZON = {**settings.OZON, "API_KEY": ""}
    settings.WILDBERRIES = {**settings.WILDBERRIES, "TOKEN": ""}
    settings.YANDEX_MARKET = {**settings.YANDEX_MARKET, "API_KEY": ""}
    run = push()
    assert run.status == JobRun.Status.NOT_CONFIGURED and not market.calls


def test_wb_keys_come_from_card_barcodes_and_manual_keys_are_kept(market, warehouse):
    offers = catalog(2, warehouse=warehouse, market=market)
    offers += catalog(1, warehouse=warehouse, start=3)  # not in the sandbox catalog: no WB card
    push()
    assert _co("wildberries", offers[0]).external_key == str(market.chrt(offers[0]))
    assert not ChannelOffer.objects.filter(channel__system="wildberries", offer=offers[2]).exists()
    ChannelOffer.objects.filter(channel__system="wildberries", offer=offers[1]).update(
        external_key=str(WB_ONLY_SIZE), key_source=ChannelOffer.KeySource.MANUAL)
    push(full=True)
    assert _co("wildberries", offers[1]).external_key == str(WB_ONLY_SIZE)
    assert market.wb[(658434, WB_ONLY_SIZE)] == 5


def test_wb_cards_are_read_once_then_only_changes_and_not_on_every_push(market, warehouse):
    offers = catalog(3, warehouse=warehouse, market=market)
    push()
    assert market.calls["wildberries-content"][0] == [{"limit": 100}]  # the first time: every card
    market.reset_calls()
    set_stock(offers[:1], warehouse, 1)
    push()
    assert not market.calls["wildberries-content"], "within WB_CARDS_REFRESH_SECONDS: no card read"
    push(full=True)
    (cursor,) = market.calls["wildberries-content"][0]
    newest = parse_datetime(market.wb_content_api.newest_updated_at())
    assert parse_datetime(cursor["updatedAt"]) == newest, "a full push reads only changed cards"
