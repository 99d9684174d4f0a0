from tests.unit.moysklad.support import ms  # noqa: F401
