"""Benchmark scenarios: one module per scenario (or a few related ones), found automatically.

To add one, drop a module here that defines module-level `SCENARIOS = [MyScenario()]`; nothing
else changes (the harness, the table, the time report and the README's list read these fields):

    class MyScenario(Scenario):
        name = "csv-feed"                # what --only takes and the table shows
        issue = 12
        title = "a 200,000-row supplier CSV feed read and applied"
        per_database = True              # run once per database (False: once, db=None)
        databases = ("sqlite", "postgresql")   # which of them (default both)
        full = {"rows": 200_000}         # the sizes `make bench` uses ...
        quick = {"rows": 5_000}          # ... and what --quick changes (every scenario has one)
        allowance = (60, 8)              # seconds per database it may take: full, quick
        extrapolation = "rows/s is flat past ~20,000 rows: the 1,000,000-row feed takes 5x the time"

        def run(self, ctx: Context) -> None:
            url = ctx.fresh_database()
            with ctx.sandbox(products=2_000) as sandbox:
                out = ctx.child(["job", "supplier-stock"], database_url=url, sandbox=sandbox)
            ctx.result.add("rows/s", out["counts"]["rows"] / out["job_seconds"], "rows/s", goal(">=", 20_000),
                           scales="flat past 20,000 rows")

`ctx.params` holds `full` with `quick` laid over it under --quick (or override `params(quick)`).
`ctx.child` runs `python -m bench.child ...` (add a sub-command there for new kinds of work);
`ctx.result.add` records a figure, with an optional goal and how it carries over to other sizes
(`scales`, shown in the table). Raise BenchError when a figure cannot be measured: the harness
records the error and goes on with the next scenario.

Time: `make bench` must stay under 20 minutes and `--quick` under 2 (on the reference machine:
2 cores). `allowance` is the scenario's share; the harness adds them up before it starts, reports
each scenario's time against its share and the total against the budget. Keep a full run of a
scenario within its allowance by measuring the smallest size past which its figures no longer
change (say so in `extrapolation`), not the production size.
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
    #: the database kinds it is measured on, of those the run has ("sqlite", "postgresql"); when
    #: none of them is available it runs on the first one that is (a smoke run still covers it)
    databases: tuple[str, ...] = ("sqlite", "postgresql")
    order = 100          # within an issue, lower runs first
    #: sizes and settings for `make bench`; `quick` overrides some of them for --quick
    full: dict = {}
    quick: dict = {}
    #: seconds per database this scenario may take (full, quick); None: the harness's default
    allowance: tuple[float, float] | None = None
    #: how its figures carry over to the production sizes (printed with the table)
    extrapolation = ""

    def params(self, quick: bool) -> dict:
        return {**self.full, **(self.quick if quick else {})}

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
