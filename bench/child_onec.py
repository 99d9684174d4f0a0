"""The CommerceML import measured in its own process; prints one JSON line (like bench.child).

    python -m bench.child_onec offers --count N            create N offers (SKU OF-000001 …) in bulk
    python -m bench.child_onec import --file offers.xml     import the file as the exchange's worker does

`import` stores the file as an upload of a new exchange session and runs
`integrations.onec.exchange_import.upload_import` (what the Celery task runs after 1C's
`mode=import`): the well-formedness pass, the streamed read, matching, batched stock writes. The
line carries that call's wall time, CPU, the process's peak RSS, the upload's counts and row
counts afterwards.
"""
from __future__ import annotations

import argparse
import json
import shutil
import sys
import time

from bench.child import _setup, _usage


def sku(i: int) -> str:
    return f"OF-{i:06d}"


def cmd_offers(args: argparse.Namespace) -> dict:
    _setup()
    from catalog.models import Offer, Product

    started = time.perf_counter()
    batch = 5000
    for start in range(0, args.count, batch):
        stop = min(args.count, start + batch)
        products = Product.objects.bulk_create([Product(name=f"Товар {i}") for i in range(start, stop)])
        Offer.objects.bulk_create([Offer(product=p, sku=sku(i), name=p.name) for i, p in zip(range(start, stop), products)])
    return {"status": "success", "offers": Offer.objects.count(), "seconds": round(time.perf_counter() - started, 2)}


def cmd_import(args: argparse.Namespace) -> dict:
    _setup()
    from integrations.onec.exchange_files import upload_path
    from integrations.onec.exchange_import import upload_import
    from integrations.onec.models import ExchangeSession, ExchangeUpload
    from stock.models import StockChange, StockLevel

    session = ExchangeSession.objects.create(cookie_digest=f"bench-{time.time_ns()}")
    path = upload_path(session.pk, "offers.xml")
    path.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(args.file, path)
    upload = ExchangeUpload.objects.create(session=session, filename="offers.xml", size=path.stat().st_size,
                                           state=ExchangeUpload.State.QUEUED)
    started = time.perf_counter()
    state = upload_import(upload_id=upload.pk)
    seconds = time.perf_counter() - started
    upload.refresh_from_db()
    shutil.rmtree(path.parent, ignore_errors=True)
    return {"status": "success" if state == "done" else state, "message": upload.error[:500],
            "job_seconds": round(seconds, 2), **_usage(), "counts": upload.counts,
            "db": {"stock_levels": StockLevel.objects.count(), "stock_changes": StockChange.objects.count()},
            "bytes": upload.size}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.child_onec")
    sub = parser.add_subparsers(dest="command", required=True)
    offers = sub.add_parser("offers")
    offers.add_argument("--count", type=int, required=True)
    offers.set_defaults(func=cmd_offers)
    imp = sub.add_parser("import")
    imp.add_argument("--file", required=True)
    imp.set_defaults(func=cmd_import)
    args = parser.parse_args(argv)
    out = args.func(args)
    sys.stdout.write(json.dumps(out, default=str) + "\n")
    sys.stdout.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
