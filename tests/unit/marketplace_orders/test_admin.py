"""The one order list with the marketplace columns, manual changes through the machine, the
mapping tables, the outbox and the returns in the admin."""
from __future__ import annotations

import pytest
import respx
from django.urls import reverse

from integrations.marketplace_orders import pull
from integrations.marketplace_orders.machine import StatusMapper
from integrations.marketplace_orders.models import ActionState, MarketplaceAction, MarketplaceReturn, StatusMapping
from orders.models import Order, OrderStatus

from .conftest import OZON
from .support import context, posting, postings_page

pytestmark = pytest.mark.django_db


@pytest.fixture
def ozon_order(marketplaces, shop, published):
    products = [{"sku": 1, "offer_id": "PHONE-1", "name": "Телефон", "quantity": 1, "price": {"amount": "100"}},
                {"sku": 2, "offer_id": "NOPE-9", "name": "Неизвестно", "quantity": 1, "price": {"amount": "10"}}]
    with respx.mock() as mock:
        mock.post(f"{OZON}/v4/posting/fbs/list").respond(json=postings_page(posting(products=products)))
        pull.ozon_pull(context(), StatusMapper())
    return Order.objects.get(source="ozon")


def test_one_list_for_every_channel_with_marketplace_columns(admin_client, ozon_order):
    url = reverse("admin:orders_order_changelist")
    for query in ("", "?source=ozon", "?flagged__exact=1", "?q=0208245774-0029-1"):
        page = admin_client.get(url + query).content.decode()
        assert ozon_order.number in page, query
    page = admin_client.get(reverse("admin:orders_order_change", args=[ozon_order.pk])).content.decode()
    assert "seller.ozon.ru" in page and "NOPE-9" in page and "awaiting_packaging" in page


def test_a_manual_change_runs_through_the_machine(admin_client, ozon_order):
    url = reverse("admin:orders_order_changelist")
    admin_client.post(url, {"action": "status_to_shipped", "_selected_action": [ozon_order.pk]})
    ozon_order.refresh_from_db()
    assert ozon_order.status == OrderStatus.SHIPPED
    response = admin_client.post(url, {"action": "status_to_confirmed", "_selected_action": [ozon_order.pk]},
                                 follow=True)
    assert "cannot go from shipped to confirmed" in response.content.decode()
    ozon_order.refresh_from_db()
    assert ozon_order.status == OrderStatus.SHIPPED


def test_last_action_and_its_error_are_listed(admin_client, ozon_order):
    from integrations.marketplace_orders.outbox import actions_plan

    admin_client.post(reverse("admin:orders_order_changelist"),
                      {"action": "status_to_processing", "_selected_action": [ozon_order.pk]})
    actions_plan()
    MarketplaceAction.objects.filter(action="ozon_ship").update(state=ActionState.FAILED, error="HAS_INCORRECT_STATUS")
    page = admin_client.get(reverse("admin:orders_order_changelist")).content.decode()
    assert "HAS_INCORRECT_STATUS" in page and "Failed" in page


def test_mapping_tables_outbox_and_returns_pages(admin_client, ozon_order):
    MarketplaceReturn.objects.create(source="ozon", return_id="r1", flagged=True, restore="flagged")
    for name in ("statusmapping", "actionmapping", "marketplaceaction", "marketplacereturn", "wbsupply"):
        assert admin_client.get(reverse(f"admin:marketplace_orders_{name}_changelist")).status_code == 200, name
    row = StatusMapping.objects.get(source="ozon", marketplace_status="awaiting_packaging")
    response = admin_client.post(reverse("admin:marketplace_orders_statusmapping_change", args=[row.pk]),
                                 {"source": "ozon", "marketplace_status": "awaiting_packaging", "status": "processing"})
    assert response.status_code == 302
    row.refresh_from_db()
    assert row.status == "processing" and not row.seeded
