"""Publish a Celery task without ever blocking the caller on a dead or slow broker.

Every caller of `publish` has the work already recorded in the database (an order waiting to be
exported, an inbound event `received`, a status e-mail owed), and a beat sweeper or outbox job
finds rows whose signal was lost. So a failed publish is logged and forgotten, never raised:
a webhook must answer MoySklad within 1.5 s and an order must be accepted with the broker down.

Why a thread: even with `retry=False`, kombu re-tries establishing a broker connection (about
2 s against a refused Redis port; longer against a host that drops packets), and that cannot be
bounded per call. So the send runs on a small thread pool and the caller waits at most
`WAIT_SECONDS` (or not at all: `wait=0`); a send still running after that finishes (or fails) on
its own. After a failure
the publisher stays quiet for `QUIET_SECONDS`, and it never lets more than `MAX_IN_FLIGHT` sends
pile up, so an outage costs the callers nothing but the log lines.
"""
from __future__ import annotations

import logging
import os
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout

log = logging.getLogger("syncsite.publish")

WAIT_SECONDS = 0.3
QUIET_SECONDS = 10.0
MAX_IN_FLIGHT = 32   # a healthy broker takes a publish in ~1 ms: only a hung one lets this fill
GATHER_MAX = 1000    # ids one gathered message carries at most

_lock = threading.Lock()
_quiet_until = 0.0
_in_flight = 0
_executor: ThreadPoolExecutor | None = None
_executor_pid = 0
_gathering: dict[str, list] = {}   # task name -> the ids of the message being gathered


def _pool() -> ThreadPoolExecutor:
    """One pool per process (recreated after a fork: threads do not survive one)."""
    global _executor, _executor_pid
    with _lock:
        if _executor is None or _executor_pid != os.getpid():
            _executor = ThreadPoolExecutor(max_workers=4, thread_name_prefix="publish")
            _executor_pid = os.getpid()
            _gathering.clear()
        return _executor


def _send_gathered(task, ids: list, delay: float) -> bool:
    time.sleep(delay)
    with _lock:
        if _gathering.get(task.name) is ids:
            del _gathering[task.name]
    return _send(task, (list(ids),), {})


def _send(task, args: tuple, kwargs: dict, options: dict | None = None) -> bool:
    global _quiet_until, _in_flight
    try:
        task.apply_async(args=args, kwargs=kwargs, retry=False, **(options or {}))
        return True
    except Exception as exc:  # any broker/transport error: the row stays, the sweeper finds it
        with _lock:
            _quiet_until = time.monotonic() + QUIET_SECONDS
        log.warning("publish.failed task=%s %s: %s", task.name, exc.__class__.__name__, exc)
        return False
    finally:
        with _lock:
            _in_flight -= 1


def publish(task, *args, wait: float = WAIT_SECONDS, options: dict | None = None, gather: float = 0,
            **kwargs) -> bool:
    """Send `task(*args, **kwargs)` to the broker; True when the broker took it within `wait`
    seconds. `wait=0` hands the send to the background sender and returns at once (True: handed
    over): for callers that must not spend even a healthy broker's round trip, like a webhook
    answering MoySklad. `options` go to `apply_async` (`countdown`, `queue`…).

    `gather=S` (for a task whose one argument is a list of ids, never waited for): the ids ride in
    one message with every other id published for that task in the next S seconds by this process.
    A Celery publish costs a few milliseconds of CPU, far more than storing a webhook's events, so
    under load one message per window instead of one per request is most of the CPU saved; the
    worker then processes the window's events as one batch. (`wait`, `options` and `gather` are
    this function's own arguments, never passed to the task.)"""
    global _in_flight
    if task.app.conf.task_always_eager:
        task.apply_async(args=args, kwargs=kwargs, **(options or {}))  # development: run inline
        return True
    pool = _pool()
    with _lock:
        if time.monotonic() < _quiet_until:
            log.info("publish.skipped-broker-down task=%s", task.name)
            return False
        if gather:
            if len(args) != 1 or not isinstance(args[0], list) or kwargs or options:
                raise TypeError("gather publishes one list of ids, nothing else")
            ids = _gathering.get(task.name)
            if ids is not None and len(ids) + len(args[0]) <= GATHER_MAX:
                ids.extend(args[0])   # the message being gathered takes them
                return True
        if _in_flight >= MAX_IN_FLIGHT:
            log.warning("publish.skipped-backlog task=%s in_flight=%s", task.name, _in_flight)
            return False
        _in_flight += 1
        if gather:
            ids = _gathering[task.name] = list(args[0])
    if gather:
        pool.submit(_send_gathered, task, ids, gather)
        return True
    # Only pass `options` when given: the integration tests stand in a three-argument `_send`.
    future = pool.submit(_send, task, args, kwargs, *([options] if options else []))
    if not wait:
        return True  # a failure is logged by the sender; the row stays and the sweeper re-signals
    try:
        return future.result(timeout=wait)
    except FutureTimeout:
        log.warning("publish.slow task=%s: still sending after %.1fs; not waiting", task.name, wait)
        return False


def reset() -> None:
    """Forget a past failure (tests; after the broker is known to be back)."""
    global _quiet_until
    _quiet_until = 0.0
