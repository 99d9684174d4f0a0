"""One threaded HTTP server for all upstream emulators.

    from integrations.sandbox.server import SandboxServer
    with SandboxServer(products=200, seed=1) as srv:
        srv.moysklad_base_url   # http://127.0.0.1:PORT/moysklad/api/remap/1.2
        srv.moysklad.faults.add(status=500, count=2, path_contains="entity/product")

Standard library only (``ThreadingHTTPServer``), no Django import, so the sandbox starts in well
under a second for the demo catalog; ``python manage.py sandbox`` and
``python -m integrations.sandbox.server`` both wrap it.

HTTP/1.1 with keep-alive (MoySklad asks clients to reuse connections), one daemon thread per
connection, ``TCP_NODELAY`` and a single write per answer so small answers are not held back
by Nagle's algorithm + delayed ACKs (a 40 ms stall would swamp benchmarks).
"""
from __future__ import annotations

import argparse
import email.utils
import logging
import socket
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import unquote

from .channels import describe as describe_marketplaces
from .channels import mount_marketplaces
from .common import ApiEmulator, Response, SandboxApp
from .moysklad import API_ROOT, MoySkladEmulator
from .onec import OnecEmulator
from .onec import describe as describe_onec
from .suppliers import describe as describe_suppliers
from .suppliers import mount_suppliers

log = logging.getLogger("integrations.sandbox")

DEFAULT_PRODUCTS = 2000
DEFAULT_VARIANT_SHARE = 0.25
DEFAULT_PORT = 8100


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "SyncSiteSandbox/1.0"
    disable_nagle_algorithm = True
    timeout = 120  # idle keep-alive connections are closed after this many seconds

    def _serve(self) -> None:
        server: _HTTPServer = self.server  # type: ignore[assignment]
        raw_path, _, query = self.path.partition("?")
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        headers = {k.lower(): v for k, v in self.headers.items()}
        host = self.headers.get("Host") or f"{server.public_host}:{server.server_port}"
        resp = server.app.dispatch(self.command, unquote(raw_path), query, headers, body, f"http://{host}")
        if resp.drop:
            self._drop()
            return
        self._write(resp)

    def _drop(self) -> None:
        """Close without a byte of answer: the client sees 'server disconnected'."""
        self.close_connection = True
        try:
            self.connection.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass

    def _write(self, resp: Response) -> None:
        self.send_response_only(resp.status)
        self.send_header("Date", email.utils.formatdate(usegmt=True))
        for name, value in resp.headers:
            self.send_header(name, value)
        if resp.content_type and resp.body:
            self.send_header("Content-Type", resp.content_type)
        self.send_header("Content-Length", str(len(resp.body)))
        self._headers_buffer.append(b"\r\n")   # end of headers; body goes out in the same write
        self._headers_buffer.append(resp.body)
        try:
            self.flush_headers()
        except (BrokenPipeError, ConnectionResetError):  # the client gave up (e.g. its timeout)
            self.close_connection = True

    do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = _serve

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
        if self.server.verbose:  # type: ignore[attr-defined]
            sys.stderr.write("sandbox: %s - %s\n" % (self.address_string(), format % args))

    def handle_one_request(self) -> None:
        try:
            super().handle_one_request()
        except (BrokenPipeError, ConnectionResetError, TimeoutError):
            self.close_connection = True


class _HTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128

    def __init__(self, address: tuple[str, int], app: SandboxApp, verbose: bool = False):
        self.app = app
        self.verbose = verbose
        super().__init__(address, _Handler)
        host = self.server_address[0]
        self.public_host = "127.0.0.1" if host in ("0.0.0.0", "", "::") else host

    def handle_error(self, request: Any, client_address: Any) -> None:
        if self.verbose:
            super().handle_error(request, client_address)


