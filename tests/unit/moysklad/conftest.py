from .support import ms  # noqa: F401
