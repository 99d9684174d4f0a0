"""Fixtures for the sandbox tests: real sockets on port 0, no database, no Django needed."""
import httpx
import pytest

from integrations.sandbox.server import SandboxServer

TOKEN = "sandbox-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


class ManualClock:
    """A clock the test moves by hand, so rate-limit tests never depend on machine speed."""

    def __init__(self, now: float = 1000.0):
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture(scope="module")
def sandbox():
    """A read-only sandbox shared by a test module (200 products, limits off)."""
    with SandboxServer(products=200, seed=1, rate_limit=False) as srv:
        yield srv


@pytest.fixture
def ms(sandbox):
    """An httpx client for the shared sandbox's MoySklad API."""
    sandbox.moysklad.faults.clear()
    with httpx.Client(base_url=sandbox.moysklad_base_url, headers=AUTH, timeout=10) as client:
        yield client


@pytest.fixture
def make_sandbox():
    """Factory for a private sandbox (tests that change data or limits); stopped afterwards."""
    servers = []

    def make(**options):
        options.setdefault("products", 200)
        options.setdefault("seed", 1)
        srv = SandboxServer(**options).start()
        servers.append(srv)
        return srv

    yield make
    for srv in servers:
        srv.stop()


@pytest.fixture
def client_for():
    clients = []

    def make(srv, **kw):
        kw.setdefault("headers", AUTH)
        kw.setdefault("timeout", 10)
        client = httpx.Client(base_url=srv.moysklad_base_url, **kw)
        clients.append(client)
        return client

    yield make
    for client in clients:
        client.close()
