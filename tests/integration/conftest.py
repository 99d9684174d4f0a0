import pytest


def pytest_collection_modifyitems(config, items):
    """Everything under tests/integration/ carries the `integration` marker (-m "not integration")."""
    for item in items:
        if "integration" in item.path.parts and "tests" in item.path.parts:
            item.add_marker(pytest.mark.integration)
