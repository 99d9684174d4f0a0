"""Template tags for the admin home dashboard (templates/admin/index.html)."""
from __future__ import annotations

from datetime import timedelta

from django import template
from django.utils import timezone
from django.utils.translation import gettext as _, ngettext

from ..charts import bar_chart
from ..dashboard import dashboard_context

register = template.Library()


@register.simple_tag(takes_context=True)
def backoffice_dashboard(context) -> dict | None:
    """The dashboard's rows, charts and the user's rights; None for a user who may not see job runs."""
    request = context.get("request")
    user = getattr(request, "user", None)
    if user is None or not user.has_perm("integrations.view_jobrun"):
        return None
    data = dashboard_context()
    hour_labels = [f"{timezone.localtime(h):%H}:00" for h, _n in data["changes"]]
    for flow in data["flows"]:
        flow.chart = bar_chart(flow.durations, labels=hour_labels, width=120, height=24, colour=flow.colour_hex,
                               title=_("longest run per hour, seconds"), unit=" s")
    data["changes_chart"] = bar_chart([n for _h, n in data["changes"]], labels=hour_labels, width=480, height=60,
                                      title=_("stock changes per hour, last 24 hours"))
    data["changes_total"] = sum(n for _h, n in data["changes"])
    data["can_sync"] = user.has_perm("integrations.add_jobrun")
    return data


@register.filter
def ago(value) -> str:
    """A time as "5 min ago" / "3 h ago" / "2 days ago" (translated), "—" for none."""
    if not value:
        return "—"
    return age(timezone.now() - value)


@register.filter
def age(delta: timedelta | None) -> str:
    if delta is None:
        return "—"
    seconds = max(int(delta.total_seconds()), 0)
    if seconds < 90:
        return ngettext("%(n)s second ago", "%(n)s seconds ago", seconds) % {"n": seconds}
    minutes = seconds // 60
    if minutes < 90:
        return ngettext("%(n)s minute ago", "%(n)s minutes ago", minutes) % {"n": minutes}
    hours = minutes // 60
    if hours < 48:
        return ngettext("%(n)s hour ago", "%(n)s hours ago", hours) % {"n": hours}
    days = hours // 24
    return ngettext("%(n)s day ago", "%(n)s days ago", days) % {"n": days}


@register.filter
def interval_words(delta: timedelta | None) -> str:
    if not delta:
        return "—"
    minutes = int(delta.total_seconds() // 60)
    if minutes < 120:
        return ngettext("%(n)s minute", "%(n)s minutes", minutes) % {"n": minutes}
    hours = minutes // 60
    return ngettext("%(n)s hour", "%(n)s hours", hours) % {"n": hours}


@register.filter
def qty(value) -> str:
    """5.000 -> "5", 2.500 -> "2.5"."""
    if value is None:
        return "—"
    try:
        return f"{value.normalize():f}"
    except AttributeError:
        return str(value)
