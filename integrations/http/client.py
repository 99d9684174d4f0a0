"""The base client owns the hard parts: timeouts, mapping httpx errors and statuses to typed
errors, capped retries with jittered backoff, rate-limit waits, one log line per response and
request counters. Channel clients only describe endpoints."""
from __future__ import annotations

import logging
import random
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Callable

import httpx
import msgspec

from .errors import (
    AuthError,
    CircuitOpenError,
    NotFoundError,
    RateLimitedError,
    RedirectRefusedError,
    RejectedError,
    UpstreamError,
    UpstreamUnavailableError,
)
from .ratelimit import Limiter

log = logging.getLogger("syncsite.http")

IDEMPOTENT = {"GET", "HEAD", "PUT", "DELETE", "OPTIONS"}


@dataclass
class ClientStats:
    requests: int = 0
    retries: int = 0
    rate_limited: int = 0
    by_status: dict = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def as_dict(self) -> dict:
        return {"requests": self.requests, "retries": self.retries, "rate_limited": self.rate_limited,
                "by_status": dict(self.by_status)}


class BaseClient:
    system = "upstream"
    #: tries of one call that fail with a retryable error (5xx, timeout, connect): first + 2 retries
    max_attempts = 3
    #: 429s one call may wait out before giving up (the task retries later)
    max_rate_limit_waits = 5
    #: first back-off, seconds; doubles per retry, "equal jitter" (half fixed, half random)
    backoff_base = 0.5
    #: longest a single back-off may be; a Retry-After above it is not waited out in-process
    max_backoff = 60.0
    #: longest the shared limiter is paused for one 429 (everyone waits this long at most)
    max_pause = 300.0
    #: a connection is recycled after this many requests (MoySklad asks for at most 100)
    requests_per_connection = 0
    #: redirects followed in one call, and only to URLs under `base_url` (anything else is an error)
    max_redirects = 3
    #: failures in a row (5xx, timeouts, refused credentials) that open the circuit of this
    #: upstream (its limiter: per credential, shared by every worker) for `breaker_seconds`; 0 = never.
    #: Settings UPSTREAM_BREAKER_FAILURES / UPSTREAM_BREAKER_SECONDS override these.
    breaker_failures = 20
    breaker_seconds = 60.0

    def __init__(self, base_url: str, *, headers: dict | None = None, auth: httpx.Auth | tuple | None = None,
                 timeout: float = 30.0, limiter: Limiter | None = None,
                 transport: httpx.BaseTransport | None = None, sleep: Callable[[float], None] = time.sleep):
        self.base_url = base_url.rstrip("/")
        self.limiter = limiter
        try:
            from django.conf import settings as dj_settings

            self.breaker_failures = int(getattr(dj_settings, "UPSTREAM_BREAKER_FAILURES", self.breaker_failures))
            self.breaker_seconds = float(getattr(dj_settings, "UPSTREAM_BREAKER_SECONDS", self.breaker_seconds))
        except Exception:  # used outside a configured Django (a script): the class defaults
            pass
        self.stats = ClientStats()
        self._sleep = sleep
        self._client_kwargs = dict(
            base_url=self.base_url,
            headers=headers or {},
            auth=auth,
            timeout=httpx.Timeout(timeout, connect=min(10.0, timeout)),
            limits=httpx.Limits(max_connections=limiter.parallel if limiter else 10,
                                max_keepalive_connections=limiter.parallel if limiter else 10,
                                keepalive_expiry=25.0),
            transport=transport,
            # Not by httpx: a redirect could carry our credentials and requests to another host
            # (an internal address, say). `_send_once` follows those that stay under base_url;
            # any other 3xx is an error the operator sees (`error_for`).
            follow_redirects=False,
        )
        self._http = httpx.Client(**self._client_kwargs)
        self._pool_lock = threading.Lock()
        self._in_flight = 0
        self._since_rotate = 0

    def close(self) -> None:
        self._http.close()

    def _within_base(self, url: httpx.URL) -> bool:
        """`url` is under the configured base URL: same scheme, host and port, and its path below
        the base path."""
        base = httpx.URL(self.base_url)
        prefix = base.path.rstrip("/") + "/"
        return ((url.scheme, url.host, url.port) == (base.scheme, base.host, base.port)
                and (url.path + "/").startswith(prefix))

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    # -- hooks for channel clients --------------------------------------------------------------
    def weight_for(self, method: str, url: str) -> int:
        return 1

    def parse_error_body(self, response: httpx.Response) -> list:
        try:
            data = response.json()
        except Exception:
            return []
        if isinstance(data, dict):
            errors = data.get("errors")
            if isinstance(errors, list):
                return errors
            if "message" in data or "error" in data:
                return [data]
        return []

    def retry_after(self, response: httpx.Response) -> float | None:
        value = response.headers.get("Retry-After")
        try:
            return float(value) if value is not None else None
        except ValueError:
            return None

    def request_id(self, response: httpx.Response) -> str:
        return response.headers.get("X-Request-Id", "") or response.headers.get("X-Lognex-Request-Id", "")

    def on_rate_limited(self, error: RateLimitedError) -> None:
        """Tell every user of the limiter to hold off as long as upstream asked."""
        if self.limiter is not None and error.retry_after:
            self.limiter.pause(min(error.retry_after, self.max_pause))

    def auth_hint(self, status: int) -> str:
        """What the operator should check when upstream refuses our credentials."""
        return "check the credentials"

    def backoff(self, n: int) -> float:
        """The n-th back-off (n >= 1): exponential with equal jitter, capped."""
        ceiling = min(self.max_backoff, self.backoff_base * 2 ** (n - 1))
        return ceiling / 2 + random.uniform(0, ceiling / 2)

    # -- the call ----------------------------------------------------------------------------------
    def request(self, method: str, url: str, *, params: dict | list | None = None, json: Any = None,
                headers: dict | None = None, retry: bool | None = None) -> httpx.Response:
        """Send one request. Reads (idempotent methods) are retried: 5xx, timeouts and connect
        errors up to `max_attempts` tries in all, with jittered backoff; a 429 is waited out
        (upstream's figure through the shared limiter, or a jittered backoff without one) up to
        `max_rate_limit_waits` times. Other writes (POST) are sent once unless `retry=True`.
        4xx other than 429 are never retried."""
        method = method.upper()
        if retry is None:
            retry = method in IDEMPOTENT
        failures = waits = 0
        while True:
            try:
                return self._send_once(method, url, params=params, json=json, headers=headers)
            except RateLimitedError as exc:
                waits += 1
                if not retry or waits > self.max_rate_limit_waits:
                    raise
                if not exc.retry_after or exc.retry_after < 0:
                    delay = self.backoff(waits)  # no usable figure (parallel cap): back off, jittered
                elif exc.retry_after > self.max_backoff:
                    raise  # too long to hold a worker: the task retries later
                elif self.limiter is not None:
                    delay = 0.0  # the limiter is paused; the next take() waits it out
                else:
                    delay = exc.retry_after
            except UpstreamError as exc:
                failures += 1
                if not retry or not exc.retryable or failures >= self.max_attempts:
                    raise
                delay = self.backoff(failures)
            with self.stats.lock:
                self.stats.retries += 1
            if delay > 0:
                self._sleep(delay)

    def _client(self) -> httpx.Client:
        with self._pool_lock:
            if (self.requests_per_connection and self._since_rotate >= self.requests_per_connection
                    and self._in_flight == 0):
                # Recycle connections before upstream's per-connection request cap bites.
                self._http.close()
                self._http = httpx.Client(**self._client_kwargs)
                self._since_rotate = 0
            self._in_flight += 1
            self._since_rotate += 1
            return self._http

    def _release(self) -> None:
        with self._pool_lock:
            self._in_flight -= 1

    def _circuit_check(self, method: str, url: str) -> int:
        """Fail fast while this upstream's circuit is open; returns the failures in a row seen."""
        if self.limiter is None or not self.breaker_failures:
            return 0
        failures, until = self.limiter.circuit()
        left = until - self.limiter._clock()
        if left > 0:
            raise CircuitOpenError(
                f"{self.system} failed {failures} times in a row; calls are paused for another {left:.0f} s "
                f"(then one trial call decides)", system=self.system, method=method, url=url, retry_after=left)
        return failures

    def _circuit_record(self, failed: bool, seen: int) -> None:
        if self.limiter is None or not self.breaker_failures:
            return
        if failed:
            failures, until = self.limiter.circuit_failed(self.breaker_failures, self.breaker_seconds)
            if failures == self.breaker_failures:
                log.warning("%s.circuit-open failures=%s for=%.0fs", self.system, failures, self.breaker_seconds)
        elif seen:
            self.limiter.circuit_succeeded()
            log.info("%s.circuit-closed", self.system)

    def _send_once(self, method: str, url: str, *, params=None, json=None, headers=None) -> httpx.Response:
        seen = self._circuit_check(method, url)
        try:
            response = self._send_counted(method, url, params=params, json=json, headers=headers)
        except UpstreamUnavailableError:
            self._circuit_record(True, seen)
            raise
        except AuthError:
            self._circuit_record(True, seen)
            raise
        except UpstreamError:
            self._circuit_record(False, seen)   # a clear answer (404, 4xx, 429): the upstream is up
            raise
        self._circuit_record(False, seen)
        return response

    def _send_counted(self, method: str, url: str, *, params=None, json=None, headers=None) -> httpx.Response:
        weight = self.weight_for(method, url)
        started = time.monotonic()
        ctx = self.limiter.slot(weight) if self.limiter else _null_ctx()
        with ctx:
            client = self._client()
            try:
                response = client.request(method, url, params=params, json=json, headers=headers)
                hops = 0
                while (_refused_redirect(response) and response.next_request is not None
                       and hops < self.max_redirects and self._within_base(response.next_request.url)):
                    # Upstream moved the resource inside our own base URL (MoySklad sends a UI
                    # uuid's 308 to its API id): the one kind of redirect we follow.
                    response = client.send(response.next_request)
                    hops += 1
            except httpx.TimeoutException as exc:
                raise UpstreamUnavailableError(f"{self.system} {method} {url}: timed out ({exc.__class__.__name__})",
                                               system=self.system, method=method, url=url) from exc
            except httpx.TransportError as exc:
                raise UpstreamUnavailableError(f"{self.system} {method} {url}: {exc.__class__.__name__}: {exc}",
                                               system=self.system, method=method, url=url) from exc
            finally:
                self._release()
        _free_when_dropped(response)
        elapsed_ms = (time.monotonic() - started) * 1000
        with self.stats.lock:
            self.stats.requests += 1
            self.stats.by_status[response.status_code] = self.stats.by_status.get(response.status_code, 0) + 1
        log.info("%s.http %s %s -> %s %.0fms rid=%s remaining=%s", self.system, method,
                 response.request.url.path, response.status_code, elapsed_ms, self.request_id(response),
                 response.headers.get("X-RateLimit-Remaining", "-"))
        if response.status_code < 400 and not _refused_redirect(response):
            return response
        raise self.error_for(response, method, url)

    def error_for(self, response: httpx.Response, method: str, url: str) -> UpstreamError:
        status = response.status_code
        kwargs = dict(system=self.system, method=method, url=str(response.request.url), status=status,
                      request_id=self.request_id(response), body=response.text[:2000],
                      errors=self.parse_error_body(response))
        if status in (429, 420):
            with self.stats.lock:
                self.stats.rate_limited += 1
            error = RateLimitedError(retry_after=self.retry_after(response), **kwargs)
            self.on_rate_limited(error)
            return error
        if _refused_redirect(response):
            location = response.headers.get("Location", "")[:300]
            return RedirectRefusedError(
                f"{self.system} {method} {response.request.url} -> {status} redirect to {location!r}: redirects "
                f"away from the configured base URL are not followed; check the {self.system} base URL setting",
                **kwargs)
        if status in (401, 403):
            return AuthError(hint=self.auth_hint(status), **kwargs)
        if status == 404:
            return NotFoundError(**kwargs)
        if status >= 500:
            return UpstreamUnavailableError(**kwargs)
        return RejectedError(**kwargs)

    # -- helpers -----------------------------------------------------------------------------------
    def get_json(self, url: str, *, parse: Callable[[bytes], Any] | None = None, **kwargs) -> Any:
        """GET and decode the JSON answer (msgspec: several times faster than the json module), or
        hand the raw body to `parse` (a typed decoder). A body that does not decode - cut short,
        say - raises UpstreamUnavailableError."""
        response = self.request("GET", url, **kwargs)
        try:
            return (parse or _decode_json)(response.content)
        except (msgspec.DecodeError, ValueError) as exc:
            raise UpstreamUnavailableError(
                f"{self.system} GET {response.request.url}: answer is not JSON as expected ({exc}; "
                f"{len(response.content)} bytes, starting {response.text[:80]!r})",
                system=self.system, method="GET", url=str(response.request.url), status=response.status_code,
                body=response.text) from exc


def _free_when_dropped(response: httpx.Response) -> None:
    """httpx binds a response's stream back to the response (to stamp `elapsed` on close): a
    reference cycle, so a response - a MoySklad page holds 4 MB of JSON - lives on after its
    last use until the cyclic collector's next full pass. The body is read by now: the stream is
    replaced by the body itself and the response is freed as soon as it is dropped."""
    if response.is_stream_consumed and response.is_closed:
        response.stream = httpx.ByteStream(response.content)


def _refused_redirect(response: httpx.Response) -> bool:
    """Any 3xx but 304 (Not Modified, an answer to a conditional GET, not a redirect)."""
    return 300 <= response.status_code < 400 and response.status_code != 304


_decode_json = msgspec.json.Decoder().decode


class _null_ctx:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False