class SandboxServer:
    """The sandbox process in one object: the emulators plus the HTTP server thread.

    Catalog: ``products``, ``variant_share``, ``variants_per_product``, ``stores``, ``seed``.
    MoySklad behaviour: ``token``, ``login``, ``password``, ``rate_limit`` (budget and the
    parallel cap on/off), ``request_weight`` (units per ordinary request, default 4 = a user
    token from Dec 2026), ``heavy_weight`` (report/stock/all|bystore, 5), ``budget`` (45),
    ``window`` (3.0 s), ``max_parallel`` (5), ``latency_ms`` (added to every request),
    ``rate_header_unit`` ("units" or "requests" for X-RateLimit-*), ``strict_accept``.
    """

    def __init__(self, host: str = "127.0.0.1", port: int = 0, *, products: int = DEFAULT_PRODUCTS,
                 variant_share: float = DEFAULT_VARIANT_SHARE, variants_per_product: int = 3, stores: int = 3,
                 seed: int = 1, rate_limit: bool = True, token: str | None = "sandbox-token",
                 login: str | None = "admin@sandbox", password: str | None = "sandbox", verbose: bool = False,
                 **moysklad_options: Any) -> None:
        self.host = host
        self.port = port
        self.verbose = verbose
        self.app = SandboxApp()
        self.moysklad: MoySkladEmulator = MoySkladEmulator(
            products=products, variant_share=variant_share, variants_per_product=variants_per_product,
            stores=stores, seed=seed, rate_limit=rate_limit, token=token, login=login, password=password,
            **moysklad_options)
        self.app.mount(self.moysklad)
        # Ozon, Wildberries, Yandex Market stock: they list the same catalog's SKUs and barcodes.
        self.marketplaces = mount_marketplaces(self.app, self.moysklad.catalog, rate_limit=rate_limit)
        # 1C's HTTP stock service (ONEC_BASE_URL = {url}/1c): the same catalog's SKUs.
        self.onec = OnecEmulator(self.moysklad.catalog)
        self.app.mount(self.onec, "1c")
        # Dropshipping suppliers (api dialect, cp1251 CSV, YML): shares of the same catalog.
        self.suppliers = mount_suppliers(self.app, self.moysklad.catalog)
        self._httpd: _HTTPServer | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle -----------------------------------------------------------------------------
    def start(self) -> "SandboxServer":
        if self._httpd is not None:
            return self
        self._httpd = _HTTPServer((self.host, self.port), self.app, self.verbose)
        self.port = self._httpd.server_port
        for emulator in self.app.emulators.values():
            emulator.default_origin = self.url
            emulator.closing.clear()
        self._thread = threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05},
                                        name=f"sandbox-{self.port}", daemon=True)
        self._thread.start()
        return self

    def serve_forever(self) -> None:
        """Start (if needed) and block until Ctrl-C."""
        self.start()
        try:
            while self._thread and self._thread.is_alive():
                self._thread.join(0.5)
        except KeyboardInterrupt:
            pass
        finally:
            self.stop()

    def stop(self) -> None:
        self.app.close()   # wakes requests sleeping in a timeout fault or latency
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd = None
        if self._thread is not None:
            self._thread.join(5)
            self._thread = None

    def __enter__(self) -> "SandboxServer":
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    # -- addresses -----------------------------------------------------------------------------
    @property
    def url(self) -> str:
        if self._httpd is None:
            raise RuntimeError("sandbox not started")
        return f"http://{self._httpd.public_host}:{self.port}"

    @property
    def moysklad_base_url(self) -> str:
        return f"{self.url}/{self.moysklad.name}/{API_ROOT.rstrip('/')}"

    def control_url(self, name: str = "moysklad") -> str:
        return f"{self.url}/_sandbox/{name}"

    @property
    def emulators(self) -> dict[str, ApiEmulator]:
        return self.app.emulators

    # -- proxy mode: faults on every upstream ---------------------------------------------------
    CHAOS_EMULATORS = ("moysklad", "ozon", "wb", "ym")

    def chaos(self, rate: float = 0.03, *, seed: int = 1, names: tuple[str, ...] | None = None,
              delay: float = 0.3) -> list:
        """Put the upstreams behind a hostile proxy: each API request to the named emulators
        (MoySklad and the three marketplaces by default) meets, each with probability `rate`, a
        5xx, a 429 (with a short retry-after), a connection cut before it reached the upstream
        (`drop`), a connection cut after the upstream did the work (`cut`: the client never
        hears), or a late answer (`delay` seconds). Seeded per emulator. Returns the rules (their
        `fired` counts what was injected); `chaos_off(rules)` removes them."""
        rules = []
        for n, name in enumerate(names or self.CHAOS_EMULATORS):
            faults = self.app.emulators[name].faults
            faults.seed(seed * 1000 + n)
            retry = {"retry_after_ms": 50, "error_code": 1049} if name == "moysklad" else {
                "headers": {"Retry-After": "1"}}
            rules += [faults.add(status=503, count=None, probability=rate),
                      faults.add(status=429, count=None, probability=rate / 2, **retry),
                      faults.add(kind="drop", count=None, probability=rate),
                      faults.add(kind="cut", count=None, probability=rate),
                      faults.add(kind="timeout", count=None, probability=rate, seconds=delay, then="answer")]
        return rules

    def chaos_off(self, rules: list) -> None:
        for name in self.CHAOS_EMULATORS:
            faults = self.app.emulators[name].faults
            for rule in rules:
                if any(f is rule for f in faults._faults):
                    faults.remove(rule.id)

    @staticmethod
    def chaos_counts(rules: list) -> dict[str, int]:
        """What the proxy injected, by kind (`status` split into 5xx and 429)."""
        counts: dict[str, int] = {}
        for rule in rules:
            kind = {"status": "5xx" if rule.status >= 500 else str(rule.status), "timeout": "delay"}.get(
                rule.kind, rule.kind)
            counts[kind] = counts.get(kind, 0) + rule.fired
        return counts

    def mount(self, emulator: ApiEmulator, name: str | None = None) -> ApiEmulator:
        """Add another emulator (Ozon, WB, ...) at ``/<name>``; works before or after start."""
        self.app.mount(emulator, name)
        if self._httpd is not None:
            emulator.default_origin = self.url
        return emulator

    def describe(self) -> str:
        """Human-readable startup banner (printed by the management command)."""
        creds = self.moysklad.credentials
        summary = self.moysklad.catalog.summary()
        lines = [
            f"SyncSite sandbox at {self.url}",
            "",
            "MoySklad:",
            f"  MOYSKLAD_BASE_URL={self.moysklad_base_url}",
            f"  MOYSKLAD_TOKEN={creds.token}",
            f"  (or MOYSKLAD_LOGIN={creds.login} MOYSKLAD_PASSWORD={creds.password})",
            f"  control: {self.control_url('moysklad')}/  (stats, faults, products/<id>, stock, touch)",
            f"  catalog: {summary['products']} products ({summary['products_with_variants']} with variants, "
            f"{summary['variants']} variants), {summary['folders']} folders, {summary['stores']} stores, "
            f"seed {summary['seed']}, generated in {summary['generation_seconds']} s",
            f"  limits: {self.moysklad.config()}",
        ]
        lines += describe_marketplaces(self.url, self.marketplaces)
        lines += describe_onec(self.url)
        lines += describe_suppliers(self.url)
        return "\n".join(lines)


