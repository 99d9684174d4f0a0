"""Waiting in tests: until a condition holds (a bounded poll), never a fixed sleep and then an
assertion. A fixed sleep is either too short on a loaded machine (a flaky failure) or longer than
needed everywhere else (a slow suite)."""
from __future__ import annotations

import time
from typing import Callable, TypeVar

T = TypeVar("T")


def wait_until(condition: Callable[[], T], *, timeout: float, interval: float = 0.02, what: str = "") -> T:
    """Poll `condition` until it returns something truthy (returned), or fail after `timeout` s."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise AssertionError(f"not true after {timeout} s: {what or getattr(condition, '__name__', condition)}")
        time.sleep(interval)


def worker_idle() -> bool:
    """The in-process Celery worker (celery.contrib.testing.worker) runs no task and holds none."""
    from celery.worker import state

    return not state.active_requests and not state.reserved_requests and not state.requests


def wait_for_idle_worker(timeout: float = 30.0) -> None:
    wait_until(worker_idle, timeout=timeout, what="the worker is idle")


def queue_empty(app, queue: str) -> bool:
    """No message waits in the broker's `queue` (Redis or the filesystem broker alike)."""
    from kombu.exceptions import ChannelError

    with app.connection_for_read() as conn:
        try:
            return conn.default_channel.queue_declare(queue=queue, passive=True).message_count == 0
        except ChannelError:   # never declared on this broker: nothing was ever sent to it
            return True


def wait_for_quiet(app, queue: str, timeout: float = 30.0) -> None:
    """Nothing left to do: no publish in flight, nothing queued, the in-process worker idle."""
    from syncsite import publish as publisher

    wait_until(lambda: publisher._in_flight == 0 and queue_empty(app, queue) and worker_idle(), timeout=timeout,
               what=f"no message in flight, none in {queue}, the worker idle")
