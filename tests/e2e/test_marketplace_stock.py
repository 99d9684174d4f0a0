"""Marketplace stock end to end against the sandbox: MoySklad catalog and stock import, then the
three marketplace emulators are told exactly what we can sell, in the fewest calls; a stock change
in MoySklad reaches them through the debounced kick."""
import math
from decimal import Decimal

import pytest
from django.db.models import Sum

from catalog.models import Offer
from integrations import jobs
from integrations.http import ratelimit
from integrations.marketplaces.jobs import stock_push_on_event
from integrations.models import ChannelOffer, JobRun
from integrations.runs import run_job
from integrations.sandbox.catalog_gen import PRODUCT, VARIANT
from integrations.sandbox.channels import OZON_WAREHOUSE, WB_WAREHOUSE, YM_WAREHOUSE, settings_for
from integrations.sandbox.marketplace import item_by_sku, sellable_items
from integrations.sandbox.server import SandboxServer
from stock.models import StockLevel

pytestmark = [pytest.mark.e2e, pytest.mark.django_db]


@pytest.fixture
def sandbox(settings):
    with SandboxServer(products=150, seed=7) as srv:
        settings.REDIS_URL = ""
        ratelimit._registry.clear()
        settings.MOYSKLAD = {**settings.MOYSKLAD, "BASE_URL": srv.moysklad_base_url, "TOKEN": "sandbox-token",
                             "LOGIN": "", "PASSWORD": ""}
        env = settings_for(srv.url)
        settings.OZON = {**settings.OZON, "BASE_URL": env["OZON_BASE_URL"], "CLIENT_ID": env["OZON_CLIENT_ID"],
                         "API_KEY": env["OZON_API_KEY"], "WAREHOUSE_ID": env["OZON_WAREHOUSE_ID"]}
        settings.WILDBERRIES = {**settings.WILDBERRIES, "BASE_URL": env["WB_BASE_URL"],
                                "CONTENT_URL": env["WB_CONTENT_URL"], "TOKEN": env["WB_TOKEN"],
                                "WAREHOUSE_ID": env["WB_WAREHOUSE_ID"]}
        settings.YANDEX_MARKET = {**settings.YANDEX_MARKET, "BASE_URL": env["YM_BASE_URL"],
                                  "API_KEY": env["YM_API_KEY"], "BUSINESS_ID": env["YM_BUSINESS_ID"],
                                  "CAMPAIGN_ID": env["YM_CAMPAIGN_ID"], "WAREHOUSE_ID": env["YM_WAREHOUSE_ID"]}
        yield srv
        ratelimit._registry.clear()


@pytest.fixture
def scheduled(monkeypatch):
    from integrations.marketplaces import tasks

    calls = []
    monkeypatch.setattr(tasks.push_stock_task, "apply_async", lambda *a, **kw: calls.append(kw))
    return calls


def run(job, **kw):
    result = run_job(jobs.get(job), trigger="test", **kw)
    assert result.status == JobRun.Status.SUCCESS, (job, result.message, result.errors[:5])
    return result


def sellable_figure(offer: Offer) -> int:
    if offer.archived:
        return 0
    total = StockLevel.objects.filter(offer=offer).aggregate(s=Sum("available"))["s"] or Decimal(0)
    return int(total)


def imported(sandbox):
    run("moysklad-catalog")
    run("moysklad-stock", full=True)


def test_every_marketplace_shows_what_we_can_sell_after_the_first_sync(sandbox):
    imported(sandbox)
    push = run("marketplace-stock")
    ozon, wb, ym = (sandbox.marketplaces[n].book for n in ("ozon", "wb", "ym"))
    cat = sandbox.moysklad.catalog
    offers = {o.sku: o for o in Offer.objects.all()}
    checked = 0
    for item in sellable_items(cat):
        offer = offers[item.sku]
        want = sellable_figure(offer)
        assert ozon.get(item.sku, OZON_WAREHOUSE)[0] == want, item.sku
        assert ym.get(item.sku, YM_WAREHOUSE)[0] == want, item.sku
        assert wb.get(item.chrt, WB_WAREHOUSE)[0] == want, item.sku
        checked += 1
    assert checked == len(offers)
    n = ChannelOffer.objects.filter(channel__system="ozon").count()
    assert push.counts["ozon_calls"] == math.ceil(n / 100)
    assert push.counts["wildberries_calls"] == math.ceil(n / 1000)
    assert push.counts["yandex_market_calls"] == math.ceil(n / 2000)
    assert not ChannelOffer.objects.exclude(status="ok").exists()
    # WB keys were read from the content API: the size whose barcode is our offer's barcode.
    some = next(iter(sellable_items(cat)))
    assert ChannelOffer.objects.get(channel__system="wildberries", offer__sku=some.sku).external_key == str(some.chrt)


