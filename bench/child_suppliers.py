"""Measured supplier work in its own process; prints one JSON line (see bench/scenarios/suppliers.py).

    python -m bench.child_suppliers setup --skus-file F | --rows N [--supplier S --kind K --url U]
                                          [--levels] [--live]
    python -m bench.child_suppliers feed --supplier S
    python -m bench.child_suppliers cartload --url U --token T --rate R --seconds S --skus-file F

`setup` is not measured (offers are COPYed in); `feed` runs one full read of the supplier
(download, parse, map, write) and reports its wall time, CPU and the process's peak RSS;
`cartload` is an open-loop generator for `POST /api/v1/cart/check` (requests leave on schedule;
latency measured from the schedule; raw asyncio, no Django)."""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import sys
import time
from urllib.parse import urlsplit


def _setup_django() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "syncsite.settings")
    import django

    django.setup()


def _usage() -> dict:
    ru = resource.getrusage(resource.RUSAGE_SELF)
    return {"cpu_seconds": round(ru.ru_utime + ru.ru_stime, 2), "peak_rss_mb": round(ru.ru_maxrss / 1024, 1)}


def _skus(args) -> list[str]:
    if args.skus_file:
        with open(args.skus_file, encoding="utf-8") as f:
            return [line.strip() for line in f if line.strip()]
    return [f"BENCH-{n:07d}" for n in range(args.rows)]


def cmd_setup(args) -> dict:
    _setup_django()
    from decimal import Decimal

    from django.utils import timezone

    from catalog.models import Offer, Product
    from integrations.suppliers.models import Supplier
    from stock.models import StockLevel
    from stock.services import warehouse_ensure
    from syncsite.bulk import bulk_insert

    skus = _skus(args)
    existing = set(Offer.objects.filter(sku__in=skus[:1]).values_list("sku", flat=True))
    created = 0
    if not existing:
        batch = 50_000
        for start in range(0, len(skus), batch):
            chunk = skus[start:start + batch]
            product_ids = bulk_insert(Product, [(f"Товар {s}",) for s in chunk], fields=["name"])
            bulk_insert(Offer, [(pid, s, f"Товар {s}", Decimal("100.00")) for pid, s in zip(product_ids, chunk)],
                        fields=["product_id", "sku", "name", "price"])
            created += len(chunk)
    out = {"status": "success", "offers_created": created}
    if args.supplier:
        supplier, _ = Supplier.objects.update_or_create(slug=args.supplier, defaults={
            "name": args.supplier, "kind": args.kind, "url": args.url, "live_check": args.live, "page_size": 500})
        if args.token:
            supplier.token = args.token
            supplier.save()
        wh = supplier.warehouse()
        if args.live:  # the breaker's state outlives processes (shared files, Redis): start closed
            from integrations.suppliers.client import live_breaker

            live_breaker(supplier).reset()
        if args.levels:
            ids = dict(Offer.objects.filter(sku__in=skus).values_list("sku", "pk"))
            now = timezone.now()
            StockLevel.objects.bulk_create([StockLevel(offer_id=ids[s], warehouse=wh, stock=5, available=5,
                                                       source=supplier.source, checked_at=now) for s in skus],
                                           batch_size=5000, ignore_conflicts=True)
            own = warehouse_ensure(code="main", name="Основной склад", source="moysklad")
            StockLevel.objects.bulk_create([StockLevel(offer_id=ids[s], warehouse=own, stock=3, available=3,
                                                       source="moysklad", checked_at=now) for s in skus],
                                           batch_size=5000, ignore_conflicts=True)
    return out


def cmd_feed(args) -> dict:
    _setup_django()
    from integrations.suppliers.models import Supplier
    from integrations.suppliers.sync import supplier_read

    supplier = Supplier.objects.get(slug=args.supplier)
    started = time.perf_counter()
    result = supplier_read(supplier, full=True)
    seconds = time.perf_counter() - started
    return {"status": "success", "job_seconds": round(seconds, 3), "counts": result.counts,
            "errors": result.errors[:5], **_usage()}


# ------------------------------------------------------------------------------------------------
# Open-loop cart checks
# ------------------------------------------------------------------------------------------------
def _percentile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    k = min(len(values) - 1, max(0, int(round(q / 100 * (len(values) - 1)))))
    return round(values[k], 2)


async def _post(host: str, port: int, path: str, body: bytes, token: str) -> int:
    reader, writer = await asyncio.open_connection(host, port)
    try:
        writer.write((f"POST {path} HTTP/1.1\r\nHost: {host}:{port}\r\nContent-Type: application/json\r\n"
                      f"Authorization: Bearer {token}\r\nContent-Length: {len(body)}\r\nConnection: close\r\n\r\n"
                      ).encode() + body)
        await writer.drain()
        status_line = await reader.readline()
        await reader.read()
        return int(status_line.split()[1])
    finally:
        writer.close()


async def _cartload(args) -> dict:
    target = urlsplit(args.url)
    host, port = target.hostname, target.port or 80
    skus = _skus(args)
    count = int(args.rate * args.seconds)
    loop = asyncio.get_running_loop()
    latencies: list[float] = []
    statuses: dict[str, int] = {}

    async def one(i: int, scheduled: float) -> None:
        body = json.dumps({"sku": skus[i % len(skus)], "quantity": 1}).encode()
        try:
            code = str(await asyncio.wait_for(_post(host, port, target.path, body, args.token), args.timeout))
        except Exception as exc:  # noqa: BLE001 - counted, the schedule goes on
            code = exc.__class__.__name__
        latencies.append((loop.time() - scheduled) * 1000)
        statuses[code] = statuses.get(code, 0) + 1

    t0 = loop.time() + 0.2
    tasks = []
    for i in range(count):
        scheduled = t0 + i / args.rate
        delay = scheduled - loop.time()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(one(i, scheduled)))
    await asyncio.gather(*tasks)
    lat = sorted(latencies)
    return {"status": "success", "scheduled": count, "statuses": statuses, "p50_ms": _percentile(lat, 50),
            "p99_ms": _percentile(lat, 99), "max_ms": round(lat[-1], 2) if lat else None,
            "wall_seconds": round(loop.time() - t0, 3)}


def cmd_cartload(args) -> dict:
    return asyncio.run(_cartload(args))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.child_suppliers")
    sub = parser.add_subparsers(dest="command", required=True)
    setup = sub.add_parser("setup")
    setup.add_argument("--rows", type=int, default=0)
    setup.add_argument("--skus-file")
    setup.add_argument("--supplier")
    setup.add_argument("--kind", default="csv")
    setup.add_argument("--url", default="")
    setup.add_argument("--token", default="")
    setup.add_argument("--levels", action="store_true")
    setup.add_argument("--live", action="store_true")
    setup.set_defaults(func=cmd_setup)
    feed = sub.add_parser("feed")
    feed.add_argument("--supplier", required=True)
    feed.set_defaults(func=cmd_feed)
    load = sub.add_parser("cartload")
    load.add_argument("--url", required=True)
    load.add_argument("--token", required=True)
    load.add_argument("--rate", type=float, default=100)
    load.add_argument("--seconds", type=float, default=5)
    load.add_argument("--timeout", type=float, default=30)
    load.add_argument("--rows", type=int, default=0)
    load.add_argument("--skus-file")
    load.set_defaults(func=cmd_cartload)
    args = parser.parse_args(argv)
    sys.stdout.write(json.dumps(args.func(args), default=str) + "\n")
    sys.stdout.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
