"""Thin Celery tasks: they find the job and call the same runner `manage.py sync` uses."""
from celery import shared_task

from .http.errors import RateLimitedError, UpstreamUnavailableError


@shared_task(name="integrations.run_job", bind=True, acks_late=True,
             autoretry_for=(UpstreamUnavailableError, RateLimitedError), max_retries=3,
             retry_backoff=30, retry_backoff_max=600, retry_jitter=True)
def run_job_task(self, job: str, full: bool = False, trigger: str = "beat") -> dict:
    from . import jobs
    from .runs import run_job

    run = run_job(jobs.get(job), full=full, trigger=trigger)
    return {"run": run.pk, "status": run.status}


# Order export and webhook-event tasks live beside their code; import them so the worker knows them.
from .moysklad import tasks as _moysklad_tasks  # noqa: E402,F401
from .marketplaces import tasks as _marketplace_tasks  # noqa: E402,F401
