"""The one stock write path: real changes only, holds kept through syncs, complete reads that
zero only their own source, back-in-stock from the total, the hook once after commit, and the
one-warehouse allocation of an order."""
from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from stock import services
from stock.models import StockChange, StockHold, StockLevel
from stock.services import HoldRequest, StockShortError, stock_allocate, stock_levels_set
from tests.factories import make_offer, make_stock, make_warehouse, set_updated_at

pytestmark = pytest.mark.django_db
D = Decimal


@pytest.fixture
def hooked(monkeypatch):
    """Calls of the integrations side of the stock-changed hook."""
    calls: list[dict] = []
    monkeypatch.setattr("integrations.jobs.stock_changed", lambda **kw: calls.append(kw))
    return calls


def figures(offer, warehouse):
    lv = StockLevel.objects.get(offer=offer, warehouse=warehouse)
    return lv.stock, lv.reserve, lv.available


def put(warehouse, *rows, source="moysklad", **kw):
    return stock_levels_set(warehouse_id=warehouse.pk, figures={o.pk: (D(s), D(r)) for o, s, r in rows},
                            source=source, **kw)


def hold(offer, warehouse, qty, ref="orderline:1"):
    return services.stock_holds_place(holds=[HoldRequest(offer.pk, warehouse.pk, D(qty), ref)], source="site")


def test_only_real_changes_are_written_and_logged(hooked):
    w = make_warehouse()
    a, b = make_offer(), make_offer()
    first = put(w, (a, 10, 4), (b, 0, 0))
    assert sorted(first.changed) == [a.pk] and first.created == 2  # b's level exists now but changed nothing
    assert figures(a, w) == (10, 4, 6)
    (change,) = StockChange.objects.all()
    assert (change.offer_id, change.source, change.via) == (a.pk, "moysklad", "sync")
    assert (change.previous_stock, change.new_stock, change.previous_available, change.new_available) == (0, 10, 0, 6)
    long_ago = timezone.now() - timedelta(days=2)
    for level in StockLevel.objects.all():
        set_updated_at(level, long_ago)
    again = put(w, (a, 10, 4), (b, 0, 0), via="full")
    assert (again.changed, again.unchanged, again.created) == ([], 2, 0)
    assert StockChange.objects.count() == 1
    assert all(lv.updated_at == long_ago and lv.checked_at > long_ago for lv in StockLevel.objects.all())
    moved = put(w, (a, 10, 5))
    assert moved.changed == [a.pk] and figures(a, w) == (10, 5, 5)
    assert StockChange.objects.count() == 2
    assert StockLevel.objects.get(offer=a).updated_at > long_ago


def test_holds_survive_a_sync_that_raises_stock(hooked):
    w = make_warehouse()
    offer = make_offer()
    put(w, (offer, 10, 5))
    hold(offer, w, 1)
    assert figures(offer, w) == (10, 5, 4)
    put(w, (offer, 11, 5))
    assert figures(offer, w) == (11, 5, 5)  # 11 − 5 − 1 held, not 6
    put(w, (offer, 5, 5))
    assert figures(offer, w) == (5, 5, 0)  # never below zero


def test_complete_read_zeroes_only_its_own_sources_omitted_levels(hooked):
    w, other = make_warehouse(), make_warehouse()
    listed, gone, suppliers, elsewhere = make_offer(), make_offer(), make_offer(), make_offer()
    put(w, (listed, 3, 0), (gone, 4, 1))
    put(w, (suppliers, 7, 0), source="supplier:acme")
    put(other, (elsewhere, 2, 0))
    result = put(w, (listed, 3, 0), complete=True, via="full")
    assert result.changed == [gone.pk]
    assert figures(gone, w) == (0, 0, 0)
    assert figures(suppliers, w) == (7, 0, 7)
    assert figures(elsewhere, other) == (2, 0, 2)
    assert StockChange.objects.filter(offer=gone, via="full").get().previous_available == 3


