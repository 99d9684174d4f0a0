"""Work lists: each list with its fixing action; actions report what they did and what changed
meanwhile; read-only users get 403."""
from unittest import mock

import pytest
from django.contrib.auth.models import Group, User
from django.urls import reverse

from integrations import worklists
from integrations.models import Channel, ChannelOffer, InboundEvent, OrderBinding, StockAlert
from orders.models import ExportState, Order
from orders.selectors import order_with_export
from tests.factories import make_offer

pytestmark = pytest.mark.django_db
URL = "backoffice:worklists"


@pytest.fixture
def failed_order(db):
    from orders.models import Customer

    customer = Customer.objects.create(name="Ivan", email="ivan@example.com")
    order = Order.objects.create(number="S-1", source_order_id="S-1", customer=customer)
    OrderBinding.objects.create(order=order, external_id="", external_code=order.export_code,
                                export_state=ExportState.FAILED, export_error="400 bad counterparty",
                                export_attempts=5)
    return order_with_export(Order.objects.all()).get(pk=order.pk)  # as the work list shows it


def _export(order) -> OrderBinding:
    """The order's MoySklad binding, which carries its export state."""
    return OrderBinding.objects.get(order=order)


@pytest.fixture
def offer_in_error(db):
    channel = Channel.objects.create(system="ozon")
    return ChannelOffer.objects.create(channel=channel, offer=make_offer(sku="KET-1"), external_key="KET-1",
                                       status=ChannelOffer.Status.ERROR, error="unknown offer_id")


@pytest.fixture
def failed_event(db):
    return InboundEvent.objects.create(dedup_key="r1:0", entity_type="customerorder", action="UPDATE",
                                       status=InboundEvent.Status.FAILED, error="boom", attempts=3)


def _messages(response):
    return [str(m) for m in response.context["messages"]]


def _pick(obj, fields):
    return f"{obj.pk}:{worklists.version_of(obj, fields)}"


def test_lists_show_every_kind_of_problem(admin_client, failed_order, offer_in_error, failed_event):
    from catalog.models import ExternalSku

    ExternalSku.objects.create(source="supplier:acme", sku="AC-9", seen_count=4)
    StockAlert.objects.create(channel_offer=offer_in_error, opened_at=offer_in_error.offer.updated_at,
                              message="shows 0, we have 5")
    html = admin_client.get(reverse(URL)).content.decode()
    for needle in ("S-1", "400 bad counterparty", "KET-1", "unknown offer_id", "customerorder", "supplier:acme",
                   "AC-9", "shows 0, we have 5"):
        assert needle in html, needle


def test_retry_export_requeues_and_kicks(admin_client, failed_order):
    with mock.patch("integrations.jobs.order_created") as kick:
        response = admin_client.post(reverse(URL), {"action": "retry_export",
                                                    "pick": [_pick(failed_order, worklists.ORDER_FIELDS)]}, follow=True)
    binding = _export(failed_order)
    assert binding.export_state == ExportState.PENDING and binding.export_attempts == 0
    kick.assert_called_once_with(failed_order.pk)
    assert any("Export queued again: S-1" in m for m in _messages(response))


def test_an_order_that_changed_meanwhile_is_left_alone(admin_client, failed_order):
    seen = _pick(failed_order, worklists.ORDER_FIELDS)
    assert OrderBinding.objects.filter(order=failed_order).update(export_state=ExportState.EXPORTED,
                                                                  export_error="") == 1
    with mock.patch("integrations.jobs.order_created") as kick:
        response = admin_client.post(reverse(URL), {"action": "retry_export", "pick": [seen]}, follow=True)
    kick.assert_not_called()
    assert _export(failed_order).export_state == ExportState.EXPORTED
    assert any("Changed meanwhile" in m and "S-1" in m for m in _messages(response))


def test_push_offers_now(admin_client, offer_in_error):
    with mock.patch("integrations.marketplaces.debounce.schedule_push") as push:
        response = admin_client.post(reverse(URL), {"action": "push_offers",
                                                    "pick": [_pick(offer_in_error, worklists.OFFER_FIELDS)]}, follow=True)
    offer_in_error.refresh_from_db()
    assert offer_in_error.status == ChannelOffer.Status.PENDING and offer_in_error.kicked_at is not None
    push.assert_called_once()
    assert any("Pushed within seconds: KET-1" in m for m in _messages(response))


def test_reprocess_failed_events(admin_client, failed_event, django_capture_on_commit_callbacks):
    with mock.patch("integrations.moysklad.events.events_signal") as signal:
        with django_capture_on_commit_callbacks(execute=True):
            response = admin_client.post(reverse(URL), {"action": "reprocess_events",
                                                        "pick": [_pick(failed_event, worklists.EVENT_FIELDS)]},
                                         follow=True)
    failed_event.refresh_from_db()
    assert failed_event.status == InboundEvent.Status.RECEIVED
    signal.assert_called_once_with([failed_event.pk])
    assert any("Queued for processing again" in m for m in _messages(response))


def test_a_deleted_row_is_reported(admin_client, failed_event):
    seen = _pick(failed_event, worklists.EVENT_FIELDS)
    failed_event.delete()
    response = admin_client.post(reverse(URL), {"action": "reprocess_events", "pick": [seen]}, follow=True)
    assert any("No longer exists" in m for m in _messages(response))


def _user(group: str) -> User:
    user = User.objects.create_user(f"u-{group}", password="pw", is_staff=True)
    user.groups.add(Group.objects.get(name=group))
    return user


def test_read_only_sees_the_lists_but_gets_403_on_actions(client, failed_order):
    client.force_login(_user("read-only"))
    response = client.get(reverse(URL))
    assert response.status_code == 200
    assert "Retry the export" not in response.content.decode()
    response = client.post(reverse(URL), {"action": "retry_export",
                                          "pick": [_pick(failed_order, worklists.ORDER_FIELDS)]})
    assert response.status_code == 403
    assert _export(failed_order).export_state == ExportState.FAILED
    assert client.post(reverse("backoffice:sync"), {"job": "moysklad-stock"}).status_code == 403


def test_read_only_gets_403_on_admin_actions(client, failed_order):
    client.force_login(_user("read-only"))
    response = client.post(reverse("admin:orders_order_changelist"),
                           {"action": "cancel_orders", "_selected_action": [failed_order.pk], "index": "0"})
    assert response.status_code == 403
    failed_order.refresh_from_db()
    assert failed_order.status == "pending"


def test_manager_may_act(client, failed_order):
    client.force_login(_user("manager"))
    html = client.get(reverse(URL)).content.decode()
    assert "Retry the export" in html
    with mock.patch("integrations.jobs.order_created"):
        response = client.post(reverse(URL), {"action": "retry_export",
                                              "pick": [_pick(failed_order, worklists.ORDER_FIELDS)]})
    assert response.status_code == 302
    assert _export(failed_order).export_state == ExportState.PENDING
    user = User.objects.get(username="u-manager")
    assert not any(p.endswith(("delete_order", "add_user", "change_user")) for p in user.get_all_permissions())


def test_roles_cover_every_project_model_and_no_user_admin():
    read_only = Group.objects.get(name="read-only")
    codenames = set(read_only.permissions.values_list("codename", flat=True))
    assert {"view_order", "view_offer", "view_jobrun", "view_channeloffer", "view_periodictask"} <= codenames
    assert not any(c.startswith(("add_", "change_", "delete_")) for c in codenames)
    assert "view_user" not in codenames
