"""Upstream budgets: a weighted moving-window budget plus a cap on parallel requests.

One `Limiter` per credential. With REDIS_URL set (production: the broker's Redis) the budget, the
parallel slots and the "upstream said wait" pause live in Redis and are shared by every worker
process, so adding workers never adds load upstream. On the embedded default (no Redis) they live
in a small file per limiter under RATE_LIMIT_DIR (var/limits/), read and written under an
exclusive file lock, so runserver, the worker and a `manage.py sync` on one machine share one
budget too. With neither they are in-process (threads of one process share them).

The budget is `limits`' moving window: never more than `units` in any `window` seconds. The window
may be fractional (tests scale MoySklad's 3 s down), so it is expressed in milliseconds. It is also
stretched by `margin` (5 %): upstream counts a request when it arrives, we count it when we send it,
and the difference jitters with latency.
"""
from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import math
import re
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from limits import RateLimitItem
from limits.limits import Granularity
from limits.storage import MemoryStorage, RedisStorage
from limits.strategies import MovingWindowRateLimiter


class _PerMilliseconds(RateLimitItem):
    """`amount` units per `multiples` milliseconds (limits' own items take whole seconds)."""

    GRANULARITY = Granularity(1, "millisecond")

    def get_expiry(self) -> float:  # type: ignore[override]
        return self.multiples / 1000.0


_EXPIRE = b"redis.call('expire', KEYS[1], expiry)"


class _RedisStorage(RedisStorage):
    """limits' Redis storage, except the moving-window key expires with millisecond precision
    (EXPIRE rejects the fractional expiry of a sub-second or 2.5 s window)."""

    SCRIPT_ACQUIRE_MOVING_WINDOW = RedisStorage.SCRIPT_ACQUIRE_MOVING_WINDOW.replace(
        _EXPIRE, b"redis.call('pexpire', KEYS[1], math.ceil(expiry * 1000))")


#: False if a future `limits` changed its script: then only whole-second windows work on Redis.
REDIS_FRACTIONAL_WINDOWS = _EXPIRE in RedisStorage.SCRIPT_ACQUIRE_MOVING_WINDOW

_SEMAPHORE_LUA = """
-- KEYS[1] slots zset; ARGV: now, ttl, size, token
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', tonumber(ARGV[1]) - tonumber(ARGV[2]))
if redis.call('ZCARD', KEYS[1]) < tonumber(ARGV[3]) then
  redis.call('ZADD', KEYS[1], ARGV[1], ARGV[4])
  redis.call('PEXPIRE', KEYS[1], math.ceil(tonumber(ARGV[2]) * 1000) + 1000)
  return 1
end
return 0
"""

_BREAKER_FAIL_LUA = """
-- KEYS[1] breaker hash; ARGV: threshold, open seconds, now. One more failure in a row; at the
-- threshold (and at every failure past it, e.g. the trial call after a cool-down) it opens.
local failures = redis.call('HINCRBY', KEYS[1], 'failures', 1)
if failures >= tonumber(ARGV[1]) then
  redis.call('HSET', KEYS[1], 'open_until', tonumber(ARGV[3]) + tonumber(ARGV[2]))
end
redis.call('EXPIRE', KEYS[1], 3600)
return {failures, redis.call('HGET', KEYS[1], 'open_until') or '0'}
"""

