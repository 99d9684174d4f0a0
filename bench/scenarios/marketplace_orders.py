"""Marketplace orders: `order-pull`, `status-push`, `order-propagation`.

Each runs `python -m bench.child_mporders ...` in its own process, with the sandbox's Ozon,
Wildberries and Yandex Market emulators in that process (loopback sockets; the emulators' own
limits off, so what binds is our clients' limiters at the marketplaces' real budgets).

* order-pull: N orders spread over the three marketplaces, one `marketplace-orders` run. Calls
  made against the minimum the page sizes allow (Ozon 100 postings a page, WB one `orders/new`
  plus a status batch per 1,000 tasks, YM 50 orders a page), wall time, duplicates after the same
  window is pulled again (goal 0).
* status-push: N orders moved to `processing` by MoySklad: Ozon ships one posting a call, WB adds
  up to 100 tasks to a supply a call, YM updates 30 orders a call. Calls and wall time against
  the time the marketplaces' limits need (goal ≤ 1.2×).
* order-propagation: a new Ozon order -> pulled (as the push notification would trigger) -> held
  -> the debounced stock push -> WB and YM told the lower figure; p95 (goal < 10 s), the
  debounce included.
"""
from __future__ import annotations

import subprocess
import time

from bench.infra import PY, ROOT, BenchError, child_env, goal, last_json_line
from bench.scenarios import Context, Scenario


def _child(ctx: Context, args: list[str], *, url: str, timeout: float = 900) -> dict:
    env = child_env(database_url=url, extra={"CELERY_BROKER_URL": "memory://", "MARKETPLACE_DEBOUNCE_SECONDS": "5"})
    ctx.log(f"    $ python -m bench.child_mporders {' '.join(args)}")
    started = time.perf_counter()
    proc = subprocess.run([PY, "-m", "bench.child_mporders", *args], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=timeout)
    out = last_json_line(proc.stdout)
    if proc.returncode != 0 or out is None:
        raise BenchError(f"child {' '.join(args)} exited {proc.returncode}:\n{proc.stderr[-3000:]}")
    out["process_seconds"] = round(time.perf_counter() - started, 3)
    ctx.result.raw[args[0]] = out
    return out


class OrderPull(Scenario):
    name = "order-pull"
    issue = 11
    order = 10
    title = "marketplace-orders: orders across Ozon, WB and YM (calls vs page minimum, time, duplicates)"
    databases = ("postgresql",)
    full = {"orders": 300}
    quick = {"orders": 60}
    #: measured ~15 s full / ~6 s quick here, ~10 / 6 s status-push, ~8 / 4 s order-propagation
    allowance = (15, 5)
    extrapolation = ("calls = the page minimum at any size (10,000 orders: 34 Ozon pages, 1 + 4 WB calls, 67 YM "
                     "pages); time per order is flat (one create path per order): 10,000 orders take ~33x the "
                     "300-order wall time; duplicates are excluded by a unique constraint at any size")

    def run(self, ctx: Context) -> None:
        url = ctx.fresh_database()
        out = _child(ctx, ["pull", "--orders", str(ctx.params["orders"])], url=url)
        if out.get("status") != "success":
            raise BenchError(f"marketplace-orders: {out.get('status')} {out.get('message')}")
        calls, minimum = out["calls"], out["minimum_calls"]
        ctx.result.add("calls", sum(calls.values()), "calls", goal("<=", sum(minimum.values()), "= page minimum"),
                       note=f"made {calls}, minimum {minimum}")
        ctx.result.add("wall", out["job_seconds"], "s", scales="linear in orders")
        ctx.result.add("orders/s", round(out["orders"] / out["job_seconds"], 1), "orders/s", scales="flat")
        ctx.result.add("duplicates", out["duplicates"], "orders", goal("==", 0, "= 0"))
        ctx.result.add("missing", out["missing"], "orders", goal("==", 0, "= 0"))


class StatusPush(Scenario):
    name = "status-push"
    issue = 11
    order = 20
    title = "shipments pushed to Ozon, WB and YM through the outbox (calls, time vs rate-limit bound)"
    databases = ("postgresql",)
    full = {"orders": 300}
    quick = {"orders": 60}
    allowance = (10, 5)
    extrapolation = ("Ozon's 50 calls a second binds past its first second: 1,000 shipments (333 Ozon) need "
                     "5.7 s of Ozon budget; wall/bound is flat once the bound dominates (measured at 300)")

    def run(self, ctx: Context) -> None:
        url = ctx.fresh_database()
        out = _child(ctx, ["push", "--orders", str(ctx.params["orders"])], url=url)
        states = out["states"]
        ctx.result.add("done", states.get("done", 0), "actions", goal("==", out["shipments"], "= shipments"),
                       note=f"failed {states.get('failed', 0)}, pending {states.get('pending', 0)}")
        minimum = sum(out["minimum_calls"].values())
        ctx.result.add("calls", out["calls_total"], "calls", note=f"minimum {minimum}; {out['calls']}")
        bound = out["bound_seconds"]
        ctx.result.add("wall", out["job_seconds"], "s", note=f"rate-limit bound {bound:g} s")
        if bound > 0:
            ctx.result.add("wall / bound", round(out["job_seconds"] / bound, 2), "×", goal("<=", 1.2))


class OrderPropagation(Scenario):
    name = "order-propagation"
    issue = 11
    order = 30
    title = "a new Ozon order -> held -> WB and YM figures lowered (p95, debounce included)"
    databases = ("postgresql",)
    full = {"changes": 3}
    quick = {"changes": 1}
    allowance = (10, 4)
    extrapolation = "per order: the debounce (5 s) plus a sub-second path, whatever the catalog size"

    def run(self, ctx: Context) -> None:
        url = ctx.fresh_database()
        out = _child(ctx, ["propagation", "--changes", str(ctx.params["changes"])], url=url)
        if not out.get("latencies_s"):
            raise BenchError(f"no order lowered both figures: {out}")
        ctx.result.add("p50", out["p50"], "s")
        ctx.result.add("p95", out["p95"], "s", goal("<", 10.0), note=f"debounce {out['debounce_s']:g} s included")
        ctx.result.add("missed", out["misses"], "orders", goal("==", 0, "= 0"))


SCENARIOS = [OrderPull(), StatusPush(), OrderPropagation()]
