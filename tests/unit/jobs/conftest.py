import pytest


@pytest.fixture
def ms(sandbox_respx):
    """MoySklad: the sandbox in-process (tests/sandbox_respx.py), an empty catalog, two stores."""
    return sandbox_respx.moysklad
