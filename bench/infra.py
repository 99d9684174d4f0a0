"""What every scenario uses: figures with goals, fresh databases, the sandbox (or any other
service) in its own process, and child processes that run one measured piece of work.

Nothing here imports Django: the harness process only orchestrates. Django is set up in the
children (bench/child.py) and in `manage.py migrate`.
"""
from __future__ import annotations

import contextlib
import hashlib
import json
import math
import operator
import os
import platform
import re
import shutil
import socket
import sqlite3
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator
from urllib.parse import urlsplit, urlunsplit

from syncsite.localenv import apply_local_env

ROOT = Path(__file__).resolve().parent.parent
VAR = ROOT / "var" / "bench"
PY = sys.executable
DEFAULT_POSTGRES_URL = "postgres://postgres@127.0.0.1:5432/syncsite_bench"
SANDBOX_TOKEN = "sandbox-token"
#: top-level folders that hold no migrations of ours
SKIP_DIRS = {".git", ".venv", "var", "node_modules", "bench", "tests", "docs", "templates", "__pycache__"}


class BenchError(RuntimeError):
    """A scenario could not be measured (a child failed, a service did not start)."""


# ---------------------------------------------------------------------------------------------
# Figures and goals
# ---------------------------------------------------------------------------------------------
_OPS = {"<": operator.lt, "<=": operator.le, ">": operator.gt, ">=": operator.ge, "==": operator.eq}


@dataclass(frozen=True)
class Goal:
    op: str          # one of < <= > >= ==
    target: float
    text: str = ""   # how the table shows it; defaults to "op target unit"

    def met(self, value: float | None) -> bool | None:
        if value is None or (isinstance(value, float) and math.isnan(value)):
            return False
        return _OPS[self.op](value, self.target)


def goal(op: str, target: float, text: str = "") -> Goal:
    if op not in _OPS:
        raise ValueError(f"unknown goal operator {op!r}")
    return Goal(op, target, text)


@dataclass
class Figure:
    scenario: str
    db: str | None
    name: str
    value: float | int | None
    unit: str
    goal: Goal | None = None
    note: str = ""
    #: how the figure carries over to larger (production) sizes, in a few words
    scales: str = ""

    @property
    def ok(self) -> bool | None:
        return None if self.goal is None else self.goal.met(self.value)

    def goal_text(self) -> str:
        if self.goal is None:
            return ""
        if self.goal.text:
            return self.goal.text
        return f"{self.goal.op} {fmt(self.goal.target)} {self.unit}".strip()

    def as_dict(self) -> dict:
        out = {"scenario": self.scenario, "db": self.db, "name": self.name, "value": self.value, "unit": self.unit,
               "goal": None, "ok": self.ok, "note": self.note, "scales": self.scales}
        if self.goal is not None:
            out["goal"] = {"op": self.goal.op, "target": self.goal.target, "text": self.goal_text()}
        return out


