"""The beat schedule: every entry names a registered task, every job is scheduled, cadences hold."""
import pytest
from celery.schedules import crontab
from django.conf import settings

from integrations import jobs
from integrations.schedule import SCHEDULE
from syncsite.celery import app

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def registered():
    app.loader.import_default_modules()
    return set(app.tasks)


def job_entries(job: str, *, full: bool) -> list[dict]:
    return [e for e in settings.CELERY_BEAT_SCHEDULE.values()
            if e["task"] == "integrations.run_job" and e["args"] == (job,) and e["kwargs"]["full"] is full]


def test_every_entry_points_at_a_registered_task(registered):
    assert "integrations.run_job" in registered
    for name, entry in settings.CELERY_BEAT_SCHEDULE.items():
        assert entry["task"] in registered, name
        assert isinstance(entry["schedule"], crontab), name


def test_every_registered_job_is_scheduled_and_every_scheduled_job_exists():
    scheduled = {e["args"][0] for e in settings.CELERY_BEAT_SCHEDULE.values() if e["task"] == "integrations.run_job"}
    assert scheduled == set(jobs.JOBS)


def test_catalog_runs_every_10_minutes():
    (entry,) = job_entries("moysklad-catalog", full=False)
    cron = entry["schedule"]
    minutes = sorted(cron.minute)
    assert len(minutes) == 6 and all(b - a == 10 for a, b in zip(minutes, minutes[1:]))
    assert cron.hour == set(range(24))


def test_stock_runs_every_5_minutes():
    (entry,) = job_entries("moysklad-stock", full=False)
    minutes = sorted(entry["schedule"].minute)
    assert len(minutes) == 12 and all(b - a == 5 for a, b in zip(minutes, minutes[1:]))
    assert entry["schedule"].hour == set(range(24))


def test_full_catalog_runs_nightly():
    (entry,) = job_entries("moysklad-catalog", full=True)
    cron = entry["schedule"]
    assert len(cron.hour) == 1 and len(cron.minute) == 1 and next(iter(cron.hour)) < 6
    assert cron.day_of_week == set(range(7))


def test_every_entry_expires_before_it_would_pile_up():
    for name, entry in settings.CELERY_BEAT_SCHEDULE.items():
        minutes = sorted(entry["schedule"].minute)
        hours = entry["schedule"].hour
        if len(hours) == 24:
            gap_seconds = 60 * (min(b - a for a, b in zip(minutes, minutes[1:] + [minutes[0] + 60])))
            assert entry["options"]["expires"] <= gap_seconds, name


def test_schedule_table_explains_every_entry():
    assert all(e.why and e.human for e in SCHEDULE)


@pytest.mark.django_db
def test_the_database_scheduler_installs_every_entry(monkeypatch):
    from django_celery_beat import schedulers
    from django_celery_beat.models import PeriodicTask

    # It closes "old" connections between ticks, which would close the test's transaction.
    monkeypatch.setattr(schedulers, "close_old_connections", lambda: None)
    schedulers.DatabaseScheduler(app=app, lazy=False)
    installed = dict(PeriodicTask.objects.values_list("name", "task"))
    for name, entry in settings.CELERY_BEAT_SCHEDULE.items():
        assert installed.get(name) == entry["task"], name
