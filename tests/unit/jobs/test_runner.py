"""The job runner: not-configured, the lease lock, the cursor, JobRun bookkeeping."""
import threading
import time
from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone

from integrations import jobs
from integrations.models import JobRun, JobState
from integrations.runs import JobSpec, acquire_lock, release_lock, run_job
from tests.conftest import needs_postgres


def spec(name="test-job", func=lambda ctx: None, configured=lambda: True) -> JobSpec:
    return JobSpec(name, func, configured, "a test job", overlap=timedelta(seconds=30))


@pytest.mark.django_db
def test_not_configured_job_records_a_run_and_succeeds(settings):
    settings.MOYSKLAD = {**settings.MOYSKLAD, "TOKEN": "", "LOGIN": "", "PASSWORD": ""}
    for name in ("moysklad-catalog", "moysklad-stock"):
        r = run_job(jobs.get(name), trigger="test")
        assert r.status == JobRun.Status.NOT_CONFIGURED and "not configured" in r.message
        assert JobState.objects.get(job=name).last_run == r
        assert JobState.objects.get(job=name).cursor is None


@pytest.mark.django_db
def test_success_moves_the_cursor_and_records_counts():
    def work(ctx):
        ctx.count("things", 3)
        ctx.error("ref-1", "one bad record")
        ctx.advance(4)

    r = run_job(spec(func=work), trigger="test")
    assert r.status == JobRun.Status.SUCCESS and r.message == "1 record errors"
    assert r.counts == {"things": 3} and r.errors == [{"ref": "ref-1", "error": "one bad record"}]
    assert r.progress_done == 4 and r.finished_at >= r.started_at
    state = JobState.objects.get(job="test-job")
    assert state.cursor == r.started_at and state.locked_by == "" and state.last_run == r


@pytest.mark.django_db
def test_the_next_window_starts_at_the_cursor_minus_the_overlap():
    seen = []
    first = run_job(spec(func=lambda ctx: seen.append(ctx.since)))
    run_job(spec(func=lambda ctx: seen.append(ctx.since)))
    assert seen == [None, first.started_at - timedelta(seconds=30)]


@pytest.mark.django_db
def test_failure_keeps_the_cursor_records_the_error_and_releases_the_lock():
    ok = run_job(spec())

    def boom(ctx):
        ctx.count("done_before_failing", 2)
        raise RuntimeError("upstream fell over")

    with pytest.raises(RuntimeError):
        run_job(spec(func=boom))
    failed = JobRun.objects.filter(job="test-job").first()
    assert failed.status == JobRun.Status.FAILED and failed.message == "RuntimeError: upstream fell over"
    assert failed.counts == {"done_before_failing": 2}
    state = JobState.objects.get(job="test-job")
    assert state.cursor == ok.started_at and state.locked_by == "" and state.last_run == failed


@pytest.mark.django_db
def test_failure_can_be_returned_instead_of_raised():
    r = run_job(spec(func=lambda ctx: 1 / 0), raise_errors=False)
    assert r.status == JobRun.Status.FAILED and "ZeroDivisionError" in r.message


@pytest.mark.django_db
def test_second_run_is_skipped_while_another_holds_the_lock():
    called = []
    assert acquire_lock("test-job", "other-host:1:1")
    r = run_job(spec(func=lambda ctx: called.append(1)))
    assert r.status == JobRun.Status.SKIPPED and called == []
    assert JobState.objects.get(job="test-job").locked_by == "other-host:1:1"  # still theirs
    release_lock("test-job", "other-host:1:1")
    assert run_job(spec(func=lambda ctx: called.append(1))).status == JobRun.Status.SUCCESS and called == [1]


@pytest.mark.django_db
def test_an_expired_lease_is_taken_over():
    assert acquire_lock("test-job", "dead-host:1:1")
    JobState.objects.filter(job="test-job").update(locked_until=timezone.now() - timedelta(seconds=1))
    r = run_job(spec())
    assert r.status == JobRun.Status.SUCCESS
    assert JobState.objects.get(job="test-job").locked_by == ""


@pytest.mark.django_db(transaction=True)
def test_a_job_keeps_its_lock_while_it_runs_longer_than_the_lease(settings):
    """The lease is short, and a heartbeat renews it (and the run's heartbeat) while the job
    runs, whether or not the job reports progress."""
    settings.LEASE_SECONDS = 1.5
    intruder_got_it, beats = [], []

    def slow(ctx):
        deadline = time.monotonic() + 4.5   # three lease lengths, no progress reported
        while time.monotonic() < deadline:
            intruder_got_it.append(acquire_lock("test-job", "intruder:1:1") is not None)
            time.sleep(0.2)
        beats.append(JobRun.objects.get(pk=ctx.run.pk).heartbeat_at - ctx.run.started_at)

    run = run_job(spec(func=slow))
    assert run.status == JobRun.Status.SUCCESS and intruder_got_it and not any(intruder_got_it)
    assert beats[0] > timedelta(seconds=2)  # the admin sees the run alive
    assert JobState.objects.get(job="test-job").locked_by == ""


@needs_postgres
@pytest.mark.django_db(transaction=True)
def test_concurrent_runs_of_one_job_one_runs_one_is_skipped():
    assert connection.vendor == "postgresql"
    inside, release = threading.Event(), threading.Event()
    results = {}

    def slow(ctx):
        inside.set()
        assert release.wait(10)

    def first():
        try:
            results["first"] = run_job(spec(func=slow)).status
        finally:
            connection.close()

    def second():
        try:
            results["second"] = run_job(spec()).status
        finally:
            connection.close()

    t1 = threading.Thread(target=first)
    t1.start()
    assert inside.wait(10)
    t2 = threading.Thread(target=second)
    t2.start()
    t2.join(10)
    release.set()
    t1.join(10)
    assert results == {"first": JobRun.Status.SUCCESS, "second": JobRun.Status.SKIPPED}
    assert JobRun.objects.filter(job="test-job").count() == 2


@needs_postgres
@pytest.mark.django_db(transaction=True)
def test_racing_lock_takers_get_exactly_one_lock():
    """Many threads try at the same instant, on a job with no JobState row yet."""
    barrier = threading.Barrier(8)
    won = []

    def take(i):
        try:
            barrier.wait(5)
            if acquire_lock("race-job", f"owner-{i}"):
                won.append(i)
        finally:
            connection.close()

    threads = [threading.Thread(target=take, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert len(won) == 1
    assert JobState.objects.get(job="race-job").locked_by == f"owner-{won[0]}"
