"""The job registry: job name (fixed in the public interface) -> the function that does it.
Celery's `integrations.run_job` task, `manage.py sync JOB` and the admin all look jobs up here."""
from __future__ import annotations

from datetime import timedelta

from django.conf import settings

from .moysklad import client as moysklad_client
from .moysklad import jobs as moysklad_jobs
from .runs import JobSpec


def _moysklad_configured() -> bool:
    return moysklad_client.is_configured()


def _moysklad_overlap() -> timedelta:
    return timedelta(seconds=settings.MOYSKLAD["OVERLAP_SECONDS"])


JOBS: dict[str, JobSpec] = {}


def register(spec: JobSpec) -> JobSpec:
    JOBS[spec.name] = spec
    return spec


register(JobSpec("moysklad-catalog", moysklad_jobs.catalog_import, _moysklad_configured,
                 "MoySklad folders, products and variants → catalog (delta by `updated`; --full reconciles deletions)",
                 overlap=_moysklad_overlap()))
register(JobSpec("moysklad-stock", moysklad_jobs.stock_import, _moysklad_configured,
                 "MoySklad stock and reserve per warehouse (changedSince; --full reads every store)",
                 overlap=_moysklad_overlap()))


def get(name: str) -> JobSpec:
    try:
        return JOBS[name]
    except KeyError:
        raise KeyError(f"unknown job {name!r}; known: {', '.join(sorted(JOBS))}") from None