def fmt(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        if value == 0:
            return "0"
        if abs(value) >= 1000:
            return f"{value:,.0f}"
        if abs(value) >= 100:
            return f"{value:.0f}"
        if abs(value) >= 10:
            return f"{value:.1f}"
        return f"{value:.2f}"
    return str(value)


@dataclass
class ScenarioResult:
    scenario: str
    db: str | None
    params: dict = field(default_factory=dict)
    figures: list[Figure] = field(default_factory=list)
    raw: dict = field(default_factory=dict)       # child outputs, sandbox stats: for digging in later
    seconds: float = 0.0
    error: str = ""
    #: the seconds this run was allowed (the scenario's share of the bench's time budget)
    allowance: float | None = None

    def add(self, name: str, value, unit: str = "", goal_: Goal | None = None, note: str = "",
            scales: str = "") -> Figure:
        figure = Figure(self.scenario, self.db, name, value, unit, goal_, note, scales)
        self.figures.append(figure)
        return figure

    def as_dict(self) -> dict:
        return {"scenario": self.scenario, "db": self.db, "params": self.params, "seconds": round(self.seconds, 1),
                "allowance": self.allowance, "error": self.error, "figures": [f.as_dict() for f in self.figures], "raw": self.raw}


# ---------------------------------------------------------------------------------------------
# Databases: a fresh one per scenario
# ---------------------------------------------------------------------------------------------
@dataclass
class Database:
    """One database kind the bench runs on. `fresh(label)` drops and recreates it, migrates it,
    and returns the DATABASE_URL to hand to children."""

    kind: str            # "sqlite" | "postgresql"
    url: str = ""        # postgres: the bench database URL (its name prefixes the scenario databases)
    _made: list = field(default_factory=list, repr=False)

    @property
    def label(self) -> str:
        return self.kind

    def fresh(self, name: str, *, log=print) -> str:
        """A migrated, empty database for one scenario: a copy of a template migrated once (per
        set of migrations), not a migrate per scenario - migrating costs 5-25 s here, a copy
        well under one."""
        started = time.perf_counter()
        template = self.template(log=log)
        if self.kind == "sqlite":
            path = VAR / f"{name}.sqlite3"
            for suffix in ("", "-wal", "-shm", "-journal"):
                Path(f"{path}{suffix}").unlink(missing_ok=True)
            shutil.copyfile(template, path)
            url = f"sqlite:///{path}"
        else:
            # A database of its own per scenario, dropped when the run ends (`cleanup`): on
            # PostgreSQL 15 DROP DATABASE forces a checkpoint - seconds on a busy server - which
            # would otherwise land inside every scenario's time.
            _, base = _pg_maintenance(self.url)
            db_name = _pg_name(f"{base}__{name}")
            if db_name in self._made:
                _pg_recreate(self.url, name=db_name, template=template)
            else:
                _pg_create(self.url, name=db_name, template=template)
            self._made.append(db_name)
            parts = urlsplit(self.url)
            url = urlunsplit(parts._replace(path=f"/{db_name}"))
        log(f"    fresh {self.kind} database ready in {time.perf_counter() - started:.1f} s")
        return url

    def cleanup(self, *, leftovers: bool = False, log=print) -> None:
        """Drop the scenario databases this run made (with `leftovers`: also those a stopped run
        left behind; the template stays)."""
        if self.kind != "postgresql":
            return
        import psycopg
        from psycopg import sql

        maintenance, base = _pg_maintenance(self.url)
        names = set(self._made)
        with psycopg.connect(maintenance, autocommit=True, connect_timeout=5) as conn:
            if leftovers:
                rows = conn.execute("SELECT datname FROM pg_database WHERE datname LIKE %s",
                                    (base.replace("_", r"\_") + r"\_\_%",)).fetchall()
                names |= {r[0] for r in rows}
            started = time.perf_counter()
            for name in sorted(names):
                conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
        if names:
            log(f"    dropped {len(names)} scenario database(s) in {time.perf_counter() - started:.1f} s")
        self._made = []

    def template(self, *, log=print) -> str:
        """The migrated template (SQLite: a file; PostgreSQL: a database name), made when the
        migrations (or the dependencies) changed since it was last made."""
        digest = migrations_digest()
        if self.kind == "sqlite":
            VAR.mkdir(parents=True, exist_ok=True)
            path = VAR / f"template-{digest}.sqlite3"
            if not path.exists():
                started = time.perf_counter()
                for old in VAR.glob("template-*.sqlite3*"):
                    old.unlink()
                building = VAR / f"template-{digest}.building.sqlite3"
                for suffix in ("", "-wal", "-shm", "-journal"):
                    Path(f"{building}{suffix}").unlink(missing_ok=True)
                migrate(f"sqlite:///{building}")
                with contextlib.closing(sqlite3.connect(building)) as conn:
                    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
                    conn.execute("PRAGMA journal_mode=DELETE")
                building.rename(path)
                log(f"    sqlite template migrated in {time.perf_counter() - started:.1f} s")
            return str(path)
        _, name = _pg_maintenance(self.url)
        template = f"{name}_template"
        if _pg_comment(self.url, template) != digest:
            started = time.perf_counter()
            _pg_recreate(self.url, name=template)
            parts = urlsplit(self.url)
            migrate(urlunsplit(parts._replace(path=f"/{template}")))
            _pg_comment(self.url, template, set_to=digest)
            log(f"    postgresql template {template} migrated in {time.perf_counter() - started:.1f} s")
        return template

    def describe(self) -> dict:
        if self.kind == "sqlite":
            return {"engine": "sqlite", "version": sqlite3.sqlite_version,
                    "settings": "WAL, synchronous=NORMAL (syncsite/settings/base.py)", "files": str(VAR)}
        return {"engine": "postgresql", "version": _pg_version(self.url), "url": redact(self.url)}


def redact(url: str) -> str:
    parts = urlsplit(url)
    if parts.password:
        netloc = parts.netloc.replace(f":{parts.password}@", ":***@")
        return urlunsplit(parts._replace(netloc=netloc))
    return url


def _pg_maintenance(url: str) -> tuple[str, str]:
    parts = urlsplit(url)
    name = parts.path.lstrip("/") or "syncsite_bench"
    return urlunsplit(parts._replace(path="/postgres", scheme="postgresql")), name


def _pg_recreate(url: str, *, name: str = "", template: str = "") -> None:
    """Drop and create the database of `url` (or `name`), empty or as a copy of `template`."""
    import psycopg
    from psycopg import sql

    maintenance, own = _pg_maintenance(url)
    name = name or own
    create = sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name))
    if template:
        create = sql.SQL("CREATE DATABASE {} TEMPLATE {}").format(sql.Identifier(name), sql.Identifier(template))
    with psycopg.connect(maintenance, autocommit=True, connect_timeout=5) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
        conn.execute(create)


