"""The README's storefront API examples, run as written (bash and curl) against the site serving
the catalog `make run` syncs from its sandbox (2,000 products, seed 1, as `manage.py sandbox`
makes it). Only the host and port differ: a live test server instead of 127.0.0.1:8000."""
from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from integrations.sandbox.server import SandboxServer
from orders.models import Order

from .steps import sync

ROOT = Path(__file__).resolve().parents[2]
TOKEN = "readme-example-token"

pytestmark = pytest.mark.skipif(not (shutil.which("bash") and shutil.which("curl")), reason="needs bash and curl")


def readme_api_block() -> str:
    readme = (ROOT / "README.md").read_text()
    section = readme[readme.index("## Storefront API"):]
    return re.search(r"```sh\n(.*?)```", section, re.S).group(1)


@pytest.fixture(scope="module")
def make_run_sandbox():
    """The sandbox as `make run` starts it (its catalog defaults), without the rate limit."""
    with SandboxServer(port=0, rate_limit=False, token="sandbox-token") as server:
        yield server


@pytest.mark.django_db(transaction=True)
def test_readme_api_examples_work_as_written(make_run_sandbox, live_server, settings, tmp_path):
    settings.MOYSKLAD = {**settings.MOYSKLAD, "BASE_URL": make_run_sandbox.moysklad_base_url,
                         "TOKEN": "sandbox-token", "LOGIN": "", "PASSWORD": "", "REQUEST_WEIGHT": 1,
                         "BUDGET_UNITS": 1000, "PRICE_TYPE": ""}
    settings.STOREFRONT_API_TOKEN = TOKEN
    sync("moysklad-catalog")
    sync("moysklad-stock")

    block = readme_api_block()
    assert "127.0.0.1:8000" in block and ". var/dev.env" in block
    script = block.replace("http://127.0.0.1:8000", live_server.url)
    (tmp_path / "var").mkdir()
    (tmp_path / "var" / "dev.env").write_text(f"export STOREFRONT_API_TOKEN={TOKEN}\n")
    # Each curl also prints the status it got; nothing else about the commands changes.
    prelude = "curl() { command curl -sS -w '\\nSTATUS %{http_code}\\n' \"$@\"; }\n"
    done = subprocess.run(["bash", "-e", "-c", prelude + script], cwd=tmp_path, capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr
    statuses = re.findall(r"^STATUS (\d+)$", done.stdout, re.M)
    calls = len(re.findall(r"^curl ", script, re.M))
    assert len(statuses) == calls >= 4
    assert statuses[:-1] == ["200"] * (calls - 1), done.stdout[-2000:]
    assert statuses[-1] == "201", done.stdout[-2000:]
    order = Order.objects.get()
    assert [(line.sku, line.quantity) for line in order.lines.all()] == [("BAI-000001", 2)]
