"""Processing webhook events: coalesced per document, read in bulk, capped per notification, and
claimed on a short lease that a dead worker loses."""
from datetime import timedelta
from urllib.parse import unquote

import pytest
from django.db.models import F, Q
from django.utils import timezone

from catalog.models import Offer
from integrations.models import InboundEvent, OrderBinding
from integrations.moysklad.events import events_process, events_sweep
from syncsite.leases import Lease
from tests.orders_fixtures import deliver, notification, process_all

pytestmark = pytest.mark.django_db
BASE = "https://ms.test/api/remap/1.2"


def product_row(id_: str, n: int) -> dict:
    return {"meta": {"href": f"{BASE}/entity/product/{id_}", "type": "product"}, "id": id_, "name": f"Товар {n}",
            "article": f"ART-{n}", "code": f"c{n}", "archived": False, "updated": "2026-11-23 12:00:00.000",
            "variantsCount": 0, "salePrices": [{"value": 10000.0 + n, "priceType": {"id": "pt", "name": "Цена"}}]}


def pid(n: int) -> str:
    return f"00000000-0000-0000-0000-{n:012d}"


def reads(fake_ms, entity: str) -> list:
    return fake_ms.calls("GET", f"/entity/{entity}")



def entity_reads(fake_ms) -> list:
    """The entity reads a batch cost. Besides them, a batch that imports goods reads the account's
    sale price type once (cached for ten minutes across batches), which these tests do not count."""
    reads = [r for r in fake_ms.requests if "/entity/" in r.url.path]
    others = [r.url.path for r in fake_ms.requests if r not in reads]
    assert others in ([], ["/api/remap/1.2/context/companysettings/pricetype"]), others
    return reads

def test_a_thousand_events_cost_ten_requests_not_a_thousand(client, fake_ms, db, published):
    for n in range(1000):
        fake_ms.entities["product"][pid(n)] = product_row(pid(n), n)
    deliver(client, notification(*[("product", pid(n), "UPDATE") for n in range(1000)]))
    assert process_all() == {"imported": 1000}
    reads = entity_reads(fake_ms)
    assert len(reads) == 10  # a hundred ids a request; before: one GET per event
    assert all(len(unquote(r.url.params["filter"]).split(";")) == 102 for r in reads)  # 100 ids + archived
    assert Offer.objects.filter(sku__startswith="ART-").count() == 1000
    assert set(InboundEvent.objects.values_list("status", flat=True)) == {"done"}


def test_events_about_the_same_products_share_one_read(client, fake_ms, db, published):
    for n in range(50):
        fake_ms.entities["product"][pid(n)] = product_row(pid(n), n)
    deliver(client, notification(*[("product", pid(n % 50), "UPDATE") for n in range(1000)]))
    assert process_all() == {"imported": 1000}
    assert len(entity_reads(fake_ms)) == 1


def test_the_cap_bounds_what_one_notification_costs_and_says_who_covers_the_rest(client, fake_ms, db, published,
                                                                                 settings):
    settings.MOYSKLAD_EVENT_REQUESTS_MAX = 2
    for n in range(300):
        fake_ms.entities["product"][pid(n)] = product_row(pid(n), n)
    deliver(client, notification(*[("product", pid(n), "UPDATE") for n in range(300)]))
    assert process_all() == {"imported": 200, "ignored": 100}
    assert len(entity_reads(fake_ms)) == 2
    left = InboundEvent.objects.filter(status="ignored")
    assert left.count() == 100 and "over the cap of 2" in left.first().error and "moysklad-catalog" in left.first().error


def test_the_cap_is_per_notification(client, fake_ms, db, published, settings):
    """The sweeper may hand one worker the events of several notifications: each brings its own cap."""
    settings.MOYSKLAD_EVENT_REQUESTS_MAX = 1
    for n in range(200):
        fake_ms.entities["product"][pid(n)] = product_row(pid(n), n)
    deliver(client, notification(*[("product", pid(n), "UPDATE") for n in range(100)]), request_id="r1")
    deliver(client, notification(*[("product", pid(n), "UPDATE") for n in range(100, 200)]), request_id="r2")
    assert process_all() == {"imported": 200}
    assert len(entity_reads(fake_ms)) == 2


def test_order_events_that_are_not_ours_cost_no_request(client, fake_ms, db, published):
    deliver(client, notification(*[("customerorder", pid(n), "UPDATE") for n in range(500)]))
    assert process_all() == {"ignored": 500}
    assert not fake_ms.requests
    assert InboundEvent.objects.filter(error="not an order from the site").count() == 500


