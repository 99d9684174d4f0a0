"""/health/ names a dead worker or beat and flows staler than twice their schedule; the container
healthchecks (python -m syncsite.healthcheck) and the heartbeats behind them."""
import re
from datetime import timedelta

import pytest
from celery.schedules import crontab
from django.utils import timezone

from integrations.models import JobRun, ProcessHeartbeat
from syncsite import healthcheck
from syncsite.heartbeat import cron_max_gap, heartbeat_record, stale_flows

pytestmark = pytest.mark.django_db


def _beat(kind: str, name: str, seconds_ago: float) -> None:
    ProcessHeartbeat.objects.update_or_create(kind=kind, name=name, defaults={
        "seen_at": timezone.now() - timedelta(seconds=seconds_ago)})


def _run(job: str, *, minutes_ago: float, status=JobRun.Status.SUCCESS) -> None:
    at = timezone.now() - timedelta(minutes=minutes_ago)
    JobRun.objects.create(job=job, status=status, started_at=at - timedelta(seconds=5), finished_at=at)


def test_a_dead_worker_and_beat_are_named(client):
    _beat("worker", "celery@a", seconds_ago=600)
    response = client.get("/health/")
    assert response.status_code == 503
    body = response.json()
    assert body["worker"] == "down: last seen 10 min ago"
    assert body["beat"] == "down: never seen"
    assert body["database"] == "ok"


def test_one_live_worker_among_dead_ones_is_enough(client):
    _beat("worker", "celery@old", seconds_ago=3600)
    _beat("worker", "celery@new", seconds_ago=10)
    _beat("beat", "host", seconds_ago=10)
    assert client.get("/health/").json()["worker"] == "ok"


def test_cron_gaps():
    assert cron_max_gap(crontab()) == timedelta(minutes=1)
    assert cron_max_gap(crontab(minute="*/5")) == timedelta(minutes=5)
    assert cron_max_gap(crontab(minute="1-59/10")) == timedelta(minutes=10)
    assert cron_max_gap(crontab(minute=17, hour=3)) == timedelta(days=1)


def test_stale_flows_are_named_and_fresh_ones_are_not(client, moysklad_settings):
    _beat("worker", "celery@a", seconds_ago=5)
    _beat("beat", "host", seconds_ago=5)
    _run("moysklad-stock", minutes_ago=11)          # every 5 min: stale after 10
    _run("moysklad-catalog", minutes_ago=15)        # every 10 min: fresh until 20
    _run("orders-export", minutes_ago=1)
    _run("orders-export", minutes_ago=0.5, status=JobRun.Status.FAILED)
    _run("moysklad-order-statuses", minutes_ago=30, status=JobRun.Status.FAILED)  # never succeeded
    response = client.get("/health/")
    assert response.status_code == 503
    flows = response.json()["flows"]
    assert set(flows) == {"moysklad-stock", "moysklad-order-statuses"}
    assert flows["moysklad-stock"] == "stale: last success 11 min ago; runs every 5 min"
    assert flows["moysklad-order-statuses"].startswith("stale: never succeeded")


def test_flows_of_unconfigured_systems_are_not_judged(settings):
    settings.MOYSKLAD = {**settings.MOYSKLAD, "TOKEN": "", "LOGIN": "", "PASSWORD": ""}
    _run("moysklad-stock", minutes_ago=600)
    assert "moysklad-stock" not in stale_flows()


def test_a_flow_that_has_not_run_yet_is_not_stale(moysklad_settings):
    assert stale_flows() == {}


# -- container healthchecks ---------------------------------------------------------------------
def test_process_healthcheck_looks_at_its_own_heartbeat(monkeypatch):
    monkeypatch.setattr(healthcheck.socket, "gethostname", lambda: "box-1")
    assert healthcheck.check_process("worker")[0] is False
    heartbeat_record(kind="worker", name="celery@box-1")
    assert healthcheck.check_process("worker") == (True, "worker celery@box-1: ok")
    _beat("beat", "box-1", seconds_ago=400)
    ok, detail = healthcheck.check_process("beat")
    assert not ok and re.search(r"last heartbeat 40\d s ago", detail)


@pytest.mark.django_db(transaction=True)
def test_web_healthcheck_passes_while_the_web_answers(live_server, monkeypatch, settings):
    monkeypatch.setenv("ALLOWED_HOSTS", "shop.example.com,www.shop.example.com")
    settings.ALLOWED_HOSTS = ["shop.example.com"]
    # No worker or beat heartbeat: /health/ answers 503, but the web process itself is up.
    ok, detail = healthcheck.check_web(f"{live_server.url}/health/")
    assert ok, detail
    assert '"worker": "down: never seen"' in detail


def test_web_healthcheck_fails_without_an_answer():
    ok, detail = healthcheck.check_web("http://127.0.0.1:1/health/")
    assert not ok and detail.startswith("no answer")


def test_healthcheck_usage():
    assert healthcheck.main(["healthcheck"]) == 2


# -- the writers ---------------------------------------------------------------------------------
@pytest.mark.django_db(transaction=True)
def test_the_worker_step_writes_from_the_timer_thread():
    import threading

    from syncsite.celery import HeartbeatStep

    class Timer:
        def __init__(self):
            self.calls = []

        def call_after(self, secs, fun, args=(), **kw):
            self.calls.append((fun, args))
            return self

        def call_repeatedly(self, secs, fun, args=(), **kw):
            self.calls.append((fun, args))
            return self

        def cancel(self):
            pass

    class Worker:
        hostname = "celery@unit"
        timer = Timer()

    step = HeartbeatStep.__new__(HeartbeatStep)
    step.timers = []
    step.start(Worker)
    fun, args = Worker.timer.calls[0]
    thread = threading.Thread(target=fun, args=args)  # as the timer thread runs it
    thread.start()
    thread.join(30)
    assert ProcessHeartbeat.objects.filter(kind="worker", name="celery@unit").exists()
    step.stop(Worker)


def test_beat_scheduler_writes_a_heartbeat_when_it_ticks(monkeypatch):
    from django_celery_beat.schedulers import DatabaseScheduler

    from syncsite.celery import app
    from syncsite.heartbeat import BeatScheduler

    monkeypatch.setattr(DatabaseScheduler, "tick", lambda self, *a, **k: 5.0)
    monkeypatch.setattr(healthcheck.socket, "gethostname", lambda: "beat-box")
    scheduler = BeatScheduler.__new__(BeatScheduler)
    scheduler.app = app
    assert scheduler.tick() == 5.0
    assert ProcessHeartbeat.objects.filter(kind="beat", name="beat-box").exists()
    ProcessHeartbeat.objects.all().delete()
    scheduler.tick()  # within the interval: no second write
    assert not ProcessHeartbeat.objects.exists()
