"""What one MoySklad notification costs upstream; prints one JSON line (like bench.child).

    python -m bench.child_events notification-cost --href-base H --ids a,b,c [--action UPDATE]

Stores one notification with an event per id (as the webhook does: `notification_parse` and
`events_store`) and processes it with `events_process` (what the Celery task runs), against the
sandbox named by MOYSKLAD_BASE_URL. The harness reads the sandbox's request count around it: that
is the figure (before coalescing and bulk reads it was one GET per event).
"""
from __future__ import annotations

import argparse
import json
import sys
import time
import uuid

from bench.child import _setup, _usage


def cmd_notification_cost(args: argparse.Namespace) -> dict:
    _setup()
    from integrations.models import InboundEvent
    from integrations.moysklad.events import events_process, events_store, notification_parse

    ids = [i for i in args.ids.split(",") if i]
    body = {"auditContext": {"meta": {"type": "audit", "href": f"{args.href_base}/audit/x"}, "uid": "admin@bench",
                             "moment": "2026-11-23 08:00:00"},
            "events": [{"meta": {"type": args.entity, "href": f"{args.href_base}/entity/{args.entity}/{i}"},
                        "action": args.action, "accountId": "00000000-0000-0000-0000-000000000001"} for i in ids]}
    raw = json.dumps(body).encode()
    events = notification_parse(json.loads(raw), request_id=str(uuid.uuid4()), raw=raw)
    stored = events_store(events=events)
    started = time.perf_counter()
    counts = events_process(event_ids=stored)
    seconds = time.perf_counter() - started
    statuses = {s: InboundEvent.objects.filter(pk__in=stored, status=s).count() for s in ("done", "ignored", "failed")}
    return {"status": "success", "events": len(events), "distinct_documents": len(set(ids)), "outcomes": counts,
            "statuses": statuses, "process_seconds_in_child": round(seconds, 3), **_usage()}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.child_events")
    sub = parser.add_subparsers(dest="command", required=True)
    nc = sub.add_parser("notification-cost", help="store and process one notification; the harness counts requests")
    nc.add_argument("--href-base", required=True)
    nc.add_argument("--ids", required=True)
    nc.add_argument("--entity", default="product")
    nc.add_argument("--action", default="UPDATE")
    nc.set_defaults(func=cmd_notification_cost)
    args = parser.parse_args(argv)
    sys.stdout.write(json.dumps(args.func(args), default=str) + "\n")
    sys.stdout.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
