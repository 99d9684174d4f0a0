"""The admin home dashboard: `dashboard` - server time of one page view and its number of queries,
at a tenth of the size and at the full size (100,000 offers, 1,000,000 stock changes, 100,000 job
runs). The dashboard reads a fixed set of aggregates (job states with their last runs, running
runs, a 24-hour aggregate of runs, stock changes per hour, one count per "items waiting"), each
bounded by an index: the query count must be the same at both sizes, and the time must not follow
the table sizes (only the last 24 hours of runs and changes are read).

How it extrapolates: the tables beyond the last 24 hours are never read, so the time depends on
the day's volume (runs and stock changes of the last 24 hours) and on the counts of waiting
items (index-only counts), not on the history's length."""
from __future__ import annotations

from bench.infra import BenchError, child_env, goal, run_module_child
from bench.scenarios import Context, Scenario


class Dashboard(Scenario):
    name = "dashboard"
    issue = 12
    title = "admin home dashboard: server time and queries at a tenth of the size and at the full size"
    full = {"offers": 100_000, "changes": 1_000_000, "runs": 100_000, "repeat": 7}
    quick = {"offers": 5_000, "changes": 50_000, "runs": 5_000, "repeat": 3}
    allowance = (120, 20)
    extrapolation = ("only the last 24 hours of runs and stock changes are read and every count is index-only: "
                     "the time follows the day's volume, the query count is constant")

    def run(self, ctx: Context) -> None:
        p = ctx.params
        url = ctx.fresh_database()
        env = child_env(database_url=url)
        sizes = []
        for share in (0.1, 0.9):  # fill a tenth, measure; fill the rest, measure again
            run_module_child("bench.child_dashboard", [
                "fill", "--offers", str(int(p["offers"] * share)), "--changes", str(int(p["changes"] * share)),
                "--runs", str(int(p["runs"] * share))], env, timeout=1800, log=ctx.log)
            out = run_module_child("bench.child_dashboard", ["measure", "--repeat", str(p["repeat"])], env,
                                   timeout=600, log=ctx.log)
            ctx.log(f"      median {out['median_ms']} ms, worst {out['max_ms']} ms, {out['queries']} queries")
            sizes.append(out)
        small, large = sizes
        if not large["rows"]:
            raise BenchError("the dashboard rendered no flow rows")
        ctx.result.raw = {"small": small, "large": large}
        ctx.result.add("server time, full size (median)", large["median_ms"], "ms", goal("<", 200),
                       scales="the day's volume, not the history")
        ctx.result.add("server time, a tenth (median)", small["median_ms"], "ms")
        ctx.result.add("queries, full size", large["queries"], "", goal("==", small["queries"],
                                                                       f"== {small['queries']} (a tenth)"))
        ctx.result.add("queries, a tenth", small["queries"], "")


SCENARIOS = [Dashboard()]
