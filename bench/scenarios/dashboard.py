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
    # PostgreSQL only (production's database; the rows are written by the server itself, in seconds).
    databases = ("postgresql",)
    full = {"offers": 100_000, "changes": 1_000_000, "runs": 100_000, "repeat": 7}
    quick = {"offers": 5_000, "changes": 50_000, "runs": 5_000, "repeat": 3}
    allowance = (15, 6)  # quick: about 5 s of it is starting Python and Django
    extrapolation = ("only the last 24 hours of runs and stock changes are read and every count is index-only: "
                     "the time follows the day's volume, the query count is constant")

    def run(self, ctx: Context) -> None:
        p = ctx.params
        url = ctx.fresh_database()
        env = child_env(database_url=url)
        # One process: fill a tenth and measure, fill the other nine tenths and measure again.
        out = run_module_child("bench.child_dashboard", [
            "sizes", "--offers", str(p["offers"]), "--changes", str(p["changes"]), "--runs", str(p["runs"]),
            "--repeat", str(p["repeat"])], env, timeout=1800, log=ctx.log)
        small, large = out["small"], out["large"]
        for label, size in (("a tenth", small), ("full size", large)):
            ctx.log(f"      {label}: filled in {size['fill_seconds']} s; median {size['median_ms']} ms, "
                    f"worst {size['max_ms']} ms, {size['queries']} queries")
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
