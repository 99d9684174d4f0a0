"""The admin home dashboard at a size; prints one JSON line (like bench.child).

    python -m bench.child_dashboard fill --offers N --changes M --runs R
    python -m bench.child_dashboard measure [--repeat K]
    python -m bench.child_dashboard step --offers N --changes M --runs R [--repeat K]   (fill, then measure)
    python -m bench.child_dashboard sizes --offers N --changes M --runs R   (a tenth, then all: both measured)

`fill` adds N offers (each listed on one marketplace, 1 % of them in error, 2 % waiting), M stock
changes spread over 30 days and R job runs spread over every registered job (newest first, one
failed in fifty), plus job states, failed orders and failed events; `measure` renders /admin/ as
a logged-in superuser K times through Django's test client (the whole middleware stack and the
template: what the server does for one page view, without the network) and reports the median
and worst time and the number of queries of one render.
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from datetime import timedelta

from bench.child import _setup, _usage, _vendor

BATCH = 10_000


def _bulk(model, rows) -> None:
    model.objects.bulk_create(rows, batch_size=BATCH)


def cmd_fill(args: argparse.Namespace) -> dict:
    _setup()
    from django.db import connection, transaction
    from django.utils import timezone

    from catalog.models import Offer, Product
    from integrations import jobs
    from integrations.models import Channel, ChannelOffer, JobRun, JobState
    from stock.models import StockChange, Warehouse

    started = time.perf_counter()
    now = timezone.now()
    warehouse, _ = Warehouse.objects.get_or_create(code="main", defaults={"name": "Main"})
    if connection.vendor == "postgresql":
        _fill_postgresql(args, now=now, warehouse_id=warehouse.pk)
        return _filled(started)
    with transaction.atomic():
        base = Product.objects.count()
        _bulk(Product, [Product(name=f"Product {base + i}") for i in range(args.offers)])
        products = list(Product.objects.order_by("-id").values_list("id", flat=True)[:args.offers])
        _bulk(Offer, [Offer(product_id=pid, sku=f"B-{pid}", name=f"Offer {pid}") for pid in products])
        offer_ids = list(Offer.objects.order_by("-id").values_list("id", flat=True)[:args.offers])
        channel, _ = Channel.objects.get_or_create(system="ozon")
        statuses = [ChannelOffer.Status.ERROR if i % 100 == 0 else ChannelOffer.Status.PENDING if i % 50 == 1
                    else ChannelOffer.Status.OK for i in range(len(offer_ids))]
        _bulk(ChannelOffer, [ChannelOffer(channel=channel, offer_id=oid, external_key=f"B-{oid}", status=st,
                                          error="rejected" if st == "error" else "", synced_at=now)
                             for oid, st in zip(offer_ids, statuses)])
    # Stock changes: M rows over 30 days, oldest first.
    span = 30 * 24 * 3600
    if connection.vendor == "postgresql":
        with connection.cursor() as cur:
            cur.execute(
                """INSERT INTO stock_stockchange (offer_id, warehouse_id, source, via, previous_stock, new_stock,
                       previous_reserve, new_reserve, previous_available, new_available, at)
                   SELECT (%s::bigint[])[1 + (g %% %s)], %s, 'moysklad', 'sync', 0, 1, 0, 0, 0, 1,
                          %s - make_interval(secs => (g::float8 * %s / %s))
                   FROM generate_series(0, %s - 1) AS g""",
                [offer_ids[:1000], min(len(offer_ids), 1000), warehouse.pk, now, span, args.changes, args.changes])
    else:
        step = span / max(args.changes, 1)
        for start in range(0, args.changes, BATCH):
            _bulk(StockChange, [StockChange(
                offer_id=offer_ids[g % min(len(offer_ids), 1000)], warehouse=warehouse, source="moysklad", via="sync",
                previous_stock=0, new_stock=1, previous_reserve=0, new_reserve=0, previous_available=0,
                new_available=1, at=now - timedelta(seconds=g * step)) for g in range(start, min(start + BATCH, args.changes))])
    # Job runs: R rows over every job, one a minute per job going back.
    names = list(jobs.JOBS)
    rows = []
    for i in range(args.runs):
        job, n = names[i % len(names)], i // len(names)
        at = now - timedelta(minutes=n + 1)
        rows.append(JobRun(job=job, status=JobRun.Status.FAILED if i % 50 == 7 else JobRun.Status.SUCCESS,
                           trigger="beat", started_at=at, finished_at=at + timedelta(seconds=1 + i % 9),
                           counts={"rows_read": 500, "changed": i % 13}, error_count=i % 3, progress_done=500))
        if len(rows) >= BATCH:
            _bulk(JobRun, rows)
            rows = []
    _bulk(JobRun, rows)
    for job in names:
        last = JobRun.objects.filter(job=job).order_by("-started_at").first()
        if last is not None:
            JobState.objects.update_or_create(job=job, defaults={"cursor": last.started_at, "last_run": last})
    return _filled(started)


def _filled(started: float) -> dict:
    from django.db import connection

    from catalog.models import Offer
    from integrations.models import JobRun
    from stock.models import StockChange

    with connection.cursor() as cur:
        cur.execute("ANALYZE")  # plans as a long-running database would have them
    return {"status": "success", "job_seconds": round(time.perf_counter() - started, 2), "db": _vendor(),
            "offers": Offer.objects.count(), "stock_changes": StockChange.objects.count(),
            "job_runs": JobRun.objects.count(), **_usage()}


def _fill_postgresql(args: argparse.Namespace, *, now, warehouse_id: int) -> None:
    """The same rows as the portable path, written by the server itself (seconds, not minutes)."""
    from django.db import connection, transaction

    from integrations import jobs
    from integrations.models import Channel, JobRun, JobState

    channel, _ = Channel.objects.get_or_create(system="ozon")
    names = list(jobs.JOBS)
    with transaction.atomic(), connection.cursor() as cur:
        cur.execute("SELECT COALESCE(MAX(id), 0) FROM catalog_product")
        base = cur.fetchone()[0]
        cur.execute("""INSERT INTO catalog_product (name, description, archived, slug, seo_title, seo_description,
                           created_at, updated_at)
                       SELECT 'Product ' || g, '', false, '', '', '', %s, %s
                       FROM generate_series(%s + 1, %s + %s) AS g""", [now, now, base, base, args.offers])
        cur.execute("""INSERT INTO catalog_offer (product_id, sku, name, is_variant, characteristics, article, code,
                           price_from_product, currency, archived, updated_at)
                       SELECT p.id, 'B-' || p.id, 'Offer ' || p.id, false, '{}', '', '', false, 'RUB', false, %s
                       FROM catalog_product p WHERE p.id > %s""", [now, base])
        cur.execute("""INSERT INTO integrations_channeloffer (channel_id, offer_id, external_key, key_source, enabled,
                           published, synced, synced_at, status, error)
                       SELECT %s, o.id, o.sku, 'auto', true, '{}', '{}', %s,
                              CASE WHEN o.id %% 100 = 0 THEN 'error' WHEN o.id %% 50 = 1 THEN 'pending' ELSE 'ok' END,
                              CASE WHEN o.id %% 100 = 0 THEN 'rejected' ELSE '' END
                       FROM catalog_offer o WHERE o.product_id > %s""", [channel.pk, now, base])
        cur.execute("SELECT array_agg(id) FROM (SELECT id FROM catalog_offer ORDER BY id DESC LIMIT 1000) o")
        some = cur.fetchone()[0]
        cur.execute("""INSERT INTO stock_stockchange (offer_id, warehouse_id, source, via, previous_stock, new_stock,
                           previous_reserve, new_reserve, previous_available, new_available, at)
                       SELECT (%s::bigint[])[1 + (g %% %s)], %s, 'moysklad', 'sync', 0, 1, 0, 0, 0, 1,
                              %s - make_interval(secs => (g::float8 * %s / %s))
                       FROM generate_series(0, %s - 1) AS g""",
                    [some, len(some), warehouse_id, now, 30 * 24 * 3600, args.changes, args.changes])
        # R job runs over every job, one a minute per job going back, one in fifty failed.
        cur.execute("""INSERT INTO integrations_jobrun (job, "full", trigger, status, started_at, finished_at,
                           counts, progress_done, errors, error_count, message)
                       SELECT (%s::text[])[1 + (g %% %s)], false, 'beat',
                              CASE WHEN g %% 50 = 7 THEN 'failed' ELSE 'success' END,
                              %s - make_interval(mins => (g / %s) + 1),
                              %s - make_interval(mins => (g / %s) + 1) + make_interval(secs => 1 + g %% 9),
                              '{"rows_read": 500}', 500, '[]', g %% 3, ''
                       FROM generate_series(0, %s - 1) AS g""",
                    [names, len(names), now, len(names), now, len(names), args.runs])
    for job in names:
        last = JobRun.objects.filter(job=job).order_by("-started_at").first()
        if last is not None:
            JobState.objects.update_or_create(job=job, defaults={"cursor": last.started_at, "last_run": last})


def cmd_sizes(args: argparse.Namespace) -> dict:
    """A tenth of the rows, measured; the other nine tenths, measured again (one process)."""
    out = {}
    for label, share in (("small", 0.1), ("large", 0.9)):
        part = argparse.Namespace(offers=int(args.offers * share), changes=int(args.changes * share),
                                  runs=int(args.runs * share), repeat=args.repeat)
        out[label] = cmd_step(part)
    return {"status": "success", **out, "job_seconds": round(out["small"]["job_seconds"] + out["large"]["job_seconds"], 3),
            **_usage()}


def cmd_step(args: argparse.Namespace) -> dict:
    """fill, then measure, in one process (one interpreter start per size)."""
    filled = cmd_fill(args)
    measured = cmd_measure(args)
    return {**measured, "fill_seconds": filled["job_seconds"], "offers": filled["offers"],
            "stock_changes": filled["stock_changes"], "job_runs": filled["job_runs"]}


def cmd_measure(args: argparse.Namespace) -> dict:
    _setup()  # idempotent
    from django.conf import settings
    from django.contrib.auth.models import User
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    user = User.objects.filter(username="bench-admin").first() or User.objects.create_superuser(
        "bench-admin", "bench@example.com", "bench-password-1")
    client = Client(HTTP_HOST=(settings.ALLOWED_HOSTS or ["localhost"])[0].lstrip("."))
    client.force_login(user)
    client.get("/admin/")  # warm: templates compiled, connection open
    times = []
    queries = None
    for _ in range(args.repeat):
        with CaptureQueriesContext(connection) as captured:
            started = time.perf_counter()
            response = client.get("/admin/", secure=settings.SECURE_SSL_REDIRECT)
            times.append(time.perf_counter() - started)
        if response.status_code != 200:
            raise SystemExit(f"/admin/ answered {response.status_code}")
        queries = len(captured.captured_queries)
    body = response.content.decode()
    return {"status": "success", "db": _vendor(), "median_ms": round(statistics.median(times) * 1000, 1),
            "max_ms": round(max(times) * 1000, 1), "queries": queries, "rows": body.count('data-job="'),
            "job_seconds": round(sum(times), 3), **_usage()}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.child_dashboard")
    sub = parser.add_subparsers(dest="command", required=True)
    fill = sub.add_parser("fill", help="add offers, stock changes and job runs")
    fill.add_argument("--offers", type=int, required=True)
    fill.add_argument("--changes", type=int, required=True)
    fill.add_argument("--runs", type=int, required=True)
    fill.set_defaults(func=cmd_fill)
    measure = sub.add_parser("measure", help="render /admin/ and time it")
    measure.add_argument("--repeat", type=int, default=7)
    measure.set_defaults(func=cmd_measure)
    step = sub.add_parser("step", help="fill, then measure")
    step.add_argument("--offers", type=int, required=True)
    step.add_argument("--changes", type=int, required=True)
    step.add_argument("--runs", type=int, required=True)
    step.add_argument("--repeat", type=int, default=7)
    step.set_defaults(func=cmd_step)
    sizes = sub.add_parser("sizes", help="a tenth, measured; then the full size, measured")
    sizes.add_argument("--offers", type=int, required=True)
    sizes.add_argument("--changes", type=int, required=True)
    sizes.add_argument("--runs", type=int, required=True)
    sizes.add_argument("--repeat", type=int, default=7)
    sizes.set_defaults(func=cmd_sizes)
    args = parser.parse_args(argv)
    sys.stdout.write(json.dumps(args.func(args), default=str) + "\n")
    sys.stdout.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
