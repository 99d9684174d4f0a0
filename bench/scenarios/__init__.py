"""Benchmark scenarios: one module per scenario (or a few related ones), found automatically.

To add one (issue 3's webhook-ingest, issue 4's stock-push...), drop a module here that defines
module-level `SCENARIOS = [MyScenario()]`:

    class MyScenario(Scenario):
        name = "webhook-ingest"          # what --only takes and the table shows
        issue = 3
        title = "10,000 notifications at concurrency 50 against gunicorn"
        per_database = True              # run once per database (False: once, db=None)

        def params(self, quick: bool) -> dict:
            return {"events": 1_000 if quick else 10_000}

        def run(self, ctx: Context) -> None:
            url = ctx.fresh_database()
            with ctx.sandbox(products=2_000) as sandbox, ctx.service("gunicorn", [...], ready_url=...) as web:
                out = ctx.child(["job", "..."], database_url=url, sandbox=sandbox)
            ctx.result.add("p99", out["p99_ms"], "ms", goal("<", 100))

`ctx.child` runs `python -m bench.child ...` (add a sub-command there for new kinds of work);
`ctx.result.add` records a figure, with an optional goal. Raise BenchError when a figure cannot be
measured: the harness records the error and goes on with the next scenario.
"""
from __future__ import annotations

import importlib
import pkgutil
from dataclasses import dataclass
from typing import Callable

from bench.infra import Database, Sandbox, ScenarioResult, Service, child_env, run_child


class Scenario:
    name = ""
    issue = 0
    title = ""
    per_database = True
    order = 100          # within an issue, lower runs first

    def params(self, quick: bool) -> dict:
        return {}

    def run(self, ctx: "Context") -> None:
        raise NotImplementedError


@dataclass
class Context:
    """What a scenario gets: its database kind, sizes, a result to fill, and helpers."""

    scenario: Scenario
    db: Database | None
    quick: bool
    params: dict
    result: ScenarioResult
    log: Callable[[str], None] = print

    def fresh_database(self, label: str = "") -> str:
        """Drop, recreate and migrate this scenario's database; returns its DATABASE_URL."""
        if self.db is None:
            raise RuntimeError(f"{self.scenario.name} is not per-database: it has no database")
        name = (self.scenario.name + (f"-{label}" if label else "")).replace("/", "-")
        return self.db.fresh(name, log=self.log)

    def sandbox(self, **options) -> Sandbox:
        """A sandbox process (use as a context manager); options as Sandbox's."""
        options.setdefault("name", f"sandbox-{self.scenario.name}")
        return Sandbox(**options)

    def service(self, name: str, cmd: list[str], *, ready_url: str, env: dict | None = None) -> Service:
        return Service(name, cmd, ready_url=ready_url, env=env)

    def child(self, args: list[str], *, database_url: str, sandbox: Sandbox | None = None,
              extra_env: dict | None = None, timeout: float = 900) -> dict:
        env = child_env(database_url=database_url, moysklad_url=sandbox.moysklad_url if sandbox else "",
                        extra=extra_env)
        self.log(f"    $ python -m bench.child {' '.join(args)}")
        out = run_child(args, env, timeout=timeout, log=self.log)
        self.log(f"      {out.get('status')} in {out.get('job_seconds')} s (process {out.get('process_seconds')} s, "
                 f"cpu {out.get('cpu_seconds')} s, peak {out.get('peak_rss_mb')} MB)")
        return out


def discover() -> list[Scenario]:
    found: list[Scenario] = []
    for module in pkgutil.iter_modules(__path__):
        mod = importlib.import_module(f"{__name__}.{module.name}")
        found.extend(getattr(mod, "SCENARIOS", []))
    names = [s.name for s in found]
    duplicates = {n for n in names if names.count(n) > 1}
    if duplicates:
        raise RuntimeError(f"two scenarios share a name: {sorted(duplicates)}")
    return sorted(found, key=lambda s: (s.issue, s.order, s.name))
