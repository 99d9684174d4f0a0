"""The sandbox in-process: its emulators (MoySklad, and the other upstreams it emulates) served
through respx, so our httpx clients talk to the sandbox with no socket and no thread per
connection. The one fake MoySklad of the unit tests: paging, filters, stock reports, errors, the
rate limit and faults are the sandbox's own (integrations/sandbox/), which follows the real formats.

    def test_something(sandbox_respx):
        ms = sandbox_respx.moysklad
        ms.update_product(ms.product_ids()[0], name="Новое")
        ms.faults.add(status=503, path_contains="entity/variant")
        run_job(...)
        assert [r.params["offset"] for r in ms.logged("entity/product")] == [...]

The catalog's clock is the wall clock (generated `updated` values lie in the 180 days before the
test started; `sandbox.moysklad.catalog.advance(seconds)` moves MoySklad's "now" forward), so no
test depends on today's date."""
from __future__ import annotations

import threading
from contextlib import contextmanager
from typing import Any

import httpx
import pytest
import respx

from integrations.http import ratelimit
from integrations.http.client import BaseClient
from integrations.sandbox.catalog_gen import format_msk, now_msk_ms
from integrations.sandbox.common import DroppedConnection
from integrations.sandbox.server import SandboxServer

ORIGIN = "https://sandbox.test"
TOKEN = "sandbox-token"


class InProcessSandbox:
    """A `SandboxServer` that is never started: respx hands each httpx request to its WSGI app."""

    def __init__(self, **options: Any) -> None:
        options.setdefault("products", 0)
        options.setdefault("stores", 2)
        options.setdefault("seed", 1)
        options.setdefault("rate_limit", False)
        options.setdefault("epoch", format_msk(now_msk_ms(), millis=False))
        self.server = SandboxServer(**options)
        self.app = self.server.app
        for emulator in self.app.emulators.values():
            emulator.default_origin = ORIGIN
        self.moysklad = self.server.moysklad
        self.moysklad.log_requests()
        #: called with each httpx.Request before the sandbox sees it: what happens upstream
        #: while a client pages (someone deletes a product between two pages...)
        self.before_request: list = []
        self._transport = httpx.WSGITransport(app=self.app)

    # -- addresses --------------------------------------------------------------------------------
    @property
    def moysklad_base_url(self) -> str:
        return f"{ORIGIN}/moysklad/api/remap/1.2"

    def base_url(self, name: str) -> str:
        """Where emulator `name` (ozon, wb, ym, 1c, suppliers...) answers."""
        return f"{ORIGIN}/{name}"

    @property
    def emulators(self) -> dict:
        return self.app.emulators

    # -- seeding shortcuts ------------------------------------------------------------------------
    @property
    def catalog(self):
        return self.moysklad.catalog

    @property
    def store_ids(self) -> list[str]:
        return self.moysklad.store_ids()

    @property
    def product_ids(self) -> list[str]:
        return self.moysklad.product_ids()

    @property
    def variant_ids(self) -> list[str]:
        return self.moysklad.variant_ids()

    def client(self) -> httpx.Client:
        """An httpx client of the test's own for the sandbox's MoySklad (to read what it shows)."""
        return httpx.Client(base_url=self.moysklad_base_url, transport=httpx.MockTransport(self),
                            headers={"Authorization": f"Bearer {TOKEN}", "Accept-Encoding": "gzip"})

    def rate_limit(self, on: bool = True, **limits: Any) -> None:
        """MoySklad's budget and parallel cap on (optionally with other numbers) or off."""
        self.moysklad.configure(rate_limit=on, **limits)

    # -- the transport ----------------------------------------------------------------------------
    def __call__(self, request: httpx.Request) -> httpx.Response:
        """respx side effect: the request through the sandbox's WSGI app. A dropped connection
        reaches the client as httpx's own error for it; an answer that comes after the request's
        read timeout as a ReadTimeout (the sandbox still finishes the work, as a real upstream does)."""
        request.read()
        for hook in list(self.before_request):
            hook(request)
        box: dict[str, Any] = {}

        def call() -> None:
            try:
                response = self._transport.handle_request(request)
                box["response"] = (response, b"".join(response.stream))   # raw: gzip stays for httpx
            except BaseException as exc:  # noqa: BLE001 - handed to the caller's thread
                box["error"] = exc

        timeout = (request.extensions.get("timeout") or {}).get("read")
        if timeout is None:
            call()
        else:
            worker = threading.Thread(target=call, name="sandbox-respx", daemon=True)
            worker.start()
            worker.join(timeout)
            if worker.is_alive():
                raise httpx.ReadTimeout("the sandbox did not answer within the read timeout", request=request)
        if "error" in box:
            if isinstance(box["error"], DroppedConnection):
                raise httpx.RemoteProtocolError("Server disconnected without sending a response.",
                                                request=request)
            raise box["error"]
        response, raw = box["response"]
        return httpx.Response(response.status_code, headers=response.headers, stream=httpx.ByteStream(raw),
                              request=request)

    def close(self) -> None:
        self.app.close()   # wakes requests sleeping in a timeout fault


@contextmanager
def mounted_sandbox(**options: Any):
    """Yields `(sandbox, router)`: every request to the sandbox's origin goes to the sandbox;
    the router takes more respx routes for anything else."""
    sandbox = InProcessSandbox(**options)
    with respx.mock(assert_all_called=False) as router:
        router.route(url__startswith=ORIGIN).mock(side_effect=sandbox)
        sandbox.router = router
        try:
            yield sandbox
        finally:
            sandbox.close()


def point_moysklad_at(settings, sandbox: InProcessSandbox, **overrides: Any) -> None:
    """Our MoySklad settings aimed at the sandbox (a generous limiter of our own: the sandbox's
    limit, when on, is the one under test)."""
    settings.MOYSKLAD = {**settings.MOYSKLAD, "BASE_URL": sandbox.moysklad_base_url, "TOKEN": TOKEN,
                         "LOGIN": "", "PASSWORD": "", "ORGANIZATION_ID": "", "STORE_ID": "", "PRICE_TYPE": "",
                         "BUDGET_UNITS": 10_000, "REQUEST_WEIGHT": 1, **overrides}


@pytest.fixture
def isolated_limiters(settings):
    """In-process limiters, fresh per test (no budget or pause leaks between tests, even when
    REDIS_URL points at a real Redis)."""
    settings.REDIS_URL = ""
    ratelimit._registry.clear()
    yield
    ratelimit._registry.clear()


@pytest.fixture
def fast_backoff(monkeypatch):
    """Retries still happen, without seconds of real back-off."""
    monkeypatch.setattr(BaseClient, "backoff_base", 0.001)


@pytest.fixture
def sandbox_options() -> dict:
    """Override in a module or conftest to size the sandbox (products, stores, variant_share...)."""
    return {}


@pytest.fixture
def sandbox_respx(settings, sandbox_options, isolated_limiters, fast_backoff):
    """The sandbox in-process behind respx, our MoySklad settings pointing at it; an empty catalog
    with two stores unless `sandbox_options` says otherwise."""
    with mounted_sandbox(**sandbox_options) as sb:
        point_moysklad_at(settings, sb)
        yield sb