def test_shipments_lead_to_their_order_read_once_with_the_orders_named_directly(client, fake_ms, shop, published):
    from tests.unit.orders.test_export import export, make_order

    order = make_order(shop)
    assert export(order.pk) == "exported"
    remote_id = OrderBinding.objects.get(order=order).external_id
    fake_ms.set_state(remote_id, "Подтвержден")
    first, second = fake_ms.ship(remote_id, {}), fake_ms.ship(remote_id)
    fake_ms.requests.clear()
    deliver(client, notification(("demand", first["id"], "CREATE"), ("demand", second["id"], "UPDATE"),
                                 ("customerorder", remote_id, "UPDATE")))
    counts = process_all()
    assert sum(counts.values()) == 3 and "failed" not in counts and "ignored" not in counts, counts
    # One read of both shipments, one of their order (the account's states are read once as well).
    assert [r.url.path.rsplit("/", 1)[-1] for r in fake_ms.requests if not r.url.path.endswith("metadata")] == [
        "demand", "customerorder"]
    order.refresh_from_db()
    assert order.status == "shipped"


def test_variants_of_new_products_bring_their_products_in_one_read(client, fake_ms, db, published):
    for n in range(3):
        fake_ms.entities["product"][pid(n)] = {**product_row(pid(n), n), "variantsCount": 1}
        vid = f"10000000-0000-0000-0000-{n:012d}"
        fake_ms.entities["variant"][vid] = {
            "meta": {"href": f"{BASE}/entity/variant/{vid}", "type": "variant"}, "id": vid, "name": f"V {n}",
            "code": f"VAR-{n}", "updated": "2026-11-23 12:00:00.000", "archived": False,
            "salePrices": [{"value": 5000.0, "priceType": {"id": "pt"}}],
            "product": {"meta": {"href": f"{BASE}/entity/product/{pid(n)}", "type": "product"}},
            "characteristics": [{"name": "Цвет", "value": "синий"}]}
    deliver(client, notification(*[("variant", f"10000000-0000-0000-0000-{n:012d}", "UPDATE") for n in range(3)]))
    assert process_all() == {"imported": 3}
    assert [r.url.path.rsplit("/", 1)[-1] for r in entity_reads(fake_ms)] == ["variant", "product"]
    assert Offer.objects.filter(sku__startswith="VAR-").count() == 3


# -- the claim lease -----------------------------------------------------------------------------------
def _stored(client, fake_ms) -> int:
    fake_ms.entities["product"][pid(1)] = product_row(pid(1), 1)
    deliver(client, notification(("product", pid(1), "UPDATE")))
    return InboundEvent.objects.get().pk


def test_an_event_held_by_a_live_worker_is_not_processed_twice(client, fake_ms, published):
    event_id = _stored(client, fake_ms)
    other = Lease(InboundEvent)
    assert other.take([event_id], Q(status="received"), status="processing")
    assert events_process(event_ids=[event_id]) == {}
    assert not fake_ms.requests
    assert events_sweep()["freed"] == 0


def test_a_dead_workers_event_is_taken_up_once_its_short_lease_runs_out(client, fake_ms, published):
    event_id = _stored(client, fake_ms)
    dead = Lease(InboundEvent)
    dead.take([event_id], Q(status="received"), status="processing", attempts=F("attempts") + 1)  # then dies
    held = InboundEvent.objects.get()
    assert held.lease_until - timezone.now() <= timedelta(seconds=30)   # not 15 minutes
    InboundEvent.objects.update(lease_until=timezone.now() - timedelta(seconds=1))
    # A redelivered signal takes it over directly ...
    assert events_process(event_ids=[event_id]) == {"imported": 1}
    event = InboundEvent.objects.get()
    assert (event.status, event.lease_owner, event.lease_until, event.attempts) == ("done", "", None, 2)


def test_the_sweeper_frees_an_expired_lease_and_re_signals_it(client, fake_ms, published):
    event_id = _stored(client, fake_ms)
    Lease(InboundEvent).take([event_id], Q(status="received"), status="processing")
    InboundEvent.objects.update(lease_until=timezone.now() - timedelta(seconds=1),
                                received_at=timezone.now() - timedelta(minutes=2))
    assert events_sweep()["freed"] == 1
    assert published.args_of("integrations.moysklad.events_process")[-1] == ([event_id],)
    assert events_process(event_ids=[event_id]) == {"imported": 1}


