"""The limiter: weighted moving-window budget, parallel cap, pause; in-process and shared through
Redis. Windows are scaled down (MoySklad's 45 units / 3 s becomes e.g. 10 units / 0.5 s)."""
import random
import threading
import time
import uuid

import pytest

from integrations.http.ratelimit import Limiter, limiter_for
from tests.conftest import needs_redis, redis_url
from tests.unit.moysklad.support import FakeClock


def record_hits(limiter: Limiter) -> list[tuple[float, int]]:
    """Wrap the limiter's budget so every granted hit is logged as (time, cost) when granted."""
    granted: list[tuple[float, int]] = []
    strategy = limiter._limiter
    real_hit = strategy.hit
    lock = threading.Lock()

    def hit(item, *ids, cost=1):
        ok = real_hit(item, *ids, cost=cost)
        if ok:
            with lock:
                granted.append((time.time(), cost))
        return ok

    strategy.hit = hit
    return granted


def max_units_in_any_window(granted: list[tuple[float, int]], window: float) -> int:
    granted = sorted(granted)
    best = 0
    for i, (start, _) in enumerate(granted):
        best = max(best, sum(c for t, c in granted[i:] if t < start + window))
    return best


def hammer(limiters: list[Limiter], *, threads: int, requests: int, costs=(4,), hold: float = 0.0):
    """`threads` threads per limiter, each doing `requests` slot() calls; returns max concurrency."""
    state = {"now": 0, "max": 0}
    lock = threading.Lock()

    def work(limiter):
        rnd = random.Random()
        for _ in range(requests):
            with limiter.slot(rnd.choice(costs)):
                with lock:
                    state["now"] += 1
                    state["max"] = max(state["max"], state["now"])
                if hold:
                    time.sleep(hold)
                with lock:
                    state["now"] -= 1

    workers = [threading.Thread(target=work, args=(lim,)) for lim in limiters for _ in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join(timeout=30)
    assert not any(w.is_alive() for w in workers)
    return state["max"]


# -- in-process --------------------------------------------------------------------------------------
def test_budget_never_exceeds_units_in_any_window():
    limiter = Limiter("t:budget", units=10, window=0.25, parallel=5)
    granted = record_hits(limiter)
    started = time.monotonic()
    hammer([limiter], threads=5, requests=4, costs=(1, 2, 3, 4))
    elapsed = time.monotonic() - started
    assert len(granted) == 20
    assert max_units_in_any_window(granted, 0.25) <= 10
    total = sum(c for _, c in granted)
    # ... and the budget is actually used, not starved: about `units` per window.
    assert elapsed < (total / 10 + 1) * 0.25 * 1.3


def test_default_weight_4_allows_11_requests_per_45_unit_window():
    limiter = Limiter("t:weight", units=45, window=0.3, parallel=20)
    granted = record_hits(limiter)
    hammer([limiter], threads=4, requests=6, costs=(4,))
    assert max(sum(1 for t, _ in granted if s <= t < s + 0.3) for s, _ in granted) <= 11
    assert max_units_in_any_window(granted, 0.3) <= 45


def test_cost_above_the_budget_is_capped_not_deadlocked():
    limiter = Limiter("t:cap", units=3, window=0.2, parallel=1)
    assert limiter.take(10) == 0.0
    assert limiter.stats.units == 3


def test_fractional_window_is_honoured():
    limiter = Limiter("t:frac", units=2, window=0.25, parallel=1)
    limiter.take(2)
    started = time.monotonic()
    limiter.take(1)
    assert 0.2 <= time.monotonic() - started < 0.6


def test_parallel_requests_are_capped():
    limiter = Limiter("t:parallel", units=1000, window=1, parallel=2)
    assert hammer([limiter], threads=6, requests=3, costs=(1,), hold=0.02) == 2


def test_pause_makes_take_wait_that_long():
    clock = FakeClock()
    limiter = Limiter("t:pause", units=100, window=1, parallel=1, clock=clock.time, sleep=clock.sleep)
    limiter.pause(2.5)
    assert limiter.paused_for() == pytest.approx(2.5)
    assert limiter.take(1) == pytest.approx(2.5)
    assert clock.slept == [pytest.approx(2.5)]
    assert limiter.stats.paused_seconds == pytest.approx(2.5)


def test_a_shorter_pause_never_cuts_a_longer_one():
    clock = FakeClock()
    limiter = Limiter("t:pause2", units=100, window=1, parallel=1, clock=clock.time, sleep=clock.sleep)
    limiter.pause(5)
    limiter.pause(1)
    assert limiter.paused_for() == pytest.approx(5)


def test_limiter_for_returns_one_limiter_per_credential(settings):
    settings.REDIS_URL = ""
    a = limiter_for("t:registry", units=45, window=3.0, parallel=5)
    assert limiter_for("t:registry", units=45, window=3.0, parallel=5) is a
    assert limiter_for("t:registry-other", units=45, window=3.0, parallel=5) is not a
    assert not a.shared


def test_invalid_limits_are_rejected():
    with pytest.raises(ValueError):
        Limiter("t:bad", units=0, window=3, parallel=5)


# -- shared through Redis ----------------------------------------------------------------------------
@pytest.fixture
def redis_name():
    name = f"t:{uuid.uuid4().hex[:10]}"
    yield name
    import redis

    client = redis.Redis.from_url(redis_url())
    for key in client.scan_iter(f"*{name}*"):
        client.delete(key)


def redis_limiter(name, **kw) -> Limiter:
    kw = {"units": 10, "window": 0.5, "parallel": 2, **kw}
    return Limiter(name, storage_url=redis_url(), **kw)


@needs_redis
def test_two_redis_limiters_with_the_same_name_share_the_budget(redis_name):
    a, b = redis_limiter(redis_name), redis_limiter(redis_name)
    assert a.shared and b.shared
    a.take(10)
    assert not b._hit(1)  # b sees a's spending
    started = time.monotonic()
    b.take(1)
    assert time.monotonic() - started >= 0.3
    assert redis_limiter(f"{redis_name}-other")._hit(10)  # another credential: its own budget


@needs_redis
def test_shared_budget_never_exceeds_units_in_any_window(redis_name):
    a, b = redis_limiter(redis_name, parallel=4), redis_limiter(redis_name, parallel=4)
    granted = record_hits(a)
    granted_b = record_hits(b)
    hammer([a, b], threads=2, requests=3, costs=(1, 2, 3))
    assert len(granted) + len(granted_b) == 12
    assert max_units_in_any_window(granted + granted_b, 0.5) <= 10


@needs_redis
def test_pause_on_one_redis_limiter_is_seen_by_the_other(redis_name):
    a, b = redis_limiter(redis_name), redis_limiter(redis_name)
    a.pause(3.0)
    assert 2.5 < b.paused_for() <= 3.0
    b.pause(0.5)  # a shorter pause elsewhere does not cut it short
    assert a.paused_for() > 2.5
    clock = FakeClock(start=time.time())
    c = Limiter(redis_name, units=10, window=0.5, parallel=2, storage_url=redis_url(), clock=clock.time,
                sleep=clock.sleep)
    c.take(1)
    assert sum(clock.slept) == pytest.approx(3.0, abs=0.2)


@needs_redis
def test_parallel_cap_is_shared_across_redis_limiters(redis_name):
    a, b = redis_limiter(redis_name, units=1000, parallel=2), redis_limiter(redis_name, units=1000, parallel=2)
    assert hammer([a, b], threads=3, requests=3, costs=(1,), hold=0.02) == 2


@needs_redis
def test_dead_holders_parallel_slot_is_reclaimed_after_its_ttl(redis_name):
    dead = redis_limiter(redis_name, parallel=1, slot_ttl=0.4)
    alive = redis_limiter(redis_name, parallel=1, slot_ttl=0.4)
    dead._slots.acquire()  # taken and never released: its worker was killed
    started = time.monotonic()
    token = alive._slots.acquire()
    waited = time.monotonic() - started
    alive._slots.release(token)
    assert 0.3 <= waited < 2.0


@needs_redis
def test_released_slot_is_free_at_once(redis_name):
    a, b = redis_limiter(redis_name, parallel=1), redis_limiter(redis_name, parallel=1)
    with a.slot(1):
        pass
    started = time.monotonic()
    with b.slot(1):
        pass
    assert time.monotonic() - started < 0.2
