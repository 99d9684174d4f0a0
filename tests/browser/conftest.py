"""The browser ring: the admin driven in headless Chromium (Debian's chromium + chromium-driver)
through Selenium, against pytest-django's live server (a real HTTP server in a thread of this
process, on the transactional test database).

Everything here is what a manager does: log in through the login form, type into the search
box, click buttons. Nothing is patched inside the pages; the live server publishes "Sync now" to
a real broker (see `isolated_broker`). Screenshots go to var/screenshots/<test>.png.

The ring skips, with the reason, when Chromium, chromedriver or the selenium package is missing
(`.ci/install-browser` installs the first two on Debian).
"""
from __future__ import annotations

import os
import shutil
import tempfile
import uuid
from pathlib import Path
from typing import Iterator

import pytest

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
NEEDS_CHROMIUM = "needs Debian's chromium and chromium-driver: apt-get install chromium chromium-driver"
NEEDS_SELENIUM = "needs the selenium package: .venv/bin/pip install -e '.[dev]'"
SCREENSHOTS = Path(__file__).resolve().parents[2] / "var" / "screenshots"
PASSWORD = "correct-horse-battery"
WAIT_SECONDS = 10

try:
    import selenium  # noqa: F401
    HAVE_SELENIUM = True
except ImportError:  # pragma: no cover - depends on the machine
    HAVE_SELENIUM = False


def pytest_configure(config):
    config.addinivalue_line("markers", "browser: drives the admin in headless Chromium (tests/browser)")


def pytest_collection_modifyitems(config, items):
    """Everything under tests/browser/ carries the `browser` marker (-m "not browser")."""
    for item in items:
        parts = item.path.parts
        if "browser" in parts and "tests" in parts:
            item.add_marker(pytest.mark.browser)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item, call):
    """Remember each phase's outcome on the test, so `browser` can photograph a failure."""
    report = yield
    setattr(item, f"_browser_{report.when}_failed", report.failed)
    return report


def browser_missing() -> str | None:
    """Why the browser ring cannot run here, or None."""
    for path in (CHROMIUM, CHROMEDRIVER):
        if not (os.path.isfile(path) and os.access(path, os.X_OK)):
            return f"{NEEDS_CHROMIUM} ({path} not found)"
    if not HAVE_SELENIUM:
        return NEEDS_SELENIUM
    return None


# ------------------------------------------------------------------------------------------------
# The browser: one headless Chromium per session, cookies cleared for every test
# ------------------------------------------------------------------------------------------------
@pytest.fixture(scope="session")
def _chromium() -> Iterator[object]:
    reason = browser_missing()
    if reason:
        pytest.skip(reason)
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    profile = tempfile.mkdtemp(prefix="syncsite-chromium-")
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    # The network here is closed: nothing but the live server on 127.0.0.1 may be reached, so
    # turn off everything Chromium would fetch on its own.
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-quic",
                 "--no-first-run", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", f"--user-data-dir={profile}", "--window-size=1400,1000"):
        options.add_argument(flag)
    service = Service(executable_path=CHROMEDRIVER)
    try:
        driver = webdriver.Chrome(service=service, options=options)
    except Exception as exc:  # installed but cannot start (e.g. a driver/browser version mismatch)
        shutil.rmtree(profile, ignore_errors=True)
        pytest.skip(f"{NEEDS_CHROMIUM}; Chromium did not start: {exc.__class__.__name__}: {str(exc).strip()[:300]}")
    driver.set_window_size(1400, 1000)
    driver.set_page_load_timeout(30)
    try:
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


@pytest.fixture
def browser(_chromium, live_server, request, monkeypatch):
    """The session's Chromium, logged out, on a clean database (live_server implies a transactional
    database). Saves var/screenshots/<test>-failed.png when the test fails, and <test>.png when the
    test saved no screenshot itself."""
    from django.db import connections

    # The live server answers each browser connection (kept alive between requests) on a thread of
    # its own; with persistent database connections those threads would still hold sessions when
    # the test database is dropped ("being accessed by other users" on PostgreSQL).
    for conn in connections.all():
        monkeypatch.setitem(conn.settings_dict, "CONN_MAX_AGE", 0)
    driver = _chromium
    driver.delete_all_cookies()
    driver.live_server_url = live_server.url
    driver.screenshots_taken = []
    yield driver
    if getattr(request.node, "_browser_call_failed", False):
        screenshot(driver, f"{request.node.name}-failed")  # the page as it was when the test failed
    elif not driver.screenshots_taken:
        screenshot(driver, request.node.name)


