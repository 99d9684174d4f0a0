"""One e-mail per real status change: never for a replay, never twice for one change."""
import pytest
from django.core import mail

from orders import services
from orders.emails import order_status_email_send
from orders.models import OrderStatus, OrderStatusChange

pytestmark = pytest.mark.django_db


@pytest.fixture
def order(shop, published, settings):
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    return services.order_create(customer=services.CustomerData(name="Иван", email="ivan@example.com"),
                                 items=[services.LineRequest(sku="PHONE-1", quantity=1)], idempotency_key="k").order


def test_status_change_owes_and_sends_one_email(order, published, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        change = services.order_status_set(order=order, status=OrderStatus.SHIPPED, by="moysklad")
    assert published.args_of("orders.order_status_email") == [(change.pk,)]
    assert order_status_email_send(change_id=change.pk) is True
    assert order_status_email_send(change_id=change.pk) is False  # a redelivered task sends nothing
    assert len(mail.outbox) == 1
    message = mail.outbox[0]
    assert "отправлен" in message.subject and order.number in message.body
    assert message.alternatives and "Телефон" in message.alternatives[0][0]


def test_same_status_again_writes_and_sends_nothing(order, published, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        services.order_status_set(order=order, status=OrderStatus.CONFIRMED, by="moysklad")
        assert services.order_status_set(order=order, status=OrderStatus.CONFIRMED, by="moysklad") is None
    assert OrderStatusChange.objects.filter(to_status="confirmed").count() == 1
    assert len(published.args_of("orders.order_status_email")) == 1


def test_creation_sends_no_status_email(order, published):
    assert not published.args_of("orders.order_status_email")
    assert not OrderStatusChange.objects.filter(notify=True).exists()


def test_failed_send_gives_the_claim_back(order, monkeypatch, published):
    change = services.order_status_set(order=order, status=OrderStatus.CONFIRMED, by="moysklad")

    def boom(self, *a, **k):
        raise OSError("smtp down")

    monkeypatch.setattr("django.core.mail.EmailMultiAlternatives.send", boom)
    with pytest.raises(OSError):
        order_status_email_send(change_id=change.pk)
    change.refresh_from_db()
    assert change.notified_at is None


def test_lost_email_signal_is_requeued_by_the_sweeper(order, published):
    from datetime import timedelta

    from django.utils import timezone

    change = services.order_status_set(order=order, status=OrderStatus.CONFIRMED, by="moysklad")
    OrderStatusChange.objects.filter(pk=change.pk).update(recorded_at=timezone.now() - timedelta(minutes=5))
    published.calls.clear()
    assert services.status_emails_requeue() == 1
    assert published.args_of("orders.order_status_email") == [(change.pk,)]


def test_customer_without_email_is_not_owed_one(shop, published):
    order = services.order_create(customer=services.CustomerData(name="Иван", phone="+79261234567"),
                                  items=[services.LineRequest(sku="PHONE-1", quantity=1)], idempotency_key="p").order
    change = services.order_status_set(order=order, status=OrderStatus.CONFIRMED, by="moysklad")
    assert change.notify is False
