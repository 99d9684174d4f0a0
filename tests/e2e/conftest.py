"""End to end: the real jobs, client, limiter and database against the sandbox emulators over
HTTP (an in-process SandboxServer on 127.0.0.1, real MoySklad limits: 45 units per 3 s, weight 4,
5 parallel requests). Scenario-named tests built from the small step helpers in steps.py.

The sandbox lives for the whole session and keeps what tests do to it (a repriced or deleted
product stays so), so tests compare with what the sandbox says *now*, never with fixed numbers.
Each test starts from an empty database (rolled back afterwards)."""
from __future__ import annotations

import uuid

import pytest

from integrations.sandbox.server import SandboxServer


def pytest_collection_modifyitems(config, items):
    """Everything under tests/e2e/ carries the `e2e` marker (-m "not e2e" skips the ring)."""
    for item in items:
        if "e2e" in item.path.parts and "tests" in item.path.parts:
            item.add_marker(pytest.mark.e2e)


@pytest.fixture(scope="session")
def sandbox():
    # A token of its own: with Redis the limiter is shared by name, and no other test run or
    # benchmark on this machine should spend (or wait for) this session's budget.
    token = f"e2e-{uuid.uuid4().hex[:12]}"
    server = SandboxServer(port=0, products=300, variant_share=0.25, rate_limit=True, token=token, seed=7)
    with server:
        yield server


@pytest.fixture(autouse=True)
def moysklad(sandbox, settings, db):
    """Settings pointing MOYSKLAD at the sandbox, with the real (default) limits; faults cleared
    after each test."""
    settings.MOYSKLAD = {**settings.MOYSKLAD, "BASE_URL": sandbox.moysklad_base_url,
                         "TOKEN": sandbox.moysklad.credentials.token, "LOGIN": "", "PASSWORD": "",
                         "REQUEST_WEIGHT": 4, "BUDGET_UNITS": 45, "BUDGET_WINDOW": 3.0, "MAX_PARALLEL": 5,
                         "PAGE_SIZE": 1000, "PRICE_TYPE": ""}
    yield sandbox.moysklad
    sandbox.moysklad.faults.clear()
