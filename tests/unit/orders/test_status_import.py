"""Statuses and shipments back from MoySklad: the state mapping, shipped quantities, stale and
duplicate documents, the poll job, and the customer's one e-mail per real change.

Against the sandbox's MoySklad in-process (`ms_respx`): a manager's state changes and shipments
are the order book's own (`set_state`, `ship`), MoySklad's clock is the sandbox's (from now)."""
from datetime import timedelta
from decimal import Decimal

import pytest
from django.core import mail

from integrations import jobs
from integrations.models import JobRun, OrderBinding, OrderStateMapping
from integrations.moysklad.client import MoySkladClient
from integrations.moysklad.orders import OrderExportSession, state_mapping_seed
from integrations.runs import run_job
from orders import services
from orders.models import Order, OrderStatus, OrderStatusChange
from orders.services import status_from_upstream
from tests.orders_fixtures import deliver, foreign_order, notification, process_all

pytestmark = pytest.mark.django_db


def note(sb, *events):
    """A notification as the sandbox's MoySklad sends it (its hrefs under our MOYSKLAD base)."""
    return notification(*events, base=sb.moysklad_base_url)


def set_state(sb, remote_id: str, name: str) -> dict:
    """A manager moves the order to state `name`; the order as MoySklad shows it then, positions
    expanded."""
    book = sb.moysklad.orders
    row = book.set_state(remote_id, name)
    return book.render_order(book.api(), row, expand_positions=True)


def ship(sb, remote_id: str, quantities: dict | None = None) -> dict:
    """A manager ships (part of) the order: the demand document."""
    return sb.moysklad.orders.ship(remote_id, quantities)


@pytest.fixture
def exported(ms_respx, shop, published, settings):
    """A site order for 2 phones and 1 case, in MoySklad; e-mails go to the test outbox."""
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    order = services.order_create(
        customer=services.CustomerData(name="Иван", email="ivan@example.com"),
        items=[services.LineRequest(sku="PHONE-1", quantity=2), services.LineRequest(sku="CASE-RED", quantity=1)],
        idempotency_key="k1").order
    with MoySkladClient() as client:
        OrderExportSession(client).export(order.pk)
    remote_id = OrderBinding.objects.get(order=order).external_id
    return order, remote_id


def send_emails(published):
    """Run the e-mail tasks the status changes queued (as the worker would)."""
    from orders.tasks import order_status_email_task

    for (change_id,) in published.args_of("orders.order_status_email"):
        order_status_email_task.apply(args=[change_id])
    published.calls.clear()


def test_state_change_webhook_moves_the_order_and_mails_once(client, exported, ms_respx, published,
                                                             django_capture_on_commit_callbacks):
    order, remote_id = exported
    set_state(ms_respx, remote_id, "Подтвержден")
    with django_capture_on_commit_callbacks(execute=True):
        assert deliver(client, note(ms_respx, ("customerorder", remote_id, "UPDATE"))).status_code == 200
    with django_capture_on_commit_callbacks(execute=True):
        counts = process_all()
    assert counts == {"changed": 1}
    order.refresh_from_db()
    assert order.status == OrderStatus.CONFIRMED
    change = OrderStatusChange.objects.get(order=order, to_status="confirmed")
    assert change.by == "moysklad" and change.from_status == "pending"
    send_emails(published)
    assert len(mail.outbox) == 1
    assert order.number in mail.outbox[0].subject and "подтверждён" in mail.outbox[0].subject
    assert mail.outbox[0].to == ["ivan@example.com"]


def test_duplicate_notification_is_processed_once(client, exported, ms_respx, published,
                                                  django_capture_on_commit_callbacks):
    order, remote_id = exported
    set_state(ms_respx, remote_id, "Собран")
    body = note(ms_respx, ("customerorder", remote_id, "UPDATE"))
    with django_capture_on_commit_callbacks(execute=True):
        deliver(client, body, request_id="same")
        deliver(client, body, request_id="same")  # MoySklad's retry: same requestId
    from integrations.models import InboundEvent

    assert InboundEvent.objects.count() == 1
    with django_capture_on_commit_callbacks(execute=True):
        process_all()
        process_all()
    assert OrderStatusChange.objects.filter(order=order, to_status="processing").count() == 1
    send_emails(published)
    assert len(mail.outbox) == 1


