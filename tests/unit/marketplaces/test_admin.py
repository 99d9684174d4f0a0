"""The marketplace admin: settings, per-offer state, audit and alerts render; actions only mark
rows and queue (no upstream call is made in an admin request: respx has no routes here)."""
from decimal import Decimal

import pytest
import respx
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from integrations.models import Channel, ChannelOffer, StockAlert, StockAudit
from tests.factories import make_offer, make_warehouse
from tests.unit.admin.conftest import change_form_data

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("marketplaces", "scheduled")]


@pytest.fixture
def admin_client(django_user_model):
    user = django_user_model.objects.create_superuser("boss", "boss@shop.test", "pw")
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def rows():
    offer = make_offer(sku="KET-1", barcodes=["4600000000017"])
    channel = Channel.objects.create(system="wildberries")
    co = ChannelOffer.objects.create(channel=channel, offer=offer, external_key="123", status="error",
                                     error="Wildberries: NotFound", published_qty=4, synced_qty=2,
                                     synced={"658434": 2}, pushed_at=timezone.now())
    StockAudit.objects.create(channel_offer=co, old=1, new=2, source="event", at=timezone.now())
    StockAlert.objects.create(channel_offer=co, opened_at=timezone.now(), message="shows 0")
    return channel, co


def test_marketplace_pages_render(admin_client, rows):
    channel, co = rows
    with respx.mock(assert_all_mocked=True):
        for name in ("channel", "channeloffer", "stockaudit", "stockalert"):
            response = admin_client.get(reverse(f"admin:integrations_{name}_changelist"))
            assert response.status_code == 200, name
        page = admin_client.get(reverse("admin:integrations_channeloffer_change", args=[co.pk]))
        assert page.status_code == 200 and b"NotFound" in page.content
        assert admin_client.get(reverse("admin:integrations_channel_change", args=[channel.pk])).status_code == 200


def test_push_now_marks_offers_and_schedules_without_calling_upstream(admin_client, rows, scheduled):
    _, co = rows
    url = reverse("admin:integrations_channeloffer_changelist")
    with respx.mock(assert_all_mocked=True):
        response = admin_client.post(url, {"action": "push_now", "_selected_action": [co.pk]}, follow=True)
    assert response.status_code == 200
    co.refresh_from_db()
    assert co.status == "pending" and co.kicked_at and co.synced == {}
    assert scheduled and scheduled[-1]["countdown"] == 0


def test_editing_a_key_makes_it_manual_and_pushes_it(admin_client, rows, scheduled):
    _, co = rows
    url = reverse("admin:integrations_channeloffer_change", args=[co.pk])
    data = change_form_data(admin_client, url, external_key="456")
    response = admin_client.post(url, data)
    assert response.status_code == 302, response.content[:2000]
    co.refresh_from_db()
    assert (co.external_key, co.key_source, co.status) == ("456", "manual", "pending")
    assert scheduled


def test_a_wildberries_key_must_be_a_chrt_id(admin_client, rows):
    _, co = rows
    url = reverse("admin:integrations_channeloffer_change", args=[co.pk])
    response = admin_client.post(url, change_form_data(admin_client, url, external_key="SKU-1"))
    assert response.status_code == 200 and b"is not a number" in response.content


def test_changing_a_buffer_rechecks_every_offer_of_the_channel(admin_client, rows, scheduled):
    channel, _ = rows
    warehouse = make_warehouse(code="main")
    url = reverse("admin:integrations_channel_change", args=[channel.pk])
    data = change_form_data(admin_client, url, buffer_absolute="3", buffer_percent="5.5", warehouses=[warehouse.pk])
    response = admin_client.post(url, data)
    assert response.status_code == 302, response.content[:2000]
    channel.refresh_from_db()
    assert channel.buffer_absolute == 3 and channel.buffer_percent == Decimal("5.5")
    assert channel.settings_changed_at and list(channel.warehouses.all()) == [warehouse]
    assert scheduled


def test_channel_push_now_queues_the_job(admin_client, rows, monkeypatch):
    channel, _ = rows
    queued = []
    monkeypatch.setattr("integrations.admin_marketplaces.job_enqueue", lambda **kw: queued.append(kw))
    admin_client.post(reverse("admin:integrations_channel_changelist"),
                      {"action": "push_full", "_selected_action": [channel.pk]})
    assert queued == [{"job": "marketplace-stock", "full": True, "trigger": "admin"}]
