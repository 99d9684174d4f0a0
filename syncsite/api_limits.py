"""Budgets for the storefront API: per token, per client address, and failed logins per address.

`limits`' sliding-window counter, in Redis when REDIS_URL is set (shared by every web process) or
in process memory otherwise. Past a budget the API answers 429 `rate_limited` with `Retry-After`
(seconds until the window lets the next call through). A budget store that is down never takes the
API down: the call goes through and the failure is logged.

Order of checks (syncsite/api.py, StorefrontBearer): an address over its failed-login budget is
refused before its token is even compared; then the address budget; then, once the token is
right, the token's budget. A wrong token counts against the address's failed logins.
"""
from __future__ import annotations

import hashlib
import logging
import math
import time
from functools import lru_cache

from django.conf import settings
from django.http import HttpRequest
from limits import RateLimitItem, parse
from limits.storage import MemoryStorage, RedisStorage, Storage
from limits.strategies import SlidingWindowCounterRateLimiter

log = logging.getLogger("syncsite.api")


class RateLimited(Exception):
    def __init__(self, what: str, retry_after: int):
        super().__init__(f"{what}: over budget, retry in {retry_after} s")
        self.what, self.retry_after = what, retry_after


@lru_cache(maxsize=4)
def _limiter(redis_url: str) -> SlidingWindowCounterRateLimiter:
    storage: Storage = RedisStorage(redis_url, key_prefix="syncsite-api") if redis_url else MemoryStorage()
    return SlidingWindowCounterRateLimiter(storage)


@lru_cache(maxsize=32)
def _item(spec: str) -> RateLimitItem | None:
    return parse(spec) if spec.strip() else None


def client_address(request: HttpRequest) -> str:
    value = request.META.get(settings.API_CLIENT_IP_HEADER) or request.META.get("REMOTE_ADDR") or "unknown"
    return value.split(",")[0].strip()[:64]


def _hit(spec: str, what: str, key: str, *, cost: int = 1, peek: bool = False) -> None:
    item = _item(spec)
    if item is None:
        return
    limiter = _limiter(getattr(settings, "REDIS_URL", ""))
    try:
        allowed = limiter.test(item, what, key) if peek else limiter.hit(item, what, key, cost=cost)
        if allowed:
            return
        reset = limiter.get_window_stats(item, what, key).reset_time
    except Exception:  # the budget store is down: serve, and say so
        log.warning("api.rate-limit.unavailable what=%s", what, exc_info=True)
        return
    raise RateLimited(what, max(1, math.ceil(reset - time.time())))


def _token_key(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()[:24]   # never the token itself in Redis


def check_address(request: HttpRequest) -> None:
    """Before the token is looked at: failed logins of this address, then its call budget."""
    address = client_address(request)
    _hit(settings.API_AUTH_FAILURE_LIMIT, "auth-failures", address, peek=True)
    _hit(settings.API_RATE_LIMIT_PER_IP, "address", address)


def check_token(token: str) -> None:
    _hit(settings.API_RATE_LIMIT, "token", _token_key(token))


def record_auth_failure(request: HttpRequest) -> None:
    """Counts a wrong or missing token against the address (never raises: this call gets its 401)."""
    item = _item(settings.API_AUTH_FAILURE_LIMIT)
    if item is None:
        return
    try:
        _limiter(getattr(settings, "REDIS_URL", "")).hit(item, "auth-failures", client_address(request))
    except Exception:
        log.warning("api.rate-limit.unavailable what=auth-failures", exc_info=True)
