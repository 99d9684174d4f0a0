"""The first catalog import from MoySklad, bound by MoySklad's rate limit and not by our side.

Three measurements on one generated catalog (100,000 products, 20% with 3 variants, 3 stores):

* **weight 4** (a user token from Dec 2026): wall time <= 1.15x the rate-limit bound;
* **weight 1** (a published solution token; bound about 11 s): wall time <= 2x the bound;
* **our side alone** ("stage"): the same import replayed from recorded answers - no network,
  no sandbox, no limiter - so what is timed is decompressing, parsing, mapping and writing:
  >= 20,000 sellable units a second.

Peak memory of the importer < 300 MB in every run. The bound is the fewest requests the API
allows - ceil(products/1000) + ceil(variants/1000) + stores, folders and the price-type list -
at the weighted budget (45 units per 3 s). Then, as before, a full stock read after the weight-4
import. `--quick` (a smoke run) skips the weight-1 import.
"""
from __future__ import annotations

import shutil
import tempfile

from bench.infra import BenchError, pages, rate_bound_seconds
from bench.infra import goal as g
from bench.scenarios import Context, Scenario

FIXED_REQUESTS = 3   # stores, folders, price types


class CatalogImport(Scenario):
    name = "catalog-import"
    issue = 8
    order = 10
    title = "moysklad-catalog first run at weight 4 and 1, our side alone; moysklad-stock --full"

    def params(self, quick: bool) -> dict:
        return {"products": 2_000 if quick else 100_000, "variant_share": 0.2, "variants_per_product": 3,
                "stores": 3, "weights": [4] if quick else [4, 1], "budget": "45 units / 3 s", "max_parallel": 5}

    def run(self, ctx: Context) -> None:
        p, r = ctx.params, ctx.result
        size = dict(products=p["products"], variant_share=p["variant_share"],
                    variants_per_product=p["variants_per_product"], stores=p["stores"])
        for weight in p["weights"]:
            url = ctx.fresh_database(f"w{weight}")
            with ctx.sandbox(rate_limit=True, request_weight=weight, **size) as sb:
                catalog = sb.catalog()
                r.raw["sandbox_catalog"] = catalog
                out, stats = self._import(ctx, sb, url, weight)
                units = catalog["products"] - catalog["products_with_variants"] + catalog["variants"]
                rows = catalog["products"] + catalog["variants"]
                min_requests = pages(catalog["products"]) + pages(catalog["variants"]) + FIXED_REQUESTS
                bound = rate_bound_seconds(min_requests, weight)
                wall = out["job_seconds"]
                goal = 1.15 if weight >= 4 else 2.0
                imported = out["counts"].get("products_created", 0) + out["counts"].get("variants_created", 0)
                w = f"w{weight}: "
                r.add(w + "wall time", wall, "s", note=f"job only; process {out['process_seconds']:.1f} s, "
                      f"importer CPU {out['cpu_seconds']:.0f} s, sandbox CPU {r.raw[f'w{weight}_sandbox_cpu']} s")
                r.add(w + "rate-limit bound", round(bound, 1), "s",
                      note=f"{min_requests} req x {weight} units / 45 units x 3 s")
                r.add(w + "ratio to bound", round(wall / bound, 2), "x", g("<=", goal))
                r.add(w + "units/s", round(units / wall), "units/s",
                      note=f"{units:,} sellable units ({rows:,} rows: {catalog['products']:,} products, "
                           f"{catalog['variants']:,} variants)")
                r.add(w + "requests", stats["requests"], "req", g("<=", min_requests))
                r.add(w + "429 answers", stats["throttled"], "", g("==", 0))
                r.add(w + "peak memory", out["peak_rss_mb"], "MB", g("<", 300))
                r.add(w + "rows not imported", rows - imported, "rows", g("==", 0))
                if weight >= 4:
                    self._stock(ctx, sb, url, catalog)
        self._stage(ctx, size)

    def _import(self, ctx: Context, sb, url: str, weight: int) -> tuple[dict, dict]:
        sb.reset_stats()
        cpu_before = sb.cpu_seconds()
        out = ctx.child(["job", "moysklad-catalog"], database_url=url, sandbox=sb,
                        extra_env={"MOYSKLAD_REQUEST_WEIGHT": str(weight)})
        stats = sb.stats()
        r = ctx.result
        r.raw[f"w{weight}_job"], r.raw[f"w{weight}_sandbox_stats"] = out, _slim(stats)
        r.raw[f"w{weight}_sandbox_cpu"] = _delta(sb.cpu_seconds(), cpu_before)
        if out["status"] != "success":
            raise BenchError(f"moysklad-catalog at weight {weight}: {out['status']}: {out['message']}")
        return out, stats

    def _stage(self, ctx: Context, size: dict) -> None:
        """Record the answers of one import, then time the import replayed from them."""
        r = ctx.result
        scratch = tempfile.mkdtemp(prefix="syncsite-bench-replay-")
        try:
            with ctx.sandbox(rate_limit=False, request_weight=1, **size) as sb:
                catalog = sb.catalog()
                rec = ctx.child(["record", "moysklad-catalog", "--dir", scratch],
                                database_url=ctx.fresh_database("record"), sandbox=sb)
                if rec["status"] != "success":
                    raise BenchError(f"recording: {rec['status']}: {rec['message']}")
                url = ctx.fresh_database("stage")
                out = ctx.child(["stage", "moysklad-catalog", "--dir", scratch], database_url=url, sandbox=sb)
            r.raw["stage_job"] = out
            if out["status"] != "success":
                raise BenchError(f"replayed import: {out['status']}: {out['message']}")
            units = catalog["products"] - catalog["products_with_variants"] + catalog["variants"]
            rows = catalog["products"] + catalog["variants"]
            wall = out["job_seconds"]
            r.add("our side: wall time", wall, "s",
                  note=f"replayed answers, no limiter; CPU {out['cpu_seconds']:.1f} s (the database's not counted)")
            r.add("our side: units/s", round(units / wall), "units/s", g(">=", 20_000),
                  note=f"{round(rows / wall):,} rows/s")
            r.add("our side: peak memory", out["peak_rss_mb"], "MB", g("<", 300))
        finally:
            shutil.rmtree(scratch, ignore_errors=True)

    def _stock(self, ctx: Context, sb, url: str, catalog: dict) -> None:
        """Every store's stock and reserve after the import, written per warehouse."""
        r = ctx.result
        sb.drain_budget()
        sb.reset_stats()
        stock = ctx.child(["job", "moysklad-stock", "--full"], database_url=url, sandbox=sb)
        sstats = sb.stats()
        r.raw["stock_job"], r.raw["stock_sandbox_stats"] = stock, _slim(sstats)
        if stock["status"] != "success":
            raise BenchError(f"moysklad-stock: {stock['status']}: {stock['message']}")
        s_min = 1 + 2 * catalog["stores"]   # stores, then stock + reserve per store
        s_bound = rate_bound_seconds(s_min)
        levels = stock["db"]["stock_levels"]
        r.add("stock: wall time", stock["job_seconds"], "s",
              note=f"moysklad-stock --full; bound {s_bound:.1f} s ({s_min} req)")
        r.add("stock: levels written", levels, "rows", note=f"{round(levels / stock['job_seconds']):,} rows/s")
        r.add("stock: requests", sstats["requests"], "req", g("<=", s_min))
        r.add("stock: peak memory", stock["peak_rss_mb"], "MB", g("<", 300))


def _slim(stats: dict) -> dict:
    keep = ("requests", "by_endpoint", "by_status", "units", "throttled", "rate_limited", "parallel_limited",
            "max_concurrent", "max_parallel_admitted", "bytes_out", "seconds")
    return {k: stats.get(k) for k in keep}


def _delta(after, before):
    return round(after - before, 1) if after is not None and before is not None else None


SCENARIOS = [CatalogImport()]
