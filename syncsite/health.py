"""GET /health/: 200 when everything is up, else 503 naming what is down:

    {"database": "ok", "broker": "ok", "worker": "ok", "beat": "ok", "flows": "ok"}

`worker` / `beat`: a Celery worker / beat wrote a heartbeat in the last 90 s ("down: last seen
5 min ago", "down: never seen"). `flows`: every configured job on the beat schedule succeeded
within twice its longest scheduled gap, else {job: "stale: ..."} (syncsite/heartbeat.py).

`upstreams` (reported, not counted in the status code: an upstream's outage is not ours):
"ok", or {upstream: "circuit open: ..."} for each upstream whose calls are paused because it
failed too often in a row (integrations/http/ratelimit.py)."""
import time

from django.conf import settings
from django.db import connection
from django.http import JsonResponse


def _database() -> str:
    try:
        with connection.cursor() as cur:
            cur.execute("SELECT 1")
            cur.fetchone()
        return "ok"
    except Exception as exc:  # any driver error means down
        return f"down: {exc.__class__.__name__}"


def _broker() -> str:
    from syncsite.celery import app

    try:
        with app.connection_for_write() as conn:
            conn.ensure_connection(max_retries=0, timeout=1)
        return "ok"
    except Exception as exc:
        return f"down: {exc.__class__.__name__}"


def _processes_and_flows() -> dict:
    from .heartbeat import process_status, stale_flows

    try:
        stale = stale_flows()
        return {"worker": process_status("worker"), "beat": process_status("beat"), "flows": stale or "ok"}
    except Exception as exc:  # the database answered SELECT 1 but not this: say so, never 500
        return {"worker": f"unknown: {exc.__class__.__name__}", "beat": f"unknown: {exc.__class__.__name__}",
                "flows": f"unknown: {exc.__class__.__name__}"}


def _upstreams() -> str | dict:
    from integrations.http.ratelimit import open_circuits

    now = time.time()
    found = {c["name"].split(":")[0] + (f" ({c['name'].split(':', 1)[1][:12]})" if ":" in c["name"] else ""):
             f"circuit open: {c['failures']} failures in a row, calls paused for another {c['until'] - now:.0f} s"
             for c in open_circuits()}
    return found or "ok"


def health(request):
    status = {"database": _database(), "broker": _broker()}
    if status["database"] == "ok":
        status.update(_processes_and_flows())
    else:
        status.update({"worker": "unknown: no database", "beat": "unknown: no database",
                       "flows": "unknown: no database"})
    code = 200 if all(v == "ok" for v in status.values()) else 503
    status["upstreams"] = _upstreams()
    return JsonResponse(status, status=code)
