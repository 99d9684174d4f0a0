"""The product page for one SKU, Sync now with progress, the language switch and Moscow time."""
from datetime import datetime, timezone as dt_timezone
from decimal import Decimal
from unittest import mock

import pytest
from django.urls import reverse
from django.utils import timezone

from catalog.models import FieldChange
from integrations.models import Channel, ChannelOffer, JobRun
from stock.models import StockChange, StockHold
from tests.factories import make_offer, make_product, make_stock, make_warehouse

pytestmark = pytest.mark.django_db


@pytest.fixture
def sku(db):
    product = make_product(name="Kettle")
    offer = make_offer(product=product, sku="KET-1", name="Kettle, steel")
    main = make_warehouse(code="main", name="Main")
    acme = make_warehouse(code="supplier:acme", name="ACME", source="supplier:acme")
    make_stock(offer=offer, warehouse=main, stock=5, reserve=1)
    make_stock(offer=offer, warehouse=acme, stock=7)
    channel = Channel.objects.create(system="ozon")
    ChannelOffer.objects.create(channel=channel, offer=offer, external_key="KET-1", published_qty=11, synced_qty=11,
                                pushed_at=timezone.now(), status=ChannelOffer.Status.OK)
    StockChange.objects.create(offer=offer, warehouse=acme, source="supplier:acme", via="sync", previous_stock=3,
                               new_stock=7, previous_reserve=0, new_reserve=0, previous_available=3,
                               new_available=7, at=timezone.now())
    StockHold.objects.create(offer=offer, warehouse=main, quantity=Decimal(2), ref="orderline:77", source="site")
    FieldChange.objects.create(product=product, field="name", old_value="Old kettle", new_value="Kettle",
                               source="moysklad", changed_at=timezone.now())
    return offer


def test_everything_about_one_sku(admin_client, sku):
    response = admin_client.get(reverse("backoffice:sku", args=["KET-1"]))
    assert response.status_code == 200
    html = response.content.decode()
    for needle in ("Main", "ACME", "supplier:acme", "Ozon", "orderline:77", "Old kettle", "3 → 7"):
        assert needle in html, needle
    assert response.context["totals"]["available"] == Decimal(11)


def test_unknown_sku_is_404_and_the_finder_redirects(admin_client, sku):
    assert admin_client.get(reverse("backoffice:sku", args=["NOPE"])).status_code == 404
    response = admin_client.get(reverse("backoffice:sku_find"), {"q": "KET-1"})
    assert response.status_code == 302 and response["Location"] == reverse("backoffice:sku", args=["KET-1"])
    response = admin_client.get(reverse("backoffice:sku_find"), {"q": "kettle & co"})
    assert response["Location"].endswith("?q=kettle+%26+co")


def test_sku_page_query_count_is_fixed(admin_client, sku, django_assert_max_num_queries):
    with django_assert_max_num_queries(20):
        admin_client.get(reverse("backoffice:sku", args=["KET-1"]))


def test_sync_now_queues_and_full_only_where_there_is_one(admin_client, django_capture_on_commit_callbacks):
    with mock.patch("integrations.tasks.run_job_task.delay") as delay:
        with django_capture_on_commit_callbacks(execute=True):
            response = admin_client.post(reverse("backoffice:sync"), {"job": "moysklad-stock", "full": "1"})
        assert response.status_code == 302
        delay.assert_called_once_with("moysklad-stock", full=True, trigger="admin")
        delay.reset_mock()
        response = admin_client.post(reverse("backoffice:sync"), {"job": "orders-export", "full": "1"}, follow=True)
        delay.assert_not_called()
        assert any("no full mode" in str(m) for m in response.context["messages"])
    assert admin_client.get(reverse("backoffice:sync")).status_code == 405


def test_progress_reports_running_runs(admin_client):
    JobRun.objects.create(job="moysklad-stock", status=JobRun.Status.RUNNING, started_at=timezone.now(),
                          progress_done=40, progress_total=100)
    data = admin_client.get(reverse("backoffice:progress")).json()
    assert data["running"]["moysklad-stock"]["done"] == 40
    assert data["running"]["moysklad-stock"]["total"] == 100


def test_russian_when_the_browser_asks_and_by_the_switch(admin_client):
    html = admin_client.get(reverse("admin:index"), HTTP_ACCEPT_LANGUAGE="ru").content.decode()
    assert "Панель" in html or "Рабочие списки" in html
    html = admin_client.get(reverse("admin:index"), HTTP_ACCEPT_LANGUAGE="en").content.decode()
    assert "Work lists" in html
    response = admin_client.post(reverse("set_language"), {"language": "ru", "next": reverse("admin:index")})
    assert response.status_code == 302
    html = admin_client.get(reverse("admin:index"), HTTP_ACCEPT_LANGUAGE="en").content.decode()
    assert "Рабочие списки" in html
    assert 'id="language-switch"' in html


def test_times_are_shown_in_moscow_time_and_stored_in_utc(admin_client, sku):
    at = datetime(2026, 3, 2, 13, 24, tzinfo=dt_timezone.utc)   # any fixed moment: the page has no window
    StockChange.objects.filter(offer=sku).update(at=at)
    html = admin_client.get(reverse("backoffice:sku", args=["KET-1"]), HTTP_ACCEPT_LANGUAGE="en").content.decode()
    assert "2 Mar 2026, 16:24" in html  # 13:24 UTC is 16:24 in Moscow, on a 24-hour clock
    assert StockChange.objects.get(offer=sku).at == at


def test_view_site_link_is_hidden(admin_client):
    html = admin_client.get(reverse("admin:index")).content.decode()
    assert "View site" not in html


def test_no_secret_reaches_the_pages(admin_client, settings, sku):
    settings.MOYSKLAD = {**settings.MOYSKLAD, "TOKEN": "ms-secret-token-123", "WEBHOOK_TOKEN": "wh-secret-456"}
    settings.STOREFRONT_API_TOKEN = "sf-secret-789"
    for url in (reverse("admin:index"), reverse("backoffice:worklists"), reverse("backoffice:sku", args=["KET-1"]),
                reverse("admin:integrations_jobrun_changelist")):
        html = admin_client.get(url).content.decode()
        for secret in ("ms-secret-token-123", "wh-secret-456", "sf-secret-789"):
            assert secret not in html, (url, secret)


def test_schedules_in_plain_words(admin_client):
    from django_celery_beat.models import CrontabSchedule, PeriodicTask

    cron = CrontabSchedule.objects.create(minute="*/5", hour="*", day_of_week="*", day_of_month="*",
                                          month_of_year="*")
    PeriodicTask.objects.create(name="moysklad-stock", task="integrations.run_job", crontab=cron, args='["moysklad-stock"]')
    html = admin_client.get(reverse("admin:django_celery_beat_periodictask_changelist"),
                            HTTP_ACCEPT_LANGUAGE="en").content.decode()
    assert "every 5 minutes" in html and "changed stock via changedSince" in html
    html = admin_client.get(reverse("admin:django_celery_beat_periodictask_changelist"),
                            HTTP_ACCEPT_LANGUAGE="ru").content.decode()
    assert "каждые 5 минут" in html
