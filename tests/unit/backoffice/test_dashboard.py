"""The admin home dashboard: a row per registered job, colours by the written rules, charts, and a
query count that does not grow with the data."""
from datetime import timedelta
from unittest import mock

import pytest
from django.urls import reverse
from django.utils import timezone

from integrations import dashboard, jobs
from integrations.models import ChannelOffer, JobRun, JobState
from integrations.runs import JobSpec
from stock.models import StockChange
from tests.factories import make_offer, make_warehouse

pytestmark = pytest.mark.django_db


def _runs(job: str, n: int, *, status=JobRun.Status.SUCCESS, every=timedelta(minutes=5), errors=0):
    now = timezone.now()
    rows = [JobRun(job=job, status=status, started_at=now - i * every, finished_at=now - i * every + timedelta(seconds=3),
                   error_count=errors) for i in range(n)]
    JobRun.objects.bulk_create(rows)
    last = JobRun.objects.filter(job=job).order_by("-started_at").first()
    JobState.objects.update_or_create(job=job, defaults={"cursor": last.started_at if status == "success" else None,
                                                         "last_run": last})
    return last


def _changes(n: int):
    offer, warehouse = make_offer(), make_warehouse()
    now = timezone.now()
    StockChange.objects.bulk_create([StockChange(
        offer=offer, warehouse=warehouse, source="moysklad", via="sync", previous_stock=0, new_stock=1,
        previous_reserve=0, new_reserve=0, previous_available=0, new_available=1, at=now - timedelta(minutes=i * 7))
        for i in range(n)])


@pytest.fixture(autouse=True)
def configured():
    with mock.patch("integrations.moysklad.client.is_configured", return_value=True):
        yield


def test_one_row_per_registered_job_with_its_colour(admin_client):
    _runs("moysklad-stock", 3)
    _runs("moysklad-catalog", 2, status=JobRun.Status.FAILED)
    html = admin_client.get(reverse("admin:index")).content.decode()
    for name in jobs.JOBS:
        assert f'data-job="{name}"' in html
    assert 'data-job="moysklad-stock" data-colour="green"' in html
    assert 'data-job="moysklad-catalog" data-colour="red"' in html
    assert "How the colours are decided" in html
    assert "<svg" in html and "cdn" not in html.lower()


def test_a_job_registered_by_a_wing_appears_without_dashboard_code(admin_client, monkeypatch):
    spec = JobSpec("supplier-stock", lambda ctx: None, lambda: True, "Supplier feeds → stock")
    monkeypatch.setitem(jobs.JOBS, "supplier-stock", spec)
    _runs("supplier-stock", 1)
    html = admin_client.get(reverse("admin:index")).content.decode()
    assert 'data-job="supplier-stock"' in html and "Supplier feeds" in html


def test_staleness_against_the_schedule():
    now = timezone.now()
    row = dashboard.FlowRow(name="moysklad-stock", description="", configured=True, schedule=["every 5 minutes"],
                            interval=timedelta(minutes=5), has_full=True)
    row.last_run = JobRun(job="moysklad-stock", status=JobRun.Status.SUCCESS, started_at=now)
    row.last_success_at = now - timedelta(minutes=4)
    assert dashboard.flow_colour(row, now)[0] == dashboard.GREEN
    row.last_success_at = now - timedelta(minutes=10)
    assert dashboard.flow_colour(row, now)[0] == dashboard.AMBER
    row.last_success_at = now - timedelta(minutes=17)
    assert dashboard.flow_colour(row, now)[0] == dashboard.RED
    row.last_success_at, row.record_errors_24h = now, 3
    colour, reasons = dashboard.flow_colour(row, now)
    assert colour == dashboard.AMBER and "3 record errors in 24 h" in reasons


def test_not_configured_is_grey():
    now = timezone.now()
    row = dashboard.FlowRow(name="x", description="", configured=False, schedule=["every minute"],
                            interval=timedelta(minutes=1), has_full=False)
    assert dashboard.flow_colour(row, now)[0] == dashboard.GREY


