"""Processing webhook events: coalesced per document, read in bulk, capped per notification, and
claimed on a short lease that a dead worker loses.

Against the sandbox's MoySklad in-process (`ms_respx`): the products the events point at are added
to its catalog, and its request log says what a batch cost."""
from datetime import timedelta

import pytest
from django.db.models import F, Q
from django.utils import timezone

from catalog.models import Offer
from integrations.models import InboundEvent, OrderBinding
from integrations.moysklad.events import events_process, events_sweep
from syncsite.leases import Lease
from tests.orders_fixtures import deliver, notification, process_all

pytestmark = pytest.mark.django_db


def add_products(sb, count: int) -> list[str]:
    """`count` new products in the sandbox's catalog (articles ART-0, ART-1, ...); their ids."""
    return [sb.moysklad.add_product(name=f"Товар {n}", article=f"ART-{n}", code=f"c{n}", salePrice=10_000 + n)
            for n in range(count)]


def pid(n: int) -> str:
    """An id MoySklad never gave us (orders not from the site)."""
    return f"00000000-0000-0000-0000-{n:012d}"


def note(sb, *events):
    return notification(*events, base=sb.moysklad_base_url)


def entity_reads(sb) -> list:
    """The entity reads a batch cost. Besides them, a batch that imports goods reads the account's
    sale price type once (cached for ten minutes across batches), which these tests do not count."""
    logged = sb.moysklad.logged()
    reads = [r for r in logged if r.path.startswith("entity/")]
    others = [r.path for r in logged if r not in reads]
    assert others in ([], ["context/companysettings/pricetype"]), others
    return reads

def test_a_thousand_events_cost_ten_requests_not_a_thousand(client, ms_respx, db, published):
    ids = add_products(ms_respx, 1000)
    deliver(client, note(ms_respx, *[("product", ids[n], "UPDATE") for n in range(1000)]))
    assert process_all() == {"imported": 1000}
    reads = entity_reads(ms_respx)
    assert len(reads) == 10  # a hundred ids a request; before: one GET per event
    assert all(len(r.params["filter"].split(";")) == 102 for r in reads)  # 100 ids + archived
    assert Offer.objects.filter(sku__startswith="ART-").count() == 1000
    assert set(InboundEvent.objects.values_list("status", flat=True)) == {"done"}


def test_events_about_the_same_products_share_one_read(client, ms_respx, db, published):
    ids = add_products(ms_respx, 50)
    deliver(client, note(ms_respx, *[("product", ids[n % 50], "UPDATE") for n in range(1000)]))
    assert process_all() == {"imported": 1000}
    assert len(entity_reads(ms_respx)) == 1


def test_the_cap_bounds_what_one_notification_costs_and_says_who_covers_the_rest(client, ms_respx, db, published,
                                                                                 settings):
    settings.MOYSKLAD_EVENT_REQUESTS_MAX = 2
    ids = add_products(ms_respx, 300)
    deliver(client, note(ms_respx, *[("product", ids[n], "UPDATE") for n in range(300)]))
    assert process_all() == {"imported": 200, "ignored": 100}
    assert len(entity_reads(ms_respx)) == 2
    left = InboundEvent.objects.filter(status="ignored")
    assert left.count() == 100 and "over the cap of 2" in left.first().error and "moysklad-catalog" in left.first().error


def test_the_cap_is_per_notification(client, ms_respx, db, published, settings):
    """The sweeper may hand one worker the events of several notifications: each brings its own cap."""
    settings.MOYSKLAD_EVENT_REQUESTS_MAX = 1
    ids = add_products(ms_respx, 200)
    deliver(client, note(ms_respx, *[("product", ids[n], "UPDATE") for n in range(100)]), request_id="r1")
    deliver(client, note(ms_respx, *[("product", ids[n], "UPDATE") for n in range(100, 200)]), request_id="r2")
    assert process_all() == {"imported": 200}
    assert len(entity_reads(ms_respx)) == 2


