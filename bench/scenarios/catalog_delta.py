"""Issue 2: a delta run over the 100,000-product catalog after 50 products changed in MoySklad.
Goals: at most 4 requests (price types, folders, products, variants), under 2 s (the job itself; the process's wall time is shown too).

Set-up (not measured): a first import with the sandbox's rate limit off, to save time. Then the
limit goes back on, 50 products are repriced (`POST /_sandbox/moysklad/touch`), and the ordinary
`moysklad-catalog` run - the one beat starts every 10 minutes - is measured.
"""
from __future__ import annotations

from bench.infra import BenchError
from bench.infra import goal as g
from bench.scenarios import Context, Scenario
from bench.scenarios.catalog_import import _slim


class Delta(Scenario):
    name = "delta"
    issue = 2
    order = 30
    title = "moysklad-catalog delta: 100,000 products imported, 50 changed"

    def params(self, quick: bool) -> dict:
        return {"products": 5_000 if quick else 100_000, "variant_share": 0.2, "variants_per_product": 3,
                "stores": 3, "changed": 50, "rate_limit": True}

    def run(self, ctx: Context) -> None:
        p, r = ctx.params, ctx.result
        url = ctx.fresh_database()
        with ctx.sandbox(products=p["products"], variant_share=p["variant_share"],
                         variants_per_product=p["variants_per_product"], stores=p["stores"], rate_limit=False) as sb:
            setup = ctx.child(["job", "moysklad-catalog"], database_url=url, sandbox=sb)
            r.raw["setup_job"] = setup
            if setup["status"] != "success":
                raise BenchError(f"set-up import: {setup['status']}: {setup['message']}")
            sb.configure(rate_limit=True)
            changed = sb.touch(p["changed"])
            sb.reset_stats()
            out = ctx.child(["job", "moysklad-catalog"], database_url=url, sandbox=sb)
            stats = sb.stats()
            r.raw["delta_job"], r.raw["delta_sandbox_stats"] = out, _slim(stats)
        if out["status"] != "success":
            raise BenchError(f"delta: {out['status']}: {out['message']}")
        counts = out["counts"]
        updated = counts.get("products_updated", 0)
        r.add("requests", stats["requests"], "req", g("<=", 4),
              note=", ".join(f"{k} {v}" for k, v in sorted(stats["by_endpoint"].items())))
        r.add("wall time (job)", out["job_seconds"], "s", g("<", 2))
        r.add("wall time (process)", out["process_seconds"], "s", note="interpreter + Django start-up included")
        r.add("changed products updated", updated, "rows", g("==", len(changed)),
              note=f"{counts.get('up_to_date', 0)} re-read and skipped as up to date")


SCENARIOS = [Delta()]
