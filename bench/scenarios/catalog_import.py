"""Issue 2: the first catalog import from MoySklad with its rate limit on, and the stock import.

Goal: wall time <= 1.3x the rate-limit bound, peak memory < 300 MB, on PostgreSQL and SQLite.
The bound is the fewest requests the API allows for the catalog - ceil(products/1000) +
ceil(variants/1000) + the fixed calls (stores, folders) - at the weighted budget: each costs 4
units (a user token) and the budget is 45 units per 3 s.
"""
from __future__ import annotations

from bench.infra import BenchError, pages, rate_bound_seconds
from bench.infra import goal as g
from bench.scenarios import Context, Scenario


class CatalogImport(Scenario):
    name = "catalog-import"
    issue = 2
    order = 10
    title = "moysklad-catalog (first run) + moysklad-stock --full from the rate-limited sandbox"

    def params(self, quick: bool) -> dict:
        return {"products": 5_000 if quick else 100_000, "variant_share": 0.2, "variants_per_product": 3,
                "stores": 3, "rate_limit": True, "request_weight": 4, "budget": "45 units / 3 s", "max_parallel": 5}

    def run(self, ctx: Context) -> None:
        p, r = ctx.params, ctx.result
        url = ctx.fresh_database()
        with ctx.sandbox(products=p["products"], variant_share=p["variant_share"],
                         variants_per_product=p["variants_per_product"], stores=p["stores"], rate_limit=True) as sb:
            catalog = sb.catalog()
            r.raw["sandbox_catalog"] = catalog
            sb.reset_stats()
            cpu_before = sb.cpu_seconds()
            out = ctx.child(["job", "moysklad-catalog"], database_url=url, sandbox=sb)
            stats = sb.stats()
            r.raw["catalog_job"], r.raw["catalog_sandbox_stats"] = out, _slim(stats)
            r.raw["sandbox_cpu_seconds"] = _delta(sb.cpu_seconds(), cpu_before)
            if out["status"] != "success":
                raise BenchError(f"moysklad-catalog: {out['status']}: {out['message']}")

            products, variants = catalog["products"], catalog["variants"]
            rows = products + variants
            fixed = pages(catalog["stores"]) + pages(catalog["folders"])
            min_requests = pages(products) + pages(variants) + fixed
            bound = rate_bound_seconds(min_requests)
            wall = out["job_seconds"]
            imported = out["counts"].get("products_created", 0) + out["counts"].get("variants_created", 0)
            cpu = f"importer CPU {out['cpu_seconds']:.0f} s, sandbox CPU {r.raw['sandbox_cpu_seconds']} s"
            r.add("wall time", wall, "s", note=f"job only; process {out['process_seconds']:.1f} s, {cpu}")
            r.add("rows (products+variants)", rows, "rows", note=f"{products:,} products, {variants:,} variants")
            r.add("rows/s", round(rows / wall), "rows/s")
            r.add("requests", stats["requests"], "req", g("<=", min_requests),
                  note=f"{stats['units']} units; fewest possible {min_requests}")
            r.add("429 answers", stats["throttled"], "", g("==", 0))
            r.add("peak memory (importer)", out["peak_rss_mb"], "MB", g("<", 300))
            r.add("rate-limit bound", round(bound, 1), "s", note=f"{min_requests} req x 4 units / 45 units x 3 s")
            r.add("ratio to bound", round(wall / bound, 2), "x", g("<=", 1.3))
            r.add("rows not imported", rows - imported, "rows", g("==", 0))

            # Stock (nice to have): every store's stock and reserve, written per warehouse.
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
