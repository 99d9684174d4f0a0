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
                 errors: list | None = None):
        self.system, self.method, self.url, self.status = system, method, url, status
        self.request_id, self.body = request_id, (body or "")[:2000]
        self.errors = errors or []
        detail = message or self._describe()
        super().__init__(detail)

    def _describe(self) -> str:
        first = ""
        if self.errors:
            e = self.errors[0]
            first = f": {e.get('error') or e.get('message') or e}"
            if e.get("code"):
                first += f" (code {e['code']})"
        where = f"{self.method} {self.url}".strip()
        status = f" -> {self.status}" if self.status is not None else ""
        return f"{self.system} {where}{status}{first}".strip()


class UpstreamUnavailableError(UpstreamError):
    """Connect error, timeout or 5xx: retry with backoff."""

    retryable = True


class RateLimitedError(UpstreamError):
    """429 (or Yandex Market's 420): wait `retry_after` seconds, then retry."""

    retryable = True

    def __init__(self, *args, retry_after: float | None = None, **kwargs):
        self.retry_after = retry_after
        super().__init__(*args, **kwargs)


class AuthError(UpstreamError):
    """401/403: stop, mark the channel unhealthy, alert. Never retried."""


class NotFoundError(UpstreamError):
    """404: the record is gone."""


class RejectedError(UpstreamError):
    """400/409/412/413/415/422: our request or data is wrong. Record it, do not retry."""
