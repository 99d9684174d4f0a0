"""Overlap: every scheduled job, started 100 times at once (beat firing while a manual "sync now"
and a retry land together), runs at most once at a time. Each registered job is run with its work
replaced by a recorder that notes how many copies are inside at once and stays inside a while, so
the starts truly overlap."""
import dataclasses
import threading
import time

import pytest
from django.db import connection

from integrations import jobs
from integrations.models import JobRun
from integrations.runs import run_job
from tests.conftest import needs_postgres

pytestmark = [needs_postgres, pytest.mark.django_db(transaction=True)]

STARTS = 100
THREADS = 10   # each thread makes STARTS / THREADS starts back to back, all threads at once


@pytest.mark.parametrize("name", sorted(jobs.JOBS))
def test_100_overlapping_starts_never_run_a_job_twice_at_once(name):
    inside, most, lock = [0], [0], threading.Lock()

    def recorder(ctx):
        with lock:
            inside[0] += 1
            most[0] = max(most[0], inside[0])
        time.sleep(0.05)
        with lock:
            inside[0] -= 1

    spec = dataclasses.replace(jobs.JOBS[name], func=recorder, configured=lambda: True)
    barrier = threading.Barrier(THREADS)
    statuses: list[str] = []

    def starter():
        try:
            barrier.wait(10)
            for _ in range(STARTS // THREADS):
                statuses.append(run_job(spec, trigger="manual").status)
        finally:
            connection.close()

    threads = [threading.Thread(target=starter) for _ in range(THREADS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert len(statuses) == STARTS
    assert most[0] == 1, f"{name}: {most[0]} copies ran at once"
    assert JobRun.Status.SUCCESS in statuses
    assert set(statuses) <= {JobRun.Status.SUCCESS, JobRun.Status.SKIPPED}
    assert JobRun.objects.filter(job=name).count() == STARTS
