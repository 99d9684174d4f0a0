"""Upstream budgets: a weighted moving-window budget plus a cap on parallel requests.

One `Limiter` per credential. With REDIS_URL set (production: the broker's Redis) the budget and
the parallel slots live in Redis and are shared by every worker process, so adding workers never
adds load upstream; otherwise they are in-process (threads of one worker share them)."""
from __future__ import annotations

import contextlib
import threading
import time
import uuid
from dataclasses import dataclass, field

from limits import RateLimitItemPerSecond
from limits.storage import storage_from_string
from limits.strategies import MovingWindowRateLimiter

_SEMAPHORE_LUA = """
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', tonumber(ARGV[1]) - tonumber(ARGV[2]))
if redis.call('ZCARD', KEYS[1]) < tonumber(ARGV[3]) then
  redis.call('ZADD', KEYS[1], ARGV[1], ARGV[4])
  redis.call('EXPIRE', KEYS[1], math.ceil(tonumber(ARGV[2])) + 1)
  return 1
end
return 0
"""


class _LocalSlots:
    def __init__(self, size: int):
        self._sem = threading.BoundedSemaphore(size)

    def acquire(self) -> str:
        self._sem.acquire()
        return ""

    def release(self, token: str) -> None:
        self._sem.release()


class _RedisSlots:
    """A counting semaphore in a Redis sorted set; a slot held longer than `ttl` (a dead worker)
    is reclaimed."""

    def __init__(self, client, key: str, size: int, ttl: float = 330.0):
        self._client, self._key, self._size, self._ttl = client, key, size, ttl
        self._script = client.register_script(_SEMAPHORE_LUA)

    def acquire(self) -> str:
        token = uuid.uuid4().hex
        delay = 0.005
        while not self._script(keys=[self._key], args=[time.time(), self._ttl, self._size, token]):
            time.sleep(delay)
            delay = min(delay * 2, 0.1)
        return token

    def release(self, token: str) -> None:
        self._client.zrem(self._key, token)


@dataclass
class LimiterStats:
    acquired: int = 0
    units: int = 0
    waited_seconds: float = 0.0
    paused_seconds: float = 0.0
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)


class Limiter:
    def __init__(self, name: str, *, units: int, window: float, parallel: int, storage_url: str = ""):
        self.name, self.units, self.window, self.parallel = name, units, window, parallel
        self.item = RateLimitItemPerSecond(units, max(1, int(round(window))))
        self._storage_url = storage_url or "memory://"
        storage = storage_from_string(self._storage_url)
        self._limiter = MovingWindowRateLimiter(storage)
        self._pause_until = 0.0
        self._redis = None
        if self._storage_url.startswith(("redis://", "rediss://")):
            import redis

            self._redis = redis.Redis.from_url(self._storage_url)
            self._slots = _RedisSlots(self._redis, f"syncsite:slots:{name}", parallel)
        else:
            self._slots = _LocalSlots(parallel)
        self.stats = LimiterStats()

    # -- budget -------------------------------------------------------------------------------
    def _paused_for(self) -> float:
        until = self._pause_until
        if self._redis is not None:
            raw = self._redis.get(f"syncsite:pause:{self.name}")
            if raw:
                until = max(until, float(raw))
        return until - time.time()

    def pause(self, seconds: float) -> None:
        """Upstream said "wait": every user of this limiter (every worker, with Redis) waits."""
        until = time.time() + seconds
        self._pause_until = max(self._pause_until, until)
        if self._redis is not None:
            self._redis.set(f"syncsite:pause:{self.name}", until, px=int(seconds * 1000) + 50)

    def take(self, cost: int) -> float:
        """Block until `cost` units fit in the window; returns the seconds waited."""
        cost = max(1, min(cost, self.units))
        waited = 0.0
        while True:
            paused = self._paused_for()
            if paused > 0:
                time.sleep(paused)
                waited += paused
                with self.stats.lock:
                    self.stats.paused_seconds += paused
                continue
            if self._limiter.hit(self.item, self.name, cost=cost):
                with self.stats.lock:
                    self.stats.acquired += 1
                    self.stats.units += cost
                    self.stats.waited_seconds += waited
                return waited
            reset_at, _remaining = self._limiter.get_window_stats(self.item, self.name)
            delay = min(max(reset_at - time.time(), 0.005), self.window)
            # Moving window: the oldest entry leaves at reset_at; poll a little after it.
            time.sleep(delay + 0.002)
            waited += delay + 0.002

    @contextlib.contextmanager
    def slot(self, cost: int):
        """Hold one parallel slot and spend `cost` units for the duration of one request."""
        token = self._slots.acquire()
        try:
            self.take(cost)
            yield
        finally:
            self._slots.release(token)


_registry: dict[str, Limiter] = {}
_registry_lock = threading.Lock()


def limiter_for(name: str, *, units: int, window: float, parallel: int) -> Limiter:
    """One limiter per credential per process (shared through Redis when configured)."""
    from django.conf import settings

    key = f"{name}:{units}:{window}:{parallel}"
    with _registry_lock:
        if key not in _registry:
            _registry[key] = Limiter(name, units=units, window=window, parallel=parallel,
                                     storage_url=getattr(settings, "REDIS_URL", ""))
        return _registry[key]
