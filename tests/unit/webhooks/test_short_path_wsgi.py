"""`syncsite.wsgi.application` (what gunicorn serves): webhook paths go to their view before
Django's request handler; everything else is Django's. Driven as gunicorn drives it (a WSGI
environ, start_response), outside a test transaction so the connection clean-up runs for real."""
from __future__ import annotations

import io
import json
import logging

import pytest

from integrations.models import InboundEvent
from tests.orders_fixtures import WEBHOOK_TOKEN, notification

pytestmark = pytest.mark.django_db(transaction=True)


def wsgi(method: str, path: str, body: bytes = b"", query: str = "") -> tuple[str, dict, bytes]:
    from syncsite.wsgi import application

    environ = {"REQUEST_METHOD": method, "PATH_INFO": path, "QUERY_STRING": query, "CONTENT_TYPE": "application/json",
               "CONTENT_LENGTH": str(len(body)), "wsgi.input": io.BytesIO(body), "wsgi.url_scheme": "http",
               "SERVER_NAME": "testserver", "SERVER_PORT": "80", "HTTP_HOST": "testserver",
               "REMOTE_ADDR": "127.0.0.1", "SERVER_PROTOCOL": "HTTP/1.1", "wsgi.errors": io.StringIO()}
    answer: dict = {}

    def start_response(status, headers, exc_info=None):
        answer["status"], answer["headers"] = status, dict(headers)

    chunks = application(environ, start_response)
    try:
        content = b"".join(chunks)
    finally:
        getattr(chunks, "close", lambda: None)()
    return answer["status"], answer["headers"], content


def test_a_notification_is_stored_through_the_short_path(ms_respx, published):
    body = json.dumps(notification(("product", "p1", "UPDATE"))).encode()
    status, headers, content = wsgi("POST", f"/webhooks/moysklad/{WEBHOOK_TOKEN}/", body, "requestId=r-9")
    assert status == "200 OK" and headers["Content-Type"] == "application/json"
    assert json.loads(content) == {"stored": 1, "queued": 1}
    assert list(InboundEvent.objects.values_list("dedup_key", flat=True)) == ["r-9:0:UPDATE:product:p1"]


def test_the_views_checks_answer_as_through_django(ms_respx, published):
    body = json.dumps(notification(("product", "p1", "UPDATE"))).encode()
    status, _, content = wsgi("POST", "/webhooks/moysklad/wrong-token/", body)
    assert status == "404 Not Found" and json.loads(content)["error"] == "not_found"
    status, headers, _ = wsgi("GET", f"/webhooks/moysklad/{WEBHOOK_TOKEN}/")
    assert status == "405 Method Not Allowed" and headers["Allow"] == "POST"
    status, _, content = wsgi("POST", f"/webhooks/moysklad/{WEBHOOK_TOKEN}/", b"{not json")
    assert status == "400 Bad Request" and json.loads(content)["error"] == "invalid"
    assert not InboundEvent.objects.exists()


def test_other_paths_are_djangos(ms_respx):
    status, _, content = wsgi("GET", "/api/v1/no-such-thing/")
    assert status.startswith("404") and json.loads(content)["error"] == "not_found"


def test_an_unexpected_error_is_logged_and_answered_as_json_500(ms_respx, published, monkeypatch, caplog):
    from integrations.moysklad import webhooks

    def broken(**kwargs):
        raise RuntimeError("the disk is full")

    monkeypatch.setattr(webhooks, "events_store", broken)
    body = json.dumps(notification(("product", "p1", "UPDATE"))).encode()
    with caplog.at_level(logging.ERROR, logger="django.request"):
        status, _, content = wsgi("POST", f"/webhooks/moysklad/{WEBHOOK_TOKEN}/", body)
    assert status == "500 Internal Server Error"
    assert json.loads(content) == {"error": "server_error", "detail": "Unexpected; it was logged (no details are sent)"}
    assert "the disk is full" in caplog.text


def test_connections_a_request_broke_are_closed_after_it(ms_respx, published, monkeypatch):
    """What Django's request_finished does: a connection left unusable is not reused."""
    from django.db import connection

    from integrations.moysklad import webhooks

    def breaks_the_connection(**kwargs):
        connection.ensure_connection()
        connection.errors_occurred = True
        monkeypatch.setattr(connection, "is_usable", lambda: False)
        return []

    monkeypatch.setattr(webhooks, "events_store", breaks_the_connection)
    body = json.dumps(notification(("product", "p1", "UPDATE"))).encode()
    status, _, _ = wsgi("POST", f"/webhooks/moysklad/{WEBHOOK_TOKEN}/", body)
    assert status == "200 OK" and connection.connection is None
