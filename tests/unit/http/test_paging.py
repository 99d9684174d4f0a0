"""prefetch: the next page is fetched while the current one is written."""
import threading
import time

import pytest

from integrations.http.paging import prefetch
from tests.waiting import wait_until


def test_items_arrive_in_order():
    assert list(prefetch(iter(range(50)), depth=2)) == list(range(50))


def test_the_producer_runs_ahead_of_the_consumer():
    fetched = []

    def pages():
        for i in range(3):
            fetched.append(i)
            yield i

    it = prefetch(pages(), depth=1)
    assert next(it) == 0
    deadline = time.monotonic() + 2
    while len(fetched) < 2 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert fetched[:2] == [0, 1]  # page 1 fetched while page 0 is being handled
    assert list(it) == [1, 2]


def test_a_producer_error_surfaces_after_the_pages_before_it():
    def pages():
        yield 1
        yield 2
        raise RuntimeError("page 3 failed")

    got = []
    with pytest.raises(RuntimeError, match="page 3 failed"):
        for page in prefetch(pages()):
            got.append(page)
    assert got == [1, 2]


def test_a_consumer_that_stops_early_stops_the_producer():
    produced = []

    def pages():
        for i in range(1000):
            produced.append(i)
            yield i

    before = threading.active_count()
    with pytest.raises(ValueError):
        for page in prefetch(pages()):
            if page == 1:
                raise ValueError("write failed")
    wait_until(lambda: threading.active_count() <= before, timeout=5, what="the producer thread to stop")
    assert len(produced) < 10