# ---------------------------------------------------------------------------------------------
# Command line (shared with the Django management command)
# ---------------------------------------------------------------------------------------------
def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=DEFAULT_PORT)
    parser.add_argument("--products", type=int, default=DEFAULT_PRODUCTS)
    parser.add_argument("--variant-share", type=float, default=DEFAULT_VARIANT_SHARE,
                        help="share of products that have variants (default 0.25)")
    parser.add_argument("--variants-per-product", type=int, default=3)
    parser.add_argument("--stores", type=int, default=3)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--no-rate-limit", action="store_true", help="turn off the 45/3s budget and the parallel cap")
    parser.add_argument("--request-weight", type=int, default=4, help="budget units per ordinary request")
    parser.add_argument("--latency-ms", type=float, default=0.0, help="added to every API request")
    parser.add_argument("--token", default="sandbox-token")
    parser.add_argument("--verbose", action="store_true", help="log every request")


def server_from_options(options: dict[str, Any]) -> SandboxServer:
    return SandboxServer(
        host=options["host"], port=options["port"], products=options["products"],
        variant_share=options["variant_share"], variants_per_product=options["variants_per_product"],
        stores=options["stores"], seed=options["seed"], rate_limit=not options["no_rate_limit"],
        request_weight=options["request_weight"], latency_ms=options["latency_ms"], token=options["token"],
        verbose=options["verbose"])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m integrations.sandbox.server",
                                     description="Run the SyncSite upstream emulators.")
    add_arguments(parser)
    options = vars(parser.parse_args(argv))
    started = time.perf_counter()
    server = server_from_options(options).start()
    print(server.describe(), flush=True)
    print(f"\nReady in {time.perf_counter() - started:.2f} s. Ctrl-C to stop.", flush=True)
    server.serve_forever()
    return 0


if __name__ == "__main__":
    sys.exit(main())
