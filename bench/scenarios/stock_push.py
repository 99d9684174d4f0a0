"""Marketplace stock: `stock-push` - a full push per channel against its rate-limit bound, then
1 % of the offers changed -> calls per channel against ceil(changed / batch max).

One scenario does both, on one database: the setup import and the full push are needed by the
delta push anyway (the full push is its baseline).

Setup: the sandbox starts with all limits on; MoySklad's limit and the WB content API's are then
switched off (setup only: the catalog import and WB's chrtId key reading are not what is
measured). Ozon, WB and YM stock emulators keep their limits on, Ozon's windows scaled by SCALE
(emulator and client alike). The 1 % change is written to StockLevel rows directly (+7 on one row
per offer, updated_at bumped, as the MoySklad stock job would), in a child; every offer's last
push is then moved 31 s back and Ozon's emulator forgets its pairs (Ozon's once-per-30-s rule,
without waiting it out), and the delta run is another child, at the real limits.

How it extrapolates. A full push is a stream of calls through a token bucket (`burst` calls at
once, then one per `interval`); the bound is calls x interval (the first burst not credited),
so past a few bursts wall/bound is flat in the number of offers: it tends to max(1, our work per
call / interval) - our work being reading, comparing and writing a batch's offers, which overlaps
the calls in flight. "work per call" is printed: below the interval, the push is rate-bound at any
size. "wall/bound at scale" = max(1, work per call / interval, call time / interval) is that
limit; the measured wall/bound approaches it from below (the first burst is free). 40,000 offers
(WB 40 calls, two bursts) stand for 1,000,000. Ozon's windows run at
SCALE (a 12.5-minute push at 100,000 offers becomes 40 s), which makes our work a 1/SCALE times
larger share of each interval than in production: its scaled ratio is an upper bound. YM's calls
fit in its first burst (50 a minute): no bound applies, its wall time is our own work. The delta
costs ceil(changed / batch max) calls at any size.
"""
from __future__ import annotations

import math

from bench.infra import BenchError, child_env, goal, http_json, run_module_child
from bench.scenarios import Context, Scenario

#: Ozon's rate-limit windows (emulator and client: 80 a minute, 30 s per pair) are multiplied by
#: this in the full push (400 calls: 5 min -> 15 s); WB and YM run at their real limits
SCALE = 0.05
#: (emulator name, counts prefix, batch max, burst (calls at once), window seconds, scale):
#: `burst` calls per `window` is each API's budget, refilled evenly (token bucket)
CHANNELS = (
    ("ozon", "ozon", 100, 80, 60.0, SCALE),
    ("wb", "wildberries", 1000, 20, 4.0, 1.0),          # 300 a minute, burst 20: one per 200 ms
    ("ym", "yandex_market", 2000, 50, 60.0, 1.0),
)
#: the clients' side of the scaling (syncsite/settings/integrations.py, MARKETPLACES); WB's content
#: API (chrtId keys, setup - its emulator limit is off) is sped up too
CLIENT_SCALE = f"ozon={SCALE},wildberries-content=0.01"


def sandbox_env(sandbox, extra: dict | None = None) -> dict:
    from integrations.sandbox.channels import settings_for   # plain module: no Django needed

    return {**settings_for(sandbox.url), **(extra or {})}


def run_marketplace_child(ctx: Context, args: list[str], *, database_url: str, sandbox, extra: dict | None = None,
                          timeout: float = 1800) -> dict:
    env = child_env(database_url=database_url, moysklad_url=sandbox.moysklad_url,
                    extra=sandbox_env(sandbox, extra))
    return run_module_child("bench.child_marketplace", args, env, timeout=timeout, log=ctx.log)


def emulator(sandbox, name: str, method: str, path: str, body=None):
    return http_json(method, f"{sandbox.url}/_sandbox/{name}/{path.lstrip('/')}", body)


