"""Issue 4, marketplace stock: `stock-push` (1 % of the offers changed -> calls per channel
against ceil(changed / batch max)) and `full-push` figures (wall time of a full push per channel
against its rate-limit bound, with every time window - the emulators' and our clients' - scaled
down by the same factor so it fits in `make bench`).

One scenario does both, on one database: the setup import and the full push are needed by the
delta push anyway (the full push is its baseline).

Setup: the sandbox starts with all limits on; MoySklad's limit and the WB content API's are then
switched off (setup only: the catalog import and WB's chrtId key reading are not what is
measured). Ozon, WB and YM stock emulators keep their limits on, windows scaled by SCALE.
The 1 % change is written to StockLevel rows directly (+7 on one row per offer, updated_at
bumped, as the MoySklad stock job would), in a child, then the delta run is another child.
"""
from __future__ import annotations

import json
import math
import subprocess
import time

from bench.infra import PY, ROOT, BenchError, child_env, goal, http_json
from bench.scenarios import Context, Scenario

#: Ozon's rate-limit windows (emulator and client: 80 a minute, 30 s per pair) are multiplied by
#: this in the full push (1,000 calls: 12.5 min -> 75 s); WB and YM run at their real limits
SCALE = 0.1
#: (emulator name, counts prefix, batch max, calls allowed per window, window seconds, scale)
CHANNELS = (
    ("ozon", "ozon", 100, 80, 60.0, SCALE),
    ("wb", "wildberries", 1000, 20, 4.0, 1.0),          # 300 a minute modelled as 20 per 4 s
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
    ctx.log(f"    $ python -m bench.child_marketplace {' '.join(args)}")
    started = time.perf_counter()
    proc = subprocess.run([PY, "-m", "bench.child_marketplace", *args], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=timeout)
    elapsed = time.perf_counter() - started
    out = None
    for line in reversed(proc.stdout.strip().splitlines()):
        if line.startswith("{"):
            try:
                out = json.loads(line)
                break
            except ValueError:
                continue
    if proc.returncode != 0 or out is None:
        raise BenchError(f"child {' '.join(args)} exited {proc.returncode}:\n{proc.stderr[-4000:]}\n"
                         f"{proc.stdout[-1000:]}")
    out["process_seconds"] = round(elapsed, 3)
    ctx.log(f"      {out.get('status')} in {out.get('job_seconds')} s (process {elapsed:.1f} s, "
            f"cpu {out.get('cpu_seconds')} s, peak {out.get('peak_rss_mb')} MB) {out.get('message', '')[:200]}")
    return out


def emulator(sandbox, name: str, method: str, path: str, body=None):
    return http_json(method, f"{sandbox.url}/_sandbox/{name}/{path.lstrip('/')}", body)


class StockPush(Scenario):
    name = "stock-push"
    issue = 4
    order = 10
    title = "full push of N offers (scaled windows) then 1% changed -> calls per channel vs the minimum"

    def params(self, quick: bool) -> dict:
        offers = 10_000 if quick else 100_000
        return {"offers": offers, "changed": offers // 100, "scale": SCALE, "variant_share": 0}

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
            # -- full push, limits on, windows scaled -------------------------------------------
            full = run_marketplace_child(ctx, ["job", "marketplace-stock", "--full"], database_url=url,
                                         sandbox=sandbox, extra=scaled)
            full_done = time.monotonic()
            ctx.result.raw["full"] = full
            stats = {n: emulator(sandbox, n, "GET", "stats") for n, *_ in CHANNELS}
            ctx.result.raw["full_emulator_stats"] = stats
            counts = full.get("counts") or {}
            for name, prefix, batch, budget, window, scale in CHANNELS:
                calls = counts.get(f"{prefix}_calls", 0)
                seconds = counts.get(f"{prefix}_ms", 0) / 1000
                # the bound: `calls` at `budget` per scaled window (the first window's burst not credited)
                bound = calls / budget * window * scale
                ctx.result.add(f"full {name} calls", calls, "calls",
                               goal("==", math.ceil(offers / batch), f"= {math.ceil(offers / batch)}"))
                ctx.result.add(f"full {name} wall", round(seconds, 2), "s",
                               note=f"push alone (keys {counts.get(f'{prefix}_keys_ms', 0) / 1000:.1f} s apart); "
                                    f"windows x{scale:g}")
                ctx.result.add(f"full {name} bound", round(bound, 2), "s",
                               note=f"{calls} calls at {budget} per {window * scale:g} s")
                ctx.result.add(f"full {name} wall/bound", round(seconds / bound, 2) if bound else None, "x",
                               goal("<=", 1.2))
            if full.get("status") != "success":
                ctx.result.raw["full_problem"] = full.get("message")
            # -- 1 % changed, delta push --------------------------------------------------------
            change = run_marketplace_child(ctx, ["change", "--count", str(p["changed"])], database_url=url,
                                           sandbox=sandbox, extra=scaled)
            changed = change["changed_offers"]
            # Ozon: one update per pair in 30 s (the adapter keeps the real 30 s: wait it out)
            wait = 31.0 - (time.monotonic() - full_done)
            if wait > 0:
                ctx.log(f"    waiting {wait:.0f} s: Ozon's 30 s per-pair rule since the full push")
                time.sleep(wait)
            # A fresh process has a fresh in-process limiter; the emulators still remember the full
            # push's calls (YM: 50 of 50 a minute). In production the shared Redis limiter carries
            # that over and jobs are minutes apart: start the emulators' windows afresh (setting
            # the window resets the bucket) so the delta's calls are its own, not 420 retries.
            for name, _, _, _, window, _ in CHANNELS:
                emulator(sandbox, name, "POST", "stats/reset")
                emulator(sandbox, name, "POST", "config", {"window": window})
            emulator(sandbox, "ozon", "POST", "config", {"pair_interval": 30.0})
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
                                    f"; the emulator counted {seen} requests")
            ctx.result.add("delta job", delta.get("job_seconds"), "s", note="at real (unscaled) limits")
            ctx.result.raw["probe"] = run_marketplace_child(ctx, ["probe"], database_url=url, sandbox=sandbox)


SCENARIOS = [StockPush()]
