"""Reusable building blocks for the upstream emulators (MoySklad now; Ozon, WB, YM, Telegram later).

Every emulator is an object with ``handle(request) -> Response``. The pieces that all real
upstreams share live here so each emulator module only describes its own endpoints and formats:

* ``Request`` / ``Response``: tiny transport-neutral dataclasses. The threaded HTTP server
  (server.py) and the WSGI adapter (``SandboxApp.__call__``, for respx's ``WSGIHandler``) both
  convert to and from them, so one emulator serves real sockets and in-process tests alike.
* ``Router``: ``"entity/{entity}/{id}"`` style templates; the template doubles as the stats key.
* ``WeightedWindowLimiter``: a moving window of weighted units per key (MoySklad: 45 units per
  3 s, a request costs 1..5 units).
* ``ConcurrencyGate``: at most N requests in flight per key (MoySklad: 5 per user).
* ``FaultInjector``: scripted failures (status, timeout, dropped connection) for tests.
* ``Stats``: counters that benchmarks and e2e tests read back.
* ``ApiEmulator``: the request pipeline (encoding check, auth, faults, parallel cap, budget,
  latency, routing, error rendering) with hooks a concrete upstream overrides.
* ``SandboxApp``: the registry ``name -> emulator`` mounted at ``/<name>/...`` with control
  endpoints at ``/_sandbox/<name>/...``.

Nothing here imports Django: the sandbox must start standalone in a fraction of a second.
"""
from __future__ import annotations

import base64
import collections
import gzip
import hmac
import json
import logging
import re
import random
import threading
import time
import traceback
from dataclasses import asdict, dataclass, field
from http import HTTPStatus
from typing import Any, Callable, Iterable
from urllib.parse import parse_qs, quote, urlencode

import msgspec

log = logging.getLogger("integrations.sandbox")

JSON_CONTENT_TYPE = "application/json;charset=utf-8"


# ---------------------------------------------------------------------------------------------
# Request / Response
# ---------------------------------------------------------------------------------------------
@dataclass
class Request:
    """One HTTP request as the emulators see it.

    ``path`` is relative to the emulator's mount point and has no leading slash
    (``api/remap/1.2/entity/product``); ``origin`` (``http://127.0.0.1:8100``) plus ``mount``
    (``/moysklad``) rebuild absolute hrefs the way the client addressed us.
    """

    method: str
    path: str
    query_string: str = ""
    headers: dict[str, str] = field(default_factory=dict)  # lower-cased names
    body: bytes = b""
    origin: str = "http://127.0.0.1"
    mount: str = ""
    params: dict[str, str] = field(default_factory=dict)  # filled by the router
    _query: dict[str, list[str]] | None = field(default=None, repr=False)

    @property
    def query(self) -> dict[str, list[str]]:
        if self._query is None:
            self._query = parse_qs(self.query_string, keep_blank_values=True)
        return self._query

    def arg(self, name: str, default: str | None = None) -> str | None:
        """The first value of query parameter ``name``."""
        values = self.query.get(name)
        return values[0] if values else default

    def args(self, name: str) -> list[str]:
        """All values of a repeated query parameter (``filter=a&filter=b``)."""
        return list(self.query.get(name, []))

    def header(self, name: str, default: str | None = None) -> str | None:
        return self.headers.get(name.lower(), default)

    def json(self) -> Any:
        """The body parsed as JSON; ``None`` for an empty body. Raises ``ValueError`` when bad."""
        if not self.body:
            return None
        return json.loads(self.body.decode("utf-8"))

    @property
    def base(self) -> str:
        """Absolute URL of the mount point, e.g. ``http://127.0.0.1:8100/moysklad``."""
        return self.origin + self.mount


@dataclass
class Response:
    """An answer. ``drop=True`` tells the transport to close the socket without answering."""

    status: int = 200
    body: bytes = b""
    headers: list[tuple[str, str]] = field(default_factory=list)
    content_type: str | None = None
    drop: bool = False
    encoded: bool = False  # body already compressed (Content-Encoding set)

    def header(self, name: str) -> str | None:
        lname = name.lower()
        for key, value in self.headers:
            if key.lower() == lname:
                return value
        return None

    def set_header(self, name: str, value: str) -> None:
        lname = name.lower()
        self.headers = [(k, v) for k, v in self.headers if k.lower() != lname]
        self.headers.append((name, value))


def dumps(obj: Any, *, pretty: bool = False) -> bytes:
    """Compact UTF-8 JSON (Cyrillic stays readable, like the real APIs answer). msgspec writes the
    same JSON as json.dumps (an exponent without "+") at several times the speed: a full catalog is
    640 MB of it, and the sandbox stands in for a server whose CPU is not ours."""
    if pretty:
        return json.dumps(obj, ensure_ascii=False, indent=2).encode("utf-8")
    return msgspec.json.encode(obj)


def json_response(obj: Any, status: int = 200, headers: Iterable[tuple[str, str]] = (),
                  *, pretty: bool = False) -> Response:
    return Response(status=status, body=dumps(obj, pretty=pretty), headers=list(headers),
                    content_type=JSON_CONTENT_TYPE)


def empty_response(status: int, headers: Iterable[tuple[str, str]] = ()) -> Response:
    return Response(status=status, body=b"", headers=list(headers))


