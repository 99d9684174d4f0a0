"""Production settings: `manage.py check --deploy` is clean with production-like values, the app
refuses to start without SECRET_KEY or ALLOWED_HOSTS, HTTPS switches default on with DEBUG off
and can be switched off from the environment, and static files are served by the app."""
from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SECURITY = ("SECURE_SSL_REDIRECT", "SECURE_HSTS_SECONDS", "SECURE_HSTS_INCLUDE_SUBDOMAINS", "SECURE_HSTS_PRELOAD",
            "SESSION_COOKIE_SECURE", "CSRF_COOKIE_SECURE", "SECURE_PROXY_SSL_HEADER", "SECRET_KEY",
            "ALLOWED_HOSTS", "DEBUG")


def _production_env(**overrides: str) -> dict:
    """This process's environment without the test suite's local values, plus production-like ones
    (the database stays the test run's: checks need one)."""
    env = {k: v for k, v in os.environ.items() if k not in SECURITY}
    env.update({"DJANGO_SETTINGS_MODULE": "syncsite.settings", "SECRET_KEY": secrets.token_urlsafe(50),
                "ALLOWED_HOSTS": "shop.example.com", "SITE_URL": "https://shop.example.com"})
    env.update(overrides)
    return {k: v for k, v in env.items() if v is not None}


def _manage(*args: str, env: dict) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "manage.py", *args], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=120)


def _settings(env: dict) -> dict:
    """The settings a process started with `env` ends up with (one process for all of them)."""
    code = ("import json; from django.conf import settings as s; print(json.dumps({n: getattr(s, n) for n in "
            "('ALLOWED_HOSTS', 'SECURE_SSL_REDIRECT', 'SECURE_HSTS_SECONDS', 'SESSION_COOKIE_SECURE', "
            "'CSRF_COOKIE_SECURE', 'SECURE_PROXY_SSL_HEADER')}))")
    done = _manage("shell", "-v", "0", "-c", code, env=env)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_check_deploy_is_clean_with_production_values():
    done = _manage("check", "--deploy", "--fail-level", "WARNING", env=_production_env())
    assert done.returncode == 0, done.stdout + done.stderr
    assert "no issues" in done.stdout


@pytest.mark.parametrize("missing", ["SECRET_KEY", "ALLOWED_HOSTS"])
def test_production_refuses_to_start_without(missing):
    done = _manage("check", env=_production_env(**{missing: None}))
    assert done.returncode != 0
    assert f"{missing} is not set" in done.stderr
    assert "Traceback" not in done.stderr.splitlines()[-1]


def test_the_wsgi_app_refuses_too():
    env = _production_env(SECRET_KEY=None)
    done = subprocess.run([sys.executable, "-c", "import syncsite.wsgi"], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=60)
    assert done.returncode != 0 and "SECRET_KEY is not set" in done.stderr


def test_development_gets_its_values_from_debug():
    got = _settings(_production_env(SECRET_KEY=None, ALLOWED_HOSTS=None, DEBUG="1"))
    assert got["ALLOWED_HOSTS"] == ["localhost", "127.0.0.1", "[::1]"]
    assert got["SECURE_SSL_REDIRECT"] is False and got["SESSION_COOKIE_SECURE"] is False


def test_https_is_on_by_default_in_production():
    got = _settings(_production_env())
    assert (got["SECURE_SSL_REDIRECT"], got["SECURE_HSTS_SECONDS"]) == (True, 31_536_000)
    assert got["SESSION_COOKIE_SECURE"] is True and got["CSRF_COOKIE_SECURE"] is True
    assert got["SECURE_PROXY_SSL_HEADER"] is None


def test_behind_a_tls_proxy_the_switches_come_from_the_environment():
    got = _settings(_production_env(SECURE_PROXY_SSL_HEADER="HTTP_X_FORWARDED_PROTO,https", SECURE_SSL_REDIRECT="0",
                                    SECURE_HSTS_SECONDS="0"))
    assert got["SECURE_PROXY_SSL_HEADER"] == ["HTTP_X_FORWARDED_PROTO", "https"]
    assert (got["SECURE_SSL_REDIRECT"], got["SECURE_HSTS_SECONDS"]) == (False, 0)
    done = _manage("check", env=_production_env(SECURE_PROXY_SSL_HEADER="X_FORWARDED_PROTO"))
    assert done.returncode != 0 and "HEADER,VALUE" in done.stderr


@pytest.mark.django_db
def test_https_redirect_and_hsts_in_production(client, settings):
    settings.SECURE_SSL_REDIRECT = True
    settings.SECURE_HSTS_SECONDS = 31_536_000
    response = client.get("/admin/login/")
    assert response.status_code == 301 and response["Location"].startswith("https://")
    # The container healthcheck speaks plain http from inside.
    assert client.get("/health/").status_code in (200, 503)
    secure = client.get("/admin/login/", secure=True)
    assert secure.status_code == 200
    assert secure["Strict-Transport-Security"].startswith("max-age=31536000")


@pytest.mark.django_db
def test_static_files_are_served_by_the_app_with_debug_off(settings, tmp_path):
    """What gunicorn serves in production after the image's collectstatic: the admin's CSS and the
    API docs' assets."""
    from django.core.management import call_command
    from django.test import Client

    settings.DEBUG = False
    settings.STATIC_ROOT = tmp_path
    call_command("collectstatic", "--noinput", verbosity=0)
    client = Client()  # a fresh handler: WhiteNoise indexes STATIC_ROOT when it starts
    for path in ("/static/admin/css/base.css", "/static/ninja/swagger-ui.css", "/static/ninja/swagger-ui-bundle.js"):
        response = client.get(path)
        assert response.status_code == 200, path
        assert b"".join(response.streaming_content)
    docs = client.get("/api/v1/docs").content.decode()
    assert "/static/ninja/swagger-ui.css" in docs
