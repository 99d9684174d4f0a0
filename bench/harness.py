"""`python -m bench`: run the scenarios, print the table, write the results file.

    --quick            small sizes (a smoke run); results go to bench/results-quick.json
    --only NAME[,NAME] run only these scenarios (repeatable); other entries of the results file stay
    --db sqlite|postgres|both   default both: SQLite, and PostgreSQL when reachable
                       (BENCH_POSTGRES_URL, default postgres://postgres@127.0.0.1:5432/syncsite_bench;
                       that database is dropped and recreated for every scenario)
    --output PATH      where to write the JSON (default bench/results.json)
    --list             list the scenarios and exit

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
    DEFAULT_POSTGRES_URL, ROOT, BenchError, Database, ScenarioResult, fmt, load_average, machine_info,
    postgres_reachable,
)
from bench.scenarios import Context, Scenario, discover

RESULTS = ROOT / "bench" / "results.json"
QUICK_RESULTS = ROOT / "bench" / "results-quick.json"


def log(message: str) -> None:
    print(message, flush=True)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench", description="SyncSite benchmarks (make bench).")
    parser.add_argument("--quick", action="store_true", help="small sizes, for a smoke run")
    parser.add_argument("--only", action="append", default=[], metavar="NAME",
                        help="run only this scenario (repeatable, or comma-separated)")
    parser.add_argument("--db", choices=("sqlite", "postgres", "both"), default="both")
    parser.add_argument("--output", type=Path, help="results file (default bench/results.json, "
                                                    "bench/results-quick.json with --quick)")
    parser.add_argument("--list", action="store_true", help="list scenarios and exit")
    return parser.parse_args(argv)


def databases(choice: str) -> tuple[list[Database], list[str]]:
    notes: list[str] = []
    dbs: list[Database] = []
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
    result = ScenarioResult(scenario.name, db.label if db else None, params=params)
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
        mark = {True: "ok", False: "MISSED", None: ""}[figure.ok]
        log(f"   {figure.name:<28} {fmt(figure.value):>12} {figure.unit:<7} {figure.goal_text():<12} {mark}")
    log(f"   ({result.seconds:.0f} s)")
    return result


def table(results: list[ScenarioResult]) -> str:
    rows = [("scenario", "db", "figure", "value", "goal", "ok?")]
    for res in results:
        for f in res.figures:
            value = f"{fmt(f.value)} {f.unit}".strip()
            rows.append((res.scenario, res.db or "-", f.name, value, f.goal_text(),
                         {True: "yes", False: "NO", None: ""}[f.ok]))
        if res.error:
            rows.append((res.scenario, res.db or "-", "ERROR", res.error.splitlines()[0][:60], "", "NO"))
    widths = [max(len(str(row[i])) for row in rows) for i in range(len(rows[0]))]
    lines = []
    for n, row in enumerate(rows):
        cells = [str(c).rjust(widths[i]) if i == 3 else str(c).ljust(widths[i]) for i, c in enumerate(row)]
        lines.append("  ".join(cells).rstrip())
        if n == 0:
            lines.append("  ".join("-" * w for w in widths))
    return "\n".join(lines)


def write_results(path: Path, results: list[ScenarioResult], *, meta: dict, merge: bool) -> None:
    entries = [r.as_dict() for r in results]
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
            log(f"{s.name:<20} issue {s.issue}  {'per database' if s.per_database else 'once':<13} {s.title}")
        return 0
    chosen = select(scenarios, args.only)
    dbs, notes = databases(args.db)
    for note in notes:
        log(f"note: {note}")
    started = time.perf_counter()
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
        for db in (dbs if scenario.per_database else [None]):
            results.append(run_one(scenario, db, args.quick))
    meta["machine"]["load_average_at_end"] = load_average()
    meta["total_seconds"] = round(time.perf_counter() - started, 1)

    log("\n" + table(results))
    output = args.output or (QUICK_RESULTS if args.quick else RESULTS)
    write_results(output, results, meta=meta, merge=bool(args.only) or args.db != "both")
    shown = output.resolve().relative_to(ROOT) if output.resolve().is_relative_to(ROOT) else output
    log(f"\n{len(results)} scenario runs in {meta['total_seconds']:.0f} s; results in {shown}")
    if any(r.error for r in results):
        return 2
    if any(f.ok is False for r in results for f in r.figures):
        return 1
    return 0