def drop_response() -> Response:
    return Response(status=0, drop=True)


class DroppedConnection(ConnectionResetError):
    """Raised by the WSGI adapter for a ``drop`` fault: WSGI cannot close a socket, so the
    in-process caller (respx/httpx ``WSGITransport``) sees an exception instead."""


# ---------------------------------------------------------------------------------------------
# Encoding and auth helpers
# ---------------------------------------------------------------------------------------------
def accepts_gzip(accept_encoding: str | None) -> bool:
    """True when ``Accept-Encoding`` lists gzip (or ``*``) with a non-zero quality."""
    if not accept_encoding:
        return False
    for part in accept_encoding.split(","):
        token, _, params = part.strip().partition(";")
        token = token.strip().lower()
        if token not in ("gzip", "x-gzip", "*"):
            continue
        quality = 1.0
        for param in params.split(";"):
            key, _, value = param.strip().partition("=")
            if key.strip().lower() == "q":
                try:
                    quality = float(value)
                except ValueError:
                    quality = 0.0
        if quality > 0:
            return True
    return False


def gzip_bytes(data: bytes, level: int = 1) -> bytes:
    """Level 1 by default: the sandbox should spend its CPU on data, not on compression, so
    benchmarks measure the client rather than the emulator."""
    return gzip.compress(data, compresslevel=level, mtime=0)


def finalize(request: Request, response: Response, *, gzip_level: int = 1) -> Response:
    """Compress the body when the client accepts gzip (almost every real upstream does)."""
    if response.drop or response.encoded or not response.body:
        return response
    if accepts_gzip(request.header("accept-encoding")):
        response.body = gzip_bytes(response.body, gzip_level)
        response.set_header("Content-Encoding", "gzip")
        response.encoded = True
    return response


@dataclass(frozen=True)
class Credentials:
    """Who may call an emulator. Returns the *user key* the limits are counted against.

    A Bearer token and the Basic login of the same user map to the same key, because MoySklad
    (since Feb 2026) counts its budget and the parallel cap per user, not per header value.
    """

    token: str | None = "sandbox-token"
    login: str | None = "admin@sandbox"
    password: str | None = "sandbox"

    @property
    def user(self) -> str:
        return self.login or "sandbox-user"

    def authenticate(self, authorization: str | None) -> tuple[str | None, str]:
        """``(user_key, "")`` on success, ``(None, reason)`` otherwise."""
        if not authorization:
            return None, "отсутствует заголовок Authorization"
        scheme, _, value = authorization.strip().partition(" ")
        scheme = scheme.lower()
        value = value.strip()
        if scheme == "bearer":
            if self.token and hmac.compare_digest(value.encode(), self.token.encode()):
                return self.user, ""
            return None, "неверный токен"
        if scheme == "basic":
            try:
                login, _, password = base64.b64decode(value, validate=True).decode("utf-8").partition(":")
            except (ValueError, UnicodeDecodeError):
                return None, "неверный формат Basic"
            ok = (self.login is not None and self.password is not None
                  and hmac.compare_digest(login.encode(), self.login.encode())
                  and hmac.compare_digest(password.encode(), self.password.encode()))
            return (self.user, "") if ok else (None, "неверный логин или пароль")
        return None, f"неподдерживаемая схема {scheme!r}"


