"""Property-based run of the storefront API against its own OpenAPI schema (schemathesis).

Bounded so it belongs in `make test`: 1,200 generated cases shared out over the operations, derandomized
(the same cases every run, so a failure reproduces), against the real database with a small shop
in it. Every case must avoid a server error and answer exactly what the schema documents: status,
content type, headers and body; requests the schema calls invalid must be refused with a 4xx.
"""
import math
from decimal import Decimal

import pytest
import schemathesis
from hypothesis import HealthCheck, settings as hypothesis_settings
from schemathesis.checks import load_all_checks
from schemathesis.config import SchemathesisConfig
from schemathesis.specs.openapi import checks

from tests.factories import make_offer, make_stock, make_warehouse

from .conftest import TOKEN

pytestmark = [pytest.mark.django_db, pytest.mark.security]

#: generated cases in all, shared out over the schema's operations (at least 75 each)
CASES = 1_200


def _operations() -> int:
    from syncsite.api import api

    methods = {"get", "put", "post", "delete", "patch", "head", "options"}
    return sum(1 for ops in api.get_openapi_schema()["paths"].values() for m in ops if m in methods)


CASES_PER_OPERATION = max(75, math.ceil(CASES / _operations()))

load_all_checks()
CONFIG = SchemathesisConfig.from_dict({
    # Positive cases carry the token; negative ones may drop it (and must then get 401).
    "auth": {"openapi": {"StorefrontBearer": {"bearer": TOKEN}}},
    # Unknown query parameters are ignored by design (cache busters, tracking tags), not refused.
    "generation": {"allow-extra-parameters": False},
})
CHECKS = [
    checks.status_code_conformance,
    checks.content_type_conformance,
    checks.response_headers_conformance,
    checks.response_schema_conformance,
    checks.negative_data_rejection,
]


@pytest.fixture
def api_schema(api_token):
    from django.core.signals import request_finished, request_started
    from django.db import close_old_connections

    from syncsite.wsgi import application

    warehouse = make_warehouse(code="main", name="Основной склад")
    for sku, price in (("A-1", Decimal("100.00")), ("B-2", Decimal("0.00"))):
        make_stock(offer=make_offer(sku=sku, price=price), warehouse=warehouse, stock=1000)
    # The WSGI handler closes the connection after each request; the test's transaction lives on it
    # (Django's own test client does the same).
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    try:
        yield schemathesis.openapi.from_wsgi("/api/v1/openapi.json", application, config=CONFIG)
    finally:
        request_started.connect(close_old_connections)
        request_finished.connect(close_old_connections)


schema = schemathesis.pytest.from_fixture("api_schema")


@schema.parametrize()
@hypothesis_settings(max_examples=CASES_PER_OPERATION, derandomize=True, deadline=None, database=None,
                     suppress_health_check=list(HealthCheck))
def test_api_conforms_to_its_schema(case):
    from schemathesis.checks import not_a_server_error

    case.call_and_validate(checks=[not_a_server_error, *CHECKS])
