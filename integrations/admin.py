"""Sync health in the admin: job runs (with a per-job overview and "Sync now"), job state and
bindings. Everything is read-only; the only thing the admin does is queue a run through
`integrations.services.job_enqueue`. No upstream is called in an admin request.
"""
from __future__ import annotations

from datetime import timedelta
from typing import Any, Iterable

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseNotAllowed, HttpResponseRedirect
from django.urls import path, reverse
from django.utils import timezone
from django.utils.safestring import mark_safe
from django.utils.translation import gettext, gettext_lazy as _, ngettext
from django.utils.html import format_html, format_html_join

from syncsite.admin_tools import BindingAdmin, ReadOnlyAdminMixin, admin_link, admin_url

from . import jobs
from .models import CategoryBinding, JobRun, JobState, OfferBinding, ProductBinding, WarehouseBinding
from .dashboard import job_has_full
from .selectors import JobHealth, job_health_list
from .services import EnqueueError, job_enqueue

STATUS_COLOURS = {
    JobRun.Status.SUCCESS: "#2e7d32",
    JobRun.Status.FAILED: "#c62828",
    JobRun.Status.RUNNING: "#1565c0",
    JobRun.Status.SKIPPED: "#ef6c00",
    JobRun.Status.NOT_CONFIGURED: "#757575",
}
STATUS_LABELS = dict(JobRun.Status.choices)


def status_badge(status: str, label: str | None = None) -> str:
    return format_html(
        '<span style="color:#fff;background:{};padding:1px 6px;border-radius:3px;white-space:nowrap">{}</span>',
        STATUS_COLOURS.get(status, "#757575"), label or STATUS_LABELS.get(status, status))


def human_duration(delta: timedelta | None) -> str:
    if delta is None:
        return "—"
    seconds = delta.total_seconds()
    if seconds < 60:
        return gettext("%(s).1f s") % {"s": seconds}
    minutes, sec = divmod(int(seconds), 60)
    if minutes < 60:
        return gettext("%(m)s min %(s)s s") % {"m": minutes, "s": sec}
    hours, minutes = divmod(minutes, 60)
    return gettext("%(h)s h %(m)s min") % {"h": hours, "m": minutes}


def count_label(key: str) -> str:
    """A counter's key as words: "unknown_items" -> "unknown items"."""
    return key.replace("_", " ").replace("-", " ")


def counts_summary(counts: dict[str, Any], limit: int = 4) -> str:
    """The non-zero counters, biggest first, one per line ("unknown items: 21"): what the run did,
    at a glance; the rest are named in the tooltip ("and 7 more")."""
    items = sorted(((k, v) for k, v in (counts or {}).items() if v), key=lambda kv: (-_num(kv[1]), kv[0]))
    if not items:
        return "—"
    shown = format_html_join(mark_safe("<br>"), "{}: <strong>{}</strong>",
                             ((count_label(k), v) for k, v in items[:limit]))
    if len(items) <= limit:
        return shown
    rest = ", ".join(f"{count_label(k)}: {v}" for k, v in items[limit:])
    more = ngettext("and %(n)s more", "and %(n)s more", len(items) - limit) % {"n": len(items) - limit}
    return format_html('{}<br><span title="{}" style="border-bottom:1px dotted">{}</span>', shown, rest, more)


def lock_owner(owner: str) -> str:
    """The lock's owner "host:pid:thread" in words: "host, process 123"."""
    host, _sep, rest = (owner or "").partition(":")
    pid = rest.split(":", 1)[0]
    if not pid.isdigit():
        return owner
    return gettext("%(host)s, process %(pid)s") % {"host": host, "pid": pid}


def _num(value: Any) -> float:
    return value if isinstance(value, (int, float)) else 0


# ------------------------------------------------------------------------------------------------
# Job runs: the sync-health page
# ------------------------------------------------------------------------------------------------
class JobFilter(admin.SimpleListFilter):
    """Jobs from the registry (a SELECT DISTINCT over an ever-growing run table would be slow, and
    would hide jobs that never ran)."""

    title = _("job")
    parameter_name = "job"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return [(name, name) for name in sorted(jobs.JOBS)]

    def queryset(self, request: HttpRequest, queryset: QuerySet[JobRun]) -> QuerySet[JobRun]:
        return queryset.filter(job=self.value()) if self.value() else queryset


