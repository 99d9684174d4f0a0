from tests.orders_fixtures import _fast_backoff, api, fake_ms, ms_respx, published, shop  # noqa: F401
