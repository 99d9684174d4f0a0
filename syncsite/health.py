"""GET /health/: 200 {"database": "ok", "broker": "ok"} or 503 naming what is down."""
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


def health(request):
    status = {"database": _database(), "broker": _broker()}
    code = 200 if all(v == "ok" for v in status.values()) else 503
    return JsonResponse(status, status=code)
