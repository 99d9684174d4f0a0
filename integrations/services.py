"""Integration writes called from the edges (admin actions, views).

`job_enqueue` is how the admin's "Sync now" starts a job: it only publishes the Celery task (the
admin never calls an upstream in a request); the worker runs the same `run_job` as beat and
`manage.py sync`.
"""
from __future__ import annotations

import logging
from functools import partial

from django.db import transaction
from kombu.exceptions import OperationalError as KombuOperationalError

from . import jobs

log = logging.getLogger("syncsite.jobs")


class EnqueueError(Exception):
    """The broker refused or could not be reached: the run was not queued."""


def _publish(job: str, full: bool, trigger: str) -> None:
    from .tasks import run_job_task  # the task module imports the registry lazily; keep it so

    try:
        run_job_task.delay(job, full=full, trigger=trigger)
    except (KombuOperationalError, OSError) as exc:
        log.error("jobs.enqueue-failed job=%s full=%s %s: %s", job, full, exc.__class__.__name__, exc)
        raise EnqueueError(f"could not queue {job}: the task broker is unreachable ({exc.__class__.__name__})") from exc
    log.info("jobs.enqueued job=%s full=%s trigger=%s", job, full, trigger)


def job_enqueue(*, job: str, full: bool = False, trigger: str = "admin") -> None:
    """Queue one run of `job` after the current transaction commits.

    Outside a transaction (an admin request) `on_commit` publishes at once, so a broker failure
    raises EnqueueError here and the caller can tell the user. Unknown job names raise KeyError
    before anything is queued.
    """
    spec = jobs.get(job)
    transaction.on_commit(partial(_publish, spec.name, full, trigger))
