"""Outage healing: MoySklad drops the notifications of a 10-minute receiver outage for good, and
the scheduled polls alone bring the site back in line within 15 minutes.

A compressed clock walks Moscow minutes 10:00 → 10:25 and, at each minute, runs every job the
real beat schedule (integrations/schedule.py) fires then — back to back, in real time, so the
jobs' own cursors and MoySklad's `updated` stamps stay real. During the outage (10:00–10:10) a
manager ships an order, renames and reprices a product, and a delivery changes stock; no webhook
reaches us. Each change must be reflected within 15 minutes of when it happened."""
from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal

import pytest

from integrations import jobs, schedule
from integrations.models import JobRun, OfferBinding, OrderBinding, WarehouseBinding
from integrations.moysklad.client import MoySkladClient
from integrations.moysklad.orders import OrderExportSession
from integrations.runs import run_job
from orders import services
from orders.models import Order, OrderStatus
from stock.models import StockLevel
from tests.orders_fixtures import published, sandbox_moysklad  # noqa: F401  (fixture)

pytestmark = pytest.mark.django_db

START = datetime(2026, 3, 3, 10, 0)   # a Tuesday morning: no nightly full pass fires in the window
OUTAGE_MINUTES, HEAL_WITHIN = 10, 15


def due(entry: schedule.Entry, at: datetime) -> bool:
    c = entry.cron
    return (at.minute in c.minute and at.hour in c.hour and at.day in c.day_of_month
            and at.month in c.month_of_year and at.isoweekday() % 7 in c.day_of_week)


@pytest.fixture
def ms(settings, published):
    with sandbox_moysklad(settings, products=8, variant_share=0.0, stores=2, seed=21) as srv:
        yield srv.moysklad


def test_a_ten_minute_outage_is_healed_by_polling_within_fifteen_minutes(ms):
    assert run_job(jobs.get("moysklad-catalog"), trigger="test", full=True).status == JobRun.Status.SUCCESS
    binding = OfferBinding.objects.filter(kind="product").select_related("offer__product").order_by("id").first()
    item, offer = binding.external_id, binding.offer
    store = ms.store_ids()[0]
    ms.set_stock(item, store, stock=10, reserve=0)
    assert run_job(jobs.get("moysklad-stock"), trigger="test", full=True).status == JobRun.Status.SUCCESS
    order = services.order_create(customer=services.CustomerData(name="Анна", email="anna@example.com"),
                                  items=[services.LineRequest(sku=offer.sku, quantity=1)], idempotency_key="o1").order
    with MoySkladClient() as client:
        assert OrderExportSession(client).export(order.pk) == "exported"
    remote_order = OrderBinding.objects.get(order=order).external_id
    warehouse = WarehouseBinding.objects.get(external_id=store).warehouse_id

    # What happens upstream during the outage, by minute; and how we tell the site followed.
    def shipped():
        return Order.objects.get(pk=order.pk).status == OrderStatus.SHIPPED

    def renamed():
        offer.product.refresh_from_db()
        offer.refresh_from_db()
        return offer.product.name == "Переименован в простое" and offer.price == Decimal("123.45")

    def restocked():
        upstream = ms.stock(item, store)
        level = StockLevel.objects.get(offer=offer, warehouse_id=warehouse)
        return level.stock == Decimal(str(upstream["stock"])) and level.reserve == Decimal(str(upstream["reserve"]))

    changes = {
        2: ("order shipped", lambda: ms.orders.ship(remote_order), shipped),
        6: ("product renamed and repriced",
            lambda: ms.update_product(item, name="Переименован в простое", salePrice=12345), renamed),
        9: ("a delivery", lambda: ms.set_stock(item, store, stock=ms.stock(item, store)["stock"] + 7), restocked),
    }
    healed_at: dict[str, int] = {}
    pending: dict[str, tuple[int, callable]] = {}
    for minute in range(OUTAGE_MINUTES + HEAL_WITHIN + 1):
        if minute in changes:   # the change happens at the start of the minute; no webhook arrives
            name, act, check = changes[minute]
            act()
            pending[name] = (minute, check)
        at = START + timedelta(minutes=minute)
        for entry in schedule.SCHEDULE:
            if due(entry, at):
                run = run_job(jobs.get(entry.job), trigger="beat", full=entry.full)
                assert run.status in (JobRun.Status.SUCCESS, JobRun.Status.NOT_CONFIGURED), (entry.job, run.message)
        for name, (changed_at, check) in list(pending.items()):
            if check():
                healed_at[name] = minute - changed_at
                del pending[name]

    assert not pending, f"never healed: {sorted(pending)}"
    assert all(took <= HEAL_WITHIN for took in healed_at.values()), healed_at
    assert max(healed_at.values()) <= HEAL_WITHIN
