"""Zero-on-channel alerts: 2 h of 0 while we have stock -> one alert (admin, e-mail, Telegram)
until it clears."""
from datetime import timedelta

import httpx
import pytest
import respx
from django.core import mail
from django.utils import timezone

from integrations import jobs
from integrations.models import ChannelOffer, StockAlert
from integrations.runs import run_job
from tests.factories import make_warehouse

from .conftest import TG
from .support import catalog, push, set_stock

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("marketplaces", "scheduled")]


def check():
    return run_job(jobs.get("marketplace-stock-alerts"), trigger="test")


@pytest.fixture
def notify(settings):
    settings.MANAGER_EMAILS = ["manager@shop.test"]
    settings.TELEGRAM = {**settings.TELEGRAM, "BOT_TOKEN": "1:tok", "CHAT_ID": "-42"}
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    return settings


@pytest.fixture
def zero_on_ozon(market):
    """An offer with 5 to sell that Ozon has accepted as 0 and since refuses to raise."""
    warehouse = make_warehouse(code="main")
    offers = catalog(1, warehouse=warehouse, market=market, stock=0)
    push()
    market.age()
    market.ozon_api.unlisted.add(offers[0].sku)  # e.g. the card got blocked on Ozon
    set_stock(offers, warehouse, 5)
    push()
    co = ChannelOffer.objects.get(channel__system="ozon", offer=offers[0])
    assert co.synced_qty == 0 and co.zero_since is not None and co.status == "error"
    assert market.ozon == {(offers[0].sku, 22000): 0}, "what Ozon shows buyers"
    assert market.wb[(658434, market.chrt(offers[0]))] == 5 and market.ym[(offers[0].sku, 123456)] == 5
    return co


def test_push_tracks_since_when_a_marketplace_shows_zero_while_we_have_stock(zero_on_ozon):
    others = ChannelOffer.objects.exclude(channel__system="ozon")
    assert all(co.zero_since is None and co.synced_qty == 5 for co in others)


def test_two_hours_of_zero_opens_one_alert_and_notifies_once(zero_on_ozon, notify):
    ChannelOffer.objects.filter(pk=zero_on_ozon.pk).update(zero_since=timezone.now() - timedelta(hours=3))
    with respx.mock(base_url=TG) as tg:
        sent = tg.post("/bot1:tok/sendMessage").respond(json={"ok": True, "result": {"message_id": 1}})
        run = check()
        check()
    alert = StockAlert.objects.get()
    assert alert.notified and alert.cleared_at is None and zero_on_ozon.offer.sku in alert.message
    assert len(mail.outbox) == 1 and mail.outbox[0].to == ["manager@shop.test"]
    assert sent.call_count == 1 and zero_on_ozon.offer.sku in sent.calls[0].request.content.decode()
    assert run.counts["alerts_opened"] == 1


def test_less_than_two_hours_of_zero_is_not_an_alert(zero_on_ozon, notify):
    ChannelOffer.objects.filter(pk=zero_on_ozon.pk).update(zero_since=timezone.now() - timedelta(minutes=90))
    with respx.mock(base_url=TG):
        check()
    assert not StockAlert.objects.exists() and not mail.outbox


def test_alert_clears_when_the_marketplace_shows_stock_again(zero_on_ozon, notify):
    ChannelOffer.objects.filter(pk=zero_on_ozon.pk).update(zero_since=timezone.now() - timedelta(hours=3))
    with respx.mock(base_url=TG) as tg:
        tg.post("/bot1:tok/sendMessage").respond(json={"ok": True, "result": {}})
        check()
        ChannelOffer.objects.filter(pk=zero_on_ozon.pk).update(zero_since=None, synced_qty=5)
        run = check()
    alert = StockAlert.objects.get()
    assert alert.cleared_at is not None and run.counts["alerts_cleared"] == 1
    assert "Back on sale" in mail.outbox[-1].body


def test_failed_notification_is_retried_at_the_next_check(zero_on_ozon, notify):
    notify.MANAGER_EMAILS = []
    ChannelOffer.objects.filter(pk=zero_on_ozon.pk).update(zero_since=timezone.now() - timedelta(hours=3))
    with respx.mock(base_url=TG) as tg:
        tg.post("/bot1:tok/sendMessage").mock(side_effect=[httpx.Response(502),  # sent once: no double posts
                                                          httpx.Response(200, json={"ok": True, "result": {}})])
        first = check()
        assert not StockAlert.objects.get().notified and first.error_count == 1
        check()
    assert StockAlert.objects.get().notified and StockAlert.objects.count() == 1


def test_without_mail_or_telegram_the_admin_list_is_the_alert(zero_on_ozon, settings):
    settings.MANAGER_EMAILS = []
    ChannelOffer.objects.filter(pk=zero_on_ozon.pk).update(zero_since=timezone.now() - timedelta(hours=3))
    check()
    assert StockAlert.objects.get().notified