def test_full_sync_only_for_jobs_with_a_full_mode(admin_client):
    html = admin_client.get(reverse("admin:index")).content.decode()
    rows = {chunk.split('"', 1)[0]: chunk for chunk in html.split('data-job="')[1:]}
    assert "Full sync" in rows["moysklad-stock"].split("</tr>")[0]
    assert "Full sync" not in rows["orders-export"].split("</tr>")[0]


def test_items_waiting_and_errors_in_24_hours(admin_client):
    _runs("marketplace-stock", 4, every=timedelta(minutes=1), errors=2)
    from integrations.models import Channel

    channel = Channel.objects.create(system="ozon")
    for i in range(3):
        ChannelOffer.objects.create(channel=channel, offer=make_offer(), status=ChannelOffer.Status.ERROR)
    flows = {f.name: f for f in dashboard.flows_list()}
    assert flows["marketplace-stock"].waiting.count == 3
    assert flows["marketplace-stock"].record_errors_24h == 8
    assert flows["marketplace-stock"].runs_24h == 4


def _dashboard_queries(client, django_assert_max_num_queries, limit):
    with django_assert_max_num_queries(limit) as captured:
        response = client.get(reverse("admin:index"))
    assert response.status_code == 200
    return len(captured.captured_queries)


def test_query_count_does_not_grow_with_the_data(admin_client, django_assert_max_num_queries):
    _runs("moysklad-stock", 5)
    _changes(5)
    small = _dashboard_queries(admin_client, django_assert_max_num_queries, 40)
    for name in jobs.JOBS:
        _runs(name, 60, every=timedelta(minutes=3), errors=1)
    _changes(300)
    large = _dashboard_queries(admin_client, django_assert_max_num_queries, 40)
    assert large == small


def test_changes_per_hour_chart_counts_the_last_day():
    _changes(30)  # one every 7 minutes: 3.5 hours
    per_hour = dashboard.stock_changes_per_hour()
    assert len(per_hour) == 24 and sum(n for _h, n in per_hour) == 30


def test_each_marketplace_is_a_part_of_the_stock_flow(admin_client, monkeypatch):
    import dataclasses

    from integrations.models import Channel

    spec = jobs.JOBS["marketplace-stock"]
    monkeypatch.setitem(jobs.JOBS, "marketplace-stock", dataclasses.replace(spec, configured=lambda: True))

    ozon = Channel.objects.create(system="ozon")
    Channel.objects.create(system="wildberries", health=Channel.Health.UNHEALTHY, health_message="401 token revoked")
    ChannelOffer.objects.create(channel=ozon, offer=make_offer(), status=ChannelOffer.Status.ERROR)
    _runs("marketplace-stock", 2, every=timedelta(minutes=1))
    flows = {f.name: f for f in dashboard.flows_list()}
    parts = {p.name: p for p in flows["marketplace-stock"].parts}
    assert parts["Ozon"].colour == dashboard.AMBER and "1 in error" in parts["Ozon"].detail
    assert parts["Wildberries"].colour == dashboard.RED and "401 token revoked" in parts["Wildberries"].detail
    assert flows["marketplace-stock"].colour == dashboard.AMBER
    html = admin_client.get(reverse("admin:index")).content.decode()
    assert "401 token revoked" in html


def test_an_upstream_whose_circuit_is_open_is_named_on_the_home_page(admin_client, settings, tmp_path):
    from integrations.http import ratelimit

    settings.REDIS_URL = ""
    settings.RATE_LIMIT_DIR = str(tmp_path)
    limiter = ratelimit.limiter_for("wildberries:abc:stocks", units=10, window=1.0, parallel=1)
    try:
        limiter.circuit_failed(1, 300)
        html = admin_client.get("/admin/").content.decode()
        assert 'id="circuits"' in html and "wildberries failed 1 times in a row" in html
    finally:
        limiter.reset()
        ratelimit._registry.clear()