def test_restocked_is_decided_on_the_total_over_every_warehouse(hooked):
    w1, w2 = make_warehouse(), make_warehouse()
    held_elsewhere, nowhere, still_none = make_offer(), make_offer(), make_offer()
    put(w1, (held_elsewhere, 0, 0), (nowhere, 0, 0), (still_none, 0, 0))
    put(w2, (held_elsewhere, 5, 0))
    result = put(w1, (held_elsewhere, 3, 0), (nowhere, 2, 0), (still_none, 1, 1))
    assert sorted(result.changed) == sorted([held_elsewhere.pk, nowhere.pk, still_none.pk])
    assert result.restocked == [nowhere.pk]


def test_hook_fires_once_after_commit_with_the_changed_ids(hooked, django_capture_on_commit_callbacks):
    w = make_warehouse()
    a, b, c = make_offer(), make_offer(), make_offer()
    put(w, (c, 1, 0))
    hooked.clear()
    with django_capture_on_commit_callbacks() as callbacks:
        result = put(w, (a, 2, 0), (b, 0, 0), (c, 1, 0))
        assert hooked == []  # nothing leaves before the commit
    assert len(callbacks) == 1
    callbacks[0]()
    assert hooked == [{"offer_ids": [a.pk], "restocked": [a.pk]}]
    assert result.changed == [a.pk]


def test_nothing_changed_means_no_hook(hooked, django_capture_on_commit_callbacks):
    w = make_warehouse()
    offer = make_offer()
    put(w, (offer, 1, 0))
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        put(w, (offer, 1, 0))
    assert callbacks == []


def test_hook_reaches_the_marketplace_kick(monkeypatch, django_capture_on_commit_callbacks):
    kicked = []
    monkeypatch.setattr("integrations.marketplaces.kick", lambda ids, **kw: kicked.append(sorted(ids)))
    w = make_warehouse()
    offer = make_offer()
    with django_capture_on_commit_callbacks(execute=True):
        put(w, (offer, 4, 0))
    assert kicked == [[offer.pk]]


def test_a_handed_over_hold_ends_only_with_a_later_read_of_its_upstream(hooked):
    w = make_warehouse(source="moysklad")
    offer = make_offer()
    put(w, (offer, 10, 0))
    hold(offer, w, 2, ref="orderline:7")
    handed = timezone.now()
    assert services.stock_holds_hand_over(refs=["orderline:7"], to="moysklad", at=handed) == 1
    put(w, (offer, 10, 0), checked_at=handed - timedelta(seconds=1))   # started before the hand-over
    assert figures(offer, w) == (10, 0, 8)
    put(w, (offer, 10, 0), source="supplier:acme", checked_at=handed + timedelta(seconds=1))  # not its upstream
    assert StockHold.objects.get().released_at is None
    put(w, (offer, 10, 2), checked_at=handed + timedelta(seconds=1))
    assert figures(offer, w) == (10, 2, 8)  # MoySklad's reserve counts the units now, once
    assert StockHold.objects.get().release_reason == "synced"


def test_within_the_recalculation_delay_a_read_releases_only_a_reserve_that_shows_the_units(hooked):
    w = make_warehouse(source="moysklad")
    offer = make_offer()
    put(w, (offer, 10, 1))
    hold(offer, w, 2, ref="orderline:8")
    handed = timezone.now()
    services.stock_holds_hand_over(refs=["orderline:8"], to="moysklad", at=handed,
                                   counted_from=handed + timedelta(seconds=30))
    put(w, (offer, 10, 1), checked_at=handed + timedelta(seconds=1))  # not recalculated yet
    assert figures(offer, w) == (10, 1, 7) and StockHold.objects.get().released_at is None
    put(w, (offer, 10, 3), checked_at=handed + timedelta(seconds=2))  # the reserve rose by our 2
    assert figures(offer, w) == (10, 3, 7) and StockHold.objects.get().release_reason == "synced"