def _pg_create(url: str, *, name: str, template: str) -> None:
    import psycopg
    from psycopg import sql

    maintenance, _ = _pg_maintenance(url)
    with psycopg.connect(maintenance, autocommit=True, connect_timeout=5) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {} TEMPLATE {}").format(sql.Identifier(name), sql.Identifier(template)))


def _pg_name(name: str) -> str:
    """A database name from a scenario's: lower case, [a-z0-9_], at most 63 bytes."""
    return re.sub(r"[^a-z0-9_]+", "_", name.lower())[:63]


def _pg_comment(url: str, name: str, *, set_to: str | None = None) -> str | None:
    """The comment on database `name` (None if it does not exist); `set_to` writes it first."""
    import psycopg
    from psycopg import sql

    maintenance, _ = _pg_maintenance(url)
    with psycopg.connect(maintenance, autocommit=True, connect_timeout=5) as conn:
        if set_to is not None:
            conn.execute(sql.SQL("COMMENT ON DATABASE {} IS {}").format(sql.Identifier(name), sql.Literal(set_to)))
        row = conn.execute("SELECT shobj_description(oid, 'pg_database') FROM pg_database WHERE datname = %s",
                           (name,)).fetchone()
    return None if row is None else (row[0] or "")


def migrations_digest() -> str:
    """What a migrated template depends on: every migration file of the project and the pinned
    dependencies (their migrations: django_celery_beat, contrib apps)."""
    digest = hashlib.sha256()
    files = [ROOT / "pyproject.toml"]
    for top in sorted(p for p in ROOT.iterdir() if p.is_dir() and p.name not in SKIP_DIRS):
        files.extend(sorted(top.rglob("migrations/*.py")))
    for path in files:
        digest.update(str(path.relative_to(ROOT)).encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


def _pg_version(url: str) -> str:
    import psycopg

    maintenance, _ = _pg_maintenance(url)
    with psycopg.connect(maintenance, connect_timeout=5) as conn:
        return str(conn.execute("SHOW server_version").fetchone()[0])


def postgres_reachable(url: str) -> str:
    """'' if we can create databases there, else why not."""
    parts = urlsplit(url)
    try:
        with socket.create_connection((parts.hostname or "127.0.0.1", parts.port or 5432), timeout=2):
            pass
    except OSError as exc:
        return f"{parts.hostname}:{parts.port or 5432} not reachable ({exc.__class__.__name__})"
    try:
        import psycopg

        maintenance, _ = _pg_maintenance(url)
        with psycopg.connect(maintenance, connect_timeout=3) as conn:
            conn.execute("SELECT 1")
    except Exception as exc:  # noqa: BLE001 - any reason means "skip PostgreSQL"
        return f"cannot connect: {exc}"
    return ""


def migrate(database_url: str) -> None:
    env = child_env(database_url=database_url)
    proc = subprocess.run([PY, "manage.py", "migrate", "--noinput", "-v", "0"], cwd=ROOT, env=env,
                          capture_output=True, text=True)
    if proc.returncode != 0:
        raise BenchError(f"migrate failed ({redact(database_url)}):\n{proc.stderr[-3000:]}")


# ---------------------------------------------------------------------------------------------
# Child processes
# ---------------------------------------------------------------------------------------------
def child_env(*, database_url: str, moysklad_url: str = "", extra: dict | None = None) -> dict:
    """The environment of a measured child: the bench database, the sandbox, the embedded
    broker and an in-process limiter (REDIS_URL empty), quiet logs. MoySklad limits are the
    defaults of the settings, spelled out so a stray .env cannot change what is measured."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("MOYSKLAD_", "OZON_", "WB_", "YM_", "ONEC_", "TELEGRAM_"))}
    env.update({
        "DJANGO_SETTINGS_MODULE": "syncsite.settings",
        "DATABASE_URL": database_url,
        "CELERY_BROKER_URL": "filesystem://",
        "REDIS_URL": "",
        "LOG_LEVEL": "WARNING",
        "PYTHONUNBUFFERED": "1",
        "DEBUG": "0",
    })
    apply_local_env(env)  # production settings (DEBUG off) over plain http on this machine
    if moysklad_url:
        env.update({
            "MOYSKLAD_BASE_URL": moysklad_url,
            "MOYSKLAD_TOKEN": SANDBOX_TOKEN,
            "MOYSKLAD_REQUEST_WEIGHT": "4",
            "MOYSKLAD_BUDGET_UNITS": "45",
            "MOYSKLAD_BUDGET_WINDOW": "3",
            "MOYSKLAD_MAX_PARALLEL": "5",
        })
    env.update(extra or {})
    return env


def run_child(args: list[str], env: dict, *, timeout: float = 900, log=print) -> dict:
    """Run `python -m bench.child ARGS` and return its JSON line, plus `process_seconds` (wall
    time of the whole process, interpreter and Django start included) measured from here."""
    started = time.perf_counter()
    proc = subprocess.run([PY, "-m", "bench.child", *args], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=timeout)
    elapsed = time.perf_counter() - started
    result = last_json_line(proc.stdout)
    if proc.returncode != 0 or result is None:
        raise BenchError(f"child {' '.join(args)} exited {proc.returncode}:\n{proc.stderr[-4000:]}\n"
                         f"{proc.stdout[-1000:]}")
    result["process_seconds"] = round(elapsed, 3)
    if result.get("status") not in (None, "success"):
        log(f"    ! {' '.join(args)}: {result.get('status')} {result.get('message', '')}")
    return result


# ---------------------------------------------------------------------------------------------
# Services: the sandbox (and, for later scenarios, gunicorn, a worker...) in their own processes
# ---------------------------------------------------------------------------------------------
def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def http_json(method: str, url: str, body: Any = None, timeout: float = 30) -> Any:
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, method=method, headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=timeout) as response:
        return json.loads(response.read() or b"null")


def proc_cpu_seconds(pid: int) -> float | None:
    """User + system CPU of a process (Linux /proc), to see what a service cost."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return None


class Service:
    """A long-running process started for a scenario and stopped after it; `ready_url` is polled
    until it answers."""

    def __init__(self, name: str, cmd: list[str], *, ready_url: str, env: dict | None = None,
                 ready_timeout: float = 120.0, nice: int = 0):
        self.name, self.cmd, self.ready_url, self.env, self.ready_timeout = name, cmd, ready_url, env, ready_timeout
        self.nice = nice
        self.proc: subprocess.Popen | None = None
        VAR.mkdir(parents=True, exist_ok=True)
        self.log_path = VAR / f"{name}.log"

    def start(self) -> "Service":
        self._log = open(self.log_path, "w")
        niceness = self.nice
        self.proc = subprocess.Popen(self.cmd, cwd=ROOT, env=self.env, stdout=self._log, stderr=subprocess.STDOUT,
                                     preexec_fn=(lambda: os.nice(niceness)) if niceness else None)
        deadline = time.monotonic() + self.ready_timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise BenchError(f"{self.name} exited {self.proc.returncode}: {self.log_path.read_text()[-2000:]}")
            try:
                urllib.request.urlopen(self.ready_url, timeout=1).read()
                return self
            except (urllib.error.URLError, OSError):
                time.sleep(0.1)
        self.stop()
        raise BenchError(f"{self.name} not ready after {self.ready_timeout:.0f} s (see {self.log_path})")

    def cpu_seconds(self) -> float | None:
        return proc_cpu_seconds(self.proc.pid) if self.proc else None

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self.proc = None
        if getattr(self, "_log", None):
            self._log.close()

    def __enter__(self) -> "Service":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


class Sandbox(Service):
    """`python -m integrations.sandbox.server` in its own process, plus its control API.

    It runs at a lower CPU priority (`nice`, default 10): it stands in for a remote service whose
    CPU is not ours, so on a small machine it takes what the importer and the database leave
    rather than competing with them (its answers then come a little later, which the importer's
    parallel page fetching absorbs, as it would network latency)."""

    def __init__(self, *, products: int, variant_share: float = 0.2, variants_per_product: int = 3, stores: int = 3,
                 rate_limit: bool = True, request_weight: int = 4, seed: int = 1, name: str = "sandbox",
                 nice: int = 10):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        cmd = [PY, "-m", "integrations.sandbox.server", "--port", str(self.port), "--products", str(products),
               "--variant-share", str(variant_share), "--variants-per-product", str(variants_per_product),
               "--stores", str(stores), "--seed", str(seed), "--request-weight", str(request_weight)]
        if not rate_limit:
            cmd.append("--no-rate-limit")
        super().__init__(name, cmd, ready_url=f"{self.url}/_sandbox/", nice=nice)

    @property
    def moysklad_url(self) -> str:
        return f"{self.url}/moysklad/api/remap/1.2"

    def control(self, method: str, path: str, body: Any = None) -> Any:
        return http_json(method, f"{self.url}/_sandbox/moysklad/{path.lstrip('/')}", body)

    def info(self) -> dict:
        return self.control("GET", "")

    def catalog(self) -> dict:
        return self.info()["catalog"]

    def configure(self, **options) -> dict:
        return self.control("POST", "config", options)

    def stats(self) -> dict:
        return self.control("GET", "stats")

    def reset_stats(self) -> dict:
        return self.control("POST", "stats/reset")

    def drain_budget(self) -> None:
        """Let the budget window empty: the next child's limiter starts from a full budget (in
        production, jobs are minutes apart and a shared Redis limiter remembers the rest)."""
        time.sleep(BUDGET_WINDOW + 0.25)

    def touch(self, count: int) -> list[str]:
        return self.control("POST", "touch", {"count": count})["ids"]


# ---------------------------------------------------------------------------------------------
# MoySklad arithmetic
# ---------------------------------------------------------------------------------------------
BUDGET_UNITS = 45
BUDGET_WINDOW = 3.0
REQUEST_WEIGHT = 4
PAGE_MAX = 1000


def rate_bound_seconds(requests: int, weight: int = REQUEST_WEIGHT) -> float:
    """The weighted budget's floor for `requests` calls: units / (45 units per 3 s)."""
    return requests * weight / BUDGET_UNITS * BUDGET_WINDOW


def pages(rows: int, limit: int = PAGE_MAX) -> int:
    return max(1, math.ceil(rows / limit))


# ---------------------------------------------------------------------------------------------
# Machine
# ---------------------------------------------------------------------------------------------
def machine_info() -> dict:
    info: dict[str, Any] = {
        "platform": platform.platform(),
        "python": platform.python_version(),
        "cpus": os.cpu_count(),
    }
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                info["cpu"] = line.split(":", 1)[1].strip()
                break
    with contextlib.suppress(OSError, ValueError, IndexError):
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal"):
                info["memory_gb"] = round(int(line.split()[1]) / 1024 / 1024, 1)
    with contextlib.suppress(OSError):
        info["load_average_at_start"] = [round(x, 2) for x in os.getloadavg()]
    info["cpu_calibration_s"] = cpu_calibration()
    with contextlib.suppress(Exception):
        commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True)
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no", "--", ".",
                                ":!bench/results.json", ":!bench/results-quick.json"],  # our own output
                               cwd=ROOT, capture_output=True, text=True)
        info["git"] = commit.stdout.strip() + ("+dirty" if dirty.stdout.strip() else "")
    return info


