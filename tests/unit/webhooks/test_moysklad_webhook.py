"""POST /webhooks/moysklad/<token>/: check, store, signal, answer — and nothing written when a
check fails. Then processing: catalog refreshes, deletions, stock, forged links, the sweeper.

Our MoySklad is the sandbox's, in-process (`ms_respx`): what processing reads is what its catalog
holds, and its request log says what was asked."""
import json
import time
from datetime import timedelta

import pytest
from django.utils import timezone

from catalog.models import Offer, Product
from integrations.models import InboundEvent, JobRun
from integrations.moysklad.events import events_reprocess, events_sweep
from tests.conftest import needs_postgres
from tests.orders_fixtures import MS_BASE, WEBHOOK_TOKEN, deliver, foreign_order, notification, process_all

pytestmark = pytest.mark.django_db
BASE = MS_BASE


def test_notification_is_stored_and_signalled_after_commit(client, ms_respx, published,
                                                           django_capture_on_commit_callbacks):
    body = notification(("customerorder", "o1", "UPDATE"), ("demand", "d1", "CREATE"))
    with django_capture_on_commit_callbacks(execute=True):
        response = deliver(client, body, request_id="r-1")
    assert response.status_code == 200 and response.json() == {"stored": 2, "queued": 2}
    events = list(InboundEvent.objects.order_by("id"))
    assert [(e.entity_type, e.action, e.status) for e in events] == [("customerorder", "UPDATE", "received"),
                                                                     ("demand", "CREATE", "received")]
    assert events[0].dedup_key == "r-1:0:UPDATE:customerorder:o1"
    assert events[0].payload["auditContext"]["uid"] == "admin@shop"
    assert published.args_of("integrations.moysklad.events_process") == [([e.pk for e in events],)]
    assert not ms_respx.moysklad.logged()  # no upstream call in the request


def test_wrong_token_is_404_and_nothing_stored(client, ms_respx, published):
    response = deliver(client, notification(("product", "p", "UPDATE")), token="wrong-token")
    assert response.status_code == 404 and response.json()["error"] == "not_found"
    assert not InboundEvent.objects.exists() and not published.calls


def test_unset_token_is_404(client, ms_respx, settings):
    settings.MOYSKLAD = {**settings.MOYSKLAD, "WEBHOOK_TOKEN": ""}
    assert deliver(client, notification(("product", "p", "UPDATE")), token="").status_code == 404
    assert deliver(client, notification(("product", "p", "UPDATE")), token="anything").status_code == 404
    assert not InboundEvent.objects.exists()


@pytest.mark.parametrize("raw", [b"{not json", b"", b"[]", b'{"events": []}', b'{"events": [{"action": "UPDATE"}]}',
                                 b'{"events": [{"meta": {"type": "product", "href": "ftp://x"}, "action": "UPDATE"}]}',
                                 b'{"events": [{"meta": {"type": "product", "href": "https://x/1"}}]}',
                                 "{\"events\": \"\xff\"}".encode("latin-1")])
def test_malformed_body_is_400_and_nothing_stored(client, ms_respx, published, raw):
    response = deliver(client, None, raw=raw)
    assert response.status_code == 400 and response.json()["error"] == "invalid"
    assert not InboundEvent.objects.exists() and not published.calls


def test_oversized_body_is_413_and_nothing_stored(client, ms_respx, published, settings):
    settings.WEBHOOK_MAX_BODY = 1000
    body = notification(*[("product", f"p{i}", "UPDATE") for i in range(50)])
    response = deliver(client, body)
    assert response.status_code == 413 and response.json()["error"] == "too_large"
    assert not InboundEvent.objects.exists()


def test_get_is_not_allowed(client, ms_respx):
    assert client.get(f"/webhooks/moysklad/{WEBHOOK_TOKEN}/").status_code == 405


def test_duplicate_notification_is_stored_once(client, ms_respx, published, django_capture_on_commit_callbacks):
    body = notification(("product", "p1", "UPDATE"))
    with django_capture_on_commit_callbacks(execute=True):
        first = deliver(client, body, request_id="same")
        second = deliver(client, body, request_id="same")
    assert first.json() == {"stored": 1, "queued": 1}
    assert second.status_code == 200 and InboundEvent.objects.count() == 1


