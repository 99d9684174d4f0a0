"""syncsite.publish: never blocking the caller, and gathering a window's ids into one message."""
import threading
import time

import pytest

from integrations.moysklad.tasks import events_process_task
from syncsite import publish as publisher
from tests.waiting import wait_until


@pytest.fixture
def sends(monkeypatch):
    """What reaches the broker, recorded (the real _send's bookkeeping kept)."""
    sent, done = [], threading.Event()

    class FakeTask:
        name = events_process_task.name
        app = events_process_task.app

        @staticmethod
        def apply_async(args, kwargs, retry, **options):
            sent.append((args, kwargs, options))
            done.set()

    publisher.reset()
    monkeypatch.setattr(publisher, "_gathering", {})
    yield FakeTask, sent, done


def test_gathered_ids_of_one_window_leave_as_one_message(sends):
    task, sent, done = sends
    assert publisher.publish(task, [1, 2], wait=0, gather=0.2)
    assert publisher.publish(task, [3], wait=0, gather=0.2)
    assert publisher.publish(task, [4, 5], wait=0, gather=0.2)
    assert not sent  # nothing waits for the broker, nothing is sent before the window closes
    assert done.wait(5)
    wait_until(lambda: sent, timeout=5, what="the gathered message")
    assert sent == [(([1, 2, 3, 4, 5],), {}, {})]
    done.clear()
    assert publisher.publish(task, [6], wait=0, gather=0.05)  # a new window, a new message
    assert done.wait(5)
    assert sent[-1] == (([6],), {}, {})


def test_a_full_message_starts_another(sends, monkeypatch):
    task, sent, done = sends
    monkeypatch.setattr(publisher, "GATHER_MAX", 3)
    publisher.publish(task, [1, 2], wait=0, gather=0.2)
    publisher.publish(task, [3, 4], wait=0, gather=0.2)
    deadline = time.monotonic() + 5
    while len(sent) < 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert sorted(args for args, _, _ in sent) == [([1, 2],), ([3, 4],)]


def test_gather_takes_one_list_and_nothing_else(sends):
    task, _, _ = sends
    with pytest.raises(TypeError):
        publisher.publish(task, 1, 2, wait=0, gather=0.1)
    with pytest.raises(TypeError):
        publisher.publish(task, [1], wait=0, gather=0.1, options={"countdown": 1})


def test_options_reach_apply_async(sends):
    task, sent, done = sends
    assert publisher.publish(task, follow_up=False, options={"countdown": 7})
    assert sent == [((), {"follow_up": False}, {"countdown": 7})]