def test_the_sweeper_looks_again_when_a_lease_runs_out_before_the_next_minute(client, fake_ms, monkeypatch):
    from syncsite import publish as publisher

    sent = []
    monkeypatch.setattr(publisher, "publish", lambda task, *args, **kwargs: sent.append((task.name, args, kwargs)))
    event_id = _stored(client, fake_ms)
    Lease(InboundEvent).take([event_id], Q(status="received"), status="processing")
    InboundEvent.objects.update(lease_until=timezone.now() + timedelta(seconds=20))
    assert events_sweep()["freed"] == 0
    ((name, args, kwargs),) = [s for s in sent if s[0] == "integrations.moysklad.events_sweep"]
    assert kwargs["follow_up"] is False and 19 <= kwargs["options"]["countdown"] <= 22
    sent.clear()
    events_sweep(follow_up=False)  # the extra sweep schedules no further one
    assert not [s for s in sent if s[0] == "integrations.moysklad.events_sweep"]


def test_an_interrupted_batch_goes_back_to_received(client, fake_ms, published, monkeypatch):
    from integrations.moysklad import events

    event_id = _stored(client, fake_ms)

    def interrupted(self, named, _events):
        raise KeyboardInterrupt  # a time limit or a shutdown, not an error of ours

    monkeypatch.setattr(events.Batch, "catalog", interrupted)
    with pytest.raises(KeyboardInterrupt):
        events_process(event_ids=[event_id])
    event = InboundEvent.objects.get()
    assert (event.status, event.lease_owner) == ("received", "")



def test_each_event_keeps_its_own_outcome_and_note_in_one_statement_per_status(client, fake_ms, db, published,
                                                                                django_assert_max_num_queries):
    from integrations.moysklad.events import Batch

    deliver(client, notification(*[("product", pid(n), "UPDATE") for n in range(4)]))
    events = list(InboundEvent.objects.order_by("pk"))
    lease = Lease(InboundEvent)
    lease.take([e.pk for e in events], status="processing")
    batch = Batch(lease, events)
    batch.fail(events[:1], "first error")
    batch.fail(events[1:2], "second error")
    batch.done(events[2:3], "imported")
    batch.ignore(events[3:], "not ours")
    with django_assert_max_num_queries(3):
        batch.flush()
    got = list(InboundEvent.objects.order_by("pk").values_list("status", "error", "lease_owner"))
    assert got == [("failed", "first error", ""), ("failed", "second error", ""), ("done", "", ""),
                   ("ignored", "not ours", "")]
    assert batch.counts == {"failed": 2, "imported": 1, "ignored": 1}


def test_the_price_type_is_read_once_for_many_batches(client, fake_ms, db, published):
    for n in range(4):
        fake_ms.entities["product"][pid(n)] = product_row(pid(n), n)
    for n in range(4):  # four notifications, each its own batch
        deliver(client, notification(("product", pid(n), "UPDATE")), request_id=f"r{n}")
        assert process_all() == {"imported": 1}
    assert [r.url.path for r in fake_ms.requests].count("/api/remap/1.2/context/companysettings/pricetype") == 1
    assert len(entity_reads(fake_ms)) == 4


@pytest.mark.parametrize("trouble", ["redis", "database"])
def test_our_own_redis_or_database_failing_mid_batch_leaves_the_events_for_a_retry(client, fake_ms, db, published,
                                                                                   monkeypatch, trouble):
    """Redis (the shared rate budgets) restarting or a killed database connection is not the
    events' fault: they go back to `received` (the retry, or the sweeper), never `failed` — a
    notification answered 200 must not be lost to our own infrastructure."""
    import psycopg.errors
    import redis.exceptions

    from integrations.moysklad import events

    errors = {"redis": redis.exceptions.ConnectionError("Error 111 connecting to 127.0.0.1:6379. Connection refused."),
              "database": psycopg.errors.AdminShutdown("terminating connection due to administrator command")}
    fake_ms.entities["product"][pid(1)] = product_row(pid(1), 1)
    deliver(client, notification(("product", pid(1), "UPDATE")))

    def broken(self, named, evs):
        raise errors[trouble]

    works = events.Batch.catalog
    monkeypatch.setattr(events.Batch, "catalog", broken)
    assert process_all() == {"retry": 1}
    event = InboundEvent.objects.get()
    assert (event.status, event.lease_owner) == ("received", ""), event.error
    monkeypatch.setattr(events.Batch, "catalog", works)
    assert process_all() == {"imported": 1}
