"""The server shell: lifecycle, mounting, the WSGI adapter (respx), command-line options."""
import argparse
import sys
import time

import httpx
import pytest
import respx

from integrations.sandbox.common import ApiEmulator, DroppedConnection, SandboxApp, json_response
from integrations.sandbox.moysklad import MoySkladEmulator
from integrations.sandbox.server import SandboxServer, add_arguments

from .conftest import AUTH


def test_start_is_quick_and_stop_frees_the_port():
    started = time.perf_counter()
    srv = SandboxServer(products=2000)       # the demo catalog
    srv.start()
    assert time.perf_counter() - started < 10
    url = srv.moysklad_base_url
    assert url.startswith("http://127.0.0.1:") and url.endswith("/moysklad/api/remap/1.2")
    assert httpx.get(f"{url}/entity/store", headers=AUTH).status_code == 200
    srv.stop()
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"{url}/entity/store", headers=AUTH, timeout=2)


def test_server_does_not_import_django():
    code = ("import sys; from integrations.sandbox.server import SandboxServer; "
            "s = SandboxServer(products=10).start(); s.stop(); "
            "print('django' in sys.modules)")
    import subprocess
    from pathlib import Path
    out = subprocess.run([sys.executable, "-c", code], cwd=Path(__file__).resolve().parents[3],
                         capture_output=True, text=True, timeout=60)
    assert out.stdout.strip() == "False", out.stderr


class EchoEmulator(ApiEmulator):
    """What a later emulator (Ozon, WB...) looks like: a name, routes, its own error format."""

    name = "echo"

    def __init__(self):
        super().__init__(rate_limit=False)
        self.router.add("GET", "v1/ping/{word}", lambda req: json_response({"pong": req.params["word"]}))


def test_generic_mounting(sandbox):
    sandbox.mount(EchoEmulator())
    try:
        resp = httpx.get(f"{sandbox.url}/echo/v1/ping/hi", headers=AUTH)
        assert resp.json() == {"pong": "hi"}
        assert httpx.get(f"{sandbox.url}/echo/nope", headers=AUTH).status_code == 404
        assert "echo" in httpx.get(f"{sandbox.url}/_sandbox/").json()["emulators"]
        assert sandbox.emulators["echo"].stats()["by_endpoint"] == {"v1/ping/{word}": 1, "unknown": 1}
        assert httpx.get(f"{sandbox.url}/nothing-here/x").status_code == 404
    finally:
        sandbox.app.emulators.pop("echo")


def test_wsgi_adapter_serves_respx_in_process():
    app = SandboxApp()
    emulator = app.mount(MoySkladEmulator(products=50, rate_limit=False))
    base = "https://api.moysklad.test/moysklad/api/remap/1.2"
    with respx.mock(assert_all_called=False) as router:
        router.route(host="api.moysklad.test").mock(side_effect=respx.WSGIHandler(app))
        with httpx.Client(headers=AUTH) as client:
            page = client.get(f"{base}/entity/product", params={"limit": 10}).json()
            assert len(page["rows"]) == 10
            assert page["meta"]["nextHref"].startswith(base)     # hrefs follow the mocked host
            assert client.get(f"{base}/entity/product", headers={"Accept-Encoding": "identity"}).status_code == 415
            emulator.faults.add(kind="drop")
            with pytest.raises(DroppedConnection):
                client.get(f"{base}/entity/store")


def test_command_line_defaults():
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    opts = parser.parse_args([])
    assert (opts.products, opts.variant_share, opts.port, opts.host, opts.seed, opts.stores) == \
        (2000, 0.25, 8100, "127.0.0.1", 1, 3)
    opts = parser.parse_args(["--products", "10", "--no-rate-limit", "--seed", "5", "--port", "0"])
    assert opts.products == 10 and opts.no_rate_limit and opts.seed == 5


def test_management_command_parser():
    pytest.importorskip("django")
    from integrations.management.commands.sandbox import Command

    parser = Command().create_parser("manage.py", "sandbox")
    opts = vars(parser.parse_args(["--products", "100", "--port", "8200", "--no-rate-limit"]))
    assert opts["products"] == 100 and opts["port"] == 8200 and opts["no_rate_limit"] is True