def screenshot(driver, name: str) -> Path:
    """The whole page (not only the 1400x1000 viewport) as var/screenshots/<name>.png."""
    import base64

    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    metrics = driver.execute_cdp_cmd("Page.getLayoutMetrics", {})
    size = metrics.get("cssContentSize") or metrics["contentSize"]
    shot = driver.execute_cdp_cmd("Page.captureScreenshot", {
        "format": "png", "captureBeyondViewport": True,
        "clip": {"x": 0, "y": 0, "width": max(size["width"], 1400), "height": size["height"], "scale": 1}})
    path.write_bytes(base64.b64decode(shot["data"]))
    getattr(driver, "screenshots_taken", []).append(path)
    return path


# ------------------------------------------------------------------------------------------------
# People and the broker
# ------------------------------------------------------------------------------------------------
@pytest.fixture
def fast_passwords(settings):
    """Logging in through the form hashes the password; the default hasher takes ~0.3 s a time."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def manager(transactional_db, fast_passwords):
    from django.contrib.auth.models import User

    return User.objects.create_superuser("manager", "manager@example.com", PASSWORD, first_name="Marina")


@pytest.fixture(autouse=True)
def isolated_broker(monkeypatch, request) -> Iterator[str]:
    """A broker that works, and that nobody else reads: the embedded filesystem broker (the
    default) in a temporary folder, or the Redis in CELERY_BROKER_URL with a queue of our own.

    Whatever the live server or the test publishes ("Sync now", the export kick of a new order)
    lands in that queue and is thrown away afterwards, so a developer's worker never runs a job
    a browser test queued. Yields the queue name; `broker_messages` reads it."""
    from syncsite import publish as publisher
    from syncsite.celery import app

    queue = f"browser-test-{uuid.uuid4().hex[:12]}"
    folder = None
    if str(app.conf.broker_url or "").startswith("filesystem://"):
        folder = Path(tempfile.mkdtemp(prefix="syncsite-broker-"))
        for sub in ("queue", "processed", "control"):
            (folder / sub).mkdir()
        monkeypatch.setattr(app.conf, "broker_transport_options", {
            "data_folder_in": str(folder / "queue"), "data_folder_out": str(folder / "queue"),
            "processed_folder": str(folder / "processed"), "control_folder": str(folder / "control"),
            "store_processed": False})
    monkeypatch.setattr(app.conf, "task_default_queue", queue)
    # Pools for this broker (kombu keeps one per connection); the session's own come back with
    # monkeypatch's undo.
    monkeypatch.setattr(app, "_pool", None)
    monkeypatch.setattr(app.amqp, "_producer_pool", None)
    publisher.reset()  # an earlier test's dead broker must not keep the order kick quiet
    try:
        yield queue
    finally:
        try:
            with app.connection_for_write() as conn:  # declare, so the channel knows what to unbind
                bound = app.amqp.queues[queue](conn.default_channel)
                bound.declare()
                bound.delete()
        except Exception:  # the broker went away: nothing of ours is left in it then
            pass
        app.amqp.queues.pop(queue, None)
        if folder is not None:
            shutil.rmtree(folder, ignore_errors=True)


def broker_messages(queue: str) -> list[dict]:
    """Take every message out of `queue`: [{"task": name, "args": [...], "kwargs": {...}}]."""
    from syncsite.celery import app

    out = []
    with app.connection_for_write() as conn:
        channel = conn.default_channel
        while (message := channel.basic_get(queue, no_ack=True)) is not None:
            args, kwargs, _embed = message.decode()
            out.append({"task": message.headers.get("task"), "args": list(args), "kwargs": dict(kwargs)})
    return out
