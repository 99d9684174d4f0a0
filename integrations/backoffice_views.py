"""The back office's own admin pages: "sync now" with live progress, the work lists and the product
page for one SKU. Thin edges: they read through selectors (integrations.dashboard / worklists /
product_page) and act through services. Each is wrapped in `admin.site.admin_view` (staff login);
an action needs its permission and answers 403 without it (a read-only manager never gets a half
page). No upstream is called in a request: actions only change rows and queue tasks."""
from __future__ import annotations

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseNotAllowed, HttpResponseRedirect, JsonResponse
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils import timezone
from django.utils.http import url_has_allowed_host_and_scheme, urlencode
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from . import jobs, worklists
from .dashboard import job_has_full
from .models import JobRun
from .product_page import sku_overview
from .services import EnqueueError, job_enqueue

SYNC_PERMISSION = "integrations.add_jobrun"
PERMISSIONS = {
    "retry_export": "orders.change_order",
    "push_offers": "integrations.change_channeloffer",
    "push_alerts": "integrations.change_channeloffer",
    "reprocess_events": "integrations.change_inboundevent",
}


def _back(request: HttpRequest, default: str) -> HttpResponseRedirect:
    target = request.POST.get("next") or request.GET.get("next") or ""
    if not url_has_allowed_host_and_scheme(target, allowed_hosts={request.get_host()},
                                           require_https=request.is_secure()):
        target = default
    return HttpResponseRedirect(target)


def _require(request: HttpRequest, perm: str) -> None:
    if not request.user.has_perm(perm):
        raise PermissionDenied(_("You may look at this page but not act on it."))


# ------------------------------------------------------------------------------------------------
# Sync now and its progress
# ------------------------------------------------------------------------------------------------
@require_POST
def sync_now(request: HttpRequest) -> HttpResponse:
    """POST job=NAME [full=1]: queue one run of a job (the dashboard's buttons)."""
    _require(request, SYNC_PERMISSION)
    name, full = request.POST.get("job", ""), request.POST.get("full") == "1"
    spec = jobs.JOBS.get(name)
    if spec is None:
        messages.warning(request, _("%(job)s: no such job.") % {"job": name})
    elif full and not job_has_full(spec):
        messages.warning(request, _("%(job)s has no full mode; nothing was queued.") % {"job": name})
    else:
        try:
            job_enqueue(job=name, full=full, trigger="admin")
        except EnqueueError as exc:
            messages.error(request, _("Could not queue %(job)s: %(error)s. The scheduled runs will catch up once "
                                      "the broker is back.") % {"job": name, "error": exc})
        else:
            messages.success(request, (_("Full sync of %(job)s queued.") if full else _("Sync of %(job)s queued."))
                             % {"job": name} + " " + _("Its progress shows on the dashboard while it runs."))
    return _back(request, reverse("admin:index"))


def progress(request: HttpRequest) -> JsonResponse:
    """Running runs of every job with their progress, for the dashboard's live refresh (polled
    every few seconds while something runs). One query."""
    if not request.user.has_perm("integrations.view_jobrun"):
        raise PermissionDenied
    since = timezone.now() - timezone.timedelta(hours=24)
    runs = JobRun.objects.filter(status=JobRun.Status.RUNNING, started_at__gte=since).defer("errors", "counts") \
        .order_by("started_at")
    out = {}
    for run in runs:
        out[run.job] = {"run": run.pk, "done": run.progress_done, "total": run.progress_total,
                        "started_at": run.started_at.isoformat(), "full": run.full,
                        "heartbeat_at": run.heartbeat_at.isoformat() if run.heartbeat_at else None}
    return JsonResponse({"running": out, "at": timezone.now().isoformat()})


# ------------------------------------------------------------------------------------------------
# Work lists
# ------------------------------------------------------------------------------------------------
def worklists_view(request: HttpRequest) -> HttpResponse:
    if request.method == "POST":
        return _worklist_action(request)
    if request.method != "GET":
        return HttpResponseNotAllowed(["GET", "POST"])
    orders, orders_total = worklists.failed_orders()
    offers, offers_total, offers_per_channel = worklists.offers_in_error()
    alerts, alerts_total = worklists.open_alerts()
    events, events_total = worklists.failed_events()
    perms = {key: request.user.has_perm(perm) for key, perm in PERMISSIONS.items()}
    context = {
        **admin.site.each_context(request),
        "title": _("Work lists"),
        "orders": [(o, worklists.version_of(o, worklists.ORDER_FIELDS)) for o in orders],
        "orders_total": orders_total,
        "offers": [(co, worklists.version_of(co, worklists.OFFER_FIELDS)) for co in offers],
        "offers_total": offers_total, "offers_per_channel": offers_per_channel,
        "alerts": [(a, worklists.version_of(a.channel_offer, worklists.OFFER_FIELDS)) for a in alerts],
        "alerts_total": alerts_total,
        "events": [(e, worklists.version_of(e, worklists.EVENT_FIELDS)) for e in events],
        "events_total": events_total,
        "unmapped": worklists.unmapped_skus(),
        "perms": perms, "limit": worklists.LIMIT,
    }
    return TemplateResponse(request, "admin/backoffice/worklists.html", context)


def _worklist_action(request: HttpRequest) -> HttpResponse:
    action = request.POST.get("action", "")
    if action not in PERMISSIONS:
        return HttpResponse(status=400)
    _require(request, PERMISSIONS[action])
    picks = worklists.parse_picks(request.POST.getlist("pick"))
    if action == "retry_export":
        result, verb = worklists.orders_retry_export(picks=picks), _("Export queued again")
    elif action in ("push_offers", "push_alerts"):
        result = worklists.channel_offers_push(picks=picks, require_error=action == "push_offers")
        verb = _("Pushed within seconds")
    else:
        result, verb = worklists.events_reprocess_picked(picks=picks), _("Queued for processing again")
    for level, text in result.messages(verb):
        getattr(messages, level)(request, text)
    return _back(request, reverse("backoffice:worklists"))


# ------------------------------------------------------------------------------------------------
# Product page
# ------------------------------------------------------------------------------------------------
def sku_page(request: HttpRequest, sku: str) -> HttpResponse:
    if not request.user.has_perm("catalog.view_offer"):
        raise PermissionDenied
    overview = sku_overview(sku=sku)
    if overview is None:
        raise Http404(_("No offer with SKU %(sku)s.") % {"sku": sku})
    context = {**admin.site.each_context(request), "title": _("SKU %(sku)s") % {"sku": sku}, **overview}
    return TemplateResponse(request, "admin/backoffice/sku.html", context)


def sku_find(request: HttpRequest) -> HttpResponse:
    """The search box: an exact SKU opens its page; anything else goes to the offer list's search."""
    from catalog.models import Offer

    term = (request.GET.get("q") or "").strip()
    if term and Offer.objects.filter(sku=term).exists():
        return HttpResponseRedirect(reverse("backoffice:sku", args=[term]))
    return HttpResponseRedirect(reverse("admin:catalog_offer_changelist") + ("?" + urlencode({"q": term}) if term else ""))
