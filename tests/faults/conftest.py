from tests.orders_fixtures import _fast_backoff, published  # noqa: F401  (fixtures)
