"""`python -m bench`: run the scenarios, print the table and the time report, write the results file.

    --quick            small sizes (a smoke run); results go to bench/results-quick.json
    --only NAME[,NAME] run only these scenarios (repeatable); other entries of the results file stay
    --db sqlite|postgres|both   default both: SQLite, and PostgreSQL when reachable (with --quick:
                       PostgreSQL when reachable, else SQLite - a smoke run on one database)
                       (BENCH_POSTGRES_URL, default postgres://postgres@127.0.0.1:5432/syncsite_bench;
                       that database is dropped and recreated for every scenario, from a migrated
                       template `<name>_template` kept between runs)
    --output PATH      where to write the JSON (default bench/results.json)
    --list             list the scenarios with their sizes and time allowances, and exit

Time budget: a whole `make bench` under 20 minutes, `--quick` under 2, on the reference machine
(2 cores). A scenario runs on the databases it names (`databases`, default both): where the
database does not change a figure (rate-bound exports, the debounced propagation path) once, on
PostgreSQL. Each scenario has an allowance per database (its `allowance`, else the table below);
the harness adds them up before it starts, then reports each scenario's time against its
allowance and the total against the budget. The total is also a figure with a goal when every
scenario ran on every database.

Exit status: 0 when every goal is met, 1 when a goal is missed, 2 when a scenario failed to run.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
import traceback
from datetime import datetime, timezone
from pathlib import Path

from bench.infra import (
    DEFAULT_POSTGRES_URL, ROOT, BenchError, Database, ScenarioResult, fmt, goal, load_average, machine_info,
    postgres_reachable,
)
from bench.scenarios import Context, Scenario, discover

RESULTS = ROOT / "bench" / "results.json"
QUICK_RESULTS = ROOT / "bench" / "results-quick.json"

#: seconds a whole run may take: (full, quick)
BUDGET = (20 * 60.0, 120.0)
#: per database, for the one-off work before the first scenario: migrating the template database
#: when migrations changed (10-25 s), free when they did not (--quick counts on that): (full, quick)
SETUP_ALLOWANCE = (30.0, 5.0)
#: a scenario that declares no allowance gets this (full, quick) per database ...
DEFAULT_ALLOWANCE = (30.0, 5.0)
#: ... unless it is listed here: scenarios whose own module does not say yet
ALLOWANCES = {
    "catalog-import": (120.0, 10.0),   # 100,000 products at the weighted limit, then the stock read
    "webhook-ingest": (150.0, 12.0),   # load alone and during an import, then every event processed
}
EXTRAPOLATIONS = {
    "catalog-import": "measured at the production size (100,000 products); the ratio to the bound is flat past "
                      "~20 pages, memory is per page",
    "webhook-ingest": "rates and latencies at a fixed offered load do not depend on how long it lasts past a few "
                      "seconds; processing is linear in events",
}


def allowance_of(scenario: Scenario, quick: bool) -> float:
    pair = scenario.allowance or ALLOWANCES.get(scenario.name) or DEFAULT_ALLOWANCE
    return float(pair[1 if quick else 0])


def extrapolation_of(scenario: Scenario) -> str:
    return scenario.extrapolation or EXTRAPOLATIONS.get(scenario.name, "")


def log(message: str) -> None:
    print(message, flush=True)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench", description="SyncSite benchmarks (make bench).")
    parser.add_argument("--quick", action="store_true", help="small sizes, for a smoke run")
    parser.add_argument("--only", action="append", default=[], metavar="NAME",
                        help="run only this scenario (repeatable, or comma-separated)")
    parser.add_argument("--db", choices=("sqlite", "postgres", "both"), default=None,
                        help="default: both; with --quick, PostgreSQL when reachable, else SQLite")
    parser.add_argument("--output", type=Path, help="results file (default bench/results.json, "
                                                    "bench/results-quick.json with --quick)")
    parser.add_argument("--list", action="store_true", help="list scenarios and exit")
    return parser.parse_args(argv)


def databases(choice: str | None, quick: bool) -> tuple[list[Database], list[str]]:
    notes: list[str] = []
    dbs: list[Database] = []
    if choice is None and quick:
        # A smoke run: one database, the production one when it is there.
        url = os.environ.get("BENCH_POSTGRES_URL", DEFAULT_POSTGRES_URL)
        problem = postgres_reachable(url)
        if problem:
            notes.append(f"--quick on SQLite: PostgreSQL {problem}")
            return [Database("sqlite")], notes
        return [Database("postgresql", url)], notes
    choice = choice or "both"
    if choice in ("sqlite", "both"):
        dbs.append(Database("sqlite"))
    if choice in ("postgres", "both"):
        url = os.environ.get("BENCH_POSTGRES_URL", DEFAULT_POSTGRES_URL)
        problem = postgres_reachable(url)
        if problem:
            if choice == "postgres":
                raise SystemExit(f"PostgreSQL requested but {problem}")
            notes.append(f"PostgreSQL skipped: {problem}")
        else:
            dbs.append(Database("postgresql", url))
    return dbs, notes


def select(scenarios: list[Scenario], only: list[str]) -> list[Scenario]:
    names = [n.strip() for item in only for n in item.split(",") if n.strip()]
    if not names:
        return scenarios
    known = {s.name: s for s in scenarios}
    unknown = [n for n in names if n not in known]
    if unknown:
        raise SystemExit(f"unknown scenario(s) {', '.join(unknown)}; known: {', '.join(known)}")
    return [s for s in scenarios if s.name in names]


def run_one(scenario: Scenario, db: Database | None, quick: bool) -> ScenarioResult:
    params = scenario.params(quick)
    result = ScenarioResult(scenario.name, db.label if db else None, params=params,
                            allowance=allowance_of(scenario, quick))
    ctx = Context(scenario=scenario, db=db, quick=quick, params=params, result=result, log=log)
    log(f"\n== {scenario.name}{f' [{db.label}]' if db else ''}: {scenario.title}")
    started = time.perf_counter()
    try:
        scenario.run(ctx)
    except BenchError as exc:
        result.error = str(exc)
        log(f"   ERROR: {exc}")
    except Exception as exc:  # noqa: BLE001 - a broken scenario must not stop the others
        result.error = f"{exc.__class__.__name__}: {exc}\n{traceback.format_exc()}"
        log(f"   ERROR: {result.error}")
    result.seconds = time.perf_counter() - started
    result.raw["load_average_after"] = load_average()
    for figure in result.figures:
        mark = {True: "met", False: "MISSED", None: ""}[figure.ok]
        log(f"   {figure.name:<28} {fmt(figure.value):>12} {figure.unit:<7} {figure.goal_text():<12} {mark}")
    over = "  OVER its allowance" if result.allowance and result.seconds > result.allowance else ""
    log(f"   ({result.seconds:.0f} s of {result.allowance:.0f} s allowed){over}")
    return result


def _grid(rows: list[tuple], right: set[int] = frozenset()) -> str:
    widths = [max(len(str(row[i])) for row in rows) for i in range(len(rows[0]))]
    lines = []
    for n, row in enumerate(rows):
        cells = [str(c).rjust(widths[i]) if i in right else str(c).ljust(widths[i]) for i, c in enumerate(row)]
        lines.append("  ".join(cells).rstrip())
        if n == 0:
            lines.append("  ".join("-" * w for w in widths))
    return "\n".join(lines)


def _db_columns(results: list[ScenarioResult]) -> list[str | None]:
    seen: list[str | None] = []
    for res in results:
        if res.db not in seen:
            seen.append(res.db)
    return sorted(seen, key=lambda d: (d is None, d != "sqlite", d or ""))


def table(results: list[ScenarioResult]) -> str:
    """One row per figure: its goal, then value and met/MISSED per database, then how it scales."""
    dbs = _db_columns(results)
    cells: dict[tuple[str, str], dict] = {}
    order: list[tuple[str, str]] = []
    for res in results:
        items = [(f.name, f) for f in res.figures]
        if res.error:
            items.append(("ERROR", None))
        for name, figure in items:
            key = (res.scenario, name)
            if key not in cells:
                cells[key] = {"goal": "", "scales": ""}
                order.append(key)
            row = cells[key]
            if figure is None:
                row[res.db] = res.error.splitlines()[0][:48]
                continue
            mark = {True: "met", False: "MISSED", None: ""}[figure.ok]
            row[res.db] = f"{fmt(figure.value)} {figure.unit} {mark}".replace("  ", " ").strip()
            row["goal"] = row["goal"] or figure.goal_text()
            row["scales"] = row["scales"] or figure.scales
    header = ("scenario", "figure", "goal", *[d or "run" for d in dbs], "scales to production as")
    rows: list[tuple] = [header]
    previous = None
    for scenario, name in order:
        row = cells[(scenario, name)]
        rows.append((scenario if scenario != previous else "", name, row["goal"],
                     *[row.get(d, "") for d in dbs], row["scales"]))
        previous = scenario
    return _grid(rows, right=set(range(3, 3 + len(dbs))))


def time_report(results: list[ScenarioResult], *, setup: dict[str, float], total: float, quick: bool,
                complete: bool) -> str:
    """Seconds per scenario and database against its allowance, and the total against the budget."""
    dbs = _db_columns(results)
    rows: list[tuple] = [("time (s)", *[d or "run" for d in dbs], "allowed per db", "")]
    if setup:
        rows.append(("set-up (templates)", *[f"{setup[d]:.0f}" if d in setup else "" for d in dbs],
                     f"{SETUP_ALLOWANCE[1 if quick else 0]:.0f}", ""))
    by: dict[str, dict] = {}
    for res in results:
        by.setdefault(res.scenario, {})[res.db] = res
    for scenario, per_db in by.items():
        allowed = next(iter(per_db.values())).allowance or 0
        over = [d or "once" for d, r in per_db.items() if r.seconds > allowed]
        rows.append((scenario, *[f"{per_db[d].seconds:.0f}" if d in per_db else "" for d in dbs],
                     f"{allowed:.0f}", f"OVER on {', '.join(over)}" if over else ""))
    budget = BUDGET[1 if quick else 0]
    per_db_sum = [sum(r.seconds for r in results if r.db == d) + setup.get(d, 0.0) for d in dbs]
    rows.append(("sum", *[f"{v:.0f}" for v in per_db_sum], "", ""))
    verdict = "met" if total <= budget else "MISSED"
    scope = "" if complete else " (a partial run: the budget is for every scenario on every database)"
    return (_grid(rows, right=set(range(1, 2 + len(dbs))))
            + f"\ntotal {total:.0f} s; budget {'--quick' if quick else 'make bench'} < {budget:.0f} s: "
              f"{verdict}{scope}")


def lanes_of(scenario: Scenario, dbs: list[Database]) -> list[Database | None]:
    """The databases a scenario runs on in this run (None: it needs none)."""
    if not scenario.per_database:
        return [None]
    return [db for db in dbs if db.kind in scenario.databases] or dbs[:1]


def plan(chosen: list[Scenario], dbs: list[Database], quick: bool) -> tuple[float, str]:
    """The allowances of what is about to run, added up, against the budget."""
    total = SETUP_ALLOWANCE[1 if quick else 0] * len(dbs)
    for scenario in chosen:
        total += allowance_of(scenario, quick) * len(lanes_of(scenario, dbs))
    budget = BUDGET[1 if quick else 0]
    text = (f"plan: {len(chosen)} scenarios on {', '.join(d.label for d in dbs) or 'no database'}; their "
            f"allowances add up to {total:.0f} s of the {budget:.0f} s budget"
            + ("" if total <= budget else "  -- OVER: lower some scenario's sizes or allowance"))
    return total, text


def write_results(path: Path, results: list[ScenarioResult], *, meta: dict, merge: bool) -> None:
    # each entry names the run that measured it: a merged file mixes runs, and machines differ
    machine = meta.get("machine", {})
    measured = {"date": meta.get("date"), "git": machine.get("git"),
                "cpu_calibration_s": machine.get("cpu_calibration_s")}
    entries = [{**r.as_dict(), "measured": measured} for r in results]
    if merge and path.exists():
        try:
            previous = json.loads(path.read_text())
            fresh = {(e["scenario"], e["db"]) for e in entries}
            kept = [e for e in previous.get("results", []) if (e["scenario"], e["db"]) not in fresh]
            entries = kept + entries
            meta["merged_with_previous_run_of"] = previous.get("date")
        except (ValueError, KeyError):
            pass
    figures = [f for e in entries for f in e["figures"]]
    meta["summary"] = {
        "figures": len(figures),
        "goals": sum(1 for f in figures if f["ok"] is not None),
        "goals_met": sum(1 for f in figures if f["ok"] is True),
        "goals_missed": [f"{f['scenario']} [{f['db']}] {f['name']}: {f['value']} {f['unit']} (goal {f['goal']['text']})"
                         for f in figures if f["ok"] is False],
        "errors": [f"{e['scenario']} [{e['db']}]: {e['error'].splitlines()[0]}" for e in entries if e["error"]],
    }
    path.write_text(json.dumps({**meta, "results": entries}, indent=1, ensure_ascii=False, default=str) + "\n")


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    scenarios = discover()
    if args.list:
        for s in scenarios:
            log(f"{s.name:<20} issue {s.issue:<3} {'per database' if s.per_database else 'once':<13} "
                f"{allowance_of(s, False):>4.0f} s / {allowance_of(s, True):>3.0f} s quick  {s.title}")
            log(f"{'':<20} full {s.params(False)}\n{'':<20} quick {s.params(True)}")
        return 0
    chosen = select(scenarios, args.only)
    dbs, notes = databases(args.db, args.quick)
    for note in notes:
        log(f"note: {note}")
    started = time.perf_counter()
    planned, plan_text = plan(chosen, dbs, args.quick)
    log(plan_text)
    setup: dict[str, float] = {}
    for db in dbs:
        if any(s.per_database for s in chosen):
            t0 = time.perf_counter()
            db.cleanup(leftovers=True, log=log)
            db.template(log=log)
            setup[db.label] = time.perf_counter() - t0
    meta = {
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "command": "python -m bench " + " ".join(sys.argv[1:] if argv is None else argv),
        "quick": args.quick,
        "machine": machine_info(),
        "databases": {db.label: db.describe() for db in dbs},
        "notes": notes,
        "method": ("each measured job runs in its own process (python -m bench.child) against the sandbox in "
                   "another process (python -m integrations.sandbox.server); a fresh database per scenario; "
                   "the MoySklad limiter is in-process (REDIS_URL empty); peak memory is the child's ru_maxrss"),
    }
    results: list[ScenarioResult] = []
    for scenario in chosen:
        for db in lanes_of(scenario, dbs):
            results.append(run_one(scenario, db, args.quick))
    for db in dbs:
        db.cleanup(log=log)
    meta["machine"]["load_average_at_end"] = load_average()
    total = time.perf_counter() - started
    meta["total_seconds"] = round(total, 1)
    complete = not args.only and (len(dbs) == 2 or (args.quick and args.db is None))
    budget = BUDGET[1 if args.quick else 0]
    meta["time"] = {"budget_seconds": budget, "planned_seconds": planned, "complete_run": complete,
                    "setup_seconds": {k: round(v, 1) for k, v in setup.items()},
                    "by_scenario": [{"scenario": r.scenario, "db": r.db, "seconds": round(r.seconds, 1),
                                     "allowance": r.allowance} for r in results]}
    if results:
        harness = ScenarioResult("make bench", None)
        harness.add("total wall time", round(total), "s", goal("<", budget) if complete else None,
                    note="every scenario on every database" if complete else "a partial run",
                    scales="the sum of the scenarios' allowances")
        results_and_total = results + [harness]
    else:
        results_and_total = results

    log("\n" + table(results_and_total))
    notes_text = [f"  {s.name}: {extrapolation_of(s)}" for s in chosen if extrapolation_of(s)]
    if notes_text:
        log("\nHow the figures extrapolate:\n" + "\n".join(notes_text))
    log("\n" + time_report(results, setup=setup, total=total, quick=args.quick, complete=complete))
    output = args.output or (QUICK_RESULTS if args.quick else RESULTS)
    write_results(output, results_and_total if complete else results, meta=meta,
                  merge=bool(args.only) or args.db not in (None, "both"))
    shown = output.resolve().relative_to(ROOT) if output.resolve().is_relative_to(ROOT) else output
    log(f"\n{len(results)} scenario runs in {meta['total_seconds']:.0f} s; results in {shown}")
    if any(r.error for r in results):
        return 2
    if any(f.ok is False for r in results_and_total for f in r.figures):
        if args.quick:
            log("(--quick: goals are indicative at these sizes; a missed one does not fail the run)")
            return 0
        return 1
    return 0