def test_replayed_change_under_a_new_request_id_mails_no_one(client, exported, ms_respx, published,
                                                             django_capture_on_commit_callbacks):
    order, remote_id = exported
    set_state(ms_respx, remote_id, "Подтвержден")
    body = note(ms_respx, ("customerorder", remote_id, "UPDATE"))
    with django_capture_on_commit_callbacks(execute=True):
        deliver(client, body, request_id="a")
        process_all()
        deliver(client, body, request_id="b")
        assert process_all() == {"unchanged": 1}
    send_emails(published)
    assert len(mail.outbox) == 1


def test_older_document_never_overwrites_a_newer_state(exported, ms_respx, published):
    """Two fetches raced: the newer one (cancelled) was applied first; the older one (confirmed)
    arriving later is skipped."""
    from integrations.moysklad.orders import StateMapper, customerorder_import_record

    order, remote_id = exported
    with MoySkladClient() as client:
        mapper = StateMapper(client)
        older = set_state(ms_respx, remote_id, "Подтвержден")
        newer = set_state(ms_respx, remote_id, "Отменен")
        assert customerorder_import_record(client=client, row=newer, mapper=mapper, by="moysklad") == "changed"
        assert customerorder_import_record(client=client, row=older, mapper=mapper, by="moysklad") == "stale"
    order.refresh_from_db()
    assert order.status == OrderStatus.CANCELLED


def test_out_of_order_webhooks_end_in_the_newest_state(client, exported, ms_respx, published,
                                                       django_capture_on_commit_callbacks):
    """Notifications are only links: whatever order they arrive in, the fetch reads the current
    document, so the newest state stands."""
    order, remote_id = exported
    set_state(ms_respx, remote_id, "Подтвержден")
    set_state(ms_respx, remote_id, "Собран")
    with django_capture_on_commit_callbacks(execute=True):
        deliver(client, note(ms_respx, ("customerorder", remote_id, "UPDATE")), request_id="second")
        process_all()
        deliver(client, note(ms_respx, ("customerorder", remote_id, "UPDATE")), request_id="first")
        process_all()
    order.refresh_from_db()
    assert order.status == OrderStatus.PROCESSING


def test_partial_then_full_shipment(client, exported, ms_respx, published, shop, django_capture_on_commit_callbacks):
    order, remote_id = exported
    set_state(ms_respx, remote_id, "Собран")
    demand = ship(ms_respx, remote_id, {shop.phone_ms_id: 1})
    with django_capture_on_commit_callbacks(execute=True):
        deliver(client, note(ms_respx, ("demand", demand["id"], "CREATE")), request_id="d1")
        process_all()
    order.refresh_from_db()
    assert order.status == OrderStatus.PARTIALLY_SHIPPED
    shipped = dict(order.lines.values_list("sku", "shipped_quantity"))
    assert shipped == {"PHONE-1": Decimal(1), "CASE-RED": Decimal(0)}
    demand = ship(ms_respx, remote_id)
    with django_capture_on_commit_callbacks(execute=True):
        deliver(client, note(ms_respx, ("demand", demand["id"], "CREATE")), request_id="d2")
        process_all()
    order.refresh_from_db()
    assert order.status == OrderStatus.SHIPPED
    history = list(order.status_changes.values_list("to_status", flat=True))
    assert history == ["pending", "partially_shipped", "shipped"]  # "Собран" was never notified


def test_state_mapping_is_seeded_by_standard_names(ms_respx, db):
    with MoySkladClient() as client:
        assert state_mapping_seed(client=client) == 7
        assert state_mapping_seed(client=client) == 0
    mapping = dict(OrderStateMapping.objects.values_list("name", "status"))
    assert mapping == {"Новый": "pending", "Подтвержден": "confirmed", "Собран": "processing", "Отгружен": "shipped",
                       "Доставлен": "completed", "Возврат": "returned", "Отменен": "cancelled"}


def test_manager_edited_mapping_wins_and_unknown_states_change_nothing(client, exported, ms_respx, published,
                                                                       django_capture_on_commit_callbacks):
    order, remote_id = exported
    ms_respx.moysklad.orders.states.append({"id": "custom-state", "name": "Ждёт оплаты", "stateType": "Regular",
                                            "color": 0})
    with MoySkladClient() as ms:
        state_mapping_seed(client=ms)
    assert OrderStateMapping.objects.get(state_id="custom-state").status == ""
    OrderStateMapping.objects.filter(name="Подтвержден").update(status="processing", seeded=False)
    set_state(ms_respx, remote_id, "Подтвержден")
    with django_capture_on_commit_callbacks(execute=True):
        deliver(client, note(ms_respx, ("customerorder", remote_id, "UPDATE")), request_id="x")
        process_all()
    order.refresh_from_db()
    assert order.status == OrderStatus.PROCESSING
    set_state(ms_respx, remote_id, "custom-state")
    with django_capture_on_commit_callbacks(execute=True):
        deliver(client, note(ms_respx, ("customerorder", remote_id, "UPDATE")), request_id="y")
        process_all()
    order.refresh_from_db()
    assert order.status == OrderStatus.PROCESSING  # unmapped state: no change


