"""Export to MoySklad: exactly one customerorder per order whatever fails, the payload MoySklad
expects, counterparties matched once, and the outbox catching what the queue lost.

Against the sandbox's MoySklad: over real sockets (`ms_sandbox`), or in-process through respx
(`ms_respx`) for the two tests that read individual requests (headers, a filter parameter) from
its request log or need a MoySklad that ignores syncId."""
from decimal import Decimal

import pytest

from integrations import jobs
from integrations.http.errors import UpstreamUnavailableError
from integrations.models import CustomerBinding, JobRun, OrderBinding
from integrations.moysklad.client import MoySkladClient
from integrations.moysklad.orders import OrderExportSession, customer_code
from integrations.runs import run_job
from orders import services
from orders.models import ExportState, Order
from stock.models import StockHold, StockLevel
from integrations.sandbox.catalog_gen import ORGANIZATION

pytestmark = pytest.mark.django_db


def make_order(shop, *items, email="ivan@example.com", phone="+7 926 123-45-67", key=None) -> Order:
    items = items or (("PHONE-1", 2), ("CASE-RED", 1))
    return services.order_create(
        customer=services.CustomerData(name="Иван Петров", email=email, phone=phone),
        items=[services.LineRequest(sku=s, quantity=q) for s, q in items], shipping_method="courier",
        shipping_address="Москва, ул. Примерная, 1", comment="позвонить", idempotency_key=key).order


def outbox(order: Order) -> OrderBinding:
    """The order's MoySklad binding: the outbox row with its export state."""
    return OrderBinding.objects.get(order=order)


def book(sandbox):
    """The sandbox MoySklad's order side: its orders and counterparties by id."""
    return sandbox.moysklad.orders


def hits(sandbox, endpoint: str | None = None) -> int:
    """Requests the sandbox MoySklad answered (to `endpoint`, e.g. "POST entity/customerorder")."""
    stats = sandbox.moysklad.stats()
    return stats["requests"] if endpoint is None else stats["by_endpoint"].get(endpoint, 0)


def export(order_id: int) -> str:
    with MoySkladClient() as client:
        return OrderExportSession(client).export(order_id)


def test_export_creates_counterparty_and_order_with_sync_id(ms_sandbox, shop, published):
    order = make_order(shop)
    assert export(order.pk) == "exported"
    (remote,) = book(ms_sandbox).orders.values()
    assert remote["externalCode"] == str(order.uid) and remote["syncId"] == str(order.uid)
    (counterparty,) = book(ms_sandbox).counterparties.values()
    assert counterparty["externalCode"] == customer_code(order.customer)
    assert counterparty["syncId"] == str(order.customer.uid)
    assert counterparty["email"] == "ivan@example.com"
    assert remote["_agent"] == counterparty["id"]
    binding = outbox(order)
    assert binding.export_state == ExportState.EXPORTED and binding.exported_at
    assert binding.external_id == remote["id"] and binding.ui_url.startswith("https://online.moysklad.ru/")


def test_export_payload_points_at_product_and_variant_with_kopecks(ms_sandbox, shop, published):
    order = make_order(shop)
    export(order.pk)
    (remote,) = book(ms_sandbox).orders.values()
    positions = sorted(remote["_positions"], key=lambda p: p["price"])
    assert [(p["_kind"], p["_assortment"]) for p in positions] == [
        ("variant", shop.case_ms_id), ("product", shop.phone_ms_id)]
    assert [(p["price"], p["quantity"], p["reserve"]) for p in positions] == [(25050, 1, 1), (149900, 2, 2)]
    assert positions[1]["vat"] == 20 and remote["vatEnabled"] is True
    assert remote["_organization"] == ms_sandbox.moysklad.catalog.id_of(ORGANIZATION, 0)
    assert remote["_store"] == ms_sandbox.moysklad.store_ids()[0]
    assert remote["shipmentAddress"] == "Москва, ул. Примерная, 1"
    assert order.number in remote["description"] and "позвонить" in remote["description"]


def test_writes_send_webhook_disable_prefix(ms_respx, shop, published):
    export(make_order(shop).pk)
    writes = ms_respx.moysklad.logged(method="POST")
    assert {w.path.rsplit("/", 1)[-1] for w in writes} == {"counterparty", "customerorder"}
    assert all(w.header("X-Lognex-WebHook-DisableByPrefix") == "https://shop.example.com" for w in writes)
    reads = ms_respx.moysklad.logged(method="GET")
    assert reads and all(r.header("X-Lognex-WebHook-DisableByPrefix") is None for r in reads)


def test_returning_customer_costs_one_request_per_order(ms_sandbox, shop, published):
    export(make_order(shop, ("PHONE-1", 1)).pk)
    before = hits(ms_sandbox)
    second = make_order(shop, ("PHONE-1", 1))
    with MoySkladClient() as client:
        session = OrderExportSession(client)
        assert session.export(second.pk) == "exported"
    assert hits(ms_sandbox) - before == 1  # the create; counterparty and defaults are cached
    assert len(book(ms_sandbox).counterparties) == 1


