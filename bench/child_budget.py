"""Budget hygiene: a full sync against the sandbox with every upstream's rate limits on at the
documented figures (MoySklad: 45 units per 3 s per account, a user token's request weighing 4,
5 in parallel; the marketplaces at theirs), counting the answers that say we asked too much.

    python -m bench.child_budget --products 3000 --orders 40     prints one JSON line

The sync: `moysklad-catalog --full`, `moysklad-stock --full`, a batch of site orders exported by
`orders-export`, and `marketplace-stock --full` (Ozon, Wildberries, Yandex Market). `full_sync()`
is also what tests/unit/http/test_budget_hygiene.py runs on a small catalog.

Figures: 429 answers (all upstreams), "429s per hour" extrapolated from the run's length (a full
sync runs back to back with itself, so the rate is what an hour of it would earn), and the most
identical failing requests (same method, path and query) within any minute: MoySklad turns off
API access for a user after 200 rate-limited or identical failing requests in a minute.
"""
from __future__ import annotations

import argparse
import json
import time

from bench.child import _setup, _usage

UPSTREAMS = ("moysklad", "ozon", "wb", "wb-content", "ym")


def point_settings_at(server, settings) -> None:
    """Our MoySklad and marketplace settings pointed at the sandbox (limits left as configured:
    the documented ones unless the environment says otherwise)."""
    from integrations.sandbox.channels import point_settings

    settings.MOYSKLAD = {**settings.MOYSKLAD, "BASE_URL": server.moysklad_base_url, "TOKEN": "sandbox-token",
                         "LOGIN": "", "PASSWORD": "", "ORGANIZATION_ID": "", "STORE_ID": "", "PRICE_TYPE": ""}
    point_settings(settings, server.url)


def full_sync(server, *, orders: int) -> dict:
    """The full sync against `server` (a started SandboxServer with its limits on; our settings
    pointed at it), then what the upstreams counted. Django must be set up."""
    import random

    from integrations import jobs
    from integrations.models import OfferBinding
    from integrations.runs import run_job
    from orders import services

    for name in UPSTREAMS:
        server.emulators[name].reset_stats()
    started = time.monotonic()
    runs = {}
    for label, job, full in (("catalog", "moysklad-catalog", True), ("stock", "moysklad-stock", True)):
        runs[label] = run_job(jobs.get(job), full=full, trigger="bench", raise_errors=False)
    rng = random.Random(4)
    skus = list(OfferBinding.objects.filter(kind="product", offer__stock_levels__available__gt=5)
                .values_list("offer__sku", flat=True).distinct()[:50])
    for n in range(orders if skus else 0):
        services.order_create(customer=services.CustomerData(name="Покупатель", email=f"b{n % 5}@example.com"),
                              items=[services.LineRequest(sku=rng.choice(skus), quantity=1)],
                              idempotency_key=f"budget-{n}")
    runs["orders"] = run_job(jobs.get("orders-export"), trigger="bench", raise_errors=False)
    runs["marketplaces"] = run_job(jobs.get("marketplace-stock"), full=True, trigger="bench", raise_errors=False)
    seconds = time.monotonic() - started
    upstream = {name: server.emulators[name].failure_figures() for name in UPSTREAMS}
    requests = {name: server.emulators[name].stats()["requests"] for name in UPSTREAMS}
    limited = sum(f["rate_limited"] for f in upstream.values())
    worst = max(upstream.items(), key=lambda kv: kv[1]["max_identical_failures_per_window"])
    return {"seconds": round(seconds, 2), "orders": orders, "skus": len(skus),
            "runs": {k: {"status": r.status, "message": r.message[:200]} for k, r in runs.items()},
            "requests": requests, "rate_limited": limited,
            "rate_limited_per_hour": round(limited * 3600 / max(seconds, 1e-9), 1),
            "max_rate_limited_per_minute": max(f["max_rate_limited_per_window"] for f in upstream.values()),
            "max_identical_failures_per_minute": worst[1]["max_identical_failures_per_window"],
            "worst_identical": f"{worst[0]}: {worst[1]['worst']}" if worst[1]["worst"] else "",
            "by_upstream": upstream}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.child_budget")
    parser.add_argument("--products", type=int, default=3000)
    parser.add_argument("--orders", type=int, default=40)
    args = parser.parse_args(argv)
    _setup()
    from django.conf import settings

    from integrations.sandbox.server import SandboxServer

    server = SandboxServer(products=args.products, stores=2, seed=17, rate_limit=True).start()
    try:
        point_settings_at(server, settings)
        out = full_sync(server, orders=args.orders)
    finally:
        server.stop()
    print(json.dumps({"status": "success", **out, **_usage()}, ensure_ascii=False))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