def test_notification_without_request_id_dedups_on_the_body(client, ms_respx, published):
    body = notification(("product", "p1", "UPDATE"))
    deliver(client, body, request_id="")
    deliver(client, body, request_id="")
    assert InboundEvent.objects.count() == 1


def test_stock_notification_is_stored(client, ms_respx, published):
    body = {"accountId": "acc", "stockType": "stock", "reportType": "bystore",
            "reportUrl": f"{BASE}/report/stock/bystore/current?changedSince=2026-11-23 19:14:32"}
    assert deliver(client, body).status_code == 200
    event = InboundEvent.objects.get()
    assert (event.entity_type, event.action) == ("webhookstock", "STOCK")


def test_broker_down_the_webhook_answers_fast_stores_and_the_sweeper_recovers(
        client, ms_respx, settings, django_capture_on_commit_callbacks, monkeypatch):
    """Publishing goes to a broker nobody listens on: the view still answers 200 well within
    MoySklad's 1.5 s, the event is stored, and the sweeper re-signals it once the broker is back."""
    from syncsite import publish as publisher
    from syncsite.celery import app

    publisher.reset()
    dead = "redis://127.0.0.1:1/0"
    # conf first: monkeypatch restores what it read, and conf.broker_url reads the environment first
    # (so after setenv it would read, and later "restore", the dead URL).
    monkeypatch.setattr(app.conf, "broker_url", dead)
    monkeypatch.setenv("CELERY_BROKER_URL", dead)
    # Fresh pools for the dead URL; the live ones are untouched and come back with monkeypatch's undo.
    monkeypatch.setattr(app, "_pool", None)
    monkeypatch.setattr(app.amqp, "_producer_pool", None)
    foreign = foreign_order(ms_respx.moysklad)
    try:
        body = notification(("customerorder", foreign["id"], "UPDATE"))
        started = time.monotonic()
        with django_capture_on_commit_callbacks(execute=True):
            response = deliver(client, body, request_id="down-1")
        elapsed = time.monotonic() - started
        assert response.status_code == 200
        assert elapsed < 1.5, f"took {elapsed:.2f}s"
        # The next one does not even try the dead broker for a while.
        started = time.monotonic()
        with django_capture_on_commit_callbacks(execute=True):
            assert deliver(client, body, request_id="down-2").status_code == 200
        assert time.monotonic() - started < 0.5
    finally:
        deadline = time.monotonic() + 10
        while publisher._in_flight and time.monotonic() < deadline:  # let the background sends fail
            time.sleep(0.05)
    assert app.conf.broker_url == dead
    assert InboundEvent.objects.filter(status="received").count() == 2
    # The broker is back: the sweeper (beat, every minute) re-signals what is older than a minute.
    publisher.reset()
    signalled = []
    monkeypatch.setattr(publisher, "publish", lambda task, *args: signalled.append((task.name, args)) or True)
    InboundEvent.objects.update(received_at=timezone.now() - timedelta(minutes=2))
    assert events_sweep()["requeued"] == 2
    assert signalled[0][0] == "integrations.moysklad.events_process"
    from integrations.moysklad.events import events_process

    events_process(event_ids=list(signalled[0][1][0]))
    assert set(InboundEvent.objects.values_list("status", flat=True)) == {"ignored"}  # processed (not our order)


def test_sweeper_frees_events_of_a_dead_worker_and_leaves_fresh_ones(ms_respx, published):
    now = timezone.now()
    fresh = InboundEvent.objects.create(dedup_key="a", entity_type="product", action="UPDATE", received_at=now)
    stuck = InboundEvent.objects.create(dedup_key="b", entity_type="product", action="UPDATE", status="processing",
                                        received_at=now - timedelta(hours=1), claimed_at=now - timedelta(hours=1))
    result = events_sweep()
    assert result == {"requeued": 1, "freed": 1, "mails": 0}
    stuck.refresh_from_db()
    assert stuck.status == "received"
    assert published.args_of("integrations.moysklad.events_process") == [([stuck.pk],)]
    fresh.refresh_from_db()
    assert fresh.status == "received"


def test_event_is_processed_once_even_if_signalled_twice(client, ms_respx, published):
    from integrations.moysklad.events import events_process

    gone = "00000000-0000-0000-0000-000000000404"   # a product MoySklad no longer has
    deliver(client, notification(("product", gone, "DELETE")))
    (event_id,) = InboundEvent.objects.values_list("pk", flat=True)
    first = events_process(event_ids=[event_id])
    assert events_process(event_ids=[event_id]) == {}
    assert first == {"ignored": 1}
    assert InboundEvent.objects.get().attempts == 1


