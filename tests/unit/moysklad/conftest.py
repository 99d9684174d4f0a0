from .support import fast_backoff, isolated_limiters, ms  # noqa: F401
