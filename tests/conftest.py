"""Shared test fixtures. Unit tests may not reach any host but this one (upstreams are mocked
with respx or emulated by the sandbox on 127.0.0.1)."""
from __future__ import annotations

import ipaddress
import os
import socket

import pytest

_real_connect = socket.socket.connect


def _guarded_connect(self, address):
    host = address[0] if isinstance(address, tuple) else address
    if isinstance(host, str) and self.family in (socket.AF_INET, socket.AF_INET6):
        try:
            ok = host == "localhost" or ipaddress.ip_address(host).is_loopback
        except ValueError:
            ok = False
        if not ok:
            raise ConnectionRefusedError(f"tests may not reach {host}: mock it with respx or use the sandbox")
    return _real_connect(self, address)


@pytest.fixture(autouse=True)
def _no_network(monkeypatch):
    monkeypatch.setattr(socket.socket, "connect", _guarded_connect)


def redis_url() -> str | None:
    url = os.environ.get("CELERY_BROKER_URL", "")
    return url if url.startswith("redis://") else None


needs_redis = pytest.mark.skipif(
    redis_url() is None,
    reason="needs a Redis server: set CELERY_BROKER_URL=redis://127.0.0.1:6379/14 (as .ci/run does)")
needs_postgres = pytest.mark.skipif(
    not os.environ.get("DATABASE_URL", "").startswith(("postgres://", "postgresql://")),
    reason="needs PostgreSQL: set DATABASE_URL=postgres://postgres@127.0.0.1:5432/syncsite (as .ci/run does)")


@pytest.fixture
def moysklad_settings(settings):
    """A configured MoySklad pointing at a fake base URL, with a fast, generous limiter."""
    settings.MOYSKLAD = {**settings.MOYSKLAD, "BASE_URL": "https://ms.test/api/remap/1.2", "TOKEN": "test-token",
                         "LOGIN": "", "PASSWORD": "", "BUDGET_UNITS": 1000, "REQUEST_WEIGHT": 1}
    return settings.MOYSKLAD


@pytest.fixture(autouse=True)
def _fresh_cache():
    """Each test starts with an empty Django cache (cached upstream lookups never leak across tests)."""
    from django.core.cache import cache

    cache.clear()
    yield
    cache.clear()


@pytest.fixture(autouse=True)
def _api_budgets_off(settings):
    """The suite calls the API from one address far faster than any budget allows; the tests of the
    budgets (tests/unit/api/test_rate_limits.py) set their own."""
    settings.API_RATE_LIMIT = settings.API_RATE_LIMIT_PER_IP = settings.API_AUTH_FAILURE_LIMIT = ""


@pytest.fixture(autouse=True)
def _upstream_breakers_off(settings):
    """Many tests make an upstream fail on purpose, and the breaker's count is shared (Redis, the
    limit files) across tests; tests/unit/http/test_breaker.py turns it on with a fresh name."""
    settings.UPSTREAM_BREAKER_FAILURES = 0


# The sandbox in-process behind respx (tests/sandbox_respx.py): `sandbox_respx`, sized by
# `sandbox_options`; `isolated_limiters` and `fast_backoff` for any test that talks to an upstream.
from tests.sandbox_respx import fast_backoff, isolated_limiters, sandbox_options, sandbox_respx  # noqa: E402,F401
