"""Record a job's upstream answers once, then replay them with no network, no sandbox and no
rate limit: what is left to time is our own side alone (decompressing, parsing, mapping and
writing), the "DB-and-CPU stage" of an import.

    python -m bench.child record moysklad-catalog --dir D   # against the sandbox; writes D/*.bin
    python -m bench.child stage moysklad-catalog --dir D    # replays D on a fresh database, timed

Answers are kept as the sandbox sent them (gzip bytes and headers), keyed by method, path and
query, so the replay decompresses exactly what the real run decompresses. The clients are pointed
at the recording (or replaying) transport by wrapping `MoySkladClient.__init__`; nothing in the
application knows about it.
"""
from __future__ import annotations

import hashlib
import json
import os
import threading
from pathlib import Path
from urllib.parse import parse_qsl, urlencode

import httpx


def _key(request: httpx.Request) -> str:
    query = urlencode(sorted(parse_qsl(request.url.query.decode(), keep_blank_values=True)))
    raw = f"{request.method} {request.url.path}?{query}"
    return hashlib.sha1(raw.encode()).hexdigest()


class RecordingTransport(httpx.BaseTransport):
    """Forwards to the real transport and stores each answer's raw (still encoded) body."""

    def __init__(self, directory: Path):
        self.directory = directory
        self.inner = httpx.HTTPTransport()
        self.lock = threading.Lock()
        directory.mkdir(parents=True, exist_ok=True)

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        response = self.inner.handle_request(request)
        try:
            body = b"".join(response.stream)   # the raw stream: gzip as sent (read() would decode it)
        finally:
            response.close()
        headers = [(k, v) for k, v in response.headers.multi_items() if k.lower() != "content-length"]
        if response.status_code == 200:
            key = _key(request)
            with self.lock:
                (self.directory / f"{key}.bin").write_bytes(body)
                (self.directory / f"{key}.json").write_text(json.dumps({"headers": headers,
                                                                        "url": str(request.url)}))
        return httpx.Response(response.status_code, headers=headers, content=body, request=request)

    def close(self) -> None:
        self.inner.close()


class ReplayTransport(httpx.BaseTransport):
    """Answers every request from the recording (404 for anything not recorded)."""

    def __init__(self, directory: Path):
        self.directory = directory

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        key = _key(request)
        body_path = self.directory / f"{key}.bin"
        if not body_path.exists():
            return httpx.Response(404, json={"errors": [{"error": f"not recorded: {request.url}"}]}, request=request)
        meta = json.loads((self.directory / f"{key}.json").read_text())
        return httpx.Response(200, headers=meta["headers"], content=body_path.read_bytes(), request=request)


def install(transport: httpx.BaseTransport, *, unlimited: bool) -> None:
    """Every MoySkladClient made from now on in this process uses `transport`; with `unlimited`,
    also an in-process limiter with no practical budget (the replay measures our side only)."""
    from integrations.http.ratelimit import Limiter
    from integrations.moysklad import client as ms_client

    original = ms_client.MoySkladClient.__init__
    replay_transport = transport

    def patched(self, conf=None, *, transport=None, limiter=None, **kwargs):  # noqa: ARG001
        if unlimited and limiter is None:
            limiter = Limiter("bench-replay", units=10 ** 9, window=1.0, parallel=int(os.environ.get(
                "MOYSKLAD_MAX_PARALLEL", "5")))
        original(self, conf, transport=replay_transport, limiter=limiter, **kwargs)

    ms_client.MoySkladClient.__init__ = patched
