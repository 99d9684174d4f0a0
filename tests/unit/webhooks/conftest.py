from tests.orders_fixtures import _fast_backoff, api, ms_respx, published, shop  # noqa: F401
