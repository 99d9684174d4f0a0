"""Issue 3: exporting 1,000 site orders to the rate-limited MoySklad sandbox.

A fresh database; the catalog imported first (moysklad-catalog, 2,000 products) so offers are
bound; 1,000 orders created through `orders.services.order_create` for 10 customers (100 orders
each: after its first order a customer is "returning"); then the `orders-export` job in a child.

Minimum requests: 1 per order (the create; the counterparty comes from CustomerBinding) + the
fixed calls: organization and store (once per session) and, per new customer, the counterparty
create. The exporter also looks a new customer up (externalCode, e-mail, phone) before creating
one: 3 GETs per new customer that the bound does not count. Bound = minimum x 4 units / 45 units x 3 s.
"""
from __future__ import annotations

from bench.infra import child_env, rate_bound_seconds
from bench.infra import BenchError
from bench.infra import goal as g
from bench.scenarios import Context, Scenario
from bench.scenarios.catalog_import import _slim
from bench.scenarios.webhook_ingest import run_orders_child


class OrderExport(Scenario):
    name = "order-export"
    issue = 3
    order = 20
    title = "orders-export: 1,000 orders (10 returning customers) to the rate-limited sandbox"

    def params(self, quick: bool) -> dict:
        return {"orders": 100 if quick else 1_000, "customers": 10, "lines_per_order": 2, "catalog_products": 2_000,
                "rate_limit": True, "request_weight": 4, "budget": "45 units / 3 s"}

    def run(self, ctx: Context) -> None:
        p, r = ctx.params, ctx.result
        url = ctx.fresh_database()
        with ctx.sandbox(products=p["catalog_products"], rate_limit=True, request_weight=p["request_weight"]) as sb:
            cat = ctx.child(["job", "moysklad-catalog"], database_url=url, sandbox=sb)
            r.raw["catalog_job"] = cat
            if cat["status"] != "success":
                raise BenchError(f"moysklad-catalog: {cat['status']}: {cat['message']}")
            env = child_env(database_url=url, moysklad_url=sb.moysklad_url,
                            extra={"CELERY_BROKER_URL": "memory://"})  # the after-commit kick goes nowhere
            made = run_orders_child(ctx, ["orders-create", "--orders", str(p["orders"]), "--customers",
                                          str(p["customers"]), "--lines", str(p["lines_per_order"])], env)
            r.raw["orders_create"] = made
            sb.drain_budget()
            sb.reset_stats()
            out = ctx.child(["job", "orders-export"], database_url=url, sandbox=sb)
            stats = sb.stats()
            r.raw["export_job"], r.raw["export_sandbox_stats"] = out, _slim(stats)
            if out["status"] != "success":
                raise BenchError(f"orders-export: {out['status']}: {out['message']} {out.get('errors')}")
        orders, customers = p["orders"], p["customers"]
        exported = out["counts"].get("exported", 0) + out["counts"].get("found_existing", 0)
        requests = stats["requests"]
        minimum = orders + 2 + customers
        bound = rate_bound_seconds(minimum, p["request_weight"])
        wall = out["job_seconds"]
        creates = requests - 2 - 4 * customers   # what is left for the orders themselves
        r.add("orders exported", exported, "orders", g("==", orders), note=f"counts {out['counts']}")
        r.add("orders/s", round(exported / wall, 2), "orders/s", note=f"job {wall} s")
        r.add("requests", requests, "req", note=f"by endpoint {stats.get('by_endpoint')}")
        r.add("requests per order", round(requests / orders, 3), "req", g("<=", 2))
        r.add("order requests per order", round(creates / orders, 3), "req", g("<=", 2),
              note="requests minus org+store and 4 per new customer (3 lookups + counterparty create), per order")
        r.add("429 answers", stats["throttled"], "", g("==", 0))
        r.add("rate-limit bound", round(bound, 1), "s", note=f"{minimum} req x 4 units / 45 units x 3 s")
        r.add("ratio to bound", round(wall / bound, 2), "x", g("<=", 1.3))


SCENARIOS = [OrderExport()]