def basic_auth_header(login: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{login}:{password}".encode()).decode()


# ---------------------------------------------------------------------------------------------
# Routing
# ---------------------------------------------------------------------------------------------
Handler = Callable[[Request], Response]


@dataclass
class Route:
    method: str
    template: str
    handler: Handler
    regex: re.Pattern
    weight: int | None = None  # None: the emulator's default request weight
    name: str = ""

    @property
    def endpoint(self) -> str:
        """Stats key: the template, prefixed with the method unless it is a GET."""
        return self.name or (self.template if self.method == "GET" else f"{self.method} {self.template}")


class Router:
    """Path templates with ``{name}`` segments (one path segment each; ``{name:path}`` spans
    several). First added, first matched, so register specific routes before general ones."""

    _param = re.compile(r"\{(\w+)(?::(\w+))?\}")

    def __init__(self) -> None:
        self.routes: list[Route] = []

    def add(self, method: str, template: str, handler: Handler, *, weight: int | None = None,
            name: str = "") -> Route:
        pattern = ""
        pos = 0
        for m in self._param.finditer(template):
            pattern += re.escape(template[pos:m.start()])
            pattern += f"(?P<{m.group(1)}>.+)" if m.group(2) == "path" else f"(?P<{m.group(1)}>[^/]+)"
            pos = m.end()
        pattern += re.escape(template[pos:])
        route = Route(method.upper(), template, handler, re.compile(f"^{pattern}/?$"), weight, name)
        self.routes.append(route)
        return route

    def get(self, template: str, **kw) -> Callable[[Handler], Handler]:
        def deco(fn: Handler) -> Handler:
            self.add("GET", template, fn, **kw)
            return fn
        return deco

    def match(self, method: str, path: str) -> tuple[Route | None, dict[str, str], bool]:
        """``(route, params, path_known)``; ``path_known`` distinguishes 405 from 404."""
        path_known = False
        for route in self.routes:
            m = route.regex.match(path)
            if not m:
                continue
            path_known = True
            if route.method == method.upper():
                return route, m.groupdict(), True
        return None, {}, path_known


# ---------------------------------------------------------------------------------------------
# Limits
# ---------------------------------------------------------------------------------------------
@dataclass
class LimitDecision:
    allowed: bool
    limit: int            # budget units per window
    remaining: int        # units left after this request (0 when rejected)
    window_ms: int
    retry_after_ms: int   # 0 when allowed; else ms until this request's weight fits
    reset_ms: int         # ms until the window is empty again (0: nothing counted)
    weight: int


class WeightedWindowLimiter:
    """A moving (sliding-log) window: each admitted request is remembered with its weight for
    ``window`` seconds; a request is admitted when the units in the window plus its own weight
    stay within ``budget``. A rejected request consumes nothing, like the real MoySklad."""

    def __init__(self, budget: int = 45, window: float = 3.0, clock: Callable[[], float] = time.monotonic):
        self.budget = budget
        self.window = window
        self.clock = clock
        self._log: dict[str, collections.deque[tuple[float, int]]] = {}
        self._used: dict[str, int] = {}
        self._lock = threading.Lock()

    def _evict(self, key: str, now: float) -> tuple[collections.deque, int]:
        entries = self._log.setdefault(key, collections.deque())
        used = self._used.get(key, 0)
        horizon = now - self.window
        while entries and entries[0][0] <= horizon:
            used -= entries.popleft()[1]
        self._used[key] = used
        return entries, used

    def _ms(self, seconds: float) -> int:
        return max(0, int(seconds * 1000 + 0.999))

    def acquire(self, key: str, weight: int) -> LimitDecision:
        with self._lock:
            now = self.clock()
            entries, used = self._evict(key, now)
            window_ms = int(self.window * 1000)
            if used + weight <= self.budget:
                entries.append((now, weight))
                used += weight
                self._used[key] = used
                reset = self._ms(entries[0][0] + self.window - now) if entries else 0
                return LimitDecision(True, self.budget, self.budget - used, window_ms, 0, reset, weight)
            # Find when enough of the oldest units leave the window for this weight to fit.
            need = used + weight - self.budget
            freed = 0
            retry_at = now
            for stamp, w in entries:
                freed += w
                retry_at = stamp + self.window
                if freed >= need:
                    break
            reset = self._ms(entries[-1][0] + self.window - now) if entries else 0
            return LimitDecision(False, self.budget, max(0, self.budget - used), window_ms,
                                 max(1, self._ms(retry_at - now)), reset, weight)

    def peek(self, key: str) -> LimitDecision:
        """The current state without consuming (for headers on answers that were not counted)."""
        with self._lock:
            now = self.clock()
            entries, used = self._evict(key, now)
            reset = self._ms(entries[0][0] + self.window - now) if entries else 0
            return LimitDecision(True, self.budget, max(0, self.budget - used), int(self.window * 1000), 0, reset, 0)

    def reset(self) -> None:
        with self._lock:
            self._log.clear()
            self._used.clear()


class ConcurrencyGate:
    """At most ``limit`` requests in flight per key; the excess is refused immediately (the
    upstream answers 429 rather than queueing)."""

    def __init__(self, limit: int = 5):
        self.limit = limit
        self._inflight: dict[str, int] = collections.defaultdict(int)
        self._lock = threading.Lock()
        self.max_seen = 0

    def acquire(self, key: str) -> bool:
        with self._lock:
            if self._inflight[key] >= self.limit:
                return False
            self._inflight[key] += 1
            self.max_seen = max(self.max_seen, self._inflight[key])
            return True

    def release(self, key: str) -> None:
        with self._lock:
            self._inflight[key] = max(0, self._inflight[key] - 1)

    def inflight(self, key: str) -> int:
        with self._lock:
            return self._inflight[key]


# ---------------------------------------------------------------------------------------------
# Faults
# ---------------------------------------------------------------------------------------------
FAULT_KINDS = ("status", "timeout", "drop", "rows", "cut")


@dataclass
class Fault:
    """One scripted failure.

    kind ``status``: answer ``status`` (with the emulator's error body, or ``body`` verbatim).
    kind ``timeout``: wait ``seconds`` (longer than the client timeout), then ``then``:
    ``"drop"`` (close without answering) or ``"answer"`` (process the request normally, late).
    kind ``drop``: close the connection without a byte of answer.
    kind ``rows``: answer normally, with the list ``body`` added to the answer's rows (a
    collection's ``rows`` or a bare-array report): records no client can read, in an otherwise
    well-formed answer.
    kind ``cut``: process the request normally (the upstream did the work), then close the
    connection without a byte of answer: the client cannot tell whether it happened.

    Matching: ``path_contains`` against ``path?query`` below the mount, ``method``, ``params``
    (each query parameter named must have that exact value, e.g. ``{"offset": "2"}``); the first
    ``skip`` matches pass through untouched; ``count`` matches fire (``None`` = until removed);
    ``probability`` < 1 fires on that share of the matches only (drawn from the injector's seeded
    generator, so a run with the same seed and requests fails the same way).
    """

    kind: str = "status"
    status: int = 500
    count: int | None = 1
    path_contains: str = ""
    method: str | None = None
    skip: int = 0
    seconds: float = 30.0
    then: str = "drop"
    error_code: int | None = None
    message: str | None = None
    retry_after_ms: int | None = None
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    params: dict[str, str] = field(default_factory=dict)
    probability: float = 1.0
    id: int = 0
    fired: int = 0

    def as_dict(self) -> dict:
        return asdict(self)


class FaultInjector:
    """Thread-safe list of ``Fault`` rules consulted once per request."""

    _fields = {f for f in Fault.__dataclass_fields__ if f not in ("id", "fired")}

    def __init__(self, seed: int = 0) -> None:
        self._faults: list[Fault] = []
        self._lock = threading.Lock()
        self._next_id = 1
        self._random = random.Random(seed)

    def seed(self, seed: int) -> None:
        with self._lock:
            self._random.seed(seed)

    def add(self, status: int | None = None, count: int | None = 1, path_contains: str = "", *,
            kind: str | None = None, **options: Any) -> Fault:
        """``faults.add(status=500, count=2, path_contains="entity/product")``,
        ``faults.add(kind="timeout", seconds=5)``, ``faults.add(kind="drop")``."""
        kind = kind or "status"
        if kind not in FAULT_KINDS:
            raise ValueError(f"unknown fault kind {kind!r}; use one of {FAULT_KINDS}")
        unknown = set(options) - self._fields
        if unknown:
            raise ValueError(f"unknown fault options: {sorted(unknown)}")
        if count is not None and count < 1:
            raise ValueError("count must be >= 1 (or None for unlimited)")
        fault = Fault(kind=kind, status=int(status) if status is not None else 500, count=count,
                      path_contains=path_contains, **options)
        if kind == "rows" and not isinstance(fault.body, list):
            raise ValueError("a 'rows' fault needs body=[rows to add]")
        if fault.then not in ("drop", "answer"):
            raise ValueError("then must be 'drop' or 'answer'")
        if fault.method:
            fault.method = fault.method.upper()
        with self._lock:
            fault.id = self._next_id
            self._next_id += 1
            self._faults.append(fault)
        return fault

    def add_from_dict(self, data: dict) -> Fault:
        data = dict(data)
        return self.add(data.pop("status", None), data.pop("count", 1), data.pop("path_contains", ""),
                        kind=data.pop("kind", None), **data)

    def take(self, request: Request) -> Fault | None:
        """The fault that fires for this request, if any (its budget is decremented)."""
        target = request.path + ("?" + request.query_string if request.query_string else "")
        with self._lock:
            for fault in self._faults:
                if fault.method and fault.method != request.method.upper():
                    continue
                if fault.path_contains and fault.path_contains not in target:
                    continue
                if fault.params and any(request.arg(k) != str(v) for k, v in fault.params.items()):
                    continue
                if fault.skip > 0:
                    fault.skip -= 1
                    continue
                if fault.probability < 1.0 and self._random.random() >= fault.probability:
                    continue
                fault.fired += 1
                if fault.count is not None:
                    fault.count -= 1
                    if fault.count <= 0:
                        self._faults.remove(fault)
                return fault
        return None

    def remove(self, fault_id: int) -> bool:
        with self._lock:
            before = len(self._faults)
            self._faults = [f for f in self._faults if f.id != fault_id]
            return len(self._faults) != before

    def clear(self) -> None:
        with self._lock:
            self._faults.clear()

    def list(self) -> list[dict]:
        with self._lock:
            return [f.as_dict() for f in self._faults]

    def __len__(self) -> int:
        with self._lock:
            return len(self._faults)


# ---------------------------------------------------------------------------------------------
# Stats
# ---------------------------------------------------------------------------------------------
class Stats:
    """Counters for benchmarks and e2e assertions. Keys of ``snapshot()``:

    ``requests`` total answered (incl. errors), ``by_endpoint`` {route template: n},
    ``by_status`` {"200": n}, ``by_endpoint_status`` {template: {"200": n}}, ``units`` budget
    units consumed, ``throttled`` 429s from the limits (``rate_limited`` budget + ``parallel_limited``
    cap), ``faults`` injected faults fired, ``max_concurrent`` most requests in flight at once
    (including ones then refused), ``inflight`` now, ``bytes_out`` answer bytes as sent,
    ``seconds`` since the last reset.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.reset()

    def reset(self) -> None:
        with self._lock:
            self.requests = 0
            self.by_endpoint: collections.Counter = collections.Counter()
            self.by_status: collections.Counter = collections.Counter()
            self.by_endpoint_status: dict[str, collections.Counter] = collections.defaultdict(collections.Counter)
            self.units = 0
            self.rate_limited = 0
            self.parallel_limited = 0
            self.faults = 0
            self.inflight = getattr(self, "inflight", 0)
            self.max_concurrent = self.inflight
            self.bytes_out = 0
            self.started = time.monotonic()

    def enter(self) -> None:
        with self._lock:
            self.inflight += 1
            self.max_concurrent = max(self.max_concurrent, self.inflight)

    def leave(self) -> None:
        with self._lock:
            self.inflight = max(0, self.inflight - 1)

    def record(self, endpoint: str, status: int, *, units: int = 0, nbytes: int = 0,
               rate_limited: bool = False, parallel_limited: bool = False, fault: bool = False) -> None:
        key = str(status)
        with self._lock:
            self.requests += 1
            self.by_endpoint[endpoint] += 1
            self.by_status[key] += 1
            self.by_endpoint_status[endpoint][key] += 1
            self.units += units
            self.bytes_out += nbytes
            self.rate_limited += int(rate_limited)
            self.parallel_limited += int(parallel_limited)
            self.faults += int(fault)

    def snapshot(self) -> dict:
        with self._lock:
            return {
                "requests": self.requests,
                "by_endpoint": dict(self.by_endpoint),
                "by_status": dict(self.by_status),
                "by_endpoint_status": {k: dict(v) for k, v in self.by_endpoint_status.items()},
                "units": self.units,
                "throttled": self.rate_limited + self.parallel_limited,
                "rate_limited": self.rate_limited,
                "parallel_limited": self.parallel_limited,
                "faults": self.faults,
                "max_concurrent": self.max_concurrent,
                "inflight": self.inflight,
                "bytes_out": self.bytes_out,
                "seconds": round(time.monotonic() - self.started, 3),
            }


# ---------------------------------------------------------------------------------------------
# Paging
# ---------------------------------------------------------------------------------------------
@dataclass
class Page:
    limit: int
    offset: int
    size: int

    @property
    def start(self) -> int:
        return min(self.offset, self.size)

    @property
    def stop(self) -> int:
        return min(self.offset + self.limit, self.size)

    @property
    def has_next(self) -> bool:
        return self.offset + self.limit < self.size

    @property
    def has_previous(self) -> bool:
        return self.offset > 0


def page_href(href: str, query: dict[str, list[str]], limit: int, offset: int) -> str:
    """``href`` with the request's other query parameters kept and limit/offset replaced, so a
    client that follows ``nextHref`` keeps its filter and order."""
    pairs = [(k, v) for k, values in query.items() if k not in ("limit", "offset") for v in values]
    pairs += [("limit", str(limit)), ("offset", str(offset))]
    return href + "?" + urlencode(pairs, quote_via=quote, safe=",;:=")


@dataclass(frozen=True)
class LoggedRequest:
    """One API request as the emulator answered it: ``path`` below the API root, the raw query
    string, the status sent (0: the connection was dropped), whether an injected fault fired,
    the body as sent (what a marketplace was told, batch by batch) and the request's headers
    (lower-cased names: what a client claimed, e.g. X-Lognex-WebHook-DisableByPrefix on writes)."""

    method: str
    path: str
    query_string: str
    status: int
    fault: bool = False
    body: bytes = b""
    headers: tuple[tuple[str, str], ...] = ()

    def header(self, name: str) -> str | None:
        """The value of request header ``name`` (any case), or None when it was not sent."""
        name = name.lower()
        return next((v for k, v in self.headers if k == name), None)

    def json(self) -> Any:
        """The request body parsed as JSON (None when empty)."""
        return json.loads(self.body.decode("utf-8")) if self.body else None

    @property
    def params(self) -> dict[str, str]:
        """The query parameters, first value of each (``filter``, ``limit``, ``offset`` ...)."""
        return {k: v[0] for k, v in parse_qs(self.query_string, keep_blank_values=True).items()}


class ApiError(Exception):
    """Raised by route handlers; the emulator renders it in its upstream's error format."""

    def __init__(self, status: int, code: int | None, message: str, *, parameter: str | None = None,
                 headers: Iterable[tuple[str, str]] = ()):
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.parameter = parameter
        self.headers = list(headers)


# ---------------------------------------------------------------------------------------------
# The emulator pipeline
# ---------------------------------------------------------------------------------------------
def _max_in_window(times: list[float], window: float) -> int:
    """The most of the sorted `times` that fall within any `window` seconds."""
    best, start = 0, 0
    for end, t in enumerate(times):
        while t - times[start] >= window:
            start += 1
        best = max(best, end - start + 1)
    return best


class ApiEmulator:
    """Base class: one upstream API behind the common pipeline.

    Order per request: (1) encoding check, (2) authentication, (3) routing, (4) injected faults,
    (5) parallel cap, (6) weighted budget, (7) artificial latency, (8) the route handler.
    ``status`` and ``drop`` faults answer at step 4, so they neither take a parallel slot nor
    spend budget; a ``timeout`` fault waits after step 6, i.e. it behaves like a slow upstream
    request that holds its slot and has spent its units, then drops or answers normally.

    Subclasses set ``name``, ``api_root`` and fill ``self.router`` (and ``self.control_router``),
    and override the ``render_error`` / ``*_response`` hooks for their upstream's formats.
    """

    name = "api"
    api_root = ""            # e.g. "api/remap/1.2/" (below the mount)
    require_gzip = False     # MoySklad: 415 without Accept-Encoding: gzip

    def __init__(self, *, credentials: Credentials | None = None, rate_limit: bool = True,
                 request_weight: int = 1, budget: int = 45, window: float = 3.0, max_parallel: int = 5,
                 latency_ms: float = 0.0, gzip_level: int = 1) -> None:
        self.credentials = credentials or Credentials()
        self.rate_limit = rate_limit
        self.request_weight = request_weight
        self.latency_ms = latency_ms
        self.gzip_level = gzip_level
        self.limiter = WeightedWindowLimiter(budget, window)
        self.gate = ConcurrencyGate(max_parallel)
        self.faults = FaultInjector()
        self.stats_counter = Stats()
        #: (monotonic time, method, path?query, status) of each answer >= 400 or dropped connection
        self.failure_log: collections.deque = collections.deque(maxlen=200_000)
        self.router = Router()
        self.control_router = Router()
        self.default_origin = "http://127.0.0.1"
        self.closing = threading.Event()   # set on server stop: wakes sleeping timeout faults
        #: every API request answered, oldest first (``log_requests()`` turns it on; off by
        #: default so a long-running sandbox does not grow)
        self.request_log: collections.deque[LoggedRequest] | None = None
        self._install_common_control()

    # -- hooks for subclasses ------------------------------------------------------------------
    def render_error(self, status: int, code: int | None, message: str, parameter: str | None = None,
                     headers: Iterable[tuple[str, str]] = ()) -> Response:
        body = {"error": {"code": code, "message": message}}
        if parameter:
            body["error"]["parameter"] = parameter
        return json_response(body, status, headers)

    def encoding_error(self, request: Request) -> Response:
        return empty_response(415)

    def auth_error(self, request: Request, reason: str) -> Response:
        return self.render_error(401, None, f"authentication failed: {reason}")

    def rate_limited_response(self, request: Request, decision: LimitDecision) -> Response:
        return self.render_error(429, None, "rate limit exceeded",
                                 headers=[("Retry-After", str(max(1, decision.retry_after_ms // 1000)))])

    def parallel_limited_response(self, request: Request, decision: LimitDecision) -> Response:
        return self.render_error(429, None, "too many parallel requests")

    def fault_response(self, request: Request, fault: Fault) -> Response:
        if fault.body is not None:
            body = fault.body if isinstance(fault.body, (bytes, str)) else dumps(fault.body)
            resp = Response(fault.status, body.encode() if isinstance(body, str) else body,
                            list(fault.headers.items()), JSON_CONTENT_TYPE)
            return resp
        return self.render_error(fault.status, fault.error_code, fault.message or "injected fault",
                                 headers=list(fault.headers.items()))

    def success_headers(self, request: Request, decision: LimitDecision | None) -> list[tuple[str, str]]:
        return []

    def weight_for(self, request: Request, route: Route | None) -> int:
        if route is not None and route.weight is not None:
            return route.weight
        return self.request_weight

    def not_found(self, request: Request, path: str) -> Response:
        return self.render_error(404, None, f"unknown path: {path}")

    def method_not_allowed(self, request: Request, path: str) -> Response:
        return self.render_error(405, None, f"method {request.method} not supported")

    def check_request(self, request: Request) -> Response | None:
        """Extra header checks after authentication (e.g. MoySklad's Accept rule)."""
        return None

    # -- the pipeline --------------------------------------------------------------------------
    def handle(self, request: Request) -> Response:
        self.stats_counter.enter()
        try:
            return self._handle(request)
        finally:
            self.stats_counter.leave()

    def _handle(self, request: Request) -> Response:
        sub = request.path[len(self.api_root):] if request.path.startswith(self.api_root) else None
        route, params, known = (self.router.match(request.method, sub) if sub is not None
                                else (None, {}, False))
        endpoint = route.endpoint if route else ("unknown" if not known else f"{request.method} ?")
        units = 0
        flags: dict[str, bool] = {}

        def done(resp: Response) -> Response:
            if self.request_log is not None:
                self.request_log.append(LoggedRequest(request.method, sub if sub is not None else request.path,
                                                      request.query_string, resp.status if not resp.drop else 0,
                                                      bool(flags.get("fault")), bytes(request.body or b""),
                                                      tuple(request.headers.items())))
            resp = finalize(request, resp, gzip_level=self.gzip_level)
            if resp.drop or resp.status >= 400:
                target = request.path + ("?" + request.query_string if request.query_string else "")
                self.failure_log.append((time.monotonic(), request.method, target, 0 if resp.drop else resp.status))
            self.stats_counter.record(endpoint, resp.status if not resp.drop else 0, units=units,
                                      nbytes=len(resp.body), **flags)
            return resp

        if self.require_gzip and not accepts_gzip(request.header("accept-encoding")):
            return done(self.encoding_error(request))
        user, reason = self.credentials.authenticate(request.header("authorization"))
        if user is None:
            return done(self.auth_error(request, reason))
        problem = self.check_request(request)
        if problem is not None:
            return done(problem)

        fault = self.faults.take(request)
        if fault is not None:
            flags["fault"] = True
            if fault.kind == "drop":
                return done(drop_response())
            if fault.kind == "status":
                return done(self.fault_response(request, fault))

        gate_held = False
        decision: LimitDecision | None = None
        try:
            if self.rate_limit:
                if not self.gate.acquire(user):
                    flags["parallel_limited"] = True
                    return done(self.parallel_limited_response(request, self.limiter.peek(user)))
                gate_held = True
                decision = self.limiter.acquire(user, self.weight_for(request, route))
                if not decision.allowed:
                    flags["rate_limited"] = True
                    return done(self.rate_limited_response(request, decision))
                units = decision.weight
            else:
                units = self.weight_for(request, route)
            if fault is not None and fault.kind == "timeout":
                # A slow upstream request: it keeps its parallel slot and its budget while the
                # client has long given up (why impatient retries exhaust the real limits).
                self.closing.wait(fault.seconds)
                if fault.then == "drop" or self.closing.is_set():
                    return done(drop_response())
            if self.latency_ms:
                self.closing.wait(self.latency_ms / 1000.0)
            if route is None:
                resp = (self.method_not_allowed(request, sub or request.path) if known
                        else self.not_found(request, sub if sub is not None else request.path))
            else:
                request.params = params
                try:
                    resp = route.handler(request)
                except ApiError as exc:
                    resp = self.render_error(exc.status, exc.code, exc.message, exc.parameter, exc.headers)
                except Exception:  # a sandbox bug must look like an upstream 500, and be visible
                    log.error("sandbox %s handler crashed:\n%s", self.name, traceback.format_exc())
                    resp = self.render_error(500, None, "sandbox internal error")
            if fault is not None and fault.kind == "rows" and resp.status == 200:
                resp = self._add_rows(resp, fault.body)
            for header in self.success_headers(request, decision):
                if resp.header(header[0]) is None:
                    resp.headers.append(header)
            if fault is not None and fault.kind == "cut":
                return done(drop_response())
            return done(resp)
        finally:
            if gate_held:
                self.gate.release(user)

    @staticmethod
    def _add_rows(resp: Response, rows: list) -> Response:
        data = json.loads(resp.body.decode("utf-8"))
        (data["rows"] if isinstance(data, dict) else data).extend(rows)
        resp.body = dumps(data)
        return resp

    # -- python API ----------------------------------------------------------------------------
    def log_requests(self, on: bool = True, maxlen: int = 100_000) -> None:
        """Record every API request from now on (``request_log``), or stop and forget them."""
        self.request_log = collections.deque(maxlen=maxlen) if on else None

    def logged(self, path_suffix: str = "", method: str | None = None) -> list["LoggedRequest"]:
        """The logged requests whose path (below the API root) ends with ``path_suffix``."""
        return [r for r in list(self.request_log or ())
                if r.path.rstrip("/").endswith(path_suffix.strip("/")) and (method is None or r.method == method)]

    def stats(self) -> dict:
        snap = self.stats_counter.snapshot()
        snap["max_parallel_admitted"] = self.gate.max_seen
        return snap

    def failure_figures(self, window: float = 60.0) -> dict:
        """How hard the client leaned on the upstream's patience (MoySklad turns off API access
        for a user after 200 rate-limited or identical failing requests in a minute):
        ``rate_limited`` answers (429) in all, ``max_rate_limited_per_window`` within any
        `window` seconds, and ``max_identical_failures_per_window``: the most failing requests
        with the same method, path and query within any `window` seconds (``worst``: which)."""
        rows = list(self.failure_log)
        limited = sorted(t for t, _, _, status in rows if status == 429)
        by_key: dict[tuple[str, str], list[float]] = {}
        for t, method, target, _status in rows:
            by_key.setdefault((method, target), []).append(t)
        worst, worst_key = 0, None
        for key, times in by_key.items():
            n = _max_in_window(sorted(times), window)
            if n > worst:
                worst, worst_key = n, key
        return {"failures": len(rows), "rate_limited": len(limited),
                "max_rate_limited_per_window": _max_in_window(limited, window),
                "max_identical_failures_per_window": worst,
                "worst": f"{worst_key[0]} {worst_key[1]}" if worst_key else "", "window_seconds": window}

    def reset_stats(self) -> None:
        self.failure_log.clear()
        self.stats_counter.reset()
        self.gate.max_seen = 0

    def configure(self, **options: Any) -> dict:
        """Change limits/latency at runtime (also ``POST /_sandbox/<name>/config``)."""
        allowed = {"rate_limit", "request_weight", "latency_ms", "budget", "window", "max_parallel", "gzip_level"}
        unknown = set(options) - allowed
        if unknown:
            raise ValueError(f"unknown config keys: {sorted(unknown)}")
        for key, value in options.items():
            if key == "budget":
                self.limiter.budget = int(value)
            elif key == "window":
                self.limiter.window = float(value)
            elif key == "max_parallel":
                self.gate.limit = int(value)
            elif key == "rate_limit":
                self.rate_limit = bool(value)
            else:
                setattr(self, key, type(getattr(self, key))(value))
        if "budget" in options or "window" in options:
            self.limiter.reset()
        return self.config()

    def config(self) -> dict:
        return {"rate_limit": self.rate_limit, "request_weight": self.request_weight,
                "latency_ms": self.latency_ms, "budget": self.limiter.budget, "window": self.limiter.window,
                "max_parallel": self.gate.limit, "gzip_level": self.gzip_level}

    def close(self) -> None:
        self.closing.set()

    # -- control endpoints ---------------------------------------------------------------------
    def control(self, request: Request) -> Response:
        """``/_sandbox/<name>/<path>``: no auth, no limits, no stats; JSON in and out."""
        route, params, known = self.control_router.match(request.method, request.path)
        if route is None:
            status = 405 if known else 404
            return json_response({"error": f"no control endpoint {request.method} /{request.path}"}, status)
        request.params = params
        try:
            return route.handler(request)
        except (ValueError, KeyError, TypeError) as exc:
            return json_response({"error": str(exc)}, 400)
        except ApiError as exc:
            return json_response({"error": exc.message}, exc.status)

    def info(self) -> dict:
        return {"name": self.name, "config": self.config()}

    def _install_common_control(self) -> None:
        r = self.control_router
        r.add("GET", "", lambda req: json_response(self.info()))
        r.add("GET", "faults", lambda req: json_response({"faults": self.faults.list()}))
        r.add("POST", "faults", self._control_add_fault)
        r.add("POST", "faults/clear", lambda req: (self.faults.clear(), json_response({"faults": []}))[1])
        r.add("DELETE", "faults", lambda req: (self.faults.clear(), json_response({"faults": []}))[1])
        r.add("GET", "stats", lambda req: json_response(self.stats()))
        r.add("POST", "stats/reset", lambda req: (self.reset_stats(), json_response(self.stats()))[1])
        r.add("GET", "config", lambda req: json_response(self.config()))
        r.add("POST", "config", lambda req: json_response(self.configure(**(req.json() or {}))))

    def _control_add_fault(self, request: Request) -> Response:
        data = request.json() or {}
        items = data if isinstance(data, list) else [data]
        added = [self.faults.add_from_dict(item).as_dict() for item in items]
        return json_response({"faults": added}, 201)


# ---------------------------------------------------------------------------------------------
# The mount registry (+ WSGI adapter)
# ---------------------------------------------------------------------------------------------
CONTROL_PREFIX = "/_sandbox"


class SandboxApp:
    """``/<name>/...`` -> ``emulators[name].handle``; ``/_sandbox/<name>/...`` -> ``.control``;
    ``GET /_sandbox/`` lists what is mounted (a readiness probe for scripts).

    Also a WSGI callable, so tests can route httpx through it in-process
    (``respx.route(...).mock(side_effect=respx.WSGIHandler(app))``)."""

    def __init__(self) -> None:
        self.emulators: dict[str, ApiEmulator] = {}

    def mount(self, emulator: ApiEmulator, name: str | None = None) -> ApiEmulator:
        name = name or emulator.name
        if not re.fullmatch(r"[a-z0-9_-]+", name):
            raise ValueError(f"bad mount name {name!r}")
        self.emulators[name] = emulator
        return emulator

    def dispatch(self, method: str, raw_path: str, query_string: str, headers: dict[str, str],
                 body: bytes, origin: str) -> Response:
        path = raw_path if raw_path.startswith("/") else "/" + raw_path
        request = Request(method=method.upper(), path="", query_string=query_string, headers=headers,
                          body=body, origin=origin)
        if path == CONTROL_PREFIX or path.startswith(CONTROL_PREFIX + "/"):
            rest = path[len(CONTROL_PREFIX) + 1:]
            name, _, sub = rest.partition("/")
            if not name:
                return finalize(request, json_response({
                    "emulators": {n: {"base": f"{origin}/{n}", "control": f"{origin}{CONTROL_PREFIX}/{n}/"}
                                  for n in self.emulators}}))
            emulator = self.emulators.get(name)
            if emulator is None:
                return json_response({"error": f"no emulator {name!r}"}, 404)
            request.path = sub.rstrip("/") if sub != "/" else ""
            request.mount = f"/{name}"
            return finalize(request, emulator.control(request))
        name, _, sub = path[1:].partition("/")
        emulator = self.emulators.get(name)
        if emulator is None:
            return finalize(request, json_response(
                {"error": f"nothing mounted at /{name}; mounted: {sorted(self.emulators)}"}, 404))
        request.path = sub
        request.mount = f"/{name}"
        return emulator.handle(request)

    def close(self) -> None:
        for emulator in self.emulators.values():
            emulator.close()

    # -- WSGI ----------------------------------------------------------------------------------
    def __call__(self, environ: dict, start_response: Callable) -> list[bytes]:
        headers = {k[5:].replace("_", "-").lower(): v for k, v in environ.items() if k.startswith("HTTP_")}
        if environ.get("CONTENT_TYPE"):
            headers["content-type"] = environ["CONTENT_TYPE"]
        length = int(environ.get("CONTENT_LENGTH") or 0)
        body = environ["wsgi.input"].read(length) if length else b""
        host = environ.get("HTTP_HOST") or f"{environ.get('SERVER_NAME', 'localhost')}:{environ.get('SERVER_PORT', '80')}"
        origin = f"{environ.get('wsgi.url_scheme', 'http')}://{host}"
        path = environ.get("PATH_INFO", "/")
        try:  # PEP 3333 hands PATH_INFO over as latin-1 decoded bytes
            path = path.encode("latin-1").decode("utf-8")
        except (UnicodeEncodeError, UnicodeDecodeError):
            pass
        resp = self.dispatch(environ.get("REQUEST_METHOD", "GET"), path, environ.get("QUERY_STRING", ""),
                             headers, body, origin)
        if resp.drop:
            raise DroppedConnection("sandbox dropped the connection (injected fault)")
        out_headers = list(resp.headers)
        if resp.content_type:
            out_headers.append(("Content-Type", resp.content_type))
        out_headers.append(("Content-Length", str(len(resp.body))))
        start_response(f"{resp.status} {_reason(resp.status)}", out_headers)
        return [resp.body]


def _reason(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Unknown"
