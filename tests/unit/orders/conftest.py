from tests.orders_fixtures import _fast_backoff, api, fake_ms, published, shop  # noqa: F401
