"""Cron schedules in plain words ("every 5 minutes", "daily at 03:17") in the active language, and
the longest gap between two runs of a schedule (what the dashboard measures staleness against).

Works on Celery's `crontab` (integrations/schedule.py) and on django-celery-beat's CrontabSchedule
rows (their fields are the same five strings)."""
from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.utils.translation import gettext as _, gettext_noop, ngettext

# Django's own catalog translates the day names.
_DAYS = tuple(gettext_noop(d) for d in ("Sunday", "Monday", "Tuesday", "Wednesday", "Thursday", "Friday",
                                         "Saturday"))


def _fields(cron: Any) -> tuple[str, str, str, str, str]:
    """(minute, hour, day of month, month, day of week) as the strings they were written as."""
    if hasattr(cron, "_orig_minute"):  # celery.schedules.crontab
        return (str(cron._orig_minute), str(cron._orig_hour), str(cron._orig_day_of_month),
                str(cron._orig_month_of_year), str(cron._orig_day_of_week))
    return (str(cron.minute), str(cron.hour), str(cron.day_of_month), str(cron.month_of_year),
            str(cron.day_of_week))


def _day_name(value: str) -> str:
    try:
        return _(_DAYS[int(value) % 7])
    except ValueError:
        return value


def cron_words(cron: Any) -> str:
    """A cron schedule in words, or its fields ("cron 5 3 * * 1") when it has no plain reading."""
    minute, hour, dom, month, dow = _fields(cron)
    text = _time_words(minute, hour)
    if text is None:
        return _("cron %(fields)s") % {"fields": " ".join((minute, hour, dom, month, dow))}
    if dom != "*" or month != "*":
        text += " " + _("(days %(dom)s, months %(month)s)") % {"dom": dom, "month": month}
    if dow != "*":
        days = ", ".join(_day_name(d) for d in dow.split(",")) if all(d.isdigit() for d in dow.split(",")) else dow
        text += " " + _("on %(days)s") % {"days": days}
    return text


def _time_words(minute: str, hour: str) -> str | None:
    if hour == "*":
        if minute == "*":
            return _("every minute")
        step = _step(minute)
        if step is not None:
            start, n = step
            if start:
                return ngettext("every %(n)s minute from :%(start)02d", "every %(n)s minutes from :%(start)02d",
                                n) % {"n": n, "start": start}
            return ngettext("every %(n)s minute", "every %(n)s minutes", n) % {"n": n}
        if minute.isdigit():
            return _("every hour at :%(minute)02d") % {"minute": int(minute)}
        return None
    if minute.isdigit() and hour.isdigit():
        return _("daily at %(hour)02d:%(minute)02d") % {"hour": int(hour), "minute": int(minute)}
    if minute.isdigit() and all(h.isdigit() for h in hour.split(",")):
        times = ", ".join(f"{int(h):02d}:{int(minute):02d}" for h in hour.split(","))
        return _("daily at %(times)s") % {"times": times}
    return None


def _step(minute: str) -> tuple[int, int] | None:
    """"*/5" -> (0, 5), "1-59/10" -> (1, 10); anything else None."""
    if "/" not in minute:
        return None
    base, step = minute.split("/", 1)
    if not step.isdigit():
        return None
    if base == "*":
        return 0, int(step)
    if "-" in base:
        start, end = base.split("-", 1)
        if start.isdigit() and end == "59":
            return int(start), int(step)
    return None


def cron_interval(cron: Any) -> timedelta | None:
    """The longest gap between two consecutive runs within a day (every day assumed), or None when
    the schedule cannot be read."""
    try:
        minutes = sorted(cron.minute) if hasattr(cron, "_orig_minute") else None
        hours = sorted(cron.hour) if hasattr(cron, "_orig_hour") else None
    except Exception:
        return None
    if not minutes or not hours:
        return None
    times = sorted(h * 60 + m for h in hours for m in minutes)
    gaps = [b - a for a, b in zip(times, times[1:])] + [times[0] + 24 * 60 - times[-1]]
    return timedelta(minutes=max(gaps))
