"""Upstream emulators (the "sandbox"): MoySklad now, marketplaces later.

Run everything end to end with no credentials: ``python manage.py sandbox`` (or
``python -m integrations.sandbox.server``), or in tests::

    from integrations.sandbox.server import SandboxServer
    with SandboxServer(products=200) as srv:
        ...

Nothing in this package imports Django.
"""