def test_order_events_that_are_not_ours_cost_no_request(client, ms_respx, db, published):
    deliver(client, note(ms_respx, *[("customerorder", pid(n), "UPDATE") for n in range(500)]))
    assert process_all() == {"ignored": 500}
    assert not ms_respx.moysklad.logged()
    assert InboundEvent.objects.filter(error="not an order from the site").count() == 500


def test_shipments_lead_to_their_order_read_once_with_the_orders_named_directly(client, ms_respx, shop, published):
    from tests.unit.orders.test_export import export, make_order

    order = make_order(shop)
    assert export(order.pk) == "exported"
    remote_id = OrderBinding.objects.get(order=order).external_id
    book = ms_respx.moysklad.orders
    book.set_state(remote_id, "Подтвержден")
    first, second = book.ship(remote_id, {shop.phone_ms_id: 1}), book.ship(remote_id)
    ms_respx.moysklad.request_log.clear()
    deliver(client, note(ms_respx, ("demand", first["id"], "CREATE"), ("demand", second["id"], "UPDATE"),
                         ("customerorder", remote_id, "UPDATE")))
    counts = process_all()
    assert sum(counts.values()) == 3 and "failed" not in counts and "ignored" not in counts, counts
    # One read of both shipments, one of their order (the account's states are read once as well).
    assert [r.path.rsplit("/", 1)[-1] for r in ms_respx.moysklad.logged() if not r.path.endswith("metadata")] == [
        "demand", "customerorder"]
    order.refresh_from_db()
    assert order.status == "shipped"


def test_variants_of_new_products_bring_their_products_in_one_read(client, ms_respx, db, published):
    variant_ids = [ms_respx.moysklad.add_variant(product_id, name=f"V {n}", code=f"VAR-{n}", salePrice=5000)
                   for n, product_id in enumerate(add_products(ms_respx, 3))]
    deliver(client, note(ms_respx, *[("variant", vid, "UPDATE") for vid in variant_ids]))
    assert process_all() == {"imported": 3}
    assert [r.path.rsplit("/", 1)[-1] for r in entity_reads(ms_respx)] == ["variant", "product"]
    assert Offer.objects.filter(sku__startswith="VAR-").count() == 3


# -- the claim lease -----------------------------------------------------------------------------------
def _stored(client, sb) -> int:
    (product_id,) = add_products(sb, 1)
    deliver(client, note(sb, ("product", product_id, "UPDATE")))
    return InboundEvent.objects.get().pk


def test_an_event_held_by_a_live_worker_is_not_processed_twice(client, ms_respx, published):
    event_id = _stored(client, ms_respx)
    other = Lease(InboundEvent)
    assert other.take([event_id], Q(status="received"), status="processing")
    assert events_process(event_ids=[event_id]) == {}
    assert not ms_respx.moysklad.logged()
    assert events_sweep()["freed"] == 0


def test_a_dead_workers_event_is_taken_up_once_its_short_lease_runs_out(client, ms_respx, published):
    event_id = _stored(client, ms_respx)
    dead = Lease(InboundEvent)
    dead.take([event_id], Q(status="received"), status="processing", attempts=F("attempts") + 1)  # then dies
    held = InboundEvent.objects.get()
    assert held.lease_until - timezone.now() <= timedelta(seconds=30)   # not 15 minutes
    InboundEvent.objects.update(lease_until=timezone.now() - timedelta(seconds=1))
    # A redelivered signal takes it over directly ...
    assert events_process(event_ids=[event_id]) == {"imported": 1}
    event = InboundEvent.objects.get()
    assert (event.status, event.lease_owner, event.lease_until, event.attempts) == ("done", "", None, 2)


def test_the_sweeper_frees_an_expired_lease_and_re_signals_it(client, ms_respx, published):
    event_id = _stored(client, ms_respx)
    Lease(InboundEvent).take([event_id], Q(status="received"), status="processing")
    InboundEvent.objects.update(lease_until=timezone.now() - timedelta(seconds=1),
                                received_at=timezone.now() - timedelta(minutes=2))
    assert events_sweep()["freed"] == 1
    assert published.args_of("integrations.moysklad.events_process")[-1] == ([event_id],)
    assert events_process(event_ids=[event_id]) == {"imported": 1}


