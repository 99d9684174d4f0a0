"""When each job runs, and why. Pure data: settings build the Celery beat schedule from it and
`manage.py sync --list` prints it. Minutes are staggered so jobs sharing an upstream budget do
not start together; each entry expires before its next run so a backlog never piles up."""
from dataclasses import dataclass

from celery.schedules import crontab


@dataclass(frozen=True)
class Entry:
    job: str
    cron: crontab
    human: str
    why: str
    full: bool = False
    expires: int = 300


SCHEDULE: tuple[Entry, ...] = (
    Entry("moysklad-catalog", crontab(minute="1-59/10"), "every 10 min",
          "delta by `updated`: new goods and prices reach the site within minutes", expires=540),
    Entry("moysklad-catalog", crontab(minute=17, hour=3), "nightly 03:17", 
          "full pass: reconciles archived and deleted goods that a delta cannot see",
          full=True, expires=3 * 3600),
    Entry("moysklad-stock", crontab(minute="*/5"), "every 5 min",
          "changed stock via changedSince; webhooks make it faster, this makes it certain",
          expires=270),
    Entry("moysklad-stock", crontab(minute=47, hour=3), "nightly 03:47",
          "full stock report: the API wants one full read a day besides changedSince",
          full=True, expires=3 * 3600),
)


def beat_schedule() -> dict:
    schedule = {}
    for entry in SCHEDULE:
        key = f"{entry.job}{' (full)' if entry.full else ''}"
        schedule[key] = {
            "task": "integrations.run_job",
            "schedule": entry.cron,
            "args": (entry.job,),
            "kwargs": {"full": entry.full},
            "options": {"expires": entry.expires},
        }
    return schedule
