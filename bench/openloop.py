"""An open-loop HTTP load generator for the webhook: requests leave on a fixed schedule.

    python -m bench.openloop --url URL --rate 300 --seconds 30 --href-base H --ids a,b,c

Request i is scheduled at t0 + i / rate and sent then, whether or not earlier requests have been
answered (MoySklad does not wait for us either), each on its own connection as MoySklad sends
them. Latency is measured from the *scheduled* time, so a generator that fell behind, a full
listen backlog or a server that stalls all show up in the figure instead of quietly lowering the
rate (a closed loop at concurrency C measures its own queue: its latency is C / throughput).
Each request is one MoySklad notification (a distinct requestId, one `UPDATE` event for a product
from `--ids`). Prints one JSON line: counts, achieved rates, latency percentiles from the
schedule, how late the generator itself sent (its own lag, reported apart), its CPU.

No Django here: the generator only speaks HTTP, to loopback, with raw asyncio streams (httpx costs
milliseconds of CPU per request, which on a shared 2-core machine would be taken from the server).
"""
from __future__ import annotations

import argparse
import asyncio
import json
import resource
import sys
import uuid
from urllib.parse import urlsplit


def percentile(sorted_values: list[float], q: float) -> float | None:
    if not sorted_values:
        return None
    k = max(0, min(len(sorted_values) - 1, round(q / 100 * len(sorted_values) + 0.5) - 1))
    return round(sorted_values[k], 2)


async def post(host: str, port: int, path: str, body: bytes) -> int:
    reader, writer = await asyncio.open_connection(host, port)
    try:
        writer.write(f"POST {path} HTTP/1.1\r\nHost: {host}:{port}\r\nContent-Type: application/json\r\n"
                     f"User-Agent: MoySklad webhook touch agent 2.0\r\nContent-Length: {len(body)}\r\n"
                     "Connection: close\r\n\r\n".encode() + body)
        await writer.drain()
        status_line = await reader.readline()
        await reader.read()
        return int(status_line.split()[1])
    finally:
        writer.close()


def notification(href_base: str, entity: str, target: str, request_id: str) -> bytes:
    return json.dumps({
        "auditContext": {"meta": {"type": "audit", "href": f"{href_base}/audit/{request_id}"},
                         "uid": "admin@bench", "moment": "2026-11-23 08:00:00"},
        "events": [{"meta": {"type": entity, "href": f"{href_base}/entity/{entity}/{target}"},
                    "action": "UPDATE", "accountId": "00000000-0000-0000-0000-000000000001"}]}).encode()


async def run(args: argparse.Namespace) -> dict:
    target = urlsplit(args.url)
    host, port = target.hostname, target.port
    if host not in ("127.0.0.1", "localhost", "::1"):
        raise SystemExit("loopback only")
    ids = [i for i in args.ids.split(",") if i]
    count = int(args.rate * args.seconds)
    loop = asyncio.get_running_loop()
    latencies: list[float] = []
    lags: list[float] = []
    statuses: dict[str, int] = {}
    errors: list[str] = []
    in_flight = 0
    peak_in_flight = 0
    refused = 0

    async def one(i: int, scheduled: float) -> None:
        nonlocal in_flight
        request_id = str(uuid.uuid4())
        body = notification(args.href_base, args.entity, ids[i % len(ids)], request_id)
        lags.append((loop.time() - scheduled) * 1000)
        try:
            code = str(await asyncio.wait_for(post(host, port, f"{target.path}?requestId={request_id}", body),
                                              args.timeout))
        except Exception as exc:  # noqa: BLE001 - count it, keep the schedule
            code = exc.__class__.__name__
            if len(errors) < 5:
                errors.append(f"{code}: {exc}")
        finally:
            in_flight -= 1
        latencies.append((loop.time() - scheduled) * 1000)
        statuses[code] = statuses.get(code, 0) + 1

    cpu_before = resource.getrusage(resource.RUSAGE_SELF)
    t0 = loop.time() + 0.2
    tasks = []
    for i in range(count):
        scheduled = t0 + i / args.rate
        delay = scheduled - loop.time()
        if delay > 0:
            await asyncio.sleep(delay)
        if in_flight >= args.max_in_flight:
            refused += 1   # the server is so far behind that we would exhaust sockets: counted as failed
            statuses["not_sent"] = statuses.get("not_sent", 0) + 1
            continue
        in_flight += 1
        peak_in_flight = max(peak_in_flight, in_flight)
        tasks.append(asyncio.create_task(one(i, scheduled)))
    sending_ended = loop.time()
    await asyncio.gather(*tasks)
    ended = loop.time()
    cpu_after = resource.getrusage(resource.RUSAGE_SELF)
    lat, lag = sorted(latencies), sorted(lags)
    ok = statuses.get("200", 0)
    answered = sum(n for code, n in statuses.items() if code.isdigit())
    return {
        "status": "success" if ok == count else "incomplete",
        "scheduled": count, "rate_scheduled": args.rate, "seconds_scheduled": args.seconds,
        "sent": len(latencies), "ok": ok, "answered": answered, "statuses": statuses, "errors": errors,
        "send_seconds": round(sending_ended - t0, 3), "wall_seconds": round(ended - t0, 3),
        "rate_sent": round(len(tasks) / max(sending_ended - t0, 1e-9), 1),
        "rate_answered_200": round(ok / max(ended - t0, 1e-9), 1),
        "p50_ms": percentile(lat, 50), "p90_ms": percentile(lat, 90), "p99_ms": percentile(lat, 99),
        "p999_ms": percentile(lat, 99.9), "max_ms": round(lat[-1], 2) if lat else None,
        "send_lag_p99_ms": percentile(lag, 99), "send_lag_max_ms": round(lag[-1], 2) if lag else None,
        "peak_in_flight": peak_in_flight, "not_sent": refused,
        "generator_cpu_seconds": round(cpu_after.ru_utime + cpu_after.ru_stime
                                       - cpu_before.ru_utime - cpu_before.ru_stime, 3),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.openloop")
    parser.add_argument("--url", required=True)
    parser.add_argument("--rate", type=float, default=300.0, help="requests per second, on schedule")
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--href-base", required=True, help="MOYSKLAD_BASE_URL as the site sees it")
    parser.add_argument("--entity", default="product")
    parser.add_argument("--ids", required=True, help="comma-separated entity ids the events point at")
    parser.add_argument("--timeout", type=float, default=60.0,
                        help="seconds a request may take before it counts as failed (long: a late answer is still "
                             "an answer, and its latency is the figure)")
    parser.add_argument("--max-in-flight", type=int, default=3000)
    args = parser.parse_args(argv)
    sys.stdout.write(json.dumps(asyncio.run(run(args))) + "\n")
    sys.stdout.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
