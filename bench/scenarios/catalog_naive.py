"""Issue 2: our catalog import against the naive one (bench/naive.py: update_or_create per row,
100 rows a page, no limiter) on 10,000 products with the sandbox's rate limit off. Goal: >= 10x.

Both start from an empty, freshly migrated database and read the same sandbox; the figure is the
ratio of the two jobs' own wall times (process start-up excluded for both).
"""
from __future__ import annotations

from bench.infra import BenchError
from bench.infra import goal as g
from bench.scenarios import Context, Scenario
from bench.scenarios.catalog_import import _slim


class NaiveComparison(Scenario):
    name = "naive-vs-ours"
    issue = 2
    order = 20
    title = "naive update_or_create import vs moysklad-catalog, 10,000 products, rate limit off"

    def params(self, quick: bool) -> dict:
        return {"products": 2_000 if quick else 10_000, "variant_share": 0.2, "variants_per_product": 3,
                "stores": 3, "rate_limit": False, "naive_page_size": 100}

    def run(self, ctx: Context) -> None:
        p, r = ctx.params, ctx.result
        # Normal CPU priority here: with the rate limit off, how fast the emulator renders pages
        # bounds our import (a real upstream serves from its own machines), so it must not starve.
        with ctx.sandbox(products=p["products"], variant_share=p["variant_share"], nice=0,
                         variants_per_product=p["variants_per_product"], stores=p["stores"], rate_limit=False) as sb:
            catalog = sb.catalog()
            rows = catalog["products"] + catalog["variants"]

            url = ctx.fresh_database("naive")
            sb.reset_stats()
            naive = ctx.child(["naive", "--page-size", str(p["naive_page_size"])], database_url=url, sandbox=sb)
            r.raw["naive"], r.raw["naive_sandbox_stats"] = naive, _slim(sb.stats())

            url = ctx.fresh_database("ours")
            sb.reset_stats()
            ours = ctx.child(["job", "moysklad-catalog"], database_url=url, sandbox=sb)
            r.raw["ours"], r.raw["ours_sandbox_stats"] = ours, _slim(sb.stats())
        if ours["status"] != "success":
            raise BenchError(f"moysklad-catalog: {ours['status']}: {ours['message']}")
        for key in ("products", "offers", "offer_bindings", "barcodes"):
            if naive["db"][key] != ours["db"][key]:
                raise BenchError(f"naive and ours disagree on {key}: {naive['db'][key]} vs {ours['db'][key]}")

        r.add("naive: wall time", naive["job_seconds"], "s",
              note=f"{naive['counts'].get('requests')} requests of {p['naive_page_size']} rows")
        r.add("naive: rows/s", round(rows / naive["job_seconds"]), "rows/s")
        r.add("ours: wall time", ours["job_seconds"], "s", note=f"{ours['counts'].get('requests')} requests")
        r.add("ours: rows/s", round(rows / ours["job_seconds"]), "rows/s")
        r.add("speed-up", round(naive["job_seconds"] / ours["job_seconds"], 1), "x", g(">=", 10))


SCENARIOS = [NaiveComparison()]