def test_hand_over_concerns_only_warehouses_of_that_upstream(hooked):
    supplier = make_warehouse(source="supplier:acme")
    offer = make_offer()
    put(supplier, (offer, 5, 0), source="supplier:acme")
    hold(offer, supplier, 1, ref="orderline:9")
    assert services.stock_holds_hand_over(refs=["orderline:9"], to="moysklad") == 0
    services.stock_holds_release(refs=["orderline:9"], reason="shipped")
    assert StockHold.objects.get().release_reason == "shipped"
    assert figures(offer, supplier) == (5, 0, 5)


def test_release_brings_units_back_and_can_restock(hooked, django_capture_on_commit_callbacks):
    w = make_warehouse()
    offer = make_offer()
    put(w, (offer, 2, 0))
    hold(offer, w, 2, ref="orderline:3")
    assert figures(offer, w) == (2, 0, 0)
    hooked.clear()
    with django_capture_on_commit_callbacks(execute=True):
        result = services.stock_holds_release(refs=["orderline:3"], reason="cancelled", source="site", via="cancel")
    assert result.changed == [offer.pk] and result.restocked == [offer.pk]
    assert hooked == [{"offer_ids": [offer.pk], "restocked": [offer.pk]}]
    assert services.stock_holds_release(refs=["orderline:3"], reason="cancelled").changed == []  # once


def test_warehouse_ensure_gets_or_creates_by_code():
    first = services.warehouse_ensure(code="supplier:acme", name="ACME", source="supplier:acme")
    again = services.warehouse_ensure(code="supplier:acme", name="ACME Ltd", source="supplier:acme")
    assert first.pk == again.pk and again.name == "ACME Ltd" and again.source == "supplier:acme"
    with pytest.raises(ValueError):
        services.warehouse_ensure(code=" ", name="x", source="1c")


# -- one order, one warehouse -------------------------------------------------------------------
@pytest.fixture
def stores():
    ship, big, small = make_warehouse(code="ship"), make_warehouse(code="big"), make_warehouse(code="small")
    a, b = make_offer(), make_offer()
    for w, qa, qb in ((ship, 1, 5), (big, 4, 4), (small, 3, 1)):
        make_stock(offer=a, warehouse=w, stock=qa)
        make_stock(offer=b, warehouse=w, stock=qb)
    return ship, big, small, a, b


def test_the_shipping_store_is_chosen_when_it_holds_the_whole_order(stores):
    ship, big, small, a, b = stores
    ids = [ship.pk, big.pk, small.pk]
    assert stock_allocate(lines=[(a.pk, D(1)), (b.pk, D(2))], warehouse_ids=ids, preferred=[ship.pk]) == ship.pk


def test_else_the_store_with_the_most_that_holds_every_line(stores):
    ship, big, small, a, b = stores
    ids = [ship.pk, big.pk, small.pk]
    assert stock_allocate(lines=[(a.pk, D(3)), (b.pk, D(1))], warehouse_ids=ids, preferred=[ship.pk]) == big.pk


def test_no_single_store_is_short_with_the_best_stores_figures(stores):
    ship, big, small, a, b = stores
    ids = [ship.pk, big.pk, small.pk]
    with pytest.raises(StockShortError) as caught:
        stock_allocate(lines=[(b.pk, D(1)), (a.pk, D(6))], warehouse_ids=ids, preferred=[ship.pk])
    err = caught.value
    assert (err.line, err.available, err.requested, err.warehouse_id) == (1, 4, 6, big.pk)
    assert err.single_store  # 8 of `a` in all: only splitting would serve it
    with pytest.raises(StockShortError) as caught:
        stock_allocate(lines=[(a.pk, D(9))], warehouse_ids=ids)
    assert not caught.value.single_store


def test_an_order_already_sold_gets_the_store_holding_most_of_it(stores):
    ship, big, small, a, b = stores
    assert stock_allocate(lines=[(a.pk, D(6))], warehouse_ids=[ship.pk, big.pk, small.pk], enforce=False) == big.pk
    assert stock_allocate(lines=[(a.pk, D(6))], warehouse_ids=[], enforce=False) is None


