"""A delta run over an imported catalog after 50 products changed in MoySklad.
Goals: at most 4 requests (price types, folders, products, variants), under 2 s (the job itself;
the process's wall time is shown too).

Size: a delta reads what changed since the cursor (4 requests, one page each), never the whole
catalog, so neither its requests nor its time depend on the catalog's size past a page: 30,000
products here (measured before at 100,000: 3 requests, 0.23-0.32 s), set up in a fifth of the time.

Set-up (not measured): a first import with the sandbox's rate limit off, to save time. Then the
limit goes back on, 50 products are repriced (`POST /_sandbox/moysklad/touch`), and the ordinary
`moysklad-catalog` run - the one beat starts every 10 minutes - is measured.
"""
from __future__ import annotations

from bench.infra import BenchError, slim_stats
from bench.infra import goal as g
from bench.scenarios import Context, Scenario


class Delta(Scenario):
    name = "delta"
    issue = 2
    order = 30
    title = "moysklad-catalog delta: N products imported, 50 changed"
    full = {"products": 20_000, "variant_share": 0.2, "variants_per_product": 3, "stores": 3, "changed": 50,
            "rate_limit": True}
    quick = {"products": 2_000, "changed": 20}
    allowance = (35, 6)
    extrapolation = ("a delta reads only what changed: requests (3) and job time depend on the changed rows, not "
                     "on the catalog (20,000 and 100,000 products measured alike)")

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
            r.raw["delta_job"], r.raw["delta_sandbox_stats"] = out, slim_stats(stats)
        if out["status"] != "success":
            raise BenchError(f"delta: {out['status']}: {out['message']}")
        counts = out["counts"]
        updated = counts.get("products_updated", 0)
        r.add("requests", stats["requests"], "req", g("<=", 4), scales="flat in catalog size",
              note=", ".join(f"{k} {v}" for k, v in sorted(stats["by_endpoint"].items())))
        r.add("wall time (job)", out["job_seconds"], "s", g("<", 2), scales="linear in changed rows")
        r.add("wall time (process)", out["process_seconds"], "s", note="interpreter + Django start-up included",
              scales="linear in changed rows")
        r.add("changed products updated", updated, "rows", g("==", len(changed)), scales="all of them",
              note=f"{counts.get('up_to_date', 0)} re-read and skipped as up to date")


SCENARIOS = [Delta()]
