"""An order keeps the contacts it was placed with. Customer matching may link orders, but a later
order (anyone can type a stranger's phone number) never changes an earlier order's details, where
its e-mails go, or whose MoySklad counterparty it is exported under."""
import pytest
from django.core import mail

from orders import services
from orders.emails import order_status_email_send
from orders.models import Customer, Order, OrderStatus
from tests.orders_fixtures import order_body, post_order

pytestmark = pytest.mark.django_db

VICTIM = {"name": "Мария Иванова", "email": "victim@example.com", "phone": "+7 (926) 555-00-11"}
ATTACKER = {"name": "Злоумышленник", "email": "attacker@example.net", "phone": "8 926 555 00 11"}


def _place(api, who: dict, key: str):
    response = post_order(api, order_body(("PHONE-1", 1), **who), key=key)
    assert response.status_code == 201, response.content
    return response.json()


def test_an_order_with_the_same_phone_cannot_take_over_an_earlier_order(
        api, shop, published, settings, django_capture_on_commit_callbacks):
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    first = _place(api, VICTIM, "victim-checkout")
    second = _place(api, ATTACKER, "attacker-checkout")

    shown = api.get(f"/api/v1/orders/{first['id']}").json()
    assert shown["customer"] == VICTIM
    assert api.get(f"/api/v1/orders/{second['id']}").json()["customer"] == ATTACKER

    order_a = Order.objects.get(uid=first["id"])
    with django_capture_on_commit_callbacks(execute=True):
        change = services.order_status_set(order=order_a, status=OrderStatus.SHIPPED, by="moysklad")
    assert order_status_email_send(change_id=change.pk)
    (message,) = mail.outbox
    assert message.to == ["victim@example.com"]
    assert "Мария Иванова" in message.body

    # The contradicting contact makes the second order someone else's customer.
    order_b = Order.objects.get(uid=second["id"])
    assert order_a.customer_id != order_b.customer_id
    assert Customer.objects.get(pk=order_a.customer_id).email == "victim@example.com"


def test_a_known_email_with_another_phone_is_another_customer(api, shop, published):
    first = _place(api, VICTIM, "a")
    second = _place(api, {**ATTACKER, "email": "VICTIM@example.com", "phone": "+7 900 000 00 00"}, "b")
    a, b = Order.objects.get(uid=first["id"]), Order.objects.get(uid=second["id"])
    assert a.customer_id != b.customer_id
    assert api.get(f"/api/v1/orders/{first['id']}").json()["customer"] == VICTIM


def test_matching_links_orders_without_rewriting_the_customer(api, shop, published):
    first = _place(api, VICTIM, "a")
    # The same person, another name spelling and no phone this time: linked, nothing rewritten.
    second = _place(api, {"name": "Маша", "email": "victim@example.com", "phone": ""}, "b")
    a, b = Order.objects.get(uid=first["id"]), Order.objects.get(uid=second["id"])
    assert a.customer_id == b.customer_id
    customer = Customer.objects.get(pk=a.customer_id)
    assert (customer.name, customer.email, customer.phone) == (VICTIM["name"], VICTIM["email"], VICTIM["phone"])
    assert (b.customer_name, b.customer_email, b.customer_phone) == ("Маша", "victim@example.com", "")
    assert api.get(f"/api/v1/orders/{first['id']}").json()["customer"] == VICTIM


def test_phone_only_orders_link_by_phone(api, shop, published):
    _place(api, {**VICTIM, "email": ""}, "a")
    _place(api, {**VICTIM, "email": "", "phone": "8 926 555-00-11"}, "b")
    assert Customer.objects.count() == 1


def test_status_email_skipped_when_the_order_has_no_email(shop, published):
    # The linked customer has an e-mail, this order does not: nobody is mailed about it.
    services.order_create(customer=services.CustomerData(**VICTIM),
                          items=[services.LineRequest(sku="PHONE-1", quantity=1)], idempotency_key="a")
    phone_only = services.order_create(customer=services.CustomerData(**{**VICTIM, "email": ""}),
                                       items=[services.LineRequest(sku="PHONE-1", quantity=1)],
                                       idempotency_key="b").order
    change = services.order_status_set(order=phone_only, status=OrderStatus.CONFIRMED, by="moysklad")
    assert change.notify is False


def test_admin_shows_the_order_contacts(admin_client, api, shop, published):
    first = _place(api, VICTIM, "a")
    _place(api, ATTACKER, "b")
    order_a = Order.objects.get(uid=first["id"])
    page = admin_client.get(f"/admin/orders/order/{order_a.pk}/change/").content.decode()
    assert "victim@example.com" in page and "attacker@example.net" not in page
    listing = admin_client.get("/admin/orders/order/").content.decode()
    assert "victim@example.com" in listing and "attacker@example.net" in listing


def test_export_never_sends_an_order_under_a_contradicting_counterparty(ms_sandbox, shop, published):
    from integrations.moysklad.client import MoySkladClient
    from integrations.moysklad.orders import OrderExportSession

    # A counterparty a manager keeps in MoySklad for the victim: the same phone, another e-mail.
    book = ms_sandbox.moysklad.orders
    victim, _ = book.create_counterparty({"name": "Мария", "email": "victim@example.com",
                                          "phone": "8 (926) 555-00-11"})
    order = services.order_create(customer=services.CustomerData(**ATTACKER),
                                  items=[services.LineRequest(sku="PHONE-1", quantity=1)], idempotency_key="x").order
    with MoySkladClient() as client:
        assert OrderExportSession(client).export(order.pk) == "exported"
    (remote,) = book.orders.values()
    assert remote["_agent"] != victim["id"]
    assert book.counterparties[remote["_agent"]]["email"] == "attacker@example.net"


@pytest.mark.django_db(transaction=True)
def test_migration_fills_the_snapshot_from_the_customer():
    from django.db import connection
    from django.db.migrations.executor import MigrationExecutor

    before, after = [("orders", "0002_status_history_recorded_order")], [("orders", "0003_order_contact_snapshot")]
    executor = MigrationExecutor(connection)
    executor.migrate(before)
    old = executor.loader.project_state(before).apps
    customer = old.get_model("orders", "Customer").objects.create(name="Иван", email="ivan@example.com",
                                                                   phone="+7 926", phone_digits="7926")
    old.get_model("orders", "Order").objects.create(customer=customer, source_order_id="legacy-1")
    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate(after)
    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate(executor.loader.graph.leaf_nodes())
    order = Order.objects.get(source_order_id="legacy-1")
    assert (order.customer_name, order.customer_email, order.customer_phone) == ("Иван", "ivan@example.com", "+7 926")
