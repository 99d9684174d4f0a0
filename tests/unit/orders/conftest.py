from tests.orders_fixtures import _fast_backoff, api, ms_respx, ms_sandbox, published, shop  # noqa: F401
