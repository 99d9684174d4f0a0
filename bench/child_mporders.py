"""Marketplace-order work for the bench, in its own process with the sandbox's marketplace
emulators in-process (real loopback sockets, emulator limits off: our clients' own limiters are
what is measured); prints one JSON line.

    python -m bench.child_mporders pull --orders 10000       order-pull
    python -m bench.child_mporders push --orders 1000        status-push
    python -m bench.child_mporders propagation --changes 8   propagation
"""
from __future__ import annotations

import argparse
import json
import math
import random
import statistics
import sys
import time

from bench.child import _setup, _usage

SHARE = {"ozon": 1, "wb": 1, "ym": 1}


def _wire(products: int, offers: int):
    """A sandbox with the three marketplaces, our settings pointed at it, and `offers` of its
    items as our offers with plenty of stock in one MoySklad-kind warehouse."""
    from decimal import Decimal

    from django.conf import settings

    from catalog.models import Offer, Product
    from integrations.sandbox.channels import point_settings
    from integrations.sandbox.marketplace import sellable_items
    from integrations.sandbox.server import SandboxServer
    from stock import services as stock_services
    from stock.models import Warehouse

    server = SandboxServer(products=products, seed=11, rate_limit=False).start()
    point_settings(settings, server.url)
    settings.MOYSKLAD = {**settings.MOYSKLAD, "TOKEN": "", "LOGIN": "", "PASSWORD": ""}
    warehouse, _ = Warehouse.objects.get_or_create(code="main", defaults={"name": "Основной", "source": "moysklad"})
    items = list(sellable_items(server.moysklad.catalog))[:offers]
    figures = {}
    for item in items:
        product = Product.objects.create(name=item.sku)
        offer = Offer.objects.create(product=product, sku=item.sku, name=item.sku, price=Decimal("100.00"))
        figures[offer.pk] = (Decimal(50_000), Decimal(0))
    stock_services.stock_levels_set(warehouse_id=warehouse.pk, figures=figures, source="moysklad", via="full")
    return server, items


def _make_orders(server, n: int) -> dict[str, int]:
    rng = random.Random(5)
    made = {}
    names = list(SHARE)
    for i, name in enumerate(names):
        count = n // len(names) + (1 if i < n % len(names) else 0)
        emulator = server.marketplaces[name]
        for start in range(0, count, 500):
            emulator.orders_generate(min(500, count - start), rng=rng)
        made[name] = count
    return made


def _calls(server) -> dict[str, dict]:
    return {name: dict(server.marketplaces[name].orders.calls) for name in SHARE}


def cmd_pull(args: argparse.Namespace) -> dict:
    _setup()
    from integrations import jobs
    from integrations.runs import run_job
    from orders.models import Order

    server, _items = _wire(args.products, args.offers)
    try:
        made = _make_orders(server, args.orders)
        spec = jobs.get("marketplace-orders")
        started = time.perf_counter()
        first = run_job(spec, trigger="bench", raise_errors=False)
        seconds = time.perf_counter() - started
        calls = _calls(server)
        second = run_job(spec, full=True, trigger="bench", raise_errors=False)  # the same window again
        total = Order.objects.count()
        distinct = Order.objects.values("source", "source_order_id").distinct().count()
        minimum = {"ozon": math.ceil(made["ozon"] / 100), "wb": 1 + math.ceil(made["wb"] / 1000),
                   "ym": math.ceil(made["ym"] / 50)}
        made_calls = {"ozon": calls["ozon"].get("posting_list", 0),
                      "wb": calls["wb"].get("orders_new", 0) + calls["wb"].get("orders_status", 0),
                      "ym": calls["ym"].get("orders_list", 0)}
        return {"status": first.status, "message": first.message, "second_status": second.status,
                "orders": args.orders, "made": made, "stored": total, "duplicates": total - distinct,
                "missing": args.orders - distinct, "calls": made_calls, "minimum_calls": minimum,
                "job_seconds": round(seconds, 3), "counts": first.counts, **_usage()}
    finally:
        server.stop()


