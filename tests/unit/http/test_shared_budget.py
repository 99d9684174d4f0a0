"""Without Redis, processes on one machine (runserver, the worker, a `manage.py sync`) share one
upstream budget through lock-guarded files under RATE_LIMIT_DIR, as Redis shares it in production."""
from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest

from integrations.http import ratelimit
from integrations.http.ratelimit import Limiter

ROOT = Path(__file__).resolve().parents[3]


class Exhausted(Exception):
    pass


def _refuse_to_wait(seconds: float) -> None:
    raise Exhausted(seconds)


def _limiter(directory: Path, **kwargs) -> Limiter:
    options = {"units": 10, "window": 60.0, "parallel": 5, "storage_url": f"file://{directory}",
               "sleep": _refuse_to_wait, **kwargs}
    return Limiter("moysklad:shared-test", **options)


def _take_until_exhausted(limiter: Limiter, attempts: int, cost: int = 1) -> int:
    got = 0
    for _ in range(attempts):
        try:
            limiter.take(cost)
        except Exhausted:
            break
        got += 1
    return got


def test_two_limiters_sharing_only_a_directory_share_one_budget(tmp_path):
    first, second = _limiter(tmp_path), _limiter(tmp_path)
    assert first.shared and second.shared
    assert _take_until_exhausted(first, 7, cost=1) == 7
    assert _take_until_exhausted(second, 7, cost=1) == 3  # what the first left of the 10 units
    other = Limiter("moysklad:another-credential", units=10, window=60.0, parallel=5,
                    storage_url=f"file://{tmp_path}", sleep=_refuse_to_wait)
    assert _take_until_exhausted(other, 12) == 10  # budgets are per limiter name


def test_a_pause_from_one_process_holds_the_other(tmp_path):
    first, second = _limiter(tmp_path), _limiter(tmp_path)
    first.pause(30)
    assert 25 < second.paused_for() <= 30
    with pytest.raises(Exhausted):
        second.take(1)  # waits out the pause first


def test_the_parallel_cap_is_shared(tmp_path):
    first, second = _limiter(tmp_path, parallel=1), _limiter(tmp_path, parallel=1, sleep=time.sleep)
    entered = threading.Event()

    def other_request():
        with second.slot(1):
            entered.set()

    with first.slot(1):
        thread = threading.Thread(target=other_request)
        thread.start()
        assert not entered.wait(0.3)  # the only slot is taken by the other limiter
    thread.join(5)
    assert entered.is_set()


def test_a_dead_holders_slot_is_reclaimed(tmp_path):
    first = _limiter(tmp_path, parallel=1, slot_ttl=0.2)
    first._slots.acquire()  # never released: its process died
    second = _limiter(tmp_path, parallel=1, slot_ttl=0.2)
    token = second._slots.acquire()  # blocks until the stale slot expires
    assert token


def test_a_torn_state_file_is_started_over(tmp_path):
    limiter = _limiter(tmp_path)
    limiter.take(1)
    limiter._file.path.write_text('{"window": [[1')
    assert _take_until_exhausted(limiter, 12) == 10


CHILD = textwrap.dedent("""
    import json, sys
    from integrations.http.ratelimit import Limiter

    class Exhausted(Exception):
        pass

    def refuse(seconds):
        raise Exhausted()

    limiter = Limiter("moysklad:two-processes", units=10, window=60.0, parallel=5,
                      storage_url="file://" + sys.argv[1], sleep=refuse)
    got = 0
    for _ in range(8):
        try:
            limiter.take(1)
        except Exhausted:
            break
        got += 1
    print(json.dumps({"got": got}))
""")


def test_two_processes_spend_one_budget(tmp_path):
    """Each process alone would get 8 of the 10 units; together they get 10, not 16."""
    children = [subprocess.Popen([sys.executable, "-c", CHILD, str(tmp_path)], cwd=ROOT, stdout=subprocess.PIPE,
                                 text=True) for _ in range(2)]
    results = []
    for child in children:
        out, _ = child.communicate(timeout=60)
        assert child.returncode == 0
        results.append(json.loads(out.strip().splitlines()[-1])["got"])
    assert sum(results) == 10, results


def test_limiter_for_uses_the_directory_on_the_embedded_default(settings, tmp_path):
    settings.REDIS_URL = ""
    settings.RATE_LIMIT_DIR = str(tmp_path)
    ratelimit._registry.clear()
    try:
        limiter = ratelimit.limiter_for("moysklad:registry-file", units=45, window=3.0, parallel=5)
        assert limiter.shared and limiter._file is not None
        assert limiter._file.path.parent == tmp_path
        settings.RATE_LIMIT_DIR = ""
        assert not ratelimit.limiter_for("moysklad:registry-local", units=45, window=3.0, parallel=5).shared
    finally:
        ratelimit._registry.clear()