def test_defaults_from_settings_cost_no_request(ms_sandbox, shop, published, settings):
    organization, store = ms_sandbox.moysklad.catalog.id_of(ORGANIZATION, 0), ms_sandbox.moysklad.store_ids()[0]
    settings.MOYSKLAD = {**settings.MOYSKLAD, "ORGANIZATION_ID": organization, "STORE_ID": store}
    export(make_order(shop).pk)
    assert hits(ms_sandbox, "entity/organization") == 0 and hits(ms_sandbox, "entity/store") == 0
    (remote,) = book(ms_sandbox).orders.values()
    assert (remote["_organization"], remote["_store"]) == (organization, store)


def test_store_setting_by_name_is_looked_up(ms_sandbox, shop, published, settings):
    (store,) = ms_sandbox.moysklad.store_ids()
    name = ms_sandbox.moysklad.catalog.stores[0].name
    settings.MOYSKLAD = {**settings.MOYSKLAD, "STORE_ID": name}
    export(make_order(shop).pk)
    assert hits(ms_sandbox, "entity/store") == 1
    (remote,) = book(ms_sandbox).orders.values()
    assert remote["_store"] == store


def test_counterparty_found_by_email_then_by_phone(ms_sandbox, shop, published):
    by_mail, _ = book(ms_sandbox).create_counterparty({"name": "Иван", "email": "ivan@example.com"})
    by_phone, _ = book(ms_sandbox).create_counterparty({"name": "Мария", "phone": "8 (999) 000-11-22"})
    export(make_order(shop, ("PHONE-1", 1)).pk)
    export(make_order(shop, ("PHONE-1", 1), email="", phone="+79990001122").pk)
    agents = sorted(o["_agent"] for o in book(ms_sandbox).orders.values())
    assert agents == sorted([by_mail["id"], by_phone["id"]])
    assert hits(ms_sandbox, "POST entity/counterparty") == 0
    assert CustomerBinding.objects.count() == 2


def test_connection_dropped_after_create_makes_exactly_one_order(ms_sandbox, shop, published):
    """MoySklad created the order but the answer never arrived: the client's retry re-sends the
    same syncId and gets that order back instead of a second one."""
    order = make_order(shop)
    book(ms_sandbox).drop_after_create = 1
    assert export(order.pk) == "exported"
    (remote_id,) = book(ms_sandbox).orders
    assert hits(ms_sandbox, "POST entity/customerorder") == 2
    assert OrderBinding.objects.get(order=order).external_id == remote_id


def test_connection_dropped_without_sync_id_dedup_still_one_order(ms_respx, shop, published):
    """Even if the create itself were not deduplicated, the next attempt searches by externalCode
    first and binds the order that is already there."""
    order = make_order(shop)
    book(ms_respx).honour_sync_id = False
    book(ms_respx).drop_after_create = 1
    # Every retry inside the client hits a dropped connection: the export fails for now...
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(MoySkladClient, "max_attempts", 1)
        with pytest.raises(UpstreamUnavailableError):
            export(order.pk)
    binding = outbox(order)
    assert binding.export_state == ExportState.PENDING and binding.export_attempts == 1
    # ... and the retry finds it by externalCode instead of creating a second one.
    assert export(order.pk) == "found_existing"
    assert len(book(ms_respx).orders) == 1
    assert ms_respx.moysklad.logged("entity/customerorder", method="GET")[-1].params["filter"] == \
        f"externalCode={order.uid}"


def test_worker_killed_mid_export_retry_finishes_without_duplicate(ms_sandbox, shop, published):
    """A worker died after sending the create: the binding row exists with no external id."""
    order = make_order(shop)
    with MoySkladClient() as client:
        body = OrderExportSession(client).payload(order)
        client.customerorder_create(body)  # reached MoySklad; the worker died before binding
    assert OrderBinding.objects.filter(order=order, external_id="", external_code=order.export_code).update(
        create_attempted_at=order.created_at) == 1
    assert export(order.pk) == "found_existing"
    assert len(book(ms_sandbox).orders) == 1
    binding = outbox(order)
    assert binding.export_state == ExportState.EXPORTED


def test_killed_before_the_create_was_sent_creates_it_once(ms_sandbox, shop, published):
    order = make_order(shop)
    # order_create made the binding (our code, no external id) before any export ran
    assert OrderBinding.objects.filter(order=order, external_id="", external_code=order.export_code,
                                       create_attempted_at=None).exists()
    assert export(order.pk) == "exported"
    assert len(book(ms_sandbox).orders) == 1