class StockPush(Scenario):
    name = "stock-push"
    issue = 4
    order = 10
    title = "full push of N offers (Ozon's windows scaled) vs each rate bound, then 1% changed: calls vs the minimum"
    databases = ("postgresql",)   # bound by the marketplaces' limits, not the database
    full = {"offers": 40_000, "changed_share": 0.01, "scale": SCALE, "variant_share": 0}
    quick = {"offers": 1_000}
    allowance = (100, 8)
    extrapolation = ("rate-bound: wall/bound tends to 'wall/bound at scale' = max(1, work per call / interval, "
                     "call time / interval) as offers grow (WB's interval is 0.2 s); the measured ratio is below "
                     "it at small sizes (the first burst is free). Ozon at windows x0.05 is an upper bound of "
                     "the real ratio; YM's calls fit its first burst (no bound); delta calls = ceil(changed / "
                     "batch) at any size. --quick sizes fit in the bursts: their ratios say nothing")

    def params(self, quick: bool) -> dict:
        p = super().params(quick)
        return {**p, "changed": int(p["offers"] * p["changed_share"])}

    def run(self, ctx: Context) -> None:
        p = ctx.params
        url = ctx.fresh_database()
        scaled = {"MARKETPLACE_RATE_WINDOW_SCALE": CLIENT_SCALE}
        with ctx.sandbox(products=p["offers"], variant_share=0) as sandbox:
            # -- setup: catalog import with MoySklad's limit off ---------------------------------
            sandbox.configure(rate_limit=False)
            emulator(sandbox, "wb-content", "POST", "config", {"rate_limit": False})
            emulator(sandbox, "ozon", "POST", "config", {"window": 60.0 * SCALE, "pair_interval": 30.0 * SCALE})
            imp = run_marketplace_child(ctx, ["job", "moysklad-catalog", "--full"], database_url=url,
                                        sandbox=sandbox, extra=scaled)
            ctx.result.raw["import"] = imp
            stock = run_marketplace_child(ctx, ["job", "moysklad-stock", "--full"], database_url=url,
                                          sandbox=sandbox, extra=scaled)
            ctx.result.raw["stock_import"] = stock
            offers = stock["db"]["offers"]
            if not stock["db"]["stock_levels"]:
                raise BenchError("no stock rows after the MoySklad stock import")
            ctx.result.raw["emulator_config"] = {n: emulator(sandbox, n, "GET", "config")
                                                 for n, *_ in CHANNELS}
            for name, *_ in CHANNELS:
                emulator(sandbox, name, "POST", "stats/reset")
            # -- full push, limits on, Ozon's windows scaled ---------------------------------------
            full = run_marketplace_child(ctx, ["job", "marketplace-stock", "--full"], database_url=url,
                                         sandbox=sandbox, extra=scaled)
            ctx.result.raw["full"] = full
            stats = {n: emulator(sandbox, n, "GET", "stats") for n, *_ in CHANNELS}
            ctx.result.raw["full_emulator_stats"] = stats
            counts = full.get("counts") or {}
            for name, prefix, batch, burst, window, scale in CHANNELS:
                self._full_figures(ctx, name, prefix, counts, offers=offers, batch=batch, burst=burst,
                                   interval=window * scale / burst, scale=scale)
            if full.get("status") != "success":
                ctx.result.raw["full_problem"] = full.get("message")
            # -- 1 % changed, delta push --------------------------------------------------------
            change = run_marketplace_child(ctx, ["change", "--count", str(p["changed"])], database_url=url,
                                           sandbox=sandbox, extra=scaled)
            changed = change["changed_offers"]
            # Ozon takes one update per pair in 30 s: rather than wait that out since the full push,
            # move every last push 31 s back and let the emulator forget its pairs. A fresh process
            # has a fresh in-process limiter; the emulators still remember the full push's calls
            # (YM: 50 of 50 a minute). In production the shared Redis limiter carries that over and
            # jobs are minutes apart: start the emulators' windows afresh (setting the window
            # resets the bucket) so the delta's calls are its own, not retries.
            run_marketplace_child(ctx, ["age", "--seconds", "31"], database_url=url, sandbox=sandbox)
            for name, _, _, _, window, _ in CHANNELS:
                emulator(sandbox, name, "POST", "stats/reset")
                emulator(sandbox, name, "POST", "config", {"window": window})
            emulator(sandbox, "ozon", "POST", "config", {"pair_interval": 30.0})
            emulator(sandbox, "ozon", "POST", "pairs/forget")
            delta = run_marketplace_child(ctx, ["job", "marketplace-stock"], database_url=url, sandbox=sandbox)
            ctx.result.raw["delta"] = delta
            ctx.result.raw["delta_emulator_stats"] = {n: emulator(sandbox, n, "GET", "stats") for n, *_ in CHANNELS}
            counts = delta.get("counts") or {}
            for name, prefix, batch, *_ in CHANNELS:
                calls = counts.get(f"{prefix}_calls", 0)
                minimum = math.ceil(changed / batch)
                seen = ctx.result.raw["delta_emulator_stats"][name].get("requests")
                ctx.result.add(f"{name} calls", calls, "calls", goal("==", minimum, f"= {minimum}"),
                               note=f"sent {counts.get(f'{prefix}_sent')} lines, looked at "
                                    f"{counts.get(f'{prefix}_looked_at')}, deferred {counts.get(f'{prefix}_deferred')}"
                                    f"; the emulator counted {seen} requests",
                               scales="ceil(changed / batch)")
            ctx.result.add("delta job", delta.get("job_seconds"), "s", note="at real (unscaled) limits",
                           scales="linear in changed offers")
            if not ctx.quick:
                ctx.result.raw["probe"] = run_marketplace_child(ctx, ["probe"], database_url=url, sandbox=sandbox)

    @staticmethod
    def _full_figures(ctx: Context, name: str, prefix: str, counts: dict, *, offers: int, batch: int, burst: int,
                      interval: float, scale: float) -> None:
        calls = counts.get(f"{prefix}_calls", 0)
        seconds = counts.get(f"{prefix}_ms", 0) / 1000
        waited = counts.get(f"{prefix}_wait_ms", 0) / 1000
        sending = counts.get(f"{prefix}_send_ms", 0) / 1000
        held = counts.get(f"{prefix}_limiter_ms", 0) / 1000
        bound = calls * interval      # the sustained rate; the first burst is not credited
        expected = math.ceil(offers / batch)
        bounded = calls > burst
        windows = f"windows x{scale:g}; " if scale != 1 else ""
        ctx.result.add(f"full {name} calls", calls, "calls", goal("==", expected, f"= {expected}"),
                       scales="ceil(offers / batch)")
        ctx.result.add(f"full {name} wall", round(seconds, 2), "s", scales="linear in offers",
                       note=f"push alone (keys {counts.get(f'{prefix}_keys_ms', 0) / 1000:.1f} s apart); {windows}"
                            f"waited for answers {waited:.1f} s; calls {sending:.1f} s, {held:.1f} s of it held by "
                            f"the limiter")
        ctx.result.add(f"full {name} bound", round(bound, 2), "s", scales="linear in offers",
                       note=f"{calls} calls x {interval:g} s ({burst} per {interval * burst:g} s)")
        ctx.result.add(f"full {name} wall/bound", round(seconds / bound, 2) if bound else None, "x",
                       goal("<=", 1.2) if bounded else None,
                       scales="tends to the 'at scale' figure" if bounded else "no bound: inside one burst",
                       note="" if bounded else f"{calls} calls fit in the first burst of {burst}: no rate bound "
                                               f"applies, the wall time is our own work")
        if not calls:
            return
        work = (seconds - waited) / calls            # our page work per call, overlapping the calls
        latency = max(sending - held, 0.0) / calls   # a call's own time, the limiter's holds left out
        ctx.result.add(f"full {name} work per call", round(work, 3), "s",
                       scales=f"flat; under {interval:g} s: rate-bound",
                       note=f"our own time per call (read, compare, write {batch} offers) while calls were in "
                            f"flight; a call itself took {latency:.3f} s; the interval per call is {interval:g} s")
        if bounded:
            at_scale = max(1.0, work / interval, latency / interval)
            ctx.result.add(f"full {name} wall/bound at scale", round(at_scale, 2), "x", goal("<=", 1.2),
                           scales="what 1,000,000 offers would show",
                           note="max(1, work per call, call time) / interval: past a few bursts the slowest of "
                                "the limiter, our work and the calls sets the pace")


SCENARIOS = [StockPush()]
