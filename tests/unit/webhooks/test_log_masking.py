"""The webhook token is a path segment: no log line may carry it, nor any other configured secret.
Django's request warnings, our own loggers, exception texts, and gunicorn's access and error logs
(a real gunicorn, started as production starts it)."""
import io
import logging
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from syncsite import logmask
from tests.orders_fixtures import WEBHOOK_TOKEN
from tests.waiting import wait_until

pytestmark = pytest.mark.security
ROOT = Path(__file__).resolve().parents[3]


@pytest.mark.django_db
def test_django_request_warnings_never_carry_the_token(client, ms_respx, published, caplog):
    caplog.set_level(logging.INFO)
    assert client.generic("POST", f"/webhooks/moysklad/{WEBHOOK_TOKEN}/", b"{bad", content_type="application/json"
                          ).status_code == 400
    assert client.get(f"/webhooks/moysklad/{WEBHOOK_TOKEN}/").status_code == 405
    assert client.post("/webhooks/moysklad/hook-secret-tokem/", b"{}", content_type="application/json").status_code == 404
    logged = caplog.text + "".join(str(r.msg) + str(r.args) for r in caplog.records)
    assert "Bad Request: /webhooks/moysklad/***/" in logged and "Not Found: /webhooks/moysklad/***/" in logged
    assert WEBHOOK_TOKEN not in logged and "hook-secret-tokem" not in logged  # a near miss is masked too


def test_secrets_in_urls_messages_and_exceptions_are_masked(settings):
    settings.TELEGRAM = {**settings.TELEGRAM, "BOT_TOKEN": "123456:telegram-bot-secret"}
    settings.MOYSKLAD = {**settings.MOYSKLAD, "WEBHOOK_TOKEN": "webhook-secret-0123456789"}
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)   # any handler, configured by anyone
    logger = logging.getLogger("syncsite.test-masking")
    logger.addHandler(handler)
    level = logger.level
    logger.setLevel(logging.INFO)   # whatever an earlier test (a Celery worker) set the root to
    try:
        logger.warning("GET %s -> %s", "https://api.telegram.org/bot123456:telegram-bot-secret/sendMessage", 502)
        logger.warning("registered %s", "https://shop.example.com/webhooks/moysklad/webhook-secret-0123456789/")
        logger.warning("escaped %s", "token%3Dwebhook-secret-0123456789 123456%3Atelegram-bot-secret")
        try:
            raise ValueError("upstream said: bad token webhook-secret-0123456789")
        except ValueError:
            logger.exception("failed")
        logger.info("nothing secret here: %s%%", 42)
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)
    text = stream.getvalue()
    for secret in ("telegram-bot-secret", "webhook-secret-0123456789", "123456%3Atelegram"):
        assert secret not in text
    assert "bot***/sendMessage" in text and "/webhooks/moysklad/***/" in text
    assert "ValueError: upstream said: bad token ***" in text
    assert "nothing secret here: 42%" in text


def test_a_short_value_is_not_treated_as_a_secret(settings):
    settings.MOYSKLAD = {**settings.MOYSKLAD, "PASSWORD": "admin"}
    assert logmask.mask("the admin page") == "the admin page"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _request(url: str, method: str = "POST", body: bytes | None = b"{bad") -> int:
    req = urllib.request.Request(url, data=body if method == "POST" else None, method=method,
                                 headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=10) as response:
            return response.status
    except urllib.error.HTTPError as exc:
        return exc.code


def test_gunicorn_access_and_error_logs_never_carry_the_token(tmp_path):
    token = "gunicorn-webhook-secret-4f1c9e"
    port = _free_port()
    access, errors = tmp_path / "access.log", tmp_path / "error.log"
    env = {**os.environ, "MOYSKLAD_WEBHOOK_TOKEN": token, "DATABASE_URL": f"sqlite:///{tmp_path / 'db.sqlite3'}",
           "DJANGO_SETTINGS_MODULE": "syncsite.settings", "DEBUG": "off"}
    server = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "-c", "python:syncsite.gunicorn_conf", "--bind", f"127.0.0.1:{port}",
         "--workers", "1", "--access-logfile", str(access), "--error-logfile", str(errors),
         "syncsite.wsgi:application"], cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        while True:
            try:
                _request(f"{base}/health/", "GET")
                break
            except OSError:
                assert time.monotonic() < deadline and server.poll() is None, "gunicorn did not start"
                time.sleep(0.2)
        assert _request(f"{base}/webhooks/moysklad/{token}/?requestId=r1") == 400
        assert _request(f"{base}/webhooks/moysklad/{token}/", "GET") == 405
        assert _request(f"{base}/webhooks/moysklad/{token[:-1]}/") == 404
        wait_until(lambda: access.exists() and access.read_text().count("/webhooks/moysklad/") >= 3, timeout=10,
                   what="the access log lines to reach the file")
    finally:
        server.terminate()
        out, err = server.communicate(timeout=30)
    logs = access.read_text() + errors.read_text() + out.decode() + err.decode()
    assert access.read_text().count("/webhooks/moysklad/***/") == 3, access.read_text()
    assert "Bad Request: /webhooks/moysklad/***/" in logs
    assert token not in logs and token[:-1] not in logs
