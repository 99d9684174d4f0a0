"""The admin home dashboard: one row per flow, read from the job registry, the schedule and the run
records, so a job any wing registers (`integrations.jobs.register`) appears here with no code of
its own. Database only, and a fixed number of queries whatever the size of the tables: one for the
job states (with their last runs), one for running runs, one aggregate over the last 24 h of runs,
one for stock changes per hour, and one small count per "items waiting" source.

Colours (also written on the page, see RULES):
- grey: not configured (no credentials: its runs are no-ops), or not scheduled and never run;
- red: the last run failed, a run stopped reporting (killed worker), or the last success is older
  than 3 schedule intervals (never, for a scheduled job that has run);
- amber: the last success is older than 1.5 intervals (plus a minute), failed runs or record
  errors in the last 24 h, a part of the flow (a marketplace, a supplier) in trouble, or never run
  yet;
- green: everything else.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import timezone as dt_timezone
from datetime import datetime, timedelta
from typing import Callable

from django.db.models import Count, DurationField, ExpressionWrapper, F, Max, Q, Sum
from django.db.models.functions import TruncHour
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext_lazy as _, ngettext

from . import jobs
from .models import JobRun, JobState
from .runs import LEASE, JobSpec
from .schedule import SCHEDULE, Entry
from .schedules_words import cron_interval, cron_words

log = logging.getLogger("syncsite.dashboard")

GREEN, AMBER, RED, GREY = "green", "amber", "red", "grey"
COLOURS = {GREEN: "#2e7d32", AMBER: "#ef8f00", RED: "#c62828", GREY: "#757575"}
LABELS = {GREEN: _("healthy"), AMBER: _("needs a look"), RED: _("failing"), GREY: _("off")}
RULES = (
    (GREY, _("not configured (no credentials: its runs do nothing), or not scheduled and never run")),
    (RED, _("the last run failed, a run stopped reporting (killed worker), or the last success is older than "
            "3 schedule intervals")),
    (AMBER, _("the last success is older than 1.5 schedule intervals (plus a minute), there were failed runs or "
              "record errors in the last 24 hours, a part of the flow (a marketplace, a supplier) is in trouble, or "
              "the job has never run")),
    (GREEN, _("everything else: the last run succeeded recently enough for its schedule")),
)
WINDOW = timedelta(hours=24)
GRACE = timedelta(minutes=1)


# ------------------------------------------------------------------------------------------------
# "Items waiting": per job, a count of the work queued for it (one small query each)
# ------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Waiting:
    count: int
    label: str
    url: str = ""


WaitingFn = Callable[[], "Waiting | None"]
WAITING: dict[str, WaitingFn] = {}


def register_waiting(job: str, fn: WaitingFn) -> WaitingFn:
    """A wing tells the dashboard how to count what its job has waiting (one indexed COUNT)."""
    WAITING[job] = fn
    return fn


def _orders_waiting() -> Waiting:
    from orders.models import ExportState

    from .models import OrderBinding, System

    counts = OrderBinding.objects.filter(system=System.MOYSKLAD,
                                         export_state__in=[ExportState.PENDING, ExportState.FAILED]).aggregate(
        pending=Count("pk", filter=Q(export_state=ExportState.PENDING)),
        failed=Count("pk", filter=Q(export_state=ExportState.FAILED)))
    label = _("%(pending)s to export, %(failed)s failed") % counts
    return Waiting(counts["pending"] + counts["failed"], label,
                   reverse("admin:orders_order_changelist") + "?export=failed")


def _marketplace_waiting() -> Waiting:
    from .models import ChannelOffer

    counts = ChannelOffer.objects.filter(status__in=[ChannelOffer.Status.PENDING, ChannelOffer.Status.ERROR]) \
        .aggregate(pending=Count("pk", filter=Q(status=ChannelOffer.Status.PENDING)),
                   error=Count("pk", filter=Q(status=ChannelOffer.Status.ERROR)))
    label = _("%(pending)s offers to send, %(error)s in error") % counts
    return Waiting(counts["pending"] + counts["error"], label,
                   reverse("admin:integrations_channeloffer_changelist") + "?status__exact=error")


def _events_waiting() -> Waiting:
    from .models import InboundEvent

    counts = InboundEvent.objects.filter(status__in=["received", "failed"]).aggregate(
        received=Count("pk", filter=Q(status="received")), failed=Count("pk", filter=Q(status="failed")))
    label = _("%(received)s webhook events queued, %(failed)s failed") % counts
    return Waiting(counts["received"] + counts["failed"], label,
                   reverse("admin:integrations_inboundevent_changelist") + "?status__exact=failed")


def _alerts_waiting() -> Waiting:
    from .models import StockAlert

    n = StockAlert.objects.filter(cleared_at__isnull=True).count()
    return Waiting(n, ngettext("%(n)s open alert", "%(n)s open alerts", n) % {"n": n},
                   reverse("admin:integrations_stockalert_changelist") + "?state=open")


@dataclass(frozen=True)
class Part:
    """One sub-flow of a job (a marketplace of `marketplace-stock`, a supplier of `supplier-stock`)."""

    name: str
    colour: str
    detail: str
    url: str = ""

    @property
    def colour_hex(self) -> str:
        return COLOURS[self.colour]


PartsFn = Callable[[], "list[Part]"]
PARTS: dict[str, PartsFn] = {}


def register_parts(job: str, fn: PartsFn) -> PartsFn:
    """A wing lists its job's sub-flows (each supplier, each marketplace) for the dashboard: a fixed
    number of queries, whatever the number of rows behind them."""
    PARTS[job] = fn
    return fn


def _marketplace_parts() -> list[Part]:
    from .models import Channel, ChannelOffer

    counts: dict[tuple[int, str], int] = {}
    for row in ChannelOffer.objects.filter(status__in=[ChannelOffer.Status.PENDING, ChannelOffer.Status.ERROR]) \
            .order_by().values("channel_id", "status").annotate(n=Count("pk")):
        counts[(row["channel_id"], row["status"])] = row["n"]
    parts = []
    for channel in Channel.objects.order_by("system"):
        errors, pending = counts.get((channel.pk, "error"), 0), counts.get((channel.pk, "pending"), 0)
        if not channel.enabled:
            colour, detail = GREY, str(_("switched off"))
        elif channel.health == Channel.Health.UNHEALTHY:
            colour, detail = RED, str(_("unhealthy: %(message)s") % {"message": channel.health_message[:120]})
        else:
            colour = AMBER if errors else GREEN
            detail = str(_("%(error)s in error, %(pending)s to send") % {"error": errors, "pending": pending})
        parts.append(Part(str(channel), colour, detail,
                          reverse("admin:integrations_channeloffer_changelist") + f"?channel__id__exact={channel.pk}"))
    return parts


register_parts("marketplace-stock", _marketplace_parts)
register_waiting("orders-export", _orders_waiting)
register_waiting("marketplace-stock", _marketplace_waiting)
register_waiting("moysklad-order-statuses", _events_waiting)
register_waiting("marketplace-stock-alerts", _alerts_waiting)


# ------------------------------------------------------------------------------------------------
# Rows
# ------------------------------------------------------------------------------------------------
@dataclass
class FlowRow:
    name: str
    description: str
    configured: bool | None
    schedule: list[str]
    interval: timedelta | None
    has_full: bool
    last_run: JobRun | None = None
    last_success_at: datetime | None = None
    running: JobRun | None = None
    runs_24h: int = 0
    failed_24h: int = 0
    record_errors_24h: int = 0
    durations: list[float | None] = field(default_factory=list)  # seconds per hour, oldest first
    waiting: Waiting | None = None
    parts: list[Part] = field(default_factory=list)
    colour: str = GREY
    reasons: list[str] = field(default_factory=list)

    @property
    def colour_hex(self) -> str:
        return COLOURS[self.colour]

    @property
    def colour_label(self) -> str:
        return LABELS[self.colour]

    @property
    def staleness(self) -> timedelta | None:
        return timezone.now() - self.last_success_at if self.last_success_at else None

    @property
    def errors_24h(self) -> int:
        return self.failed_24h + self.record_errors_24h


def job_has_full(spec: JobSpec, entries: list[Entry] | None = None) -> bool:
    """Whether "Full sync" means anything for this job: the spec says so (`full_mode`), else the
    schedule runs it in full at some point."""
    explicit = getattr(spec, "full_mode", None)
    if explicit is not None:
        return bool(explicit)
    entries = entries if entries is not None else [e for e in SCHEDULE if e.job == spec.name]
    return any(e.full for e in entries)


def _configured(spec: JobSpec) -> bool | None:
    try:
        return bool(spec.configured())
    except Exception:  # a broken check must not take the dashboard down
        log.exception("dashboard.configured-check-failed job=%s", spec.name)
        return None


def hours_axis(now: datetime) -> list[datetime]:
    """The 24 hour starts the charts show, oldest first (the current, partial hour last)."""
    top = now.replace(minute=0, second=0, microsecond=0)
    return [top - timedelta(hours=23 - i) for i in range(24)]


def flows_list(now: datetime | None = None) -> list[FlowRow]:
    now = now or timezone.now()
    since = now - WINDOW
    hours = hours_axis(now)
    entries: dict[str, list[Entry]] = {}
    for entry in SCHEDULE:
        entries.setdefault(entry.job, []).append(entry)

    states = {s.job: s for s in JobState.objects.filter(job__in=list(jobs.JOBS))
              .select_related("last_run").defer("last_run__errors")}
    running = {}
    for run in JobRun.objects.filter(status=JobRun.Status.RUNNING, job__in=list(jobs.JOBS), started_at__gte=since) \
            .defer("errors").order_by("started_at"):
        running[run.job] = run  # the newest running run per job
    totals = {row["job"]: row for row in JobRun.objects.filter(started_at__gte=since, job__in=list(jobs.JOBS))
              .values("job").annotate(n=Count("pk"), failed=Count("pk", filter=Q(status=JobRun.Status.FAILED)),
                                      record_errors=Sum("error_count"))}
    duration = ExpressionWrapper(F("finished_at") - F("started_at"), output_field=DurationField())
    per_hour: dict[tuple[str, datetime], float] = {}
    for row in JobRun.objects.filter(started_at__gte=hours[0], finished_at__isnull=False, job__in=list(jobs.JOBS)) \
            .annotate(hour=TruncHour("started_at")).values("job", "hour").annotate(longest=Max(duration)):
        value = row["longest"]
        per_hour[(row["job"], row["hour"])] = value.total_seconds() if isinstance(value, timedelta) else (
            (value or 0) / 1_000_000)

    out = []
    for name, spec in jobs.JOBS.items():
        job_entries = entries.get(name, [])
        delta_entries = [e for e in job_entries if not e.full] or job_entries
        intervals = [i for i in (cron_interval(e.cron) for e in delta_entries) if i]
        state = states.get(name)
        row = FlowRow(
            name=name, description=spec.description, configured=_configured(spec),
            schedule=[f"{cron_words(e.cron)}{' ' + str(_('(full)')) if e.full else ''}" for e in job_entries],
            interval=min(intervals) if intervals else None, has_full=job_has_full(spec, job_entries),
            last_run=state.last_run if state else None,
            last_success_at=state.cursor if state else None,
            running=running.get(name),
        )
        total = totals.get(name)
        if total:
            row.runs_24h, row.failed_24h, row.record_errors_24h = total["n"], total["failed"], total["record_errors"] or 0
        row.durations = [per_hour.get((name, h)) for h in hours]
        fn = WAITING.get(name)
        if fn is not None:
            try:
                row.waiting = fn()
            except Exception:
                log.exception("dashboard.waiting-failed job=%s", name)
        parts_fn = PARTS.get(name)
        if parts_fn is not None:
            try:
                row.parts = parts_fn()
            except Exception:
                log.exception("dashboard.parts-failed job=%s", name)
        row.colour, row.reasons = flow_colour(row, now)
        out.append(row)
    return out


def flow_colour(row: FlowRow, now: datetime) -> tuple[str, list[str]]:
    """The colour and the reasons for it (the rules at the top of this module)."""
    last = row.last_run
    if row.configured is False or (last is not None and last.status == JobRun.Status.NOT_CONFIGURED):
        return GREY, [str(_("not configured"))]
    if not row.schedule and last is None and row.running is None:
        return GREY, [str(_("not scheduled and never run"))]
    reasons: list[str] = []
    red = False
    if last is not None and last.status == JobRun.Status.FAILED:
        red = True
        reasons.append(str(_("the last run failed")))
    if row.running is not None:
        beat = row.running.heartbeat_at or row.running.started_at
        if beat < now - LEASE:
            red = True
            reasons.append(str(_("a run stopped reporting")))
    staleness = now - row.last_success_at if row.last_success_at else None
    if row.interval and staleness is not None and staleness > 3 * row.interval + GRACE:
        red = True
        reasons.append(str(_("no success for more than 3 intervals")))
    if red:
        return RED, reasons
    if row.last_success_at is None and last is None:
        return AMBER, [str(_("never run"))]
    if row.interval and staleness is not None and staleness > 1.5 * row.interval + GRACE:
        reasons.append(str(_("late for its schedule")))
    if row.failed_24h:
        reasons.append(ngettext("%(n)s failed run in 24 h", "%(n)s failed runs in 24 h", row.failed_24h)
                       % {"n": row.failed_24h})
    if row.record_errors_24h:
        reasons.append(ngettext("%(n)s record error in 24 h", "%(n)s record errors in 24 h", row.record_errors_24h)
                       % {"n": row.record_errors_24h})
    if row.last_success_at is None and last is not None:
        reasons.append(str(_("no successful run yet")))
    troubled = [p.name for p in row.parts if p.colour in (RED, AMBER)]
    if troubled:
        reasons.append(str(_("needs a look: %(parts)s") % {"parts": ", ".join(troubled)}))
    return (AMBER if reasons else GREEN), reasons


def stock_changes_per_hour(now: datetime | None = None) -> list[tuple[datetime, int]]:
    """Stock changes logged per hour over the last 24 h (one GROUP BY on the `at` index)."""
    from stock.models import StockChange

    hours = hours_axis(now or timezone.now())
    counts = {row["hour"]: row["n"] for row in StockChange.objects.filter(at__gte=hours[0]).order_by()
              .annotate(hour=TruncHour("at")).values("hour").annotate(n=Count("pk"))}
    return [(h, counts.get(h, 0)) for h in hours]


def dashboard_context(now: datetime | None = None) -> dict:
    now = now or timezone.now()
    flows = flows_list(now)
    changes = stock_changes_per_hour(now)
    summary = {c: sum(1 for f in flows if f.colour == c) for c in (GREEN, AMBER, RED, GREY)}
    return {"flows": flows, "changes": changes, "rules": [(COLOURS[c], LABELS[c], text) for c, text in RULES],
            "summary": [(COLOURS[c], LABELS[c], n) for c, n in summary.items()], "now": now,
            "any_running": any(f.running for f in flows), "circuits": circuits_open(now)}


def circuits_open(now: datetime) -> list[dict]:
    """Upstreams whose calls are paused by their circuit breaker (integrations/http/ratelimit.py):
    the system, how many failures in a row, until when. Never fails the page."""
    from .http.ratelimit import open_circuits

    try:
        found = open_circuits()
    except Exception:
        return []
    return [{"system": c["name"].split(":")[0], "failures": c["failures"],
             "until": datetime.fromtimestamp(c["until"], tz=dt_timezone.utc)} for c in found]
