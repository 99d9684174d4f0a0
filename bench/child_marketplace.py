"""Marketplace-stock work for the bench (issue 4), in its own process; prints one JSON line.

    python -m bench.child_marketplace job marketplace-stock [--full]   (bench.child's `job`)
    python -m bench.child_marketplace change --count 1000 [--seed 4]
        raise the stock of COUNT offers (one stock row each, +7) the way a stock import does:
        StockLevel rows updated (updated_at bumped) and the offers kicked; prints their SKUs
        and the quantity each marketplace should now show.
    python -m bench.child_marketplace keys --count 20   offers to change in MoySklad + their keys
    python -m bench.child_marketplace age [--seconds 31]   every offer's last push moved back
    python -m bench.child_marketplace probe      ChannelOffer rows per channel and status
"""
from __future__ import annotations

import argparse
import json
import random
import sys
import time

from bench.child import _setup, _usage, cmd_job


def cmd_change(args: argparse.Namespace) -> dict:
    _setup()
    from django.db import transaction
    from django.db.models import F
    from django.utils import timezone

    from integrations.marketplaces.debounce import kick
    from stock.models import StockLevel

    started = time.perf_counter()
    rows = list(StockLevel.objects.order_by("offer_id", "pk").values_list("pk", "offer_id"))
    first_row: dict[int, int] = {}
    for pk, offer_id in rows:
        first_row.setdefault(offer_id, pk)
    offers = sorted(first_row)
    chosen = random.Random(args.seed).sample(offers, min(args.count, len(offers)))
    pks = [first_row[o] for o in chosen]
    now = timezone.now()
    with transaction.atomic():
        for i in range(0, len(pks), 500):
            StockLevel.objects.filter(pk__in=pks[i:i + 500]).update(
                stock=F("stock") + 7, available=F("available") + 7, updated_at=now)
        kicked = kick(chosen) if args.kick else 0
    return {"status": "success", "changed_offers": len(chosen), "kicked": kicked,
            "job_seconds": round(time.perf_counter() - started, 3), **_usage()}


def cmd_age(args: argparse.Namespace) -> dict:
    """Move every offer's last push SECONDS back: what waiting out Ozon's once-per-30-s rule
    between two pushes would do, without the wait (the emulator forgets its pairs alongside)."""
    _setup()
    from datetime import timedelta

    from django.db.models import F

    from integrations.models import ChannelOffer

    moved = ChannelOffer.objects.exclude(pushed_at=None).update(pushed_at=F("pushed_at") - timedelta(seconds=args.seconds))
    return {"status": "success", "aged": moved, **_usage()}


def cmd_probe(args: argparse.Namespace) -> dict:
    _setup()
    from django.db.models import Count

    from integrations.models import ChannelOffer

    status = {f"{s}:{st}": n for s, st, n in ChannelOffer.objects.values_list("channel__system", "status")
              .annotate(n=Count("pk")).order_by()}
    return {"status": "success", "by_status": status, **_usage()}


def cmd_keys(args: argparse.Namespace) -> dict:
    """COUNT offers with a stock row: their MoySklad ids (assortment, store), our figure there
    and the key each marketplace knows them by - what the propagation scenario changes and polls."""
    _setup()
    from integrations.models import ChannelOffer, OfferBinding, System, WarehouseBinding
    from stock.models import StockLevel

    stores = dict(WarehouseBinding.objects.filter(system=System.MOYSKLAD).values_list("warehouse_id", "external_id"))
    rows = list(StockLevel.objects.filter(warehouse_id__in=list(stores)).order_by("offer_id", "warehouse_id")
                .values_list("offer_id", "warehouse_id", "stock"))
    first: dict[int, tuple[int, float]] = {}
    for offer_id, warehouse_id, stock in rows:
        first.setdefault(offer_id, (warehouse_id, float(stock)))
    chosen = random.Random(args.seed).sample(sorted(first), min(args.count, len(first)))
    assortment = dict(OfferBinding.objects.filter(system=System.MOYSKLAD, offer_id__in=chosen)
                      .values_list("offer_id", "external_id"))
    keys: dict[int, dict] = {o: {} for o in chosen}
    for offer_id, system, key in ChannelOffer.objects.filter(offer_id__in=chosen).values_list(
            "offer_id", "channel__system", "external_key"):
        keys[offer_id][system] = key
    items = [{"offer_id": o, "assortment_id": assortment.get(o), "store_id": stores[first[o][0]],
              "stock": first[o][1], "keys": keys[o]} for o in chosen]
    return {"status": "success", "items": items, **_usage()}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.child_marketplace")
    sub = parser.add_subparsers(dest="command", required=True)
    job = sub.add_parser("job", help="run one registry job through run_job (as bench.child)")
    job.add_argument("name")
    job.add_argument("--full", action="store_true")
    job.add_argument("--profile")
    job.set_defaults(func=cmd_job)
    change = sub.add_parser("change", help="raise the stock of COUNT offers")
    change.add_argument("--count", type=int, default=1000)
    change.add_argument("--seed", type=int, default=4)
    change.add_argument("--kick", action="store_true", help="also kick() them (schedules a push if a broker runs)")
    change.set_defaults(func=cmd_change)
    keys = sub.add_parser("keys", help="offers to change in MoySklad, with their marketplace keys")
    keys.add_argument("--count", type=int, default=20)
    keys.add_argument("--seed", type=int, default=9)
    keys.set_defaults(func=cmd_keys)
    age = sub.add_parser("age", help="move every offer's last push back (Ozon's 30 s rule)")
    age.add_argument("--seconds", type=float, default=31.0)
    age.set_defaults(func=cmd_age)
    probe = sub.add_parser("probe", help="ChannelOffer counts")
    probe.set_defaults(func=cmd_probe)
    args = parser.parse_args(argv)
    out = args.func(args)
    sys.stdout.write(json.dumps(out, default=str) + "\n")
    sys.stdout.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
