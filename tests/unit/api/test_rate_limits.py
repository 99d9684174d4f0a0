"""The storefront API's budgets: per token, per client address, and failed logins per address.
Past one, 429 `rate_limited` with Retry-After; nothing else changes. Each test uses its own token
and address so the counters (in Redis when REDIS_URL is set) never meet another test's."""
import uuid

import pytest

from tests.factories import make_offer

pytestmark = [pytest.mark.django_db, pytest.mark.security]


@pytest.fixture
def fresh(settings):
    """A token and a client address nobody used before."""
    settings.STOREFRONT_API_TOKEN = "tok-" + uuid.uuid4().hex
    return settings.STOREFRONT_API_TOKEN, f"10.{uuid.uuid4().int % 250}.{uuid.uuid4().int % 250}.{uuid.uuid4().int % 250}"


def _get(client, token, address, path="/api/v1/products/A-1"):
    return client.get(path, HTTP_AUTHORIZATION=f"Bearer {token}", REMOTE_ADDR=address)


def test_a_token_over_its_budget_gets_429_with_retry_after(client, settings, fresh):
    token, address = fresh
    make_offer(sku="A-1")
    settings.API_RATE_LIMIT = "3/minute"
    assert [_get(client, token, address).status_code for _ in range(3)] == [200, 200, 200]
    refused = _get(client, token, address)
    assert refused.status_code == 429
    assert refused.json()["error"] == "rate_limited"
    assert 1 <= int(refused["Retry-After"]) <= 60
    # another address with the same token is refused too: the budget is the token's
    assert _get(client, token, "192.0.2.77").status_code == 429


def test_an_address_over_its_budget_gets_429_whatever_the_token(client, settings, fresh):
    token, address = fresh
    make_offer(sku="A-1")
    settings.API_RATE_LIMIT_PER_IP = "2/minute"
    assert [_get(client, token, address).status_code for _ in range(2)] == [200, 200]
    assert _get(client, token, address).status_code == 429


def test_guessing_tokens_is_held_off_and_the_right_token_then_waits_too(client, settings, fresh):
    token, address = fresh
    make_offer(sku="A-1")
    settings.API_AUTH_FAILURE_LIMIT = "5/minute"
    assert {_get(client, f"guess-{i}", address).status_code for i in range(5)} == {401}
    assert _get(client, "guess-6", address).status_code == 429
    assert _get(client, token, address).status_code == 429       # this address is held off for the window
    assert _get(client, token, "198.51.100.9").status_code == 200  # others are not


def test_an_empty_budget_means_no_limit(client, settings, fresh):
    token, address = fresh
    make_offer(sku="A-1")
    settings.API_RATE_LIMIT = ""
    settings.API_RATE_LIMIT_PER_IP = ""
    assert {_get(client, token, address).status_code for _ in range(20)} == {200}


def test_a_budget_store_that_is_down_never_takes_the_api_down(client, settings, fresh):
    token, address = fresh
    make_offer(sku="A-1")
    settings.REDIS_URL = "redis://127.0.0.1:1/0"   # nothing listens there
    settings.API_RATE_LIMIT = "1/minute"
    assert [_get(client, token, address).status_code for _ in range(2)] == [200, 200]


def test_429_is_in_the_schema(client):
    schema = client.get("/api/v1/openapi.json").json()
    for path, operations in schema["paths"].items():
        for method, operation in operations.items():
            assert "429" in operation["responses"], (method, path)
