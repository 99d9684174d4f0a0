"""One measured piece of work in its own process; prints one JSON line on stdout.

    python -m bench.child job moysklad-catalog [--full] [--profile out.prof]
    python -m bench.child naive [--page-size 100]

`job` runs the registry's JobSpec through integrations.runs.run_job - exactly what the Celery
task and `manage.py sync` run. The line carries the job's own wall time (measured around
run_job), CPU time, the process's peak RSS (getrusage: this process only, so the sandbox and
the database server are not counted), the run's status and counts, and row counts in the
database afterwards. The environment (DATABASE_URL, MOYSKLAD_*) comes from the harness.
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import time

_STARTED = time.perf_counter()


def _setup() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "syncsite.settings")
    import django

    django.setup()


def _usage() -> dict:
    ru = resource.getrusage(resource.RUSAGE_SELF)
    scale = 1024 * 1024 if sys.platform == "darwin" else 1024   # ru_maxrss: bytes on macOS, KiB on Linux
    return {"cpu_seconds": round(ru.ru_utime + ru.ru_stime, 2), "peak_rss_mb": round(ru.ru_maxrss / scale, 1)}


def _db_counts() -> dict:
    from catalog.models import Barcode, Category, Offer, Product
    from integrations.models import OfferBinding, ProductBinding
    from stock.models import StockLevel, Warehouse

    return {"products": Product.objects.count(), "offers": Offer.objects.count(),
            "product_bindings": ProductBinding.objects.count(), "offer_bindings": OfferBinding.objects.count(),
            "barcodes": Barcode.objects.count(), "categories": Category.objects.count(),
            "warehouses": Warehouse.objects.count(), "stock_levels": StockLevel.objects.count()}


def _vendor() -> str:
    from django.db import connection

    return connection.vendor


def cmd_job(args: argparse.Namespace) -> dict:
    _setup()
    from integrations import jobs
    from integrations.runs import run_job

    spec = jobs.get(args.name)
    profiler = None
    if args.profile:
        import cProfile

        profiler = cProfile.Profile()
        profiler.enable()
    started = time.perf_counter()
    run = run_job(spec, full=args.full, trigger="bench", raise_errors=False)
    job_seconds = time.perf_counter() - started
    if profiler is not None:
        profiler.disable()
        profiler.dump_stats(args.profile)
    out = {"job": spec.name, "full": args.full, "status": run.status, "message": run.message,
           "job_seconds": round(job_seconds, 3), "counts": run.counts, "error_count": run.error_count,
           "errors": run.errors[:5], "startup_seconds": round(started - _STARTED, 3), **_usage()}
    out["db"] = _db_counts()
    out["vendor"] = _vendor()
    return out


def cmd_naive(args: argparse.Namespace) -> dict:
    _setup()
    from bench import naive

    started = time.perf_counter()
    counts = naive.import_catalog(base_url=os.environ["MOYSKLAD_BASE_URL"], token=os.environ["MOYSKLAD_TOKEN"],
                                  page_size=args.page_size)
    job_seconds = time.perf_counter() - started
    out = {"job": "naive", "status": "success", "message": "", "job_seconds": round(job_seconds, 3),
           "counts": counts, "startup_seconds": round(started - _STARTED, 3), **_usage()}
    out["db"] = _db_counts()
    out["vendor"] = _vendor()
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.child")
    sub = parser.add_subparsers(dest="command", required=True)
    job = sub.add_parser("job", help="run one registry job through run_job")
    job.add_argument("name")
    job.add_argument("--full", action="store_true")
    job.add_argument("--profile", help="write cProfile stats here")
    job.set_defaults(func=cmd_job)
    naive = sub.add_parser("naive", help="the naive importer (bench/naive.py)")
    naive.add_argument("--page-size", type=int, default=100)
    naive.set_defaults(func=cmd_naive)
    args = parser.parse_args(argv)
    out = args.func(args)
    sys.stdout.write(json.dumps(out, default=str) + "\n")
    sys.stdout.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
