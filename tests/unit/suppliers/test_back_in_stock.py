from decimal import Decimal

import pytest
import respx
from django.core import mail

from stock.backinstock import notify
from stock.models import BackInStockSubscription
from stock.services import stock_levels_set
from tests.factories import make_offer, make_warehouse

from .conftest import make_supplier

pytestmark = pytest.mark.django_db


def subscribe(api, sku="A-1", email="buyer@example.com"):
    return api.post("/api/v1/back-in-stock", {"sku": sku, "email": email}, content_type="application/json")


def test_subscribe_201_and_errors(api):
    make_offer(sku="A-1")
    assert subscribe(api).status_code == 201
    assert subscribe(api).status_code == 201  # again: still one subscription
    assert BackInStockSubscription.objects.count() == 1
    assert subscribe(api, sku="NOPE").status_code == 404
    bad = subscribe(api, email="not-an-email")
    assert bad.status_code == 400 and bad.json()["error"] == "invalid"


def test_restock_by_any_route_queues_the_task(api, published, django_capture_on_commit_callbacks):
    offer = make_offer(sku="A-1")
    quiet = make_offer(sku="Q-1")
    subscribe(api)
    wh = make_warehouse(code="main")
    with django_capture_on_commit_callbacks(execute=True):
        stock_levels_set(warehouse_id=wh.pk, figures={quiet.pk: (Decimal(2), Decimal(0))}, source="moysklad")
    assert "stock.back_in_stock_notify" not in published.names()   # nobody waits for it: no message
    with django_capture_on_commit_callbacks(execute=True):
        stock_levels_set(warehouse_id=wh.pk, figures={offer.pk: (Decimal(2), Decimal(0))}, source="moysklad")
    assert ("stock.back_in_stock_notify", ([offer.pk],)) in published.calls


def test_supplier_restock_queues_the_task(api, published, django_capture_on_commit_callbacks):
    from integrations.suppliers.sync import supplier_read

    offer = make_offer(sku="A-1")
    subscribe(api)
    supplier = make_supplier()
    with respx.mock() as mock, django_capture_on_commit_callbacks(execute=True):
        mock.get("https://acme.example/api/stock").respond(200, json={"items": [{"sku": "A-1", "stock": 3}]})
        supplier_read(supplier, full=True)
    assert ("stock.back_in_stock_notify", ([offer.pk],)) in published.calls


def test_one_russian_email_once_with_unsubscribe_link(api, client, settings):
    settings.SITE_URL = "https://shop.example"
    offer = make_offer(sku="A-1", name="Чайник")
    subscribe(api)
    subscribe(api, email="second@example.com")
    notify(offer_ids=[offer.pk])
    assert mail.outbox == []  # still out of stock: nobody is told
    wh = make_warehouse(code="main")
    stock_levels_set(warehouse_id=wh.pk, figures={offer.pk: (Decimal(2), Decimal(0))}, source="moysklad")
    assert notify(offer_ids=[offer.pk]) == 2
    assert notify(offer_ids=[offer.pk]) == 0
    assert len(mail.outbox) == 2
    message = mail.outbox[0]
    assert "Снова в наличии" in message.subject and "Чайник" in message.subject
    sub = BackInStockSubscription.objects.get(email="buyer@example.com")
    link = f"https://shop.example/back-in-stock/unsubscribe/{sub.token}/"
    assert link in message.body and "Отписаться" in message.body
    response = client.get(f"/back-in-stock/unsubscribe/{sub.token}/")
    assert response.status_code == 200
    sub.refresh_from_db()
    assert sub.unsubscribed_at is not None


def test_unsubscribed_is_not_emailed(api, client):
    offer = make_offer(sku="A-1")
    subscribe(api)
    sub = BackInStockSubscription.objects.get()
    client.get(f"/back-in-stock/unsubscribe/{sub.token}/")
    wh = make_warehouse(code="main")
    stock_levels_set(warehouse_id=wh.pk, figures={offer.pk: (Decimal(2), Decimal(0))}, source="moysklad")
    assert notify(offer_ids=[offer.pk]) == 0 and mail.outbox == []


def test_failed_send_gives_the_claim_back(api, monkeypatch):
    offer = make_offer(sku="A-1")
    subscribe(api)
    wh = make_warehouse(code="main")
    stock_levels_set(warehouse_id=wh.pk, figures={offer.pk: (Decimal(2), Decimal(0))}, source="moysklad")

    def boom(self, *a, **k):
        raise OSError("smtp down")

    monkeypatch.setattr("django.core.mail.EmailMultiAlternatives.send", boom)
    with pytest.raises(OSError):
        notify(offer_ids=[offer.pk])
    assert BackInStockSubscription.objects.get().notified_at is None


def test_sweep_catches_a_lost_signal(api):
    from stock.backinstock import sweep

    offer = make_offer(sku="A-1")
    other = make_offer(sku="B-1")
    subscribe(api)
    subscribe(api, sku="B-1")
    wh = make_warehouse(code="main")
    stock_levels_set(warehouse_id=wh.pk, figures={offer.pk: (Decimal(2), Decimal(0))}, source="moysklad")
    assert sweep() == 1 and sweep() == 0
    assert [m.to for m in mail.outbox] == [["buyer@example.com"]]
    assert other
