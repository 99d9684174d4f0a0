"""Liveness of the Celery worker and beat, and of the scheduled flows.

Each worker writes a `ProcessHeartbeat` row every INTERVAL seconds from its timer thread (a
bootstep added in syncsite/celery.py); beat writes one from its scheduler loop (`BeatScheduler`,
the CELERY_BEAT_SCHEDULER). `/health/` and the container healthchecks (`python -m
syncsite.healthcheck`) read them: a kind with no row fresher than STALE_AFTER is down. A flow (a
job on the beat schedule, configured) is stale when its last success is older than twice the
longest gap between its scheduled runs (integrations/schedule.py)."""
from __future__ import annotations

import logging
import socket
import time
from datetime import datetime, timedelta

from django.db import connection
from django.utils import timezone
from django_celery_beat.schedulers import DatabaseScheduler

log = logging.getLogger("syncsite.heartbeat")

INTERVAL = 30.0
STALE_AFTER = timedelta(seconds=3 * INTERVAL)


def heartbeat_record(*, kind: str, name: str) -> None:
    from integrations.models import ProcessHeartbeat

    ProcessHeartbeat.objects.update_or_create(kind=kind, name=name[:255], defaults={"seen_at": timezone.now()})


def _worker_beat(hostname: str) -> None:
    """Runs in the worker's timer thread: never raises (a database hiccup must not stop the
    worker), and closes this thread's connection (it would otherwise idle until the worker ends)."""
    try:
        heartbeat_record(kind="worker", name=hostname)
    except Exception:
        log.warning("heartbeat.worker-failed %s", hostname, exc_info=True)
    finally:
        connection.close()


def heartbeat_age(*, kind: str, name: str | None = None, now: datetime | None = None) -> timedelta | None:
    """Age of the freshest heartbeat of `kind` (of the process `name`, if given); None if none."""
    from integrations.models import ProcessHeartbeat

    rows = ProcessHeartbeat.objects.filter(kind=kind)
    if name is not None:
        rows = rows.filter(name=name)
    seen = rows.order_by("-seen_at").values_list("seen_at", flat=True).first()
    return None if seen is None else (now or timezone.now()) - seen


def process_status(kind: str, *, now: datetime | None = None) -> str:
    age = heartbeat_age(kind=kind, now=now)
    if age is None:
        return "down: never seen"
    if age > STALE_AFTER:
        return f"down: last seen {_ago(age)} ago"
    return "ok"


def _ago(age: timedelta) -> str:
    seconds = int(age.total_seconds())
    if seconds < 120:
        return f"{seconds} s"
    if seconds < 7200:
        return f"{seconds // 60} min"
    return f"{seconds // 3600} h"


def cron_max_gap(cron) -> timedelta:
    """The longest wait between two runs of a crontab within a day (minute and hour fields)."""
    marks = sorted(h * 60 + m for h in cron.hour for m in cron.minute)
    if len(marks) == 1:
        return timedelta(days=1)
    gaps = [b - a for a, b in zip(marks, marks[1:])] + [marks[0] + 1440 - marks[-1]]
    return timedelta(minutes=max(gaps))


def stale_flows(*, now: datetime | None = None) -> dict[str, str]:
    """{job: why} for configured, scheduled jobs whose last success is older than twice the longest
    gap of their most frequent schedule entry. A job that never succeeded counts once it has been
    trying (its first run) for that long."""
    from django.db.models import Max, Min

    from integrations import jobs
    from integrations.models import JobRun
    from integrations.schedule import SCHEDULE

    now = now or timezone.now()
    every: dict[str, timedelta] = {}
    for entry in SCHEDULE:
        gap = cron_max_gap(entry.cron)
        every[entry.job] = min(gap, every.get(entry.job, gap))
    runs = {row["job"]: row for row in JobRun.objects.filter(job__in=list(every)).values("job").annotate(
        last_success=Max("finished_at", filter=_success()), first_started=Min("started_at"))}
    stale = {}
    for job, gap in every.items():
        spec = jobs.JOBS.get(job)
        if spec is None or not spec.configured():
            continue
        row = runs.get(job) or {}
        since = row.get("last_success") or row.get("first_started")
        if since is None or now - since <= 2 * gap:
            continue
        last = f"last success {_ago(now - since)} ago" if row.get("last_success") else "never succeeded"
        stale[job] = f"stale: {last}; runs every {_ago(gap)}"
    return stale


def _success():
    from django.db.models import Q

    from integrations.models import JobRun

    return Q(status=JobRun.Status.SUCCESS)


class BeatScheduler(DatabaseScheduler):
    """django-celery-beat's scheduler, plus a heartbeat at most every INTERVAL seconds (it ticks
    every few seconds)."""

    _last_heartbeat = 0.0

    def tick(self, *args, **kwargs):
        if time.monotonic() - self._last_heartbeat >= INTERVAL:
            self._last_heartbeat = time.monotonic()
            try:
                heartbeat_record(kind="beat", name=socket.gethostname())
            except Exception:
                log.warning("heartbeat.beat-failed", exc_info=True)
        return super().tick(*args, **kwargs)
