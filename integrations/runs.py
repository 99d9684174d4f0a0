"""Running a job: not-configured check, lease lock, JobRun bookkeeping, cursor, progress.

`run_job` is what the Celery task, `manage.py sync JOB` and the admin's "sync now" all end in,
so a job behaves the same however it was started."""
from __future__ import annotations

import logging
import os
import socket
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Callable

from django.db import transaction
from django.db.models.functions import Now
from django.utils import timezone

from syncsite import gctune
from syncsite.leases import Lease, lease_seconds

from .http.errors import NotConfigured
from .models import JobRun, JobState

log = logging.getLogger("syncsite.jobs")

#: the job lock's lease (syncsite.leases): renewed by a heartbeat while the job runs, so a killed
#: worker's lock frees itself this long after its last beat
LEASE = timedelta(seconds=lease_seconds())
MAX_STORED_ERRORS = 200


@dataclass(frozen=True)
class JobSpec:
    name: str
    func: Callable[["JobContext"], None]
    configured: Callable[[], bool]
    description: str
    overlap: timedelta = timedelta(seconds=120)
    queue: str = "celery"


class JobContext:
    """What a job function gets: its window, counters, error recording and progress reporting."""

    #: seconds between progress writes to the run row (each also renews the lock's lease)
    flush_every = 2.0

    def __init__(self, *, spec: JobSpec, run: JobRun, since: datetime | None, owner: str,
                 progress: Callable[[int, int | None, dict], None] | None = None):
        self.spec, self.run, self.since, self.owner = spec, run, since, owner
        self.full = run.full
        self.started_at = run.started_at
        self.counts: dict[str, int] = {}
        self.errors: list[dict] = []
        self.error_count = 0
        self.done = 0
        self.total: int | None = None
        self._progress_cb = progress
        self._last_flush = 0.0
        self._lock = threading.Lock()

    def count(self, key: str, n: int = 1) -> None:
        with self._lock:
            self.counts[key] = self.counts.get(key, 0) + n

    def error(self, ref: str, message: str) -> None:
        """A per-record data problem: counted and stored on the run, never raised."""
        with self._lock:
            self.error_count += 1
            if len(self.errors) < MAX_STORED_ERRORS:
                self.errors.append({"ref": str(ref)[:200], "error": str(message)[:500]})
        log.warning("%s.record-error ref=%s %s", self.spec.name, ref, message)

    def set_total(self, total: int | None) -> None:
        self.total = total
        self._report(force=True)

    def advance(self, n: int = 1) -> None:
        self.done += n
        self._report()

    def _report(self, force: bool = False) -> None:
        if self._progress_cb:
            self._progress_cb(self.done, self.total, self.counts)
        now = time.monotonic()
        if force or now - self._last_flush > self.flush_every:
            self._last_flush = now
            self.flush()

    def flush(self) -> None:
        """Write progress to the run row (the admin reads it). The lock's lease is renewed by its
        heartbeat, whether or not the job reports progress."""
        JobRun.objects.filter(pk=self.run.pk).update(
            counts=dict(self.counts), progress_done=self.done, progress_total=self.total,
            errors=list(self.errors), error_count=self.error_count, heartbeat_at=timezone.now())


class JobLocked(Exception):
    pass


def _owner() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{threading.get_ident()}"


def job_lease(owner: str) -> Lease:
    """The job lock: a lease on the job's JobState row."""
    return Lease(JobState, owner_field="locked_by", until_field="locked_until", owner=owner)


def acquire_lock(job: str, owner: str) -> Lease | None:
    """Take the job's lock if it is free or its lease ran out (one conditional UPDATE). The lease,
    or None."""
    JobState.objects.get_or_create(job=job)
    lease = job_lease(owner)
    return lease if lease.take_one(job) else None


def release_lock(job: str, owner: str) -> None:
    job_lease(owner).release([job])


def run_job(spec: JobSpec, *, full: bool = False, trigger: str = "beat",
            progress: Callable[[int, int | None, dict], None] | None = None,
            raise_errors: bool = True) -> JobRun:
    """Run one job now and return its JobRun. A failure is recorded on the run (status failed,
    cursor unchanged) and then re-raised so the Celery task can retry it; `raise_errors=False`
    (the management command) returns the failed run instead."""
    started = timezone.now()
    if not spec.configured():
        run = JobRun.objects.create(job=spec.name, full=full, trigger=trigger, started_at=started,
                                    finished_at=started, status=JobRun.Status.NOT_CONFIGURED,
                                    message="not configured: no credentials for this system")
        JobState.objects.update_or_create(job=spec.name, defaults={"last_run": run})
        return run
    owner = _owner()
    lease = acquire_lock(spec.name, owner)
    if lease is None:
        return JobRun.objects.create(job=spec.name, full=full, trigger=trigger, started_at=started,
                                     finished_at=started, status=JobRun.Status.SKIPPED,
                                     message="another run of this job holds the lock")
    try:
        state = JobState.objects.get(job=spec.name)
        since = None if (full or state.cursor is None) else state.cursor - spec.overlap
        run = JobRun.objects.create(job=spec.name, full=full, trigger=trigger, started_at=started,
                                    heartbeat_at=started, window_from=since)
        ctx = JobContext(spec=spec, run=run, since=since, owner=owner, progress=progress)
        # Each renewal of the lock also marks the run alive for the admin's sync-health view.
        lease.on_beat = lambda: JobRun.objects.filter(pk=run.pk).update(heartbeat_at=Now())
        try:
            with lease.kept_alive(), gctune.for_bulk_work():
                spec.func(ctx)
        except NotConfigured as exc:
            _finish(ctx, JobRun.Status.NOT_CONFIGURED, str(exc), lease=lease)
            return run
        except BaseException as exc:
            _finish(ctx, JobRun.Status.FAILED, f"{exc.__class__.__name__}: {exc}", lease=lease)
            log.exception("%s.failed", spec.name)
            if raise_errors or not isinstance(exc, Exception):
                raise
            return run
        summary = f"{ctx.error_count} record errors" if ctx.error_count else "ok"
        _finish(ctx, JobRun.Status.SUCCESS, summary, move_cursor=True, lease=lease)
        return run
    finally:
        lease.release()  # whatever happened above; a no-op once _finish released it


def _finish(ctx: JobContext, status: str, message: str, move_cursor: bool = False, lease: Lease | None = None) -> None:
    """Close the run, move the cursor and free the lock in one transaction: whoever sees the run
    finished also sees the lock free."""
    with transaction.atomic():
        _close(ctx, status, message, move_cursor)
        if lease is not None:
            lease.release()


def _close(ctx: JobContext, status: str, message: str, move_cursor: bool) -> None:
    run = ctx.run
    run.status, run.message, run.finished_at = status, message[:4000], timezone.now()
    run.counts, run.errors, run.error_count = dict(ctx.counts), list(ctx.errors), ctx.error_count
    run.progress_done, run.progress_total = ctx.done, ctx.total
    run.save()
    updates = {"last_run": run}
    if move_cursor:
        # The next delta starts where this run started (minus the overlap): anything that changed
        # while we were paging is read again, never missed.
        updates["cursor"] = run.started_at
        if run.full:
            updates["full_cursor"] = run.started_at
    JobState.objects.filter(job=ctx.spec.name).update(**updates)
