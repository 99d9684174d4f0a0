"""PostgreSQL session settings for bulk work: the planner's random-read cost on every connection,
and unsynchronised commits only inside a bulk load (other work keeps full durability)."""
from __future__ import annotations

import pytest
from django.db import connection

from catalog.models import Product
from syncsite.bulk import allocate_ids, bulk_session, tune_planner

pytestmark = [pytest.mark.django_db,
              pytest.mark.skipif(connection.vendor != "postgresql",
                                 reason="PostgreSQL session settings (SQLite has no planner costs or WAL commits)")]


def show(name: str) -> str:
    with connection.cursor() as cursor:
        cursor.execute(f"SHOW {name}")
        return cursor.fetchone()[0]


def test_new_connections_get_the_configured_random_page_cost(settings):
    """The handler runs on connection_created (integrations.apps); the test's own connection got it."""
    assert float(show("random_page_cost")) == pytest.approx(settings.DB_RANDOM_PAGE_COST)
    settings.DB_RANDOM_PAGE_COST = 1.7
    tune_planner(sender=None, connection=connection)
    assert float(show("random_page_cost")) == pytest.approx(1.7)


def test_zero_leaves_the_sessions_setting_alone(settings):
    with connection.cursor() as cursor:
        cursor.execute("SET random_page_cost = 3.5")
    settings.DB_RANDOM_PAGE_COST = 0
    tune_planner(sender=None, connection=connection)
    assert float(show("random_page_cost")) == pytest.approx(3.5)


def test_bulk_session_turns_synchronous_commit_off_only_inside():
    assert show("synchronous_commit") == "on"
    with bulk_session():
        assert show("synchronous_commit") == "off"
    assert show("synchronous_commit") == "on"


def test_bulk_session_restores_durability_when_the_load_fails():
    with pytest.raises(RuntimeError), bulk_session():
        raise RuntimeError("page failed")
    assert show("synchronous_commit") == "on"


def test_allocated_ids_are_distinct_and_ahead_of_the_sequence():
    ids = allocate_ids(Product, 500)
    assert len(set(ids)) == 500
    assert allocate_ids(Product, 1)[0] > max(ids)