@admin.register(JobRun)
class JobRunAdmin(admin.ModelAdmin):
    """Each run of each job. The changelist opens with an overview of every registered job (last run,
    last success, lock, Sync now buttons); see templates/admin/integrations/jobrun/change_list.html."""

    change_list_template = "admin/integrations/jobrun/change_list.html"
    list_display = ("job", "status_display", "trigger", "full", "started_at", "duration_display",
                    "counts_display", "error_count", "progress_display")
    list_filter = (JobFilter, "status", "trigger", "full", "started_at")
    search_fields = ("job", "message")
    list_per_page = 50
    show_full_result_count = False  # the table grows every few minutes; skip the extra COUNT(*)
    actions = ("sync_now", "sync_full")
    fields = ("job", "status_display", "trigger", "full", "started_at", "finished_at", "duration_display",
              "heartbeat_at", "window_from", "progress_display", "message", "counts_table", "error_count",
              "errors_table")
    readonly_fields = fields

    # -- permissions: view-only rows; starting a run needs the "add job run" permission ------------
    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_sync_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm("integrations.add_jobrun")

    def get_queryset(self, request: HttpRequest) -> QuerySet[JobRun]:
        qs = super().get_queryset(request)
        match = request.resolver_match
        if match and match.url_name and match.url_name.endswith("_changelist"):
            qs = qs.defer("errors")  # up to 200 stored errors per row: only the detail page shows them
        return qs

    # -- columns ----------------------------------------------------------------------------------
    @admin.display(description=_("status"), ordering="status")
    def status_display(self, run: JobRun) -> str:
        return status_badge(run.status)

    @admin.display(description=_("duration"))
    def duration_display(self, run: JobRun) -> str:
        return human_duration(run.duration)

    @admin.display(description=_("counts"))
    def counts_display(self, run: JobRun) -> str:
        return counts_summary(run.counts)

    @admin.display(description=_("progress"))
    def progress_display(self, run: JobRun) -> str:
        if run.progress_total:
            return f"{run.progress_done}/{run.progress_total}"
        return str(run.progress_done) if run.progress_done else "—"

    @admin.display(description=_("counts"))
    def counts_table(self, run: JobRun) -> str:
        if not run.counts:
            return "—"
        rows = format_html_join("", '<tr><td>{} <code class="quiet">{}</code></td><td>{}</td></tr>',
                                ((count_label(k), k, v) for k, v in sorted(run.counts.items())))
        return format_html("<table><tbody>{}</tbody></table>", rows)

    @admin.display(description=_("record errors"))
    def errors_table(self, run: JobRun) -> str:
        if not run.errors:
            return "—"
        rows = format_html_join("", "<tr><td><code>{}</code></td><td>{}</td></tr>",
                                ((e.get("ref", ""), e.get("error", "")) for e in run.errors))
        note = ""
        if run.error_count > len(run.errors):
            note = format_html("<p>{}</p>", gettext("Showing the first %(shown)s of %(total)s errors.")
                               % {"shown": len(run.errors), "total": run.error_count})
        return format_html("{}<table><thead><tr><th>{}</th><th>{}</th></tr></thead><tbody>{}</tbody></table>",
                           note, gettext("record"), gettext("error"), rows)

    # -- Sync now ---------------------------------------------------------------------------------
    @admin.action(description=_("Sync now: run the selected runs' jobs again (delta)"), permissions=["sync"])
    def sync_now(self, request: HttpRequest, queryset: QuerySet[JobRun]) -> None:
        self._enqueue(request, sorted(set(queryset.values_list("job", flat=True))), full=False)

    @admin.action(description=_("Full sync: run the selected runs' jobs again, reading everything"),
                  permissions=["sync"])
    def sync_full(self, request: HttpRequest, queryset: QuerySet[JobRun]) -> None:
        self._enqueue(request, sorted(set(queryset.values_list("job", flat=True))), full=True)

    def _enqueue(self, request: HttpRequest, names: Iterable[str], *, full: bool) -> None:
        queued: list[str] = []
        for name in names:
            spec = jobs.JOBS.get(name)
            if full and spec is not None and not job_has_full(spec):
                self.message_user(request, gettext("%(job)s has no full mode; skipped.") % {"job": name},
                                  messages.WARNING)
                continue
            try:
                job_enqueue(job=name, full=full, trigger="admin")
            except KeyError:
                self.message_user(request, gettext("%(job)s: no such job in the registry; skipped.") % {"job": name},
                                  messages.WARNING)
                continue
            except EnqueueError as exc:
                done = (" " + gettext("Queued before the failure: %(jobs)s.") % {"jobs": ", ".join(queued)}
                        if queued else "")
                self.message_user(request, gettext("%(error)s. Nothing more was queued; the scheduled runs will catch "
                                                   "up once the broker is back.") % {"error": exc} + done,
                                  messages.ERROR)
                return
            queued.append(name)
        if queued:
            text = (gettext("Queued full sync: %(jobs)s. The run appears below when a worker picks it up.") if full
                    else gettext("Queued sync: %(jobs)s. The run appears below when a worker picks it up."))
            self.message_user(request, text % {"jobs": ", ".join(queued)}, messages.SUCCESS)

    def get_urls(self) -> list:
        return [
            path("sync/", self.admin_site.admin_view(self.sync_view), name="integrations_jobrun_sync"),
            *super().get_urls(),
        ]

    def sync_view(self, request: HttpRequest) -> HttpResponse:
        """POST job=NAME [full=1]: the overview's Sync now / Full sync buttons."""
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        if not self.has_sync_permission(request):
            raise PermissionDenied(gettext("You may not start sync runs."))  # the read-only role: 403
        self._enqueue(request, [request.POST.get("job", "")], full=request.POST.get("full") == "1")
        return HttpResponseRedirect(reverse("admin:integrations_jobrun_changelist"))

    # -- overview ---------------------------------------------------------------------------------
    def changelist_view(self, request: HttpRequest, extra_context: dict | None = None) -> HttpResponse:
        extra_context = {**(extra_context or {}),
                         "sync_health": [self._health_row(h) for h in job_health_list()],
                         "can_sync": self.has_sync_permission(request)}
        return super().changelist_view(request, extra_context)

    def _health_row(self, health: JobHealth) -> dict[str, Any]:
        run = health.last_run
        if run is None:
            status = "—"
        elif health.running_without_heartbeat:
            status = status_badge(JobRun.Status.FAILED, gettext("running, no heartbeat"))
        else:
            status = status_badge(run.status)
        if health.configured is None:
            configured = gettext("check failed (see log)")
        else:
            configured = gettext("yes") if health.configured else gettext("no (no credentials: runs are no-ops)")
        return {
            "name": health.name,
            "description": health.description,
            "configured": configured,
            "schedule": ", ".join(health.schedule) or gettext("not scheduled"),
            "has_full": job_has_full(jobs.JOBS[health.name]),
            "last_run": run,
            "last_run_url": admin_url(run) if run else None,
            "status": status,
            "last_success_at": health.last_success_at,
            "lock": (gettext("held by %(owner)s until %(until)s") % {
                "owner": lock_owner(health.locked_by), "until": f"{timezone.localtime(health.locked_until):%H:%M:%S}"}
                     if health.locked and health.locked_until else gettext("free")),
        }