def cpu_calibration(rounds: int = 3) -> float:
    """Seconds one core takes for a fixed pure-Python loop (best of `rounds`): the same code ran
    1.9x slower on one machine of this kind than on another, so figures from different runs are
    compared only with this beside them."""
    best = float("inf")
    for _ in range(rounds):
        started = time.perf_counter()
        total = 0
        for i in range(5_000_000):
            total += i
        best = min(best, time.perf_counter() - started)
    return round(best, 3)


def load_average() -> list[float]:
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:
        return []


@contextlib.contextmanager
def stopwatch() -> Iterator[dict]:
    box = {"seconds": 0.0}
    started = time.perf_counter()
    try:
        yield box
    finally:
        box["seconds"] = time.perf_counter() - started


__all__ = ["BenchError", "Database", "Figure", "Goal", "Sandbox", "ScenarioResult", "Service", "child_env", "fmt",
           "goal", "load_average", "machine_info", "migrate", "pages", "postgres_reachable", "rate_bound_seconds",
           "redact", "run_child", "stopwatch"]


def run_module_child(module: str, args: list[str], env: dict, *, timeout: float = 900, log=print) -> dict:
    """`python -m MODULE ARGS` (bench.child_orders, bench.child_marketplace...) -> its JSON line,
    plus `process_seconds`; BenchError if it failed."""
    shown = " ".join(a if len(a) < 80 else a[:77] + "..." for a in args)
    log(f"    $ python -m {module} {shown}")
    started = time.perf_counter()
    proc = subprocess.run([PY, "-m", module, *args], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=timeout)
    elapsed = time.perf_counter() - started
    result = last_json_line(proc.stdout)
    if proc.returncode != 0 or result is None:
        raise BenchError(f"{module} {args[0]} exited {proc.returncode}:\n{proc.stderr[-4000:]}\n{proc.stdout[-1000:]}")
    result["process_seconds"] = round(elapsed, 3)
    log(f"      {result.get('status')} in {result.get('job_seconds', result.get('wall_seconds'))} s "
        f"(process {elapsed:.1f} s, cpu {result.get('cpu_seconds')} s) {str(result.get('message', ''))[:200]}")
    return result


def slim_stats(stats: dict) -> dict:
    """The parts of the MoySklad sandbox's stats worth keeping in the results file."""
    keep = ("requests", "by_endpoint", "by_status", "units", "throttled", "rate_limited", "parallel_limited",
            "max_concurrent", "max_parallel_admitted", "bytes_out", "seconds")
    return {k: stats.get(k) for k in keep}


def last_json_line(stdout: str) -> dict | None:
    """The last line of a child's output that parses as a JSON object (children print one)."""
    for line in reversed(stdout.strip().splitlines()):
        if line.startswith("{"):
            try:
                return json.loads(line)
            except ValueError:
                continue
    return None
