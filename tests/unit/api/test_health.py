"""GET /health/: 200 when the database, the broker, a worker and beat answer and no flow is stale;
503 naming what is down."""
import pytest

from syncsite.celery import app as celery_app
from syncsite.heartbeat import heartbeat_record

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def alive(db):
    """A worker and beat that just wrote their heartbeats."""
    heartbeat_record(kind="worker", name="celery@test")
    heartbeat_record(kind="beat", name="test")


def test_health_ok(client):
    # The embedded default broker (kombu's filesystem transport) needs no server; on CI the
    # broker is the Redis server CELERY_BROKER_URL points at.
    response = client.get("/health/")
    assert response.status_code == 200, response.content
    assert response.json() == {"database": "ok", "broker": "ok", "worker": "ok", "beat": "ok", "flows": "ok",
                               "upstreams": "ok"}


def test_an_upstream_whose_circuit_is_open_is_named_without_failing_the_check(client, settings, tmp_path):
    from integrations.http import ratelimit

    settings.REDIS_URL = ""
    settings.RATE_LIMIT_DIR = str(tmp_path)
    limiter = ratelimit.limiter_for("ozon:12345:stocks", units=10, window=1.0, parallel=1)
    try:
        limiter.circuit_failed(2, 60)
        assert client.get("/health/").json()["upstreams"] == "ok"   # one failure: still closed
        limiter.circuit_failed(2, 60)
        response = client.get("/health/")
        assert response.status_code == 200
        (name, text), = response.json()["upstreams"].items()
        assert name.startswith("ozon") and text.startswith("circuit open: 2 failures in a row")
    finally:
        limiter.reset()
        ratelimit._registry.clear()


def test_health_names_the_broker_when_it_is_unreachable(client, monkeypatch):
    # Nothing listens on port 1: connection refused at once (and the network guard allows loopback).
    # Celery reads CELERY_BROKER_URL from the environment before its config (CI sets it), so
    # point both at the dead port.
    dead = "redis://127.0.0.1:1/0"
    # conf first: monkeypatch restores what it read, and the conf properties resolve the
    # environment first (after setenv they would read, and later "restore", the dead URL).
    monkeypatch.setattr(celery_app.conf, "broker_write_url", None)
    monkeypatch.setattr(celery_app.conf, "broker_url", dead)
    monkeypatch.setenv("CELERY_BROKER_URL", dead)
    monkeypatch.delenv("CELERY_BROKER_WRITE_URL", raising=False)
    response = client.get("/health/")
    assert response.status_code == 503
    body = response.json()
    assert body["database"] == "ok"
    assert body["broker"].startswith("down")


def test_health_leaves_the_broker_settings_as_they_were(client):
    # Guard for the test above: later tests publish to the real broker again.
    assert "127.0.0.1:1/" not in (celery_app.conf.broker_write_url or "")
    assert client.get("/health/").status_code == 200