# ------------------------------------------------------------------------------------------------
# Job state
# ------------------------------------------------------------------------------------------------
@admin.register(JobState)
class JobStateAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    """Each job's cursor (where the next delta starts, minus the overlap) and lease lock."""

    list_display = ("job", "cursor", "full_cursor", "lock_display", "last_run_display")
    list_select_related = ("last_run",)
    fields = ("job", "cursor", "full_cursor", "locked_by", "locked_until", "last_run_display")
    readonly_fields = fields

    @admin.display(description=_("lock"))
    def lock_display(self, state: JobState) -> str:
        if not state.locked_by:
            return gettext("free")
        if not state.locked_until or state.locked_until < timezone.now():
            return gettext("free (the lease of %(owner)s ran out)") % {"owner": lock_owner(state.locked_by)}
        return format_html('<span title="{}">{}</span>', state.locked_by, gettext("held by %(owner)s until %(until)s") % {
            "owner": lock_owner(state.locked_by), "until": f"{timezone.localtime(state.locked_until):%H:%M:%S}"})

    @admin.display(description=_("last run"))
    def last_run_display(self, state: JobState) -> str:
        run = state.last_run
        if run is None:
            return "—"
        started = timezone.localtime(run.started_at)
        return format_html("{} {}", admin_link(run, f"{started:%Y-%m-%d %H:%M:%S}"), status_badge(run.status))


# ------------------------------------------------------------------------------------------------
# Bindings (read-only: the sync owns them)
# ------------------------------------------------------------------------------------------------
@admin.register(CategoryBinding)
class CategoryBindingAdmin(BindingAdmin):
    local_field = "category"
    search_fields = ("external_id", "external_code", "category__name", "category__path")


@admin.register(ProductBinding)
class ProductBindingAdmin(BindingAdmin):
    local_field = "product"
    search_fields = ("external_id", "external_code", "product__name")


@admin.register(OfferBinding)
class OfferBindingAdmin(BindingAdmin):
    local_field = "offer"
    list_filter = ("system", "kind")
    search_fields = ("external_id", "external_code", "offer__sku", "offer__name")


@admin.register(WarehouseBinding)
class WarehouseBindingAdmin(BindingAdmin):
    local_field = "warehouse"
    search_fields = ("external_id", "external_code", "warehouse__name", "warehouse__code")


from . import admin_events  # noqa: E402,F401  inbound events, state mapping, order/customer bindings


# Marketplace stock (channels, offers per channel, audit, alerts) lives in its own module.
from . import admin_marketplaces  # noqa: E402,F401


# Schedules (django-celery-beat) in plain words.
from . import admin_schedules  # noqa: E402,F401