def test_a_moysklad_stock_change_reaches_all_three_through_the_debounced_kick(
        sandbox, scheduled, django_capture_on_commit_callbacks):
    imported(sandbox)
    run("marketplace-stock")
    cat = sandbox.moysklad.catalog
    changed = [item for item in sellable_items(cat) if not Offer.objects.get(sku=item.sku).archived][:3]
    for item in changed:
        kind = VARIANT if item.kind == VARIANT else PRODUCT
        cat.set_stock(kind, item.idx, 0, stock=41, reserve=1)
    # time passes: Ozon's once-per-30-s rule for these pairs is behind us, on both sides
    ChannelOffer.objects.update(pushed_at=None)
    sandbox.marketplaces["ozon"].forget_pairs()
    for name in ("ozon", "wb", "ym"):
        sandbox.marketplaces[name].reset_stats()
    with django_capture_on_commit_callbacks(execute=True):
        run("moysklad-stock")  # delta by changedSince; its _apply_levels kicks the changed offers
    assert len(scheduled) == 1 and scheduled[0]["countdown"] == 5.0
    stock_push_on_event()  # what the debounced task does five seconds later
    for item in changed:
        want = sellable_figure(Offer.objects.get(sku=item.sku))
        assert sandbox.marketplaces["ozon"].book.get(item.sku, OZON_WAREHOUSE)[0] == want
        assert sandbox.marketplaces["ym"].book.get(item.sku, YM_WAREHOUSE)[0] == want
        assert sandbox.marketplaces["wb"].book.get(item.chrt, WB_WAREHOUSE)[0] == want
    for name, endpoint in (("ozon", "POST v2/products/stocks"), ("wb", "PUT api/v3/stocks"),
                           ("ym", "POST v3/businesses/{businessId}/offers/stocks/update")):
        calls = sandbox.marketplaces[name].stats()["by_endpoint"]
        assert calls.get(endpoint) == 1, (name, calls)


def test_offer_the_marketplace_does_not_list_gets_its_error_and_the_rest_lands(sandbox):
    imported(sandbox)
    first, second = [item.sku for item in list(sellable_items(sandbox.moysklad.catalog))[:2]]
    sandbox.marketplaces["ozon"].unlisted.add(first)
    sandbox.marketplaces["ym"].unlisted.add(first)
    push = run("marketplace-stock")
    for system in ("ozon", "yandex_market"):
        bad = ChannelOffer.objects.get(channel__system=system, offer__sku=first)
        assert bad.status == "error" and bad.error, system
        assert ChannelOffer.objects.get(channel__system=system, offer__sku=second).status == "ok"
    assert sandbox.marketplaces["ym"].book.get(second, YM_WAREHOUSE) is not None
    assert push.error_count == 2
    assert item_by_sku(sandbox.moysklad.catalog, first) is not None


def test_rejected_marketplace_credentials_leave_the_others_in_sync(sandbox, settings):
    imported(sandbox)
    settings.WILDBERRIES = {**settings.WILDBERRIES, "TOKEN": "revoked"}
    run("marketplace-stock")
    from integrations.models import Channel

    wb = Channel.objects.get(system="wildberries")
    assert wb.health == "unhealthy" and "WB_TOKEN" in wb.health_message
    assert sandbox.marketplaces["ozon"].book.summary()["items"] > 0
    assert sandbox.marketplaces["ym"].book.summary()["items"] > 0
