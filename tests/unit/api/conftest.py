import pytest

TOKEN = "test-storefront-token"


@pytest.fixture
def api_token(settings):
    settings.STOREFRONT_API_TOKEN = TOKEN
    return TOKEN


@pytest.fixture
def api(client, api_token):
    """The Django test client, authenticated as the storefront."""
    client.defaults["HTTP_AUTHORIZATION"] = f"Bearer {api_token}"
    return client
