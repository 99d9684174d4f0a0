"""The stock change log and the holds in the admin."""
from decimal import Decimal

import pytest
from django.urls import reverse

from stock.services import HoldRequest, stock_holds_place, stock_levels_set
from tests.factories import make_offer, make_warehouse

pytestmark = pytest.mark.django_db


def test_change_log_lists_each_change_and_finds_an_offer_by_exact_sku(admin_client):
    w = make_warehouse(code="main")
    kettle, teapot = make_offer(sku="KET-1"), make_offer(sku="TEA-1")
    stock_levels_set(warehouse_id=w.pk, figures={kettle.pk: (Decimal(5), Decimal(1)), teapot.pk: (Decimal(2), 0)},
                     source="moysklad", via="full")
    stock_holds_place(holds=[HoldRequest(kettle.pk, w.pk, Decimal(1), "orderline:1")], source="site")
    url = reverse("admin:stock_stockchange_changelist")
    response = admin_client.get(url, {"q": "KET-1"})
    assert response.status_code == 200
    rows = response.context["cl"].result_list
    assert [(c.via, c.previous_available, c.new_available) for c in rows] == [("order", 4, 3), ("full", 0, 4)]
    content = response.content.decode()
    assert "0 → 5" in content and "4 → 3" in content
    assert len(admin_client.get(url, {"q": "KET"}).context["cl"].result_list) == 0  # exact SKU only
    response = admin_client.get(reverse("admin:stock_stockhold_changelist"))
    assert [h.ref for h in response.context["cl"].result_list] == ["orderline:1"]