def cmd_push(args: argparse.Namespace) -> dict:
    _setup()
    from integrations import jobs
    from integrations.marketplace_orders import outbox
    from integrations.marketplace_orders.machine import status_change
    from integrations.marketplace_orders.models import ActionState, MarketplaceAction
    from integrations.ozon.orders import CALLS_PER_SECOND
    from integrations.runs import run_job
    from orders.models import Order

    server, _items = _wire(args.products, args.offers)
    try:
        made = _make_orders(server, args.orders)
        run_job(jobs.get("marketplace-orders"), trigger="bench", raise_errors=False)
        for order in Order.objects.all().iterator():
            status_change(order=order, status="processing", by="moysklad")
        outbox.actions_plan(limit=args.orders * 2)
        for name in SHARE:
            server.marketplaces[name].orders.calls.clear()
        started = time.perf_counter()
        while MarketplaceAction.objects.filter(state=ActionState.PENDING).exists():
            outbox.actions_run(limit=5000)
            if time.perf_counter() - started > args.timeout:
                break
        seconds = time.perf_counter() - started
        calls = _calls(server)
        states = dict((s, MarketplaceAction.objects.filter(state=s).count()) for s in ("done", "failed", "pending"))
        ozon_calls = sum(calls["ozon"].values())
        wb_calls = sum(calls["wb"].values())
        ym_calls = sum(calls["ym"].values())
        # The time the marketplaces' own limits need, all three sent one after another as the
        # outbox does: Ozon 50 a second (the first second's budget at once); WB 300 a minute with
        # a burst of 20; YM batches of 30 within 10,000 orders an hour (no wait at these sizes).
        bound = max(0.0, (ozon_calls - CALLS_PER_SECOND) / CALLS_PER_SECOND) + max(0.0, (wb_calls - 20) / 5.0)
        return {"status": "success", "shipments": args.orders, "made": made, "states": states,
                "calls": {"ozon": calls["ozon"], "wb": calls["wb"], "ym": calls["ym"]},
                "calls_total": ozon_calls + wb_calls + ym_calls,
                "minimum_calls": {"ozon": made["ozon"], "wb": 1 + math.ceil(made["wb"] / 100) + math.ceil(made["wb"] / 1000),
                                  "ym": math.ceil(made["ym"] / 30)},
                "bound_seconds": round(bound, 3), "job_seconds": round(seconds, 3), **_usage()}
    finally:
        server.stop()


def cmd_propagation(args: argparse.Namespace) -> dict:
    """A new Ozon order -> pulled (as a push notification would trigger) -> held -> the debounced
    push (after DEBOUNCE seconds, added to the figure, not slept) -> WB and YM told the lower
    figure. Latency per order = the emulators' record time of the new figure - the order's
    creation at Ozon + the debounce."""
    _setup()
    from django.conf import settings

    from catalog.models import Offer
    from integrations import jobs
    from integrations.marketplaces import jobs as stock_jobs
    from integrations.models import ChannelOffer
    from integrations.runs import run_job

    server, items = _wire(args.products, args.offers)
    try:
        server.marketplaces["wb-content"].configure(rate_limit=False)
        run_job(jobs.get("marketplace-stock"), full=True, trigger="bench", raise_errors=False)
        debounce = float(settings.MARKETPLACES["DEBOUNCE_SECONDS"])
        latencies, misses = [], 0
        # offers both other marketplaces list (a key matched from their catalogues)
        both = [item for item in items if ChannelOffer.objects.filter(offer__sku=item.sku).exclude(
            external_key="").filter(channel__system__in=("wildberries", "yandex_market")).count() == 2]
        if not both:
            raise SystemExit("no offer is listed on both Wildberries and Yandex Market")
        for n in range(args.changes):
            item = both[n % len(both)]
            offer = Offer.objects.get(sku=item.sku)
            keys = dict(ChannelOffer.objects.filter(offer=offer).values_list("channel__system", "external_key"))
            t0 = time.time()
            server.marketplaces["ozon"].orders_generate(1, sku=item.sku, quantity=1)
            run_job(jobs.get("marketplace-orders"), trigger="bench", raise_errors=False)
            run_job(jobs.get("marketplace-stock"), trigger="bench", raise_errors=False)
            seen = {}
            for name, system in (("wb", "wildberries"), ("ym", "yandex_market")):
                key = keys.get(system)
                rows = [r for r in server.marketplaces[name].book.rows([key] if key else None) if r["key"] == key]
                if rows and rows[0]["at"] >= t0:
                    seen[name] = rows[0]["at"] - t0
            if len(seen) == 2:
                latencies.append(max(seen.values()) + debounce)
            else:
                misses += 1
                print(f"miss {item.sku}: keys {keys} seen {seen}", file=sys.stderr)
        stock_jobs  # the debounced task runs the same job (stock_push_on_event)
        ordered = sorted(latencies)
        p95 = ordered[max(0, math.ceil(0.95 * len(ordered)) - 1)] if ordered else None
        return {"status": "success" if latencies else "failed", "changes": args.changes, "misses": misses,
                "debounce_s": debounce, "latencies_s": [round(x, 3) for x in latencies],
                "p50": round(statistics.median(latencies), 3) if latencies else None,
                "p95": round(p95, 3) if p95 is not None else None, "job_seconds": round(sum(latencies), 3),
                **_usage()}
    finally:
        server.stop()


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="bench.child_mporders")
    sub = parser.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("pull")
    p.add_argument("--orders", type=int, default=10_000)
    p.add_argument("--products", type=int, default=300)
    p.add_argument("--offers", type=int, default=200)
    p = sub.add_parser("push")
    p.add_argument("--orders", type=int, default=1_000)
    p.add_argument("--products", type=int, default=300)
    p.add_argument("--offers", type=int, default=200)
    p.add_argument("--timeout", type=float, default=600)
    p = sub.add_parser("propagation")
    p.add_argument("--changes", type=int, default=8)
    p.add_argument("--products", type=int, default=100)
    p.add_argument("--offers", type=int, default=50)
    args = parser.parse_args(argv)
    out = {"pull": cmd_pull, "push": cmd_push, "propagation": cmd_propagation}[args.cmd](args)
    print(json.dumps(out, default=str), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
