"""The event-driven push: `kick` marks offers and schedules one debounced push; a burst of
changes becomes one run with full batches."""
import pytest
from django.utils import timezone

from integrations import marketplaces
from integrations.marketplaces import debounce as kick_module
from integrations.marketplaces.jobs import stock_push_on_event
from tests.waiting import wait_until
from integrations.models import ChannelOffer, JobRun, JobState
from tests.conftest import redis_url

from .support import push, pushed_catalog, set_stock

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("marketplaces")]


@pytest.fixture
def pushed(market):
    return pushed_catalog(market)


def test_kick_marks_offers_and_schedules_one_debounced_push(pushed, scheduled, django_capture_on_commit_callbacks):
    _, offers = pushed
    with django_capture_on_commit_callbacks(execute=True):
        assert marketplaces.kick([o.pk for o in offers[:10]]) == 30  # 10 offers x 3 marketplaces
        marketplaces.kick([offers[10].pk])
    assert scheduled == [{"countdown": 5.0, "expires": 305.0, "retry": False}]
    assert ChannelOffer.objects.filter(kicked_at__isnull=False).count() == 33


def test_burst_of_changes_becomes_one_push_of_full_batches(pushed, market, scheduled,
                                                           django_capture_on_commit_callbacks):
    warehouse, offers = pushed
    with django_capture_on_commit_callbacks(execute=True):
        for offer in offers:  # 300 separate stock changes, each announced on its own
            set_stock([offer], warehouse, 1)
            marketplaces.kick([offer.pk])
    assert len(scheduled) == 1
    stock_push_on_event()  # what the debounced task runs
    assert [len(b) for b in market.calls["ozon"]] == [100, 100, 100]
    assert len(market.calls["wildberries"]) == 1 and len(market.calls["yandex_market"]) == 1
    assert JobRun.objects.filter(job="marketplace-stock", trigger="event").count() == 1


def test_a_kick_during_a_push_schedules_the_next_one(pushed, scheduled, django_capture_on_commit_callbacks):
    _, offers = pushed
    with django_capture_on_commit_callbacks(execute=True):
        marketplaces.kick([offers[0].pk])
    stock_push_on_event()  # releases the lease first
    with django_capture_on_commit_callbacks(execute=True):
        marketplaces.kick([offers[1].pk])
    assert len(scheduled) == 2


def test_kicked_offer_is_sent_even_without_a_stock_row_change(pushed, market, django_capture_on_commit_callbacks,
                                                              scheduled, monkeypatch):
    """Reservations by orders change what we can sell without touching StockLevel."""
    _, offers = pushed
    monkeypatch.setattr("integrations.marketplaces.services.reserved_by_open_orders",
                        lambda ids: {offers[0].pk: 2} if offers[0].pk in ids else {})
    with django_capture_on_commit_callbacks(execute=True):
        marketplaces.kick([offers[0].pk])
    stock_push_on_event()
    assert market.calls["ozon"] == [[{"offer_id": offers[0].sku, "stock": 3, "warehouse_id": 22000}]]


def test_kick_with_no_marketplace_configured_schedules_nothing(settings, scheduled, django_capture_on_commit_callbacks):
    settings.OZON = {**settings.OZON, "API_KEY": ""}
    settings.WILDBERRIES = {**settings.WILDBERRIES, "TOKEN": ""}
    settings.YANDEX_MARKET = {**settings.YANDEX_MARKET, "API_KEY": ""}
    with django_capture_on_commit_callbacks(execute=True):
        marketplaces.kick([1, 2, 3])
    assert scheduled == []


def test_broker_down_never_breaks_the_caller(monkeypatch, django_capture_on_commit_callbacks):
    from integrations.marketplaces import tasks

    def boom(*a, **kw):
        raise OSError("broker down")

    monkeypatch.setattr(tasks.push_stock_task, "apply_async", boom)
    kick_module.release()
    with django_capture_on_commit_callbacks(execute=True):
        marketplaces.kick([1])
    assert kick_module.claim(1.0), "the lease was given back for the next kick"


def test_event_push_waits_its_turn_while_a_run_holds_the_lock(scheduled):
    JobState.objects.update_or_create(job="marketplace-stock", defaults={
        "locked_by": "other", "locked_until": timezone.now() + timezone.timedelta(minutes=5)})
    stock_push_on_event()
    assert not JobRun.objects.filter(job="marketplace-stock").exists()
    assert scheduled and scheduled[0]["countdown"] >= 5


def test_schedule_lease_is_exclusive_until_released_or_expired():
    kick_module.release()
    assert kick_module.claim(60)
    assert not kick_module.claim(60)
    kick_module.release()
    assert kick_module.claim(0.001)
    # an expired lease (a lost task) does not block pushes
    wait_until(lambda: kick_module.claim(60), timeout=5, what="the 1 ms lease to expire and be claimed")
    kick_module.release()


def test_schedule_lease_is_the_one_lease_primitive_on_a_database_row(settings):
    """With or without Redis, the flag is a syncsite.leases lease on a JobState row, so every
    process (web, workers, beat) sees the same one."""
    settings.REDIS_URL = redis_url() or ""
    kick_module.release()
    assert kick_module.claim(60) and not kick_module.claim(60)
    state = JobState.objects.get(job=kick_module.CLAIM_KEY)
    assert state.locked_by.startswith("push-scheduled:") and state.locked_until > timezone.now()
    kick_module.release()
    assert JobState.objects.get(job=kick_module.CLAIM_KEY).locked_by == ""
    assert kick_module.claim(60)
    kick_module.release()
