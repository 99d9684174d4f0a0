"""`make test-faults`: the full fault matrix (tests/faults, SYNCSITE_FAULTS=full), its summary
printed as a table and kept in bench/results.json as the `fault-matrix` entry (merged with the
benchmarks' entries, as `--only` runs are).

    python -m bench.faults [pytest args]

The suite itself asserts 0 duplicate and 0 missing orders in MoySklad, every stock level equal to
MoySklad's and 0 notifications answered 200 and left unprocessed; this records how many faults
it injected into each flow and whether those assertions held. The chaos test (real workers
SIGKILLed, Redis flushed and restarted, database connections dropped) adds its own figures:
kills, flushes, restarts, drops, and the duplicates and losses its reconcile counted."""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from datetime import datetime, timezone

from bench.harness import RESULTS, write_results
from bench.infra import ScenarioResult, goal

LINE = re.compile(r"faults injected into (?P<flow>[a-z ]+): (?P<n>\d+) \((?P<detail>[^)]*)\)(?P<rest>.*)")
CHAOS = re.compile(r"^chaos figures: (?P<json>\{.*\})$", re.M)
#: tests/faults/test_chaos.py's figures kept in the entry (what it injected, what it found)
CHAOS_FIGURES = {"site orders": ("orders", None), "marketplace orders": ("orders", None),
                 "workers killed": ("kills", None), "redis flushes": ("flushes", None),
                 "redis restarts": ("restarts", None), "db connections dropped": ("connections", None),
                 "duplicate orders in MoySklad": ("orders", 0), "missing orders in MoySklad": ("orders", 0),
                 "duplicate marketplace actions": ("actions", 0), "duplicate marketplace orders": ("orders", 0),
                 "missing marketplace orders": ("orders", 0), "marketplace actions not done": ("actions", 0),
                 "marketplace actions done, not applied": ("actions", 0),
                 "notifications answered 2xx, never processed": ("events", 0),
                 "stock levels differing from MoySklad": ("cells", 0), "seconds to heal": ("s", None)}


def run(extra: list[str]) -> tuple[int, str, float]:
    env = {**os.environ, "SYNCSITE_FAULTS": "full"}
    started = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "pytest", "-m", "faults", "-s", "-q", "-p", "no:randomly",
                           "tests/faults", *extra], env=env, capture_output=True, text=True)
    return done.returncode, done.stdout + done.stderr, time.perf_counter() - started


def summarize(code: int, output: str, seconds: float) -> ScenarioResult:
    db = "postgresql" if os.environ.get("DATABASE_URL", "").startswith("postgres") else "sqlite"
    result = ScenarioResult("fault-matrix", db, params={"size": "full"}, seconds=seconds)
    total = 0
    for match in LINE.finditer(output):
        n = int(match["n"])
        total += n
        result.add(f"faults into {match['flow']}", n, "faults", note=(match["detail"] + match["rest"]).strip())
    result.add("faults injected", total, "faults", goal(">=", 1000))
    held = code == 0
    for name in ("duplicate orders in MoySklad", "missing orders in MoySklad", "notifications answered 2xx, "
                 "never processed", "stock levels differing from MoySklad"):
        result.add(name, 0 if held else None, "", goal("==", 0), note="asserted by tests/faults" if held else
                   "the suite failed: see its output")
    chaos = CHAOS.search(output)
    if chaos:
        figures = json.loads(chaos["json"])
        for name, (unit, want) in CHAOS_FIGURES.items():
            if name in figures:
                result.add(f"chaos: {name}", figures[name], unit, goal("==", want) if want is not None else None)
        upstream = {k[len("upstream "):]: v for k, v in figures.items() if k.startswith("upstream ") and
                    k != "upstream requests under fire"}
        result.add("chaos: upstream faults", sum(upstream.values()), "faults",
                   note=f"{upstream} in {figures.get('upstream requests under fire')} requests under fire")
    if not held:
        result.error = "\n".join(output.strip().splitlines()[-15:])
    return result


def main(argv: list[str] | None = None) -> int:
    code, output, seconds = run(list(sys.argv[1:] if argv is None else argv))
    print(output[-4000:] if code else "\n".join(line for line in output.splitlines() if "faults injected" in line))
    result = summarize(code, output, seconds)
    width = max(len(f.name) for f in result.figures)
    print(f"\n{'figure':<{width}}  {'value':>8}  goal")
    for f in result.figures:
        print(f"{f.name:<{width}}  {'' if f.value is None else f'{f.value:,}':>8}  {f.goal.text if f.goal else ''}"
              f"{'' if f.ok is None else ('  met' if f.ok else '  MISSED')}")
    write_results(RESULTS, [result], meta={"date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
                                           "command": "make test-faults", "quick": False}, merge=True)
    print(f"\nfault matrix: {seconds:.0f} s; kept in {RESULTS}")
    return code


if __name__ == "__main__":
    raise SystemExit(main())
