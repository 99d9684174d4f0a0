"""syncsite.leases: take, renew, release, the heartbeat, and a dead holder's rows taken over."""
import threading
import time
from datetime import timedelta

import pytest
from django.db import connection
from django.db.models import Q
from django.utils import timezone

from integrations.models import InboundEvent, JobState
from syncsite.leases import Lease
from tests.conftest import needs_postgres
from tests.waiting import wait_until


def job_lease(**kwargs) -> Lease:
    return Lease(JobState, owner_field="locked_by", until_field="locked_until", **kwargs)


def events(n: int) -> list[int]:
    now = timezone.now()
    return [InboundEvent.objects.create(dedup_key=f"k{i}", entity_type="product", action="UPDATE",
                                        received_at=now).pk for i in range(n)]


@pytest.mark.django_db
def test_a_held_row_cannot_be_taken_until_released():
    JobState.objects.create(job="j")
    first, second = job_lease(), job_lease()
    assert first.take_one("j")
    assert not second.take_one("j")
    state = JobState.objects.get(job="j")
    assert state.locked_by == first.owner
    assert timedelta(seconds=25) < state.locked_until - timezone.now() <= timedelta(seconds=30)
    assert first.release() == 1
    assert second.take_one("j")


@pytest.mark.django_db
def test_an_expired_lease_is_taken_over_and_the_old_holder_cannot_release_it():
    JobState.objects.create(job="j")
    dead, alive = job_lease(), job_lease()
    assert dead.take_one("j")
    JobState.objects.filter(job="j").update(locked_until=timezone.now() - timedelta(seconds=1))
    assert alive.take_one("j")
    assert dead.release() == 0  # the stalled holder comes back: it no longer holds the row
    assert JobState.objects.get(job="j").locked_by == alive.owner


@pytest.mark.django_db
def test_take_honours_the_filter_makes_the_extra_updates_and_lists_the_keys():
    ids = events(4)
    InboundEvent.objects.filter(pk=ids[3]).update(status="done")
    lease = Lease(InboundEvent)
    other = Lease(InboundEvent)
    assert other.take([ids[0]]) == 1
    assert lease.take(ids, Q(status="received"), status="processing") == 2
    assert lease.keys == ids[1:3]
    assert list(InboundEvent.objects.filter(status="processing").order_by("pk").values_list("pk", flat=True)) == ids[1:3]
    assert lease.take(ids[1:2], Q(status="processing")) == 1  # taking again renews what we hold
    assert lease.release([ids[1]], status="done") == 1
    assert lease.keys == [ids[2]]
    assert InboundEvent.objects.get(pk=ids[1]).lease_owner == ""


@pytest.mark.django_db
def test_renew_pushes_the_end_out_and_notices_a_lost_row():
    ids = events(2)
    lease = Lease(InboundEvent, ttl=30)
    lease.take(ids)
    InboundEvent.objects.filter(pk__in=ids).update(lease_until=timezone.now() + timedelta(seconds=1))
    assert lease.renew() == 2 and not lease.lost
    assert InboundEvent.objects.filter(lease_until__gt=timezone.now() + timedelta(seconds=20)).count() == 2
    # We stalled past the lease and another worker took one row over.
    InboundEvent.objects.filter(pk=ids[0]).update(lease_owner="someone-else")
    assert lease.renew() == 1
    assert lease.lost


@pytest.mark.django_db
def test_release_by_our_own_thread_is_not_a_lost_lease():
    ids = events(2)
    lease = Lease(InboundEvent)
    lease.take(ids)
    lease.release([ids[0]], status="done")
    assert lease.renew() == 1 and not lease.lost


def test_a_lease_needs_a_positive_length():
    with pytest.raises(ValueError):
        Lease(JobState, ttl=0)


@pytest.mark.django_db(transaction=True)
def test_the_heartbeat_keeps_a_short_lease_alive_while_work_runs():
    """Work that outlasts its lease several times over keeps its rows: nobody else gets them."""
    JobState.objects.create(job="j")
    beats = []
    lease = job_lease(ttl=1.5, on_beat=lambda: beats.append(1))
    assert lease.take_one("j")
    with lease.kept_alive():
        deadline = time.monotonic() + 4.5   # three lease lengths
        while time.monotonic() < deadline:
            assert not job_lease().take_one("j")
            time.sleep(0.1)
    assert len(beats) >= 3 and not lease.lost
    assert JobState.objects.get(job="j").locked_by == lease.owner
    lease.release()


@pytest.mark.django_db(transaction=True)
def test_without_a_heartbeat_the_lease_runs_out_and_the_row_is_taken():
    JobState.objects.create(job="j")
    gone = job_lease(ttl=0.3)
    assert gone.take_one("j")  # ... and its worker dies: nothing renews the lease
    assert not job_lease().take_one("j")
    wait_until(lambda: job_lease().take_one("j"), timeout=5, what="the 0.3 s lease to run out and the row taken")


@needs_postgres
@pytest.mark.django_db(transaction=True)
def test_racing_takers_get_each_row_exactly_once():
    """Eight workers claim the same 200 rows at the same instant: each row goes to one of them."""
    assert connection.vendor == "postgresql"
    ids = events(200)
    barrier = threading.Barrier(8)
    got: dict[int, list] = {}

    def take(i):
        try:
            lease = Lease(InboundEvent)
            barrier.wait(5)
            lease.take(ids, Q(status="received"), status="processing")
            got[i] = lease.keys
        finally:
            connection.close()

    threads = [threading.Thread(target=take, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(20)
    claimed = [k for keys in got.values() for k in keys]
    assert sorted(claimed) == sorted(ids)


@pytest.mark.django_db
def test_free_lets_go_of_rows_whoever_holds_them():
    JobState.objects.create(job="flag")
    holder, other = job_lease(), job_lease()
    assert holder.take_one("flag")
    assert other.free(["flag"]) == 1
    assert JobState.objects.get(job="flag").locked_by == ""
    assert other.free(["flag"]) == 0          # nothing held: nothing freed
    assert other.take_one("flag")