def test_the_sweeper_looks_again_when_a_lease_runs_out_before_the_next_minute(client, ms_respx, monkeypatch):
    from syncsite import publish as publisher

    sent = []
    monkeypatch.setattr(publisher, "publish", lambda task, *args, **kwargs: sent.append((task.name, args, kwargs)))
    event_id = _stored(client, ms_respx)
    Lease(InboundEvent).take([event_id], Q(status="received"), status="processing")
    InboundEvent.objects.update(lease_until=timezone.now() + timedelta(seconds=20))
    assert events_sweep()["freed"] == 0
    ((name, args, kwargs),) = [s for s in sent if s[0] == "integrations.moysklad.events_sweep"]
    assert kwargs["follow_up"] is False and 19 <= kwargs["options"]["countdown"] <= 22
    sent.clear()
    events_sweep(follow_up=False)  # the extra sweep schedules no further one
    assert not [s for s in sent if s[0] == "integrations.moysklad.events_sweep"]


def test_an_interrupted_batch_goes_back_to_received(client, ms_respx, published, monkeypatch):
    from integrations.moysklad import events

    event_id = _stored(client, ms_respx)

    def interrupted(self, named, _events):
        raise KeyboardInterrupt  # a time limit or a shutdown, not an error of ours

    monkeypatch.setattr(events.Batch, "catalog", interrupted)
    with pytest.raises(KeyboardInterrupt):
        events_process(event_ids=[event_id])
    event = InboundEvent.objects.get()
    assert (event.status, event.lease_owner) == ("received", "")



def test_each_event_keeps_its_own_outcome_and_note_in_one_statement_per_status(client, ms_respx, db, published,
                                                                                django_assert_max_num_queries):
    from integrations.moysklad.events import Batch

    deliver(client, note(ms_respx, *[("product", pid(n), "UPDATE") for n in range(4)]))
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


def test_the_price_type_is_read_once_for_many_batches(client, ms_respx, db, published):
    ids = add_products(ms_respx, 4)
    for n in range(4):  # four notifications, each its own batch
        deliver(client, note(ms_respx, ("product", ids[n], "UPDATE")), request_id=f"r{n}")
        assert process_all() == {"imported": 1}
    assert len(ms_respx.moysklad.logged("context/companysettings/pricetype")) == 1
    assert len(entity_reads(ms_respx)) == 4


@pytest.mark.parametrize("trouble", ["redis", "database"])
def test_our_own_redis_or_database_failing_mid_batch_leaves_the_events_for_a_retry(client, ms_respx, db, published,
                                                                                   monkeypatch, trouble):
    """Redis (the shared rate budgets) restarting or a killed database connection is not the
    events' fault: they go back to `received` (the retry, or the sweeper), never `failed` — a
    notification answered 200 must not be lost to our own infrastructure."""
    import psycopg.errors
    import redis.exceptions

    from integrations.moysklad import events

    errors = {"redis": redis.exceptions.ConnectionError("Error 111 connecting to 127.0.0.1:6379. Connection refused."),
              "database": psycopg.errors.AdminShutdown("terminating connection due to administrator command")}
    (product_id,) = add_products(ms_respx, 1)
    deliver(client, note(ms_respx, ("product", product_id, "UPDATE")))

    def broken(self, named, evs):
        raise errors[trouble]

    works = events.Batch.catalog
    monkeypatch.setattr(events.Batch, "catalog", broken)
    assert process_all() == {"retry": 1}
    event = InboundEvent.objects.get()
    assert (event.status, event.lease_owner) == ("received", ""), event.error
    monkeypatch.setattr(events.Batch, "catalog", works)
    assert process_all() == {"imported": 1}