def test_two_exporters_never_work_on_one_order(ms_sandbox, shop, published):
    order = make_order(shop)
    assert services.order_export_claim(order_id=order.pk, owner="other-worker")
    assert export(order.pk) == "skipped"
    assert not book(ms_sandbox).orders
    services.order_export_release(order_id=order.pk, owner="other-worker")
    assert export(order.pk) == "exported"
    assert export(order.pk) == "skipped"  # exported orders are not pending any more
    assert len(book(ms_sandbox).orders) == 1


def test_expired_lease_of_a_dead_worker_is_taken_over(ms_sandbox, shop, published):
    from datetime import timedelta

    from django.utils import timezone

    order = make_order(shop)
    assert OrderBinding.objects.filter(order=order).update(export_lease_owner="dead",
                                                           export_lease_until=timezone.now() - timedelta(1)) == 1
    assert export(order.pk) == "exported"


def test_export_hands_holds_over_without_touching_available(ms_sandbox, shop, published):
    order = make_order(shop)
    assert StockLevel.objects.get(offer=shop.phone).available == 3
    export(order.pk)
    holds = list(StockHold.objects.all())
    assert len(holds) == 2 and all(h.released_at is None and h.handed_over_to == "moysklad" for h in holds)
    assert all(h.handed_over_at > order.created_at for h in holds)
    assert StockLevel.objects.get(offer=shop.phone).available == 3  # held until a stock read counts the reserve


def test_offer_not_linked_keeps_order_pending_with_the_reason(ms_sandbox, shop, published):
    from integrations.models import OfferBinding

    order = make_order(shop)
    OfferBinding.objects.filter(offer=shop.case).delete()
    run = run_job(jobs.get("orders-export"), trigger="test")
    assert run.status == JobRun.Status.SUCCESS and run.error_count == 1
    binding = outbox(order)
    assert binding.export_state == ExportState.PENDING and "CASE-RED" in binding.export_error
    assert not book(ms_sandbox).orders


def test_rejected_order_is_failed_until_a_manager_requeues_it(ms_sandbox, shop, published):
    order = make_order(shop)
    ms_sandbox.moysklad.faults.add(status=412, error_code=3000, message="поле 'agent' не может быть пустым",
                                   path_contains="entity/customerorder", method="POST")
    book(ms_sandbox).create_counterparty({"name": "x", "email": "ivan@example.com"})
    run = run_job(jobs.get("orders-export"), trigger="test")
    assert run.error_count == 1
    binding = outbox(order)
    assert binding.export_state == ExportState.FAILED and "3000" in binding.export_error
    assert services.order_export_requeue(order_ids=[order.pk]) == 1
    run_job(jobs.get("orders-export"), trigger="test")
    binding = outbox(order)
    assert binding.export_state == ExportState.EXPORTED and len(book(ms_sandbox).orders) == 1


def test_outbox_job_exports_orders_whose_signal_was_lost(ms_sandbox, shop, published):
    """The broker was down when these orders committed: nothing was queued, the job finds them."""
    orders = [make_order(shop, ("PHONE-1", 1)) for _ in range(3)]
    run = run_job(jobs.get("orders-export"), trigger="test")
    assert run.status == JobRun.Status.SUCCESS, run.message
    assert run.counts["exported"] == 3
    assert {o["externalCode"] for o in book(ms_sandbox).orders.values()} == {str(o.uid) for o in orders}
    assert run_job(jobs.get("orders-export"), trigger="test").counts.get("exported", 0) == 0


def test_transport_failure_stops_the_run_and_keeps_orders_pending(ms_sandbox, shop, published):
    order = make_order(shop)
    ms_sandbox.moysklad.faults.add(status=503, count=10)
    with pytest.raises(UpstreamUnavailableError):
        run_job(jobs.get("orders-export"), trigger="test")
    binding = outbox(order)
    assert binding.export_state == ExportState.PENDING and binding.export_attempts == 1
    assert binding.export_lease_owner == ""  # released for the next attempt


def test_export_task_exports_one_order(ms_sandbox, shop, published):
    from integrations.moysklad.tasks import order_export_task

    order = make_order(shop)
    assert order_export_task.apply(args=[order.pk]).get() == "exported"


def test_not_configured_export_job_reports_and_succeeds(db, settings, published):
    settings.MOYSKLAD = {**settings.MOYSKLAD, "TOKEN": "", "LOGIN": "", "PASSWORD": ""}
    run = run_job(jobs.get("orders-export"), trigger="test")
    assert run.status == JobRun.Status.NOT_CONFIGURED


def test_many_orders_for_a_returning_customer_stay_within_two_requests_each(ms_sandbox, shop, published):
    from tests.factories import make_stock

    StockLevel.objects.filter(offer=shop.phone).update(stock=1000, available=1000)
    export(make_order(shop, ("PHONE-1", 1)).pk)  # the customer's first order
    for _ in range(20):
        make_order(shop, ("PHONE-1", 1))
    before = hits(ms_sandbox)
    run = run_job(jobs.get("orders-export"), trigger="test")
    assert run.counts["exported"] == 20
    assert (hits(ms_sandbox) - before) / 20 <= 2
