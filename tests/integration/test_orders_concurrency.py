"""Races on PostgreSQL: orders for the last units, one idempotency key sent twice at once, two
exporters on one order. Threads with their own connections, a barrier to line them up."""
import threading
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal

import pytest
from django.db import connections

from integrations.models import OrderBinding
from integrations.moysklad.client import MoySkladClient
from integrations.moysklad.orders import OrderExportSession
from orders import services
from orders.models import Order
from stock.models import StockHold, StockLevel
from tests.conftest import needs_postgres
from tests.orders_fixtures import _fast_backoff, ms_sandbox, published, shop  # noqa: F401

pytestmark = [pytest.mark.integration, needs_postgres, pytest.mark.django_db(transaction=True)]


def race(n: int, fn):
    """Run fn(i) in n threads released together; returns results (exceptions as values)."""
    barrier = threading.Barrier(n)

    def run(i):
        try:
            barrier.wait(timeout=10)
            return fn(i)
        except Exception as exc:  # the loser's answer is part of the result
            return exc
        finally:
            connections.close_all()

    with ThreadPoolExecutor(max_workers=n) as pool:
        return list(pool.map(run, range(n)))


def place(sku: str, qty: int, key: str):
    return services.order_create(customer=services.CustomerData(name="Гость", email="guest@example.com"),
                                 items=[services.LineRequest(sku=sku, quantity=qty)], idempotency_key=key)


def test_concurrent_orders_for_the_last_units_never_oversell(shop, published):
    results = race(12, lambda i: place("CASE-RED", 1, f"k{i}"))  # 3 in stock
    won = [r for r in results if isinstance(r, services.OrderCreated)]
    lost = [r for r in results if isinstance(r, services.InsufficientStock)]
    assert (len(won), len(lost)) == (3, 9), results
    assert all(r.available == 0 for r in lost)
    level = StockLevel.objects.get(offer=shop.case)
    assert level.available == 0
    assert sum(StockHold.objects.values_list("quantity", flat=True)) == Decimal(3)


def test_concurrent_orders_over_two_offers_do_not_deadlock(shop, published):
    def fn(i):
        items = [("PHONE-1", 1), ("CASE-RED", 1)] if i % 2 else [("CASE-RED", 1), ("PHONE-1", 1)]
        return services.order_create(customer=services.CustomerData(name="Гость", email=f"g{i}@example.com"),
                                     items=[services.LineRequest(sku=s, quantity=q) for s, q in items],
                                     idempotency_key=f"two-{i}")

    results = race(8, fn)
    won = [r for r in results if isinstance(r, services.OrderCreated)]
    assert len(won) == 3 and all(isinstance(r, (services.OrderCreated, services.InsufficientStock)) for r in results)
    assert StockLevel.objects.get(offer=shop.case).available == 0
    assert StockLevel.objects.get(offer=shop.phone).available == 2


def test_one_idempotency_key_sent_twice_at_once_makes_one_order(shop, published):
    results = race(6, lambda i: place("PHONE-1", 1, "same-key"))
    assert all(isinstance(r, services.OrderCreated) for r in results), results
    assert len({r.order.pk for r in results}) == 1
    assert sum(r.created for r in results) == 1
    assert Order.objects.count() == 1 and StockLevel.objects.get(offer=shop.phone).available == 4


def test_two_exporters_racing_make_one_customerorder(ms_sandbox, shop, published):
    order = place("PHONE-1", 1, "x").order

    def export(_i):
        with MoySkladClient() as client:
            return OrderExportSession(client).export(order.pk)

    outcomes = race(4, export)
    assert sorted(map(str, outcomes)).count("exported") == 1, outcomes
    assert len(ms_sandbox.moysklad.orders.orders) == 1
    assert OrderBinding.objects.get(order=order).external_id