# -- catalog and stock ------------------------------------------------------------------------------

def test_product_update_refreshes_that_product(client, ms_respx, shop, published):
    from integrations.models import ProductBinding

    ProductBinding.objects.create(product=shop.phone.product, external_id=shop.phone_ms_id)
    ms_respx.moysklad.update_product(shop.phone_ms_id, name="Телефон X", article="PHONE-1", salePrice=159900,
                                    productFolder=None)  # in no folder, as the shop holds it
    deliver(client, notification(("product", shop.phone_ms_id, "UPDATE")))
    assert process_all() == {"imported": 1}
    shop.phone.refresh_from_db()
    assert shop.phone.price == 1599 and shop.phone.product.name == "Телефон X"
    (call,) = ms_respx.moysklad.logged("entity/product", method="GET")  # one list read by id, not a GET per event
    assert call.params["filter"].startswith(f"id={shop.phone_ms_id};")


def test_variant_of_an_unknown_product_imports_the_product_first(client, ms_respx, db, published):
    ms = ms_respx.moysklad
    product_id = ms.add_product(name="Чехол", article="", code="case", salePrice=50000)
    variant_id = ms.add_variant(product_id, name="Чехол (синий)", code="CASE-BLUE", salePrice=50000)
    deliver(client, notification(("variant", variant_id, "UPDATE")))
    assert process_all() == {"imported": 1}
    assert Offer.objects.get(sku="CASE-BLUE").product.name == "Чехол"


def test_confirmed_deletes_unpublish_the_product_and_the_variant(client, ms_respx, shop, published):
    """MoySklad no longer lists either id: the deletions are confirmed, and we archive (never delete)."""
    from integrations.models import ProductBinding

    ProductBinding.objects.create(product=shop.phone.product, external_id=shop.phone_ms_id)
    ms_respx.moysklad.delete_variant(shop.case_ms_id)
    ms_respx.moysklad.delete_product(shop.phone_ms_id)
    deliver(client, notification(("product", shop.phone_ms_id, "DELETE"), ("variant", shop.case_ms_id, "DELETE")))
    assert process_all() == {"archived": 2}
    assert Product.objects.get(pk=shop.phone.product_id).archived
    assert set(Offer.objects.values_list("sku", "archived")) == {("PHONE-1", True), ("CASE-RED", True)}
    # Asked MoySklad first: one read by id per kind, archived rows included.
    assert [r.path.rsplit("/", 1)[-1] for r in ms_respx.moysklad.logged()] == ["product", "variant"]
    assert all("archived=true;archived=false" in r.params["filter"] for r in ms_respx.moysklad.logged())


def test_forged_href_to_another_host_is_never_followed(client, ms_respx, db, published):
    body = notification(("product", "p1", "UPDATE"), base="https://evil.example.com/api/remap/1.2")
    assert deliver(client, body).status_code == 200
    process_all()
    event = InboundEvent.objects.get()
    assert event.status == "failed" and "refusing to follow" in event.error
    assert not ms_respx.moysklad.logged()


def test_stock_event_runs_the_stock_job(client, ms_respx, db, published):
    body = {"accountId": "acc", "stockType": "stock", "reportType": "bystore",
            "reportUrl": f"{BASE}/report/stock/bystore/current?changedSince=2026-11-23 19:14:32"}
    deliver(client, body)
    counts = process_all()
    assert InboundEvent.objects.get().status == "done", InboundEvent.objects.get().error
    assert JobRun.objects.filter(job="moysklad-stock", trigger="event").count() == 1
    assert ms_respx.moysklad.logged("report/stock/bystore/current", method="GET")
    assert list(counts) and list(counts)[0].startswith("stock run")


def test_stock_event_with_foreign_report_url_is_ignored(client, ms_respx, db, published):
    body = {"reportUrl": "https://evil.example.com/report?changedSince=x", "stockType": "stock"}
    deliver(client, body)
    assert process_all() == {"ignored": 1}
    assert not ms_respx.moysklad.logged()


def test_upstream_down_puts_the_event_back_for_a_retry(client, ms_respx, shop, published):
    deliver(client, notification(("product", shop.phone_ms_id, "UPDATE")))
    ms_respx.moysklad.faults.add(status=503, count=10)
    assert process_all() == {"retry": 1}
    event = InboundEvent.objects.get()
    assert event.status == "received" and event.attempts == 1 and "503" in event.error


