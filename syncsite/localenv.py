"""Explicit values for running on this machine over plain http with DEBUG off: the test suite and
the benchmarks. Production must set SECRET_KEY and ALLOWED_HOSTS itself (settings refuse to start
without them) and keeps the HTTPS switches on; `make run` runs with DEBUG=1 instead, which has
development defaults of its own. Imports nothing from Django: it is applied before settings load."""
from __future__ import annotations

import secrets

LOCAL_HOSTS = "localhost,127.0.0.1,[::1],testserver"


def local_env() -> dict[str, str]:
    """Environment for a local run: a fresh secret, local host names, and no https redirect, HSTS or
    https-only cookies (nothing here speaks TLS)."""
    return {
        "SECRET_KEY": secrets.token_urlsafe(50),
        "ALLOWED_HOSTS": LOCAL_HOSTS,
        "SECURE_SSL_REDIRECT": "0",
        "SECURE_HSTS_SECONDS": "0",
        "SESSION_COOKIE_SECURE": "0",
        "CSRF_COOKIE_SECURE": "0",
    }


def apply_local_env(environ) -> None:
    """Fill what the environment does not set already (a developer's own values win)."""
    for key, value in local_env().items():
        environ.setdefault(key, value)