_PAUSE_LUA = """
-- KEYS[1] pause key; ARGV: until (epoch seconds), ttl ms. Only ever extends a pause.
local current = tonumber(redis.call('GET', KEYS[1]) or '0')
if tonumber(ARGV[1]) > current then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
end
return 1
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
    """A counting semaphore in a Redis sorted set (score = when taken). A slot held longer than
    `ttl` — its holder died without releasing it — is reclaimed by the next acquirer. `ttl` must
    exceed the longest request (MoySklad may take 300 s on heavy requests)."""

    def __init__(self, client, key: str, size: int, ttl: float):
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


class _FileState:
    """A limiter's shared state in one JSON file: the moving window's entries, the parallel slots
    and the pause. Every access holds an exclusive `flock` on the file, so processes (and threads,
    each opening the file anew) on one machine see one budget."""

    def __init__(self, directory: str, name: str):
        self.name = name
        safe = re.sub(r"[^A-Za-z0-9_.-]", "_", name)[:80]
        digest = hashlib.sha256(name.encode()).hexdigest()[:12]  # names that sanitize alike stay apart
        self.path = Path(directory) / f"{safe}-{digest}.json"
        self.path.parent.mkdir(parents=True, exist_ok=True)

    @contextlib.contextmanager
    def locked(self):
        with open(self.path, "a+b") as fh:
            fcntl.flock(fh, fcntl.LOCK_EX)
            try:
                fh.seek(0)
                raw = fh.read()
                try:
                    state = json.loads(raw) if raw else {}
                except ValueError:  # a torn write by a killed process: start over, never crash
                    state = {}
                before = json.dumps(state, sort_keys=True)
                yield state
                after = json.dumps(state, sort_keys=True)
                if after != before:
                    fh.seek(0)
                    fh.truncate()
                    fh.write(after.encode())
                    fh.flush()
            finally:
                fcntl.flock(fh, fcntl.LOCK_UN)

    # -- moving window ---------------------------------------------------------------------------
    @staticmethod
    def _live(state: dict, now: float, window: float) -> list:
        entries = [e for e in state.get("window", []) if e[0] > now - window]
        state["window"] = entries
        return entries

    def hit(self, cost: int, units: int, window: float) -> bool:
        with self.locked() as state:
            now = time.time()
            entries = self._live(state, now, window)
            if sum(c for _t, c in entries) + cost > units:
                return False
            entries.append([now, cost])
            return True

    def reset_at(self, window: float) -> float:
        """When the oldest entry leaves the window (now, if the window is empty)."""
        with self.locked() as state:
            now = time.time()
            entries = self._live(state, now, window)
            return entries[0][0] + window if entries else now

    # -- pause -----------------------------------------------------------------------------------
    def pause_until(self) -> float:
        with self.locked() as state:
            return float(state.get("pause_until", 0.0))

    def extend_pause(self, until: float) -> None:
        with self.locked() as state:
            state["pause_until"] = max(float(state.get("pause_until", 0.0)), until)

    # -- circuit breaker -------------------------------------------------------------------------
    def breaker(self) -> tuple[int, float]:
        with self.locked() as state:
            b = state.get("breaker") or {}
            return int(b.get("failures", 0)), float(b.get("open_until", 0.0))

    def breaker_failed(self, threshold: int, seconds: float, now: float) -> tuple[int, float]:
        with self.locked() as state:
            b = state.setdefault("breaker", {"failures": 0, "open_until": 0.0})
            b["name"] = self.name
            b["failures"] = int(b.get("failures", 0)) + 1
            if b["failures"] >= threshold:
                b["open_until"] = now + seconds
            return b["failures"], float(b["open_until"])

    def breaker_closed(self) -> None:
        with self.locked() as state:
            state.pop("breaker", None)

    def clear(self) -> None:
        with self.locked() as state:
            state.clear()


class _FileSlots:
    """The parallel cap in the shared file: token -> when taken; a slot held longer than `ttl` (its
    holder died) is reclaimed by the next acquirer."""

    def __init__(self, state: _FileState, size: int, ttl: float):
        self._state, self._size, self._ttl = state, size, ttl

    def acquire(self) -> str:
        token = uuid.uuid4().hex
        delay = 0.005
        while True:
            with self._state.locked() as state:
                now = time.time()
                slots = {t: at for t, at in state.get("slots", {}).items() if at > now - self._ttl}
                state["slots"] = slots
                if len(slots) < self._size:
                    slots[token] = now
                    return token
            time.sleep(delay)
            delay = min(delay * 2, 0.1)

    def release(self, token: str) -> None:
        with self._state.locked() as state:
            state.get("slots", {}).pop(token, None)


@dataclass
class LimiterStats:
    acquired: int = 0
    units: int = 0
    waited_seconds: float = 0.0
    paused_seconds: float = 0.0
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)


class Limiter:
    """`units` per `window` seconds (each request spends its weight) and at most `parallel`
    requests at once. `clock` and `sleep` drive the pause and the waits (tests inject fakes)."""

    def __init__(self, name: str, *, units: int, window: float, parallel: int, storage_url: str = "",
                 slot_ttl: float = 330.0, margin: float = 0.05,
                 clock: Callable[[], float] = time.time, sleep: Callable[[float], None] = time.sleep):
        if units < 1 or window <= 0 or parallel < 1:
            raise ValueError("a limiter needs units >= 1, window > 0 and parallel >= 1")
        self.name, self.units, self.window, self.parallel = name, units, float(window), parallel
        self.effective_window = self.window * (1 + margin)
        self.item = _PerMilliseconds(units, max(1, math.ceil(self.effective_window * 1000)))
        self._storage_url = storage_url or "memory://"
        self._clock, self._sleep = clock, sleep
        self._pause_until = 0.0
        self._failures, self._open_until = 0, 0.0   # the circuit breaker, when kept in memory
        self._local_lock = threading.Lock()
        self._redis = None
        self._file: _FileState | None = None
        if self._storage_url.startswith("file://"):
            self._file = _FileState(self._storage_url[len("file://"):], name)
            storage = MemoryStorage()  # unused: the window lives in the file
            self._slots = _FileSlots(self._file, parallel, slot_ttl)
        elif self._storage_url.startswith(("redis://", "rediss://")):
            import redis

            if not REDIS_FRACTIONAL_WINDOWS and self.item.get_expiry() != int(self.item.get_expiry()):
                raise ValueError("this version of `limits` supports only whole-second windows on Redis")
            self._redis = redis.Redis.from_url(self._storage_url)
            storage = _RedisStorage(self._storage_url)
            self._slots = _RedisSlots(self._redis, f"syncsite:slots:{name}", parallel, slot_ttl)
            self._pause_script = self._redis.register_script(_PAUSE_LUA)
            self._breaker_script = self._redis.register_script(_BREAKER_FAIL_LUA)
        else:
            storage = MemoryStorage()
            self._slots = _LocalSlots(parallel)
        self._limiter = MovingWindowRateLimiter(storage)
        self.stats = LimiterStats()

    @property
    def shared(self) -> bool:
        return self._redis is not None or self._file is not None

    # -- pause: upstream said "wait" ------------------------------------------------------------
    def _pause_key(self) -> str:
        return f"syncsite:pause:{self.name}"

    def paused_for(self) -> float:
        """Seconds until the pause (set here or by any other process) ends; <= 0 if none."""
        until = self._pause_until
        if self._file is not None:
            until = max(until, self._file.pause_until())
        if self._redis is not None:
            raw = self._redis.get(self._pause_key())
            if raw:
                until = max(until, float(raw))
        return until - self._clock()

    def pause(self, seconds: float) -> None:
        """Every user of this limiter (every worker, with Redis) waits `seconds` from now."""
        if seconds <= 0:
            return
        until = self._clock() + seconds
        with self._local_lock:
            self._pause_until = max(self._pause_until, until)
        if self._file is not None:
            self._file.extend_pause(until)
        if self._redis is not None:
            self._pause_script(keys=[self._pause_key()], args=[repr(until), int(seconds * 1000) + 50])

    # -- circuit breaker: upstream keeps failing -----------------------------------------------------
    # `failures` in a row (5xx, timeouts, refused credentials) open the circuit for `seconds`:
    # every caller of this upstream (every worker, with Redis or the shared file) then fails fast
    # without sending. After the cool-down one call goes through; its success closes the circuit,
    # its failure opens it again. A rate-limit answer is not a failure (the budget handles it).
    def _breaker_key(self) -> str:
        return f"syncsite:breaker:{self.name}"

    def circuit(self) -> tuple[int, float]:
        """(failures in a row, open until epoch seconds; 0 if never opened)."""
        if self._file is not None:
            return self._file.breaker()
        if self._redis is not None:
            raw = self._redis.hmget(self._breaker_key(), "failures", "open_until")
            return int(raw[0] or 0), float(raw[1] or 0.0)
        with self._local_lock:
            return self._failures, self._open_until

    def circuit_open_for(self) -> float:
        """Seconds the circuit stays open (<= 0: calls may go)."""
        return self.circuit()[1] - self._clock()

    def circuit_failed(self, threshold: int, seconds: float) -> tuple[int, float]:
        now = self._clock()
        if self._file is not None:
            return self._file.breaker_failed(threshold, seconds, now)
        if self._redis is not None:
            failures, until = self._breaker_script(keys=[self._breaker_key()], args=[threshold, seconds, repr(now)])
            return int(failures), float(until)
        with self._local_lock:
            self._failures += 1
            if self._failures >= threshold:
                self._open_until = now + seconds
            return self._failures, self._open_until

    def circuit_succeeded(self) -> None:
        if self._file is not None:
            if self._file.breaker()[0]:
                self._file.breaker_closed()
        elif self._redis is not None:
            self._redis.delete(self._breaker_key())
        else:
            with self._local_lock:
                self._failures, self._open_until = 0, 0.0

    # -- budget ---------------------------------------------------------------------------------
    def _hit(self, cost: int) -> bool:
        if self._file is not None:
            return self._file.hit(cost, self.units, self.effective_window)
        if self._redis is not None:
            return self._limiter.hit(self.item, self.name, cost=cost)
        # limits' memory storage can race with its own expiry timer; one lock makes it exact.
        with self._local_lock:
            return self._limiter.hit(self.item, self.name, cost=cost)

    def take(self, cost: int) -> float:
        """Block until `cost` units fit in the window (and no pause is on); returns seconds waited."""
        cost = max(1, min(int(cost), self.units))
        waited = 0.0
        while True:
            paused = self.paused_for()
            if paused > 0:
                self._sleep(paused)
                waited += paused
                with self.stats.lock:
                    self.stats.paused_seconds += paused
                continue
            if self._hit(cost):
                with self.stats.lock:
                    self.stats.acquired += 1
                    self.stats.units += cost
                    self.stats.waited_seconds += waited
                return waited
            if self._file is not None:
                reset_at = self._file.reset_at(self.effective_window)
            else:
                reset_at, _remaining = self._limiter.get_window_stats(self.item, self.name)
            # Moving window: the oldest entry leaves at reset_at; try again just after it.
            delay = min(max(reset_at - time.time(), 0.001), self.effective_window) + 0.001
            self._sleep(delay)
            waited += delay

    @contextlib.contextmanager
    def slot(self, cost: int):
        """Hold one parallel slot and spend `cost` units for the duration of one request. The slot
        comes first so the units are spent right before the request leaves, not while queueing."""
        token = self._slots.acquire()
        try:
            self.take(cost)
            yield
        finally:
            self._slots.release(token)

    def reset(self) -> None:
        """Forget the budget, slots and pause (tests, and an operator after changing limits)."""
        self._pause_until = 0.0
        self._failures, self._open_until = 0, 0.0
        if self._file is not None:
            self._file.clear()
        self._limiter.clear(self.item, self.name)
        if self._redis is not None:
            self._redis.delete(self._pause_key(), f"syncsite:slots:{self.name}", self._breaker_key())


_registry: dict[str, Limiter] = {}
_registry_lock = threading.Lock()


def limiter_for(name: str, *, units: int, window: float, parallel: int) -> Limiter:
    """One limiter per credential per process, shared through Redis when REDIS_URL is set, else
    through a file under RATE_LIMIT_DIR (the embedded default), else in-process only."""
    from django.conf import settings

    shared_dir = getattr(settings, "RATE_LIMIT_DIR", "")
    storage_url = getattr(settings, "REDIS_URL", "") or (f"file://{shared_dir}" if shared_dir else "")
    key = f"{name}:{units}:{window}:{parallel}:{storage_url}"
    with _registry_lock:
        if key not in _registry:
            _registry[key] = Limiter(name, units=units, window=window, parallel=parallel, storage_url=storage_url)
        return _registry[key]


def open_circuits() -> list[dict]:
    """Every upstream whose circuit is open now, as this process can see them (Redis: all
    workers'; the shared files: this machine's; else this process's own): name (system and
    credential tag), failures in a row, until (epoch seconds)."""
    from django.conf import settings

    now = time.time()
    found: dict[str, dict] = {}
    redis_url = getattr(settings, "REDIS_URL", "")
    shared_dir = getattr(settings, "RATE_LIMIT_DIR", "")
    try:
        if redis_url:
            import redis

            client = redis.Redis.from_url(redis_url)
            for key in client.scan_iter("syncsite:breaker:*", count=500):
                failures, until = client.hmget(key, "failures", "open_until")
                if until and float(until) > now:
                    name = key.decode()[len("syncsite:breaker:"):]
                    found[name] = {"name": name, "failures": int(failures or 0), "until": float(until)}
        elif shared_dir and Path(shared_dir).is_dir():
            for path in Path(shared_dir).glob("*.json"):
                try:
                    state = json.loads(path.read_text() or "{}")
                except (OSError, ValueError):
                    continue
                breaker = state.get("breaker") or {}
                if float(breaker.get("open_until", 0)) > now:
                    name = str(breaker.get("name") or path.stem.rsplit("-", 1)[0])
                    found[name] = {"name": name, "failures": int(breaker.get("failures", 0)),
                                   "until": float(breaker["open_until"])}
    except Exception:   # health reporting never fails because the store is down
        pass
    with _registry_lock:
        limiters = list(_registry.values())
    for limiter in limiters:
        if limiter.name not in found and not limiter.shared and limiter._open_until > now:
            found[limiter.name] = {"name": limiter.name, "failures": limiter._failures, "until": limiter._open_until}
    return sorted(found.values(), key=lambda c: c["name"])