def test_a_write_of_several_batches_lands_whole(hooked):
    """Thousands of levels in one write (one COPY on PostgreSQL, chunked statements on SQLite)."""
    from catalog.models import Offer, Product

    n = 4_007
    product = Product.objects.create(name="bulk")
    Offer.objects.bulk_create([Offer(product=product, sku=f"B-{i}", name="b") for i in range(n)])
    offers = list(Offer.objects.filter(product=product).values_list("pk", flat=True))
    w = make_warehouse()
    first = stock_levels_set(warehouse_id=w.pk, figures={o: (D(i % 5), D(0)) for i, o in enumerate(offers)},
                             source="moysklad", complete=True)
    nonzero = sum(1 for i in range(n) if i % 5)
    assert (first.created, len(first.changed)) == (n, nonzero)
    assert StockLevel.objects.filter(warehouse=w).count() == n
    assert StockChange.objects.filter(warehouse=w).count() == nonzero
    again = stock_levels_set(warehouse_id=w.pk, figures={o: (D(i % 5 + 1), D(0)) for i, o in enumerate(offers)},
                             source="moysklad", complete=True)
    assert len(again.changed) == n and again.unchanged == 0
    assert sum(StockLevel.objects.filter(warehouse=w).values_list("available", flat=True)) == \
        sum(i % 5 + 1 for i in range(n))


def test_levels_another_writer_created_meanwhile_are_overwritten_not_duplicated(hooked):
    """The straight insert of "new" levels meets one a concurrent writer created after our read:
    the insert rolls back whole and the upsert writes every level once."""
    from catalog.models import Offer, Product

    product = Product.objects.create(name="race")
    Offer.objects.bulk_create([Offer(product=product, sku=f"R-{i}", name="r") for i in range(1_200)])
    offers = list(Offer.objects.filter(product=product).values_list("pk", flat=True))
    w = make_warehouse()
    StockLevel.objects.create(offer_id=offers[7], warehouse=w, stock=1, reserve=0, available=1, source="moysklad")
    now = timezone.now()
    logged = services._write_levels(w.pk, {o: (D(3), D(0), D(3)) for o in offers}, source="moysklad", via="sync",
                                    checked_at=now, now=now, new=set(offers))
    assert StockLevel.objects.filter(warehouse=w).count() == 1_200
    assert set(StockLevel.objects.filter(warehouse=w).values_list("available", flat=True)) == {D(3)}
    assert logged == frozenset() and not StockChange.objects.exists()   # the caller logs them, as usual


def test_a_first_full_read_logs_each_new_non_zero_level_once(hooked):
    """Many new levels go in with their change log in one statement: every non-zero one logged
    once, from 0, with its source and via; zero ones not at all; the hook hears of the changed."""
    from catalog.models import Offer, Product

    product = Product.objects.create(name="first read")
    Offer.objects.bulk_create([Offer(product=product, sku=f"F-{i}", name="f") for i in range(1_500)])
    offers = sorted(Offer.objects.filter(product=product).values_list("pk", flat=True))
    w = make_warehouse()
    figures = {o: (D(i % 4), D(1 if i % 8 == 1 else 0)) for i, o in enumerate(offers)}
    result = services.stock_levels_set(warehouse_id=w.pk, figures=figures, source="moysklad", via="full",
                                       complete=True)
    nonzero = {o for o, (stock, reserve) in figures.items() if stock or reserve}
    assert StockLevel.objects.filter(warehouse=w).count() == 1_500
    log = list(StockChange.objects.filter(warehouse=w).values_list(
        "offer_id", "source", "via", "previous_stock", "new_stock", "new_reserve", "previous_available", "new_available"))
    assert len(log) == len(nonzero) and {row[0] for row in log} == nonzero
    for offer_id, source, via, prev_stock, new_stock, new_reserve, prev_available, new_available in log:
        stock, reserve = figures[offer_id]
        assert (source, via, prev_stock, prev_available) == ("moysklad", "full", 0, 0)
        assert (new_stock, new_reserve, new_available) == (stock, reserve, max(stock - reserve, 0))
    assert sorted(result.changed) == sorted(nonzero)
