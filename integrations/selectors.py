"""Integration reads for the admin's sync-health overview. Database only: nothing here may call an
upstream (the admin must stay fast and work while an upstream is down)."""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime

from django.utils import timezone
from django.utils.translation import gettext

from . import jobs
from .models import JobRun, JobState
from .runs import LEASE, JobSpec
from .schedule import SCHEDULE
from .schedules_words import cron_words

log = logging.getLogger("syncsite.jobs")


@dataclass(frozen=True)
class JobHealth:
    name: str
    description: str
    configured: bool | None  # None: the check itself failed (logged)
    schedule: list[str] = field(default_factory=list)
    last_run: JobRun | None = None  # the latest attempt, whatever its outcome
    last_success_at: datetime | None = None  # start of the last successful run (the job's cursor)
    locked_by: str = ""
    locked_until: datetime | None = None

    @property
    def running_without_heartbeat(self) -> bool:
        """A run still marked running whose worker stopped reporting: probably killed. Its lock
        frees itself when the lease ends; the next scheduled run then proceeds."""
        run = self.last_run
        if run is None or run.status != JobRun.Status.RUNNING:
            return False
        beat = run.heartbeat_at or run.started_at
        return beat < timezone.now() - LEASE

    @property
    def locked(self) -> bool:
        return bool(self.locked_by and self.locked_until and self.locked_until > timezone.now())


def _configured(spec: JobSpec) -> bool | None:
    try:
        return bool(spec.configured())
    except Exception:  # a broken check must not take the overview down with it
        log.exception("jobs.configured-check-failed job=%s", spec.name)
        return None


def job_health_list() -> list[JobHealth]:
    """Every registered job with its configuration, schedule, latest run, last success and lock.

    One query for the job states and one per job for its latest run (an index range scan on
    (job, -started_at)); the registry holds about ten jobs, and the run table grows without bound,
    so this beats a single query that ranks every run."""
    states = JobState.objects.in_bulk(list(jobs.JOBS), field_name="job")
    schedules: dict[str, list[str]] = {}
    for entry in SCHEDULE:
        schedules.setdefault(entry.job, []).append(
            f"{cron_words(entry.cron)}{' ' + gettext('(full)') if entry.full else ''}")
    out = []
    for name, spec in jobs.JOBS.items():
        state = states.get(name)
        last = JobRun.objects.filter(job=name).defer("errors").order_by("-started_at", "-id").first()
        out.append(JobHealth(
            name=name, description=spec.description, configured=_configured(spec),
            schedule=schedules.get(name, []), last_run=last,
            last_success_at=state.cursor if state else None,
            locked_by=state.locked_by if state else "", locked_until=state.locked_until if state else None,
        ))
    return out