def test_unknown_event_kind_is_ignored(client, ms_respx, db, published):
    deliver(client, notification(("counterparty", "c1", "UPDATE")))
    assert process_all() == {"ignored": 1}


def test_reprocess_requeues_failed_events(client, ms_respx, db, published, django_capture_on_commit_callbacks):
    event = InboundEvent.objects.create(dedup_key="x", entity_type="product", action="UPDATE", status="failed",
                                        attempts=3, error="boom", received_at=timezone.now())
    with django_capture_on_commit_callbacks(execute=True):
        assert events_reprocess(event_ids=[event.pk]) == 1
    event.refresh_from_db()
    assert (event.status, event.attempts, event.error) == ("received", 0, "")
    assert published.args_of("integrations.moysklad.events_process") == [([event.pk],)]


def test_not_configured_moysklad_ignores_events(client, ms_respx, settings, published):
    deliver(client, notification(("product", "p1", "UPDATE")))
    settings.MOYSKLAD = {**settings.MOYSKLAD, "TOKEN": ""}
    assert process_all() == {"ignored": 1}


def test_event_whose_link_is_not_its_type_is_not_followed(client, ms_respx, db, published):
    body = notification(("product", "p1", "UPDATE"))
    body["events"][0]["meta"]["href"] = f"{BASE}/entity/customerorder/x1"
    deliver(client, body)
    assert process_all() == {"ignored": 1}
    assert not ms_respx.moysklad.logged()


def test_the_webhook_is_one_insert_and_skips_sessions_auth_csrf_and_messages(client, ms_respx, published, monkeypatch,
                                                                              django_assert_num_queries):
    from django.contrib.auth.middleware import AuthenticationMiddleware
    from django.contrib.messages.middleware import MessageMiddleware
    from django.contrib.sessions.middleware import SessionMiddleware
    from django.middleware.csrf import CsrfViewMiddleware

    def not_for_webhooks(*args, **kwargs):
        raise AssertionError("the webhook went through the middleware stack")

    for cls, hook in ((SessionMiddleware, "process_request"), (AuthenticationMiddleware, "process_request"),
                      (CsrfViewMiddleware, "process_view"), (MessageMiddleware, "process_request")):
        monkeypatch.setattr(cls, hook, not_for_webhooks)
    with django_assert_num_queries(1):   # INSERT … ON CONFLICT DO NOTHING RETURNING id
        response = deliver(client, notification(("product", "p1", "UPDATE"), ("variant", "v1", "DELETE")))
    assert response.status_code == 200 and response.json() == {"stored": 2, "queued": 2}
    assert not response.cookies
    assert InboundEvent.objects.count() == 2


@needs_postgres
@pytest.mark.django_db(transaction=True)
def test_a_database_connection_that_died_is_replaced_and_the_notification_stored(client, ms_respx, published):
    """The webhook skips the per-request health check (a round trip as long as its INSERT): a
    persistent connection the server dropped meanwhile fails the INSERT, which is retried once on
    a new connection."""
    import psycopg
    from django.db import connection

    from django.db import close_old_connections

    assert deliver(client, notification(("product", "p1", "UPDATE")), request_id="r1").status_code == 200
    checks = []
    close_old_connections()   # what a server does between requests: the next use would be health-checked
    real_is_usable = connection.is_usable
    connection.is_usable = lambda: checks.append(1) or real_is_usable()
    try:
        assert deliver(client, notification(("product", "p0", "UPDATE")), request_id="r0").status_code == 200
    finally:
        del connection.is_usable
    assert not checks   # no SELECT 1 before the INSERT
    s = connection.settings_dict
    pid = connection.connection.info.backend_pid
    with psycopg.connect(host=s["HOST"] or "127.0.0.1", port=s["PORT"] or 5432, user=s["USER"],
                         password=s["PASSWORD"] or None, dbname=s["NAME"], autocommit=True) as other:
        other.execute("SELECT pg_terminate_backend(%s)", [pid])
    response = deliver(client, notification(("product", "p2", "UPDATE")), request_id="r2")
    assert response.status_code == 200 and response.json() == {"stored": 1, "queued": 1}
    assert InboundEvent.objects.count() == 3
