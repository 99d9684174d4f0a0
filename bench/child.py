"""One measured piece of work in its own process; prints one JSON line on stdout.

    python -m bench.child job moysklad-catalog [--full] [--profile out.prof]
    python -m bench.child record|stage moysklad-catalog --dir D [--profile out.prof]   (bench/replay.py)
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


def cmd_job(args: argparse.Namespace, setup: bool = True) -> dict:
    if setup:
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


def cmd_record(args: argparse.Namespace) -> dict:
    """Run the job against the sandbox, keeping every answer (see bench/replay.py)."""
    _setup()
    from pathlib import Path

    from bench import replay

    replay.install(replay.RecordingTransport(Path(args.dir)), unlimited=False)
    return cmd_job(args, setup=False)


def cmd_stage(args: argparse.Namespace) -> dict:
    """Run the job from a recording: no network, no sandbox, no rate limit - our side alone."""
    _setup()
    from pathlib import Path

    from bench import replay

    replay.install(replay.ReplayTransport(Path(args.dir)), unlimited=True)
    return cmd_job(args, setup=False)


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
    for name, func, text in (("record", cmd_record, "run a job against the sandbox and keep its answers"),
                             ("stage", cmd_stage, "run a job from kept answers: our side alone")):
        sp = sub.add_parser(name, help=text)
        sp.add_argument("name")
        sp.add_argument("--dir", required=True)
        sp.add_argument("--full", action="store_true")
        sp.add_argument("--profile", help="write cProfile stats here")
        sp.set_defaults(func=func)
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
