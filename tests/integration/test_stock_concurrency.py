"""The stock write path under concurrency on PostgreSQL: a hold placed while a stock sync runs is
never overwritten by the sync, and an order placed while a sync writes waits for it and sees its
figures. Threads with their own connections, events to order the steps."""
import threading
from decimal import Decimal

import pytest
from django.db import connection, connections, transaction

from stock.models import StockChange, StockLevel
from stock.services import HoldRequest, stock_allocate, stock_holds_place, stock_levels_set
from tests.conftest import needs_postgres
from tests.factories import make_offer, make_warehouse
from tests.waiting import wait_until

pytestmark = [pytest.mark.integration, needs_postgres, pytest.mark.django_db(transaction=True)]


def waiting_for_a_lock() -> bool:
    """A session of this test database waits for a lock another one holds (PostgreSQL's view)."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid "
                       "WHERE NOT l.granted AND a.datname = current_database()")
        return cursor.fetchone()[0] > 0


def in_thread(fn):
    box: dict = {}

    def run():
        try:
            box["result"] = fn()
        except Exception as exc:  # reported by the test
            box["error"] = exc
        finally:
            connections.close_all()

    thread = threading.Thread(target=run)
    thread.start()
    return thread, box


@pytest.fixture
def level():
    warehouse, offer = make_warehouse(), make_offer()
    stock_levels_set(warehouse_id=warehouse.pk, figures={offer.pk: (Decimal(10), Decimal(0))}, source="moysklad")
    return warehouse, offer


def test_a_hold_committed_while_a_sync_runs_survives_the_sync(level):
    warehouse, offer = level
    held, commit = threading.Event(), threading.Event()

    def order():
        with transaction.atomic():
            stock_allocate(lines=[(offer.pk, Decimal(1))], warehouse_ids=[warehouse.pk])
            stock_holds_place(holds=[HoldRequest(offer.pk, warehouse.pk, Decimal(1), "orderline:1")], source="site")
            held.set()
            assert commit.wait(10)

    order_thread, order_box = in_thread(order)
    assert held.wait(10)
    sync_thread, sync_box = in_thread(lambda: stock_levels_set(
        warehouse_id=warehouse.pk, figures={offer.pk: (Decimal(11), Decimal(0))}, source="moysklad"))
    wait_until(waiting_for_a_lock, timeout=10, what="the sync to wait for the order's lock on the level")
    assert sync_thread.is_alive(), "the sync must wait for the order's lock on the level"
    commit.set()
    order_thread.join(10)
    sync_thread.join(10)
    assert "error" not in order_box and "error" not in sync_box, (order_box, sync_box)
    lv = StockLevel.objects.get(offer=offer, warehouse=warehouse)
    assert (lv.stock, lv.available) == (11, 10)  # 11 − 1 held, not 11
    last = StockChange.objects.filter(via="sync").order_by("-id").first()
    assert (last.previous_available, last.new_available) == (9, 10)


def test_an_order_placed_while_a_sync_writes_sees_the_synced_figure(level):
    warehouse, offer = level
    written, commit = threading.Event(), threading.Event()

    def sync():
        with transaction.atomic():
            stock_levels_set(warehouse_id=warehouse.pk, figures={offer.pk: (Decimal(1), Decimal(0))},
                             source="moysklad")
            written.set()
            assert commit.wait(10)

    def order():
        with transaction.atomic():
            return stock_allocate(lines=[(offer.pk, Decimal(2))], warehouse_ids=[warehouse.pk])

    sync_thread, sync_box = in_thread(sync)
    assert written.wait(10)
    order_thread, order_box = in_thread(order)
    wait_until(waiting_for_a_lock, timeout=10, what="the order to wait for the sync's lock on the level")
    assert order_thread.is_alive(), "the order must wait for the sync's lock on the level"
    commit.set()
    sync_thread.join(10)
    order_thread.join(10)
    assert "error" not in sync_box, sync_box
    assert order_box["error"].available == 1  # refused from the synced figure, not the old 10
