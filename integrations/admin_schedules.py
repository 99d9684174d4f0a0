"""Schedules (django-celery-beat's periodic tasks) in plain words: when each runs ("every 5
minutes", "daily at 03:17"), what it runs and why it runs then (integrations/schedule.py). Beat
writes the rows from the registry's schedule on start; a manager may switch a task off or change
its crontab here, and beat follows within seconds."""
from __future__ import annotations

from django.contrib import admin
from django.utils.translation import gettext_lazy as _
from django_celery_beat.admin import PeriodicTaskAdmin as BeatPeriodicTaskAdmin
from django_celery_beat.models import PeriodicTask

from .schedule import SCHEDULE, TASKS
from .schedules_words import cron_words


def _why() -> dict[str, str]:
    out = {f"{e.job}{' (full)' if e.full else ''}": e.why for e in SCHEDULE}
    out.update({name: why for name, (_task, _cron, _exp, why) in TASKS.items()})
    return out


admin.site.unregister(PeriodicTask)


@admin.register(PeriodicTask)
class PeriodicTaskAdmin(BeatPeriodicTaskAdmin):
    list_display = ("name", "when", "enabled", "last_run_at", "total_run_count", "why")
    list_select_related = ("crontab", "interval")

    @admin.display(description=_("when"))
    def when(self, task: PeriodicTask) -> str:
        if task.crontab_id:
            return cron_words(task.crontab)
        if task.interval_id:
            return str(task.interval)
        return str(task.scheduler or "—")

    @admin.display(description=_("why then"))
    def why(self, task: PeriodicTask) -> str:
        return _why().get(task.name, task.description or "—")
