"""The `marketplace-stock` and `marketplace-stock-alerts` jobs (registered in integrations/jobs.py)
and the event-driven entry the debounced task calls. Each channel gets its turn even when another
fails; a retryable failure is raised at the end so the task retries, after the others are done."""
from __future__ import annotations

import logging

from django.conf import settings
from django.utils import timezone

from integrations.http.errors import UpstreamError
from integrations.models import JobRun, JobState
from integrations.runs import JobContext

from . import registry
from .alerts import stock_alerts_check as _alerts_check
from .debounce import release, schedule_push
from .services import channel_stock_push

log = logging.getLogger("syncsite.marketplaces")

JOB = "marketplace-stock"


def configured() -> bool:
    """Any marketplace has credentials (a channel without them reports "not configured")."""
    return registry.any_configured()


def stock_push(ctx: JobContext) -> None:
    """Delta (default): offers whose figure may have changed, only differing figures sent.
    Full (--full, nightly): every offer sent again, reconciling whatever drifted."""
    source = f"{ctx.run.trigger}-full" if ctx.full else ctx.run.trigger
    failure: UpstreamError | None = None
    retry_in: float | None = None
    for adapter in registry.channels():
        report = channel_stock_push(adapter=adapter, ctx=ctx, full=ctx.full, source=source)
        if report.status in ("not_configured", "disabled"):
            ctx.count(f"{adapter.system}_{report.status}")
            continue
        for key, value in report.counts().items():
            ctx.count(key, value)
        if report.status != "ok":
            ctx.count(f"{adapter.system}_{report.status}")
        if report.retry_in is not None:
            retry_in = report.retry_in if retry_in is None else min(retry_in, report.retry_in)
        failure = failure or report.failure
    if retry_in is not None:
        schedule_push(countdown=retry_in)
    if failure is not None:
        raise failure


def stock_alerts_check(ctx: JobContext) -> None:
    _alerts_check(ctx)


def stock_push_on_event() -> None:
    """What the debounced task runs: free the "scheduled" lease first (changes from now on
    schedule the next push), then run the job. If a run holds the job lock, try again shortly
    rather than wait for the beat."""
    from integrations import jobs
    from integrations.runs import run_job

    release()
    state = JobState.objects.filter(job=JOB).values_list("locked_by", "locked_until").first()
    if state and state[0] and state[1] and state[1] > timezone.now():
        schedule_push(countdown=max(settings.MARKETPLACES["DEBOUNCE_SECONDS"], 10.0))
        return
    try:
        run = run_job(jobs.get(JOB), trigger="event")
    except UpstreamError as exc:  # recorded on the run; the follow-up is already scheduled
        log.warning("marketplace.stock.event-push-failed %s", exc)
        return
    if run.status == JobRun.Status.SKIPPED:
        schedule_push(countdown=max(settings.MARKETPLACES["DEBOUNCE_SECONDS"], 10.0))
