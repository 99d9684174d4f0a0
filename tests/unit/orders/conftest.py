from tests.orders_fixtures import _fast_backoff, api, fake_ms, ms_respx, ms_sandbox, published, shop  # noqa: F401
