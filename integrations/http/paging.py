"""Paging helpers shared by every channel client."""
from __future__ import annotations

import queue
import threading
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Callable, Iterable, Iterator, TypeVar

A = TypeVar("A")
T = TypeVar("T")
_DONE = object()


def prefetch(items: Iterable[T], depth: int = 1) -> Iterator[T]:
    """Iterate `items` in a background thread, `depth` items ahead, so fetching the next page
    overlaps with writing the current one. Exceptions surface in the consumer, in order."""
    buffer: queue.Queue = queue.Queue(maxsize=max(1, depth))
    stop = threading.Event()

    def produce():
        try:
            for item in items:
                while not stop.is_set():
                    try:
                        buffer.put(("item", item), timeout=0.2)
                        break
                    except queue.Full:
                        continue
                if stop.is_set():
                    return
            buffer.put(("done", _DONE))
        except BaseException as exc:  # handed to the consumer
            buffer.put(("error", exc))

    worker = threading.Thread(target=produce, name="prefetch", daemon=True)
    worker.start()
    try:
        while True:
            kind, value = buffer.get()
            if kind == "item":
                yield value
            elif kind == "error":
                raise value
            else:
                return
    finally:
        stop.set()
        # Drain so a blocked producer can finish.
        while worker.is_alive():
            try:
                buffer.get_nowait()
            except queue.Empty:
                worker.join(timeout=0.05)


def map_ordered(func: Callable[[A], T], items: Iterable[A], *, workers: int = 2) -> Iterator[T]:
    """`func(item)` for each item in threads, results in the order of `items`: while the consumer
    works on one result, up to `workers` calls run (or wait, done) for the next ones. So memory
    stays flat however long the list, and the work overlaps the consumer's. An exception surfaces
    at its place in the order; calls still pending are cancelled (running ones finish) when the
    consumer stops."""
    if workers < 1:
        yield from map(func, items)
        return
    pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="pages")
    pending: deque[Future] = deque()
    try:
        for item in items:
            pending.append(pool.submit(func, item))
            if len(pending) > workers:
                yield pending.popleft().result()
        while pending:
            yield pending.popleft().result()
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
