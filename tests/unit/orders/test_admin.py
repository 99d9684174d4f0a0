"""Back office: the order list and page (lines, history, MoySklad link), actions calling services;
inbound events with reprocess; the state mapping editable and kept from seeding."""
import pytest
from django.urls import reverse
from django.utils import timezone

from integrations.models import InboundEvent, OrderBinding, OrderStateMapping
from orders import services
from orders.models import ExportState, OrderStatus

pytestmark = pytest.mark.django_db


@pytest.fixture
def order(shop, published):
    order = services.order_create(customer=services.CustomerData(name="Иван <b>", email="ivan@example.com"),
                                  items=[services.LineRequest(sku="PHONE-1", quantity=2)], idempotency_key="k").order
    services.order_status_set(order=order, status=OrderStatus.CONFIRMED, by="moysklad")
    assert OrderBinding.objects.filter(order=order).update(
        external_id="ms-1", ui_url="https://online.moysklad.ru/app/#customerorder/edit?id=ui-1") == 1
    return order


def test_order_list_filters_and_search(admin_client, order):
    url = reverse("admin:orders_order_changelist")
    for query in ("", "?source=site", "?status=confirmed", "?export=pending", "?q=PHONE-1", "?q=ivan@example.com"):
        response = admin_client.get(url + query)
        assert response.status_code == 200 and order.number in response.content.decode(), query
    assert order.number not in admin_client.get(url + "?status=shipped").content.decode()


def test_order_page_shows_lines_history_and_moysklad_link(admin_client, order):
    page = admin_client.get(reverse("admin:orders_order_change", args=[order.pk])).content.decode()
    assert "PHONE-1" in page and "confirmed" in page
    assert "https://online.moysklad.ru/app/#customerorder/edit?id=ui-1" in page
    assert "Иван &lt;b&gt;" in page  # escaped


def test_order_list_shows_and_filters_the_bindings_export_state(admin_client, order, shop):
    failed = services.order_create(customer=services.CustomerData(name="Пётр", email="petr@example.com"),
                                   items=[services.LineRequest(sku="PHONE-1", quantity=1)]).order
    assert OrderBinding.objects.filter(order=failed).update(export_state=ExportState.FAILED,
                                                            export_error="412 agent archived") == 1
    url = reverse("admin:orders_order_changelist")
    page = admin_client.get(url + "?export=failed").content.decode()
    assert failed.number in page and "412 agent archived" in page and order.number not in page
    page = admin_client.get(url + "?export=pending").content.decode()
    assert order.number in page and failed.number not in page
    page = admin_client.get(reverse("admin:orders_order_change", args=[failed.pk])).content.decode()
    assert "412 agent archived" in page


def test_order_list_query_count_does_not_grow_with_rows(admin_client, order, shop):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    url = reverse("admin:orders_order_changelist")
    admin_client.get(url)  # warm the session and content-type caches

    def queries() -> int:
        with CaptureQueriesContext(connection) as ctx:
            response = admin_client.get(url)
        assert response.status_code == 200
        return len(ctx.captured_queries)

    few = queries()
    for n in range(3):
        services.order_create(customer=services.CustomerData(name=f"c{n}", email=f"c{n}@example.com"),
                              items=[services.LineRequest(sku="CASE-RED", quantity=1)])
    assert queries() == few


def test_cancel_action_cancels_and_frees_stock(admin_client, order, shop):
    response = admin_client.post(reverse("admin:orders_order_changelist"),
                                 {"action": "cancel_orders", "_selected_action": [order.pk]})
    assert response.status_code == 302
    order.refresh_from_db()
    assert order.status == OrderStatus.CANCELLED
    assert order.status_changes.last().by == "admin:admin"
    assert shop.phone.stock_levels.get().available == 5


def test_requeue_action_puts_failed_exports_back(admin_client, order):
    assert OrderBinding.objects.filter(order=order).update(export_state=ExportState.FAILED, export_error="rejected") == 1
    admin_client.post(reverse("admin:orders_order_changelist"),
                      {"action": "requeue_export", "_selected_action": [order.pk]})
    binding = OrderBinding.objects.get(order=order)
    assert binding.export_state == ExportState.PENDING and binding.export_error == ""


def test_inbound_events_list_and_reprocess(admin_client, published, django_capture_on_commit_callbacks):
    event = InboundEvent.objects.create(dedup_key="r:0", entity_type="customerorder", action="UPDATE",
                                        status="failed", error="boom", received_at=timezone.now(), attempts=2)
    url = reverse("admin:integrations_inboundevent_changelist")
    assert "boom" in admin_client.get(url + "?status=failed").content.decode()
    assert admin_client.get(reverse("admin:integrations_inboundevent_change", args=[event.pk])).status_code == 200
    with django_capture_on_commit_callbacks(execute=True):
        admin_client.post(url, {"action": "reprocess", "_selected_action": [event.pk]})
    event.refresh_from_db()
    assert event.status == "received"
    assert published.args_of("integrations.moysklad.events_process") == [([event.pk],)]


def test_state_mapping_is_editable_and_marked_as_the_managers(admin_client, db):
    row = OrderStateMapping.objects.create(state_id="s1", name="Подтвержден", status="confirmed")
    url = reverse("admin:integrations_orderstatemapping_change", args=[row.pk])
    assert admin_client.get(url).status_code == 200
    response = admin_client.post(url, {"status": "processing"})
    assert response.status_code == 302, response.content.decode()[:500]
    row.refresh_from_db()
    assert (row.status, row.seeded) == ("processing", False)
