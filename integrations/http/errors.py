"""Errors named by what the caller should do.

The base client maps every transport failure and HTTP status to one of these once; jobs and
tasks decide on the class alone (retry, wait, stop and alert, record and move on)."""
from __future__ import annotations


class SyncError(Exception):
    """Base of everything a sync can raise on purpose."""


class NotConfigured(SyncError):
    """The system has no credentials: its jobs report "not configured" and succeed."""


class MappingError(SyncError):
    """An upstream record cannot be mapped to our models (a data problem: record, skip)."""


class MissingDependencyError(SyncError):
    """A record needs another one we do not have yet (retry later)."""


class UpstreamError(SyncError):
    retryable = False

    def __init__(self, message: str = "", *, system: str = "", method: str = "", url: str = "",
                 status: int | None = None, request_id: str = "", body: str = "",
                 errors: list | None = None, hint: str = ""):
        self.system, self.method, self.url, self.status = system, method, url, status
        self.request_id, self.body = request_id, (body or "")[:2000]
        self.errors = errors or []
        self.hint = hint
        detail = message or self._describe()
        if hint:
            detail = f"{detail}; {hint}"
        super().__init__(detail)

    @property
    def codes(self) -> list:
        """Upstream error codes (MoySklad's `errors[].code`), in order."""
        return [e.get("code") for e in self.errors if isinstance(e, dict) and e.get("code") is not None]

    def _describe(self) -> str:
        first = ""
        if self.errors:
            e = self.errors[0] if isinstance(self.errors[0], dict) else {"error": self.errors[0]}
            first = f": {e.get('error') or e.get('message') or e}"
            if e.get("code"):
                first += f" (code {e['code']})"
        where = f"{self.method} {self.url}".strip()
        status = f" -> {self.status}" if self.status is not None else ""
        return f"{self.system} {where}{status}{first}".strip()


class UpstreamUnavailableError(UpstreamError):
    """Connect error, timeout or 5xx: retry with backoff."""

    retryable = True


class CircuitOpenError(UpstreamUnavailableError):
    """Not sent: this upstream failed too often in a row and its circuit is open (see
    integrations/http/ratelimit.py, Limiter.circuit). Not retried within the call; the caller's
    schedule or task retry tries again after `retry_after` seconds."""

    retryable = False

    def __init__(self, *args, retry_after: float | None = None, **kwargs):
        self.retry_after = retry_after
        super().__init__(*args, **kwargs)


class RateLimitedError(UpstreamError):
    """429 (or Yandex Market's 420): wait `retry_after` seconds (None: upstream gave no figure,
    e.g. MoySklad's parallel-request cap, code 1073), then retry."""

    retryable = True

    def __init__(self, *args, retry_after: float | None = None, **kwargs):
        self.retry_after = retry_after
        super().__init__(*args, **kwargs)


class AuthError(UpstreamError):
    """401/403: stop, mark the channel unhealthy, alert. Never retried."""


class NotFoundError(UpstreamError):
    """404: the record is gone."""


class RedirectRefusedError(UpstreamError):
    """A 3xx pointing away from the configured base URL (a configured host must not be able to send
    our credentials or our requests elsewhere, e.g. to an internal address). Not retried: the base
    URL setting needs a look."""


class RejectedError(UpstreamError):
    """400/409/412/413/415/422: our request or data is wrong. Record it, do not retry."""
