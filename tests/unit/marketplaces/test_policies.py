"""The publish rule as pure value objects: no database."""
from decimal import Decimal

import pytest

from stock.policies import AbsurdQuantityError, BufferPolicy, PublishPolicy
from stock.services import stock_quantity_to_publish


def test_quantity_is_available_rounded_down():
    assert PublishPolicy().quantity(Decimal("7.9")) == 7


def test_quantity_never_negative():
    assert PublishPolicy().quantity(Decimal("-3")) == 0
    assert PublishPolicy(buffer=BufferPolicy(absolute=5)).quantity(Decimal(2)) == 0


def test_absolute_and_percent_buffer_both_held_back():
    policy = PublishPolicy(buffer=BufferPolicy(absolute=2, percent=Decimal(10)))
    assert policy.quantity(Decimal("17.5")) == 13  # 17.5 - 2 - 1.75 = 13.75


def test_percent_buffer_rounds_in_our_favour():
    assert PublishPolicy(buffer=BufferPolicy(percent=Decimal(15))).quantity(Decimal(10)) == 8  # 8.5


def test_cap_and_api_ceiling_limit_the_figure():
    assert PublishPolicy(cap=5).quantity(Decimal(50)) == 5
    assert PublishPolicy(ceiling=100_000).quantity(Decimal(100_001)) == 100_000
    assert PublishPolicy(cap=10, ceiling=5).quantity(Decimal(50)) == 5


def test_switched_off_offer_shows_zero():
    assert PublishPolicy().quantity(Decimal(50), enabled=False) == 0


def test_absurd_quantity_is_refused():
    with pytest.raises(AbsurdQuantityError):
        PublishPolicy(sanity_max=100_000).quantity(Decimal("1e12"))


def test_offer_override_replaces_only_the_fields_it_sets():
    base = BufferPolicy(absolute=3, percent=Decimal(20))
    assert base.overridden(absolute=0) == BufferPolicy(absolute=0, percent=Decimal(20))
    assert base.overridden(percent=Decimal(0)) == BufferPolicy(absolute=3, percent=Decimal(0))
    assert base.overridden() is base


def test_buffer_rejects_impossible_settings():
    with pytest.raises(ValueError):
        BufferPolicy(absolute=-1)
    with pytest.raises(ValueError):
        BufferPolicy(percent=Decimal(101))


def test_quantity_sums_the_warehouses_a_marketplace_warehouse_draws_from():
    result = stock_quantity_to_publish(available_by_warehouse={1: Decimal(3), 2: Decimal("4.5"), 3: Decimal(100)},
                                       groups={"777": frozenset({1, 2})}, policy=PublishPolicy())
    assert result == {"777": 7}


def test_open_order_reservations_come_off_the_largest_pile_first():
    result = stock_quantity_to_publish(available_by_warehouse={1: Decimal(3), 2: Decimal(10)},
                                       groups={"a": frozenset({1}), "b": frozenset({2})}, policy=PublishPolicy(),
                                       reserved=Decimal(12))
    assert result == {"a": 1, "b": 0}


def test_buffer_applies_per_marketplace_warehouse():
    result = stock_quantity_to_publish(available_by_warehouse={1: Decimal(10), 2: Decimal(10)},
                                       groups={"a": frozenset({1}), "b": frozenset({2})},
                                       policy=PublishPolicy(buffer=BufferPolicy(absolute=3)))
    assert result == {"a": 7, "b": 7}


def test_offer_without_stock_rows_publishes_zero_everywhere():
    assert stock_quantity_to_publish(available_by_warehouse={}, groups={"a": frozenset({1})},
                                     policy=PublishPolicy()) == {"a": 0}