def test_order_created_in_moysklad_is_ignored(client, ms_respx, db, published, django_capture_on_commit_callbacks):
    from integrations.models import InboundEvent

    foreign = foreign_order(ms_respx.moysklad)
    with django_capture_on_commit_callbacks(execute=True):
        deliver(client, note(ms_respx, ("customerorder", foreign["id"], "UPDATE")))
        assert process_all() == {"ignored": 1}
    assert InboundEvent.objects.get().status == "ignored"


def test_poll_job_catches_changes_whose_webhook_was_lost(exported, ms_respx, published, shop):
    order, remote_id = exported
    set_state(ms_respx, remote_id, "Отгружен")
    ship(ms_respx, remote_id)
    foreign_order(ms_respx.moysklad)
    run = run_job(jobs.get("moysklad-order-statuses"), trigger="test")
    assert run.status == JobRun.Status.SUCCESS, run.message
    assert run.counts.get("changed") == 1 and run.counts.get("not_ours") == 1
    order.refresh_from_db()
    assert order.status == OrderStatus.SHIPPED
    assert all(line.shipped_quantity == line.quantity for line in order.lines.all())
    again = run_job(jobs.get("moysklad-order-statuses"), trigger="test")
    assert again.counts.get("changed", 0) == 0
    assert OrderStatusChange.objects.filter(order=order, by="moysklad-poll").count() == 1


def test_poll_job_does_nothing_before_any_export(ms_respx, db):
    run = run_job(jobs.get("moysklad-order-statuses"), trigger="test")
    assert run.status == JobRun.Status.SUCCESS and run.counts == {"nothing_exported_yet": 1}
    assert not ms_respx.moysklad.logged()


@pytest.mark.parametrize("current,state,lines,expected", [
    ("pending", "confirmed", [(2, 0)], "confirmed"),
    ("confirmed", "processing", [(2, 1)], "partially_shipped"),
    ("processing", "processing", [(2, 2), (1, 1)], "shipped"),
    ("shipped", "completed", [(2, 2)], "completed"),
    ("partially_shipped", None, [(2, 1)], "partially_shipped"),
    ("processing", "cancelled", [(2, 1)], "cancelled"),
    ("completed", None, [(2, 2)], "completed"),
    ("returned", None, [(2, 2)], "returned"),
    ("pending", "shipped", [(2, 0)], "shipped"),
])
def test_status_from_upstream(current, state, lines, expected):
    lines = [(Decimal(a), Decimal(b)) for a, b in lines]
    assert status_from_upstream(current=current, state_status=state, lines=lines) == expected


def test_history_keeps_recorded_order_when_upstream_moments_lie_before_ours(
        api, ms_respx, shop, published, settings, django_capture_on_commit_callbacks):
    """MoySklad's moments are its own clock (and a manager may date documents back): upstream
    changes stamped before our own first record still list after it, in the order recorded."""
    ms_respx.catalog.advance(-timedelta(days=3).total_seconds())
    order, remote_id = exported.__wrapped__(ms_respx, shop, published, settings)
    demand = ship(ms_respx, remote_id, {shop.phone_ms_id: 1})
    with django_capture_on_commit_callbacks(execute=True):
        deliver(api, note(ms_respx, ("demand", demand["id"], "CREATE")), request_id="d1")
        process_all()
    demand = ship(ms_respx, remote_id)
    with django_capture_on_commit_callbacks(execute=True):
        deliver(api, note(ms_respx, ("demand", demand["id"], "CREATE")), request_id="d2")
        process_all()
    order.refresh_from_db()
    assert order.status == OrderStatus.SHIPPED
    changes = list(order.status_changes.all())
    assert [c.to_status for c in changes] == ["pending", "partially_shipped", "shipped"]
    assert changes[1].at < changes[0].at  # the upstream moment is kept as given
    answer = api.get(f"/api/v1/orders/{order.uid}")
    assert answer.status_code == 200, answer.content
    assert [h["status"] for h in answer.json()["history"]] == ["pending", "partially_shipped", "shipped"]
