"""`orders-export` when another worker holds some orders: it waits for them (a few seconds at
most) and says how many were exported here, by another worker, and how many are still in flight."""
import io

import pytest
from django.core.management import call_command

from integrations import jobs
from integrations.models import OrderBinding
from integrations.moysklad import orders as ms_orders
from integrations.runs import run_job
from orders import services
from orders.models import ExportState, Order

pytestmark = pytest.mark.django_db


def place(key: str) -> Order:
    return services.order_create(customer=services.CustomerData(name="Иван", email="ivan@example.com"),
                                 items=[services.LineRequest(sku="PHONE-1", quantity=1)], idempotency_key=key).order


@pytest.fixture
def clock(monkeypatch):
    """A fake clock for the wait: each poll advances it; `on_poll` runs at each poll."""
    now = [1000.0]
    hooks = []

    def sleep(seconds):
        now[0] += seconds
        for hook in hooks:
            hook()

    monkeypatch.setattr(ms_orders.time, "monotonic", lambda: now[0])
    monkeypatch.setattr(ms_orders.time, "sleep", sleep)
    return hooks


def test_summary_tells_exported_here_by_another_worker_and_still_in_flight(ms_sandbox, shop, published, clock):
    mine, finished_elsewhere, stuck = place("a"), place("b"), place("c")
    for order in (finished_elsewhere, stuck):
        assert services.order_export_claim(order_id=order.pk, owner="other-worker")
    polls = []

    def other_worker_finishes():
        polls.append(1)
        if len(polls) == 2:
            services.order_exported_mark(order=finished_elsewhere)

    clock.append(other_worker_finishes)
    run = run_job(jobs.get("orders-export"), trigger="test")
    assert run.counts["exported_here"] == 1 and run.counts["exported"] == 1
    assert run.counts["exported_elsewhere"] == 1
    assert run.counts["still_in_flight"] == 1
    assert len(polls) == ms_orders.IN_FLIGHT_WAIT / ms_orders.IN_FLIGHT_POLL  # bounded: gave up after the wait
    assert OrderBinding.objects.get(order_id=mine.pk).export_state == ExportState.EXPORTED
    assert OrderBinding.objects.get(order_id=stuck.pk).export_state == ExportState.PENDING


def test_an_order_the_other_worker_let_go_unexported_is_exported_here(ms_sandbox, shop, published, clock):
    order = place("a")
    assert services.order_export_claim(order_id=order.pk, owner="other-worker")
    clock.append(lambda: services.order_export_release(order_id=order.pk, owner="other-worker"))
    run = run_job(jobs.get("orders-export"), trigger="test")
    assert run.counts["exported_here"] == 1 and "still_in_flight" not in run.counts
    assert len(ms_sandbox.moysklad.orders.orders) == 1


def test_sync_command_prints_the_three_figures(ms_sandbox, shop, published, clock):
    place("a")
    held = place("b")
    assert services.order_export_claim(order_id=held.pk, owner="other-worker")
    out = io.StringIO()
    call_command("sync", "orders-export", stdout=out, stderr=io.StringIO())
    text = out.getvalue()
    assert "exported_here" in text and "still_in_flight" in text
    lines = {line.split()[0]: line.split()[1] for line in text.splitlines()[1:] if line.startswith("  ")}
    assert (lines["exported_here"], lines["still_in_flight"]) == ("1", "1")
