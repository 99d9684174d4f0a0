"""Issue 3's measured pieces of work, each in its own process; prints one JSON line on stdout
(like bench.child, whose helpers it reuses).

    python -m bench.child_orders loadgen --url URL --count N --concurrency C --href-base H --ids a,b,c
        Send N MoySklad-shaped notifications (one `UPDATE` event each, a distinct requestId) at
        concurrency C with raw asyncio streams (one connection each); per-request latency, requests/s, status counts.
        No Django here: the load generator only speaks HTTP, to loopback.
    python -m bench.child_orders events-verify-process [--batch 1000] [--timeout 600]
        Count the stored InboundEvent rows and distinct dedup keys, then call
        `integrations.moysklad.events.events_process` (what the Celery task runs) over every
        `received` row until none is left; statuses afterwards.
    python -m bench.child_orders orders-create --orders N --customers K --lines L
        Create N orders through `orders.services.order_create` (round-robin over K customers, so a
        customer returns N/K times), L lines each from offers bound to MoySklad.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import time
import uuid

from bench.child import _STARTED, _setup, _usage, _vendor


def _percentile(sorted_values: list[float], q: float) -> float | None:
    if not sorted_values:
        return None
    k = max(0, min(len(sorted_values) - 1, round(q / 100 * len(sorted_values) + 0.5) - 1))
    return sorted_values[k]


# ------------------------------------------------------------------------------------------------
# Load generator
# ------------------------------------------------------------------------------------------------
async def _post(host: str, port: int, path: str, body: bytes) -> int:
    """One HTTP/1.1 POST on its own connection (as MoySklad sends them), raw asyncio streams: the
    load generator shares 2 cores with the server, so it must cost little (httpx costs ~6 ms of
    CPU per request here, raw streams a fraction of that)."""
    reader, writer = await asyncio.open_connection(host, port)
    try:
        writer.write(f"POST {path} HTTP/1.1\r\nHost: {host}:{port}\r\nContent-Type: application/json\r\n"
                     f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n".encode() + body)
        await writer.drain()
        status_line = await reader.readline()
        await reader.read()  # headers and body, until the server closes
        return int(status_line.split()[1])
    finally:
        writer.close()


async def _load(args: argparse.Namespace) -> dict:
    from urllib.parse import urlsplit

    target_url = urlsplit(args.url)
    host, port = target_url.hostname, target_url.port
    if host not in ("127.0.0.1", "localhost", "::1"):
        raise SystemExit("loopback only")
    ids = [i for i in args.ids.split(",") if i]
    sem = asyncio.Semaphore(args.concurrency)
    latencies: list[float] = []
    statuses: dict[str, int] = {}
    errors: list[str] = []
    request_ids: list[str] = []
    deadline = time.monotonic() + args.max_seconds

    async def one(i: int) -> None:
        request_id = str(uuid.uuid4())
        target = ids[i % len(ids)]
        body = json.dumps({
            "auditContext": {"meta": {"type": "audit", "href": f"{args.href_base}/audit/{request_id}"},
                             "uid": "admin@bench", "moment": "2026-11-23 08:00:00"},
            "events": [{"meta": {"type": args.entity, "href": f"{args.href_base}/entity/{args.entity}/{target}"},
                        "action": "UPDATE", "accountId": "00000000-0000-0000-0000-000000000001"}]}).encode()
        async with sem:
            if time.monotonic() > deadline:
                statuses["not_sent"] = statuses.get("not_sent", 0) + 1
                return
            started = time.perf_counter()
            try:
                code = str(await asyncio.wait_for(_post(host, port, f"{target_url.path}?requestId={request_id}", body),
                                                  30))
            except Exception as exc:  # noqa: BLE001 - count it, keep going
                code = exc.__class__.__name__
                if len(errors) < 5:
                    errors.append(f"{code}: {exc}")
            latencies.append((time.perf_counter() - started) * 1000)
        statuses[code] = statuses.get(code, 0) + 1
        if code == "200":
            request_ids.append(request_id)

    started = time.perf_counter()
    await asyncio.gather(*(one(i) for i in range(args.count)))
    wall = time.perf_counter() - started
    lat = sorted(latencies)
    ok = statuses.get("200", 0)
    return {"status": "success" if ok == args.count else "incomplete", "sent": len(latencies), "ok": ok,
            "statuses": statuses, "errors": errors, "wall_seconds": round(wall, 3),
            "requests_per_second": round(len(latencies) / wall, 1) if wall else None,
            "p50_ms": round(_percentile(lat, 50), 2) if lat else None,
            "p90_ms": round(_percentile(lat, 90), 2) if lat else None,
            "p99_ms": round(_percentile(lat, 99), 2) if lat else None,
            "max_ms": round(lat[-1], 2) if lat else None,
            "mean_ms": round(statistics.fmean(lat), 2) if lat else None,
            "distinct_request_ids_ok": len(set(request_ids)), **_usage()}


def cmd_loadgen(args: argparse.Namespace) -> dict:
    return asyncio.run(_load(args))


# ------------------------------------------------------------------------------------------------
# Verify stored, then process
# ------------------------------------------------------------------------------------------------
def cmd_events(args: argparse.Namespace) -> dict:
    _setup()
    from django.db.models import Count

    from integrations.models import InboundEvent
    from integrations.moysklad.events import events_process

    Status = InboundEvent.Status
    stored = InboundEvent.objects.count()
    distinct_keys = InboundEvent.objects.values("dedup_key").distinct().count()
    distinct_requests = InboundEvent.objects.values("request_id").distinct().count()
    started = time.perf_counter()
    deadline = time.monotonic() + args.timeout
    outcomes: dict[str, int] = {}
    rounds = 0
    while time.monotonic() < deadline:
        ids = list(InboundEvent.objects.filter(status=Status.RECEIVED).order_by("pk")
                   .values_list("pk", flat=True)[:args.batch])
        if not ids:
            break
        rounds += 1
        for key, n in events_process(event_ids=ids).items():
            outcomes[key] = outcomes.get(key, 0) + n
    seconds = time.perf_counter() - started
    by_status = dict(InboundEvent.objects.values_list("status").annotate(n=Count("id")).order_by())
    errors = list(InboundEvent.objects.filter(status=Status.FAILED).values_list("error", flat=True)[:3])
    processed = by_status.get(Status.DONE, 0) + by_status.get(Status.IGNORED, 0)
    return {"status": "success", "stored": stored, "distinct_dedup_keys": distinct_keys,
            "distinct_request_ids": distinct_requests, "by_status": by_status, "processed": processed,
            "outcomes": outcomes, "rounds": rounds, "job_seconds": round(seconds, 3),
            "events_per_second": round(processed / seconds, 1) if seconds else None, "failed_errors": errors,
            "startup_seconds": round(started - _STARTED, 3), "vendor": _vendor(), **_usage()}


# ------------------------------------------------------------------------------------------------
# Orders
# ------------------------------------------------------------------------------------------------
def cmd_orders_create(args: argparse.Namespace) -> dict:
    _setup()
    from decimal import Decimal

    from catalog.models import Offer
    from integrations.models import OfferBinding, System
    from orders.models import Order
    from orders.services import CustomerData, LineRequest, order_create

    bound = list(OfferBinding.objects.filter(system=System.MOYSKLAD).values_list("offer_id", flat=True)
                 .order_by("offer_id")[:max(args.lines * 50, 200)])
    skus = list(Offer.objects.filter(pk__in=bound, archived=False, product__archived=False)
                .order_by("pk").values_list("sku", flat=True))
    if len(skus) < args.lines:
        raise SystemExit(f"only {len(skus)} bound offers: import the catalog first")
    customers = [CustomerData(name=f"Bench Customer {c}", email=f"bench{c}@example.com",
                              phone=f"+7 900 {c:03d}-00-00") for c in range(args.customers)]
    started = time.perf_counter()
    created = 0
    for n in range(args.orders):
        items = [LineRequest(sku=skus[(n * args.lines + i) % len(skus)], quantity=1 + i % 2, price=Decimal("199.90"))
                 for i in range(args.lines)]
        result = order_create(customer=customers[n % args.customers], items=items,
                              idempotency_key=f"bench-{n}", enforce_stock=False, by="bench")
        created += int(result.created)
    seconds = time.perf_counter() - started
    return {"status": "success", "created": created, "orders": Order.objects.count(),
            "job_seconds": round(seconds, 3), "orders_per_second": round(created / seconds, 1) if seconds else None,
            "startup_seconds": round(started - _STARTED, 3), "vendor": _vendor(), **_usage()}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.child_orders")
    sub = parser.add_subparsers(dest="command", required=True)
    lg = sub.add_parser("loadgen", help="POST notifications at a concurrency")
    lg.add_argument("--url", required=True)
    lg.add_argument("--count", type=int, default=1000)
    lg.add_argument("--concurrency", type=int, default=50)
    lg.add_argument("--href-base", required=True, help="MOYSKLAD_BASE_URL as the site sees it")
    lg.add_argument("--entity", default="product")
    lg.add_argument("--ids", required=True, help="comma-separated entity ids the events point at")
    lg.add_argument("--max-seconds", type=float, default=600)
    lg.set_defaults(func=cmd_loadgen)
    ev = sub.add_parser("events-verify-process", help="count stored events, process them all")
    ev.add_argument("--batch", type=int, default=1000)
    ev.add_argument("--timeout", type=float, default=600)
    ev.set_defaults(func=cmd_events)
    oc = sub.add_parser("orders-create", help="create orders through orders.services")
    oc.add_argument("--orders", type=int, default=1000)
    oc.add_argument("--customers", type=int, default=10)
    oc.add_argument("--lines", type=int, default=2)
    oc.set_defaults(func=cmd_orders_create)
    args = parser.parse_args(argv)
    out = args.func(args)
    sys.stdout.write(json.dumps(out, default=str) + "\n")
    sys.stdout.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
