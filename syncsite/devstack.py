"""`make run`: the whole stack on one machine with embedded defaults.

Migrates, creates an admin user, starts the sandbox emulators (unless real MoySklad credentials
are configured), web, a Celery worker and beat, queues the first catalog and stock sync, prints
where to look, and stops everything on Ctrl-C. SQLite and kombu's filesystem broker: no servers."""
from __future__ import annotations

import json
import os
import secrets
import shlex
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

BASE = Path(__file__).resolve().parent.parent
VAR = BASE / "var"
STATE = VAR / "devstack.json"
DEV_ENV = VAR / "dev.env"
PY = sys.executable


def _state() -> dict:
    VAR.mkdir(exist_ok=True)
    state = json.loads(STATE.read_text()) if STATE.exists() else {}
    changed = False
    for key, make in (("admin_password", lambda: secrets.token_urlsafe(9)),
                      ("storefront_token", lambda: secrets.token_urlsafe(24)),
                      ("webhook_token", lambda: secrets.token_urlsafe(24)),
                      ("onec_webhook_token", lambda: secrets.token_urlsafe(24))):
        if key not in state:
            state[key], changed = make(), True
    if changed:
        STATE.write_text(json.dumps(state, indent=2))
        STATE.chmod(0o600)
    return state


def _dotenv() -> dict:
    """Values from .env count as configuration, just as the settings read them."""
    values = {}
    path = BASE / ".env"
    if path.exists():
        for line in path.read_text().splitlines():
            line = line.strip()
            if line and not line.startswith("#") and "=" in line:
                k, v = line.split("=", 1)
                values[k.strip()] = v.strip().strip('"').strip("'")
    return values


def sandbox_env(url: str) -> dict:
    """Settings that point every upstream at the sandbox emulators (sandbox credentials)."""
    return {
        "MOYSKLAD_BASE_URL": f"{url}/moysklad/api/remap/1.2",
        "MOYSKLAD_TOKEN": "sandbox-token",
    }


def _write_dev_env(values: dict) -> None:
    """var/dev.env: the settings this stack runs with, for another shell of the same checkout
    (`. var/dev.env`, then `python manage.py sync --list` or the README's curl examples see the same
    database, token and sandbox). Rewritten on every start; never read by the settings themselves."""
    lines = ["# Written by `make run`: the settings of the running development stack. In another shell:",
             "#   . var/dev.env", ""]
    lines += [f"export {key}={shlex.quote(value)}" for key, value in sorted(values.items())]
    # `python manage.py ...` and `celery ...` as the README writes them: this stack's interpreter.
    lines.append(f'export PATH={shlex.quote(str(Path(PY).parent))}:"$PATH"')
    DEV_ENV.write_text("\n".join(lines) + "\n")
    DEV_ENV.chmod(0o600)


def _wait_port(host: str, port: int, timeout: float = 60.0) -> bool:
    deadline = time.time() + timeout
    while time.time() < deadline:
        with socket.socket() as s:
            s.settimeout(0.5)
            if s.connect_ex((host, port)) == 0:
                return True
        time.sleep(0.2)
    return False


def main() -> int:
    state = _state()
    host = os.environ.get("DEVSTACK_HOST", "127.0.0.1")
    web_port = int(os.environ.get("DEVSTACK_PORT", "8000"))
    sandbox_port = int(os.environ.get("SANDBOX_PORT", "8100"))
    sandbox_products = os.environ.get("SANDBOX_PRODUCTS", "2000")
    configured = {**_dotenv(), **os.environ}
    real_moysklad = bool(configured.get("MOYSKLAD_TOKEN") or configured.get("MOYSKLAD_LOGIN"))
    sandbox_url = f"http://{host}:{sandbox_port}"

    env = dict(os.environ)
    env.setdefault("DEBUG", "1")
    env.setdefault("SITE_URL", f"http://{host}:{web_port}")
    env.setdefault("ALLOWED_HOSTS", "localhost,127.0.0.1")
    env.setdefault("STOREFRONT_API_TOKEN", configured.get("STOREFRONT_API_TOKEN") or state["storefront_token"])
    env.setdefault("MOYSKLAD_WEBHOOK_TOKEN", configured.get("MOYSKLAD_WEBHOOK_TOKEN") or state["webhook_token"])
    env.setdefault("ONEC_WEBHOOK_TOKEN", configured.get("ONEC_WEBHOOK_TOKEN") or state["onec_webhook_token"])
    env.setdefault("PYTHONUNBUFFERED", "1")
    # The shop's managers work in Russian: the admin speaks it unless the browser asks for English
    # (or the header's switch says otherwise).
    env.setdefault("LANGUAGE_CODE", "ru")
    if not real_moysklad:
        for key, value in sandbox_env(sandbox_url).items():
            env.setdefault(key, value)
        from integrations.sandbox.channels import settings_for  # the marketplace emulators (stock)
        env.update({k: v for k, v in settings_for(sandbox_url, configured).items() if k not in env})
        # 1C: the sandbox's HTTP stock service, and the exchange credentials its player uses.
        from integrations.sandbox.onec import settings_for as onec_settings_for
        if not (configured.get("ONEC_BASE_URL") or configured.get("ONEC_EXCHANGE_LOGIN")):
            env.update({k: v for k, v in onec_settings_for(sandbox_url).items() if k not in env})
        # The order loop (issue 3): the sandbox places a demo order through the storefront API once
        # the catalog is synced, and a scripted manager moves orders along every 30 s.
        env.setdefault("SANDBOX_MANAGER_INTERVAL", "30")
        # Marketplace orders: the sandbox's buyers place an Ozon, WB or YM order every 45 s in turn.
        env.setdefault("SANDBOX_MARKETPLACE_ORDERS_INTERVAL", "45")
        env.setdefault("SANDBOX_DEMO_SITE_URL", env["SITE_URL"])
        env.setdefault("SANDBOX_DEMO_API_TOKEN", env["STOREFRONT_API_TOKEN"])
        # Demo dropshipping suppliers live in the sandbox on 127.0.0.1: let supplier URLs reach it.
        env.setdefault("OUTBOUND_ALLOW_PRIVATE", "1")

    _write_dev_env({k: v for k, v in env.items() if os.environ.get(k) != v and k != "PYTHONUNBUFFERED"})

    def manage(*args: str) -> None:
        subprocess.run([PY, "manage.py", *args], cwd=BASE, env=env, check=True)

    print("==> migrating", flush=True)
    manage("migrate", "--noinput", "-v", "0")
    subprocess.run([PY, "manage.py", "shell", "-c", (
        "from django.contrib.auth import get_user_model as g; U=g();"
        "u=U.objects.filter(username='admin').first() or U(username='admin', email='admin@localhost');"
        "u.is_staff=u.is_superuser=True; u.set_password(%r); u.save()") % state["admin_password"]],
        cwd=BASE, env=env, check=True)

    if not real_moysklad:  # two demo suppliers (api and cp1251 CSV) carrying demo goods
        from integrations.sandbox.suppliers import demo_suppliers

        for args in demo_suppliers(sandbox_url):
            subprocess.run([PY, "manage.py", *args], cwd=BASE, env=env, check=False)

    procs: list[tuple[str, subprocess.Popen]] = []

    def start(name: str, cmd: list[str]) -> None:
        procs.append((name, subprocess.Popen(cmd, cwd=BASE, env=env, start_new_session=True)))

    if not real_moysklad:
        start("sandbox", [PY, "manage.py", "sandbox", "--host", host, "--port", str(sandbox_port),
                          "--products", sandbox_products])
        if not _wait_port(host, sandbox_port):
            print("sandbox did not start", file=sys.stderr)
            return _stop(procs, 1)
    start("web", [PY, "manage.py", "runserver", f"{host}:{web_port}", "--noreload"])
    start("worker", [PY, "-m", "celery", "-A", "syncsite", "worker", "-P", "threads", "-c", "4",
                     "-l", "info", "-n", "devstack@%h"])
    start("beat", [PY, "-m", "celery", "-A", "syncsite", "beat", "-l", "info",
                   "-s", str(VAR / "celerybeat-schedule")])
    if not _wait_port(host, web_port):
        print("web did not start", file=sys.stderr)
        return _stop(procs, 1)
    if not real_moysklad and env.get("ONEC_EXCHANGE_LOGIN") and not configured.get("ONEC_EXCHANGE_LOGIN"):
        # Plays 1C's "Обмен с сайтом" against /1c/exchange/ once the catalog is in, then every 10 min.
        start("1c-exchange", [PY, "manage.py", "onec_exchange_play", "--wait-for-catalog", "600",
                              "--every", os.environ.get("SANDBOX_ONEC_EXCHANGE_EVERY", "600")])

    if not real_moysklad:  # the sandbox notifies the site of order changes (real accounts: see README)
        subprocess.run([PY, "manage.py", "moysklad_webhooks", "register"], cwd=BASE, env=env, check=False)

    # The first sync happens by itself: catalog, then stock (stock needs the offers).
    subprocess.run([PY, "manage.py", "shell", "-c", (
        "from celery import chain; from integrations.tasks import run_job_task as t;"
        "chain(t.si('moysklad-catalog', trigger='startup'), t.si('moysklad-stock', trigger='startup'),"
        " t.si('onec-stock', trigger='startup'),"
        " t.si('supplier-stock', full=True, trigger='startup')).delay()")],
        cwd=BASE, env=env, check=False)

    site = env["SITE_URL"]
    print(f"""
==> SyncSite is running
    admin:             {site}/admin/   login: admin   password: {state['admin_password']}
    storefront API:    {site}/api/v1/products   (Authorization: Bearer {env['STOREFRONT_API_TOKEN']})
    API docs:          {site}/api/v1/docs
    health:            {site}/health/
    MoySklad webhook:  {site}/webhooks/moysklad/{env['MOYSKLAD_WEBHOOK_TOKEN']}/
    1C webhook:        {site}/webhooks/1c/stock/   (Authorization: Bearer {env['ONEC_WEBHOOK_TOKEN']})
    1C exchange:       {site}/1c/exchange/   login: {env.get('ONEC_EXCHANGE_LOGIN') or '(set ONEC_EXCHANGE_LOGIN)'}
    sandbox:           {sandbox_url if not real_moysklad else 'off (real MoySklad credentials configured)'}
    try:  curl -H 'Authorization: Bearer {env['STOREFRONT_API_TOKEN']}' {site}/api/v1/products?limit=3
    another shell:     . var/dev.env   (these settings: python manage.py sync --list, the README's curl examples)
    Ctrl-C stops everything.
""", flush=True)

    stopping = {"flag": False}

    def _signal(signum, frame):
        stopping["flag"] = True

    signal.signal(signal.SIGINT, _signal)
    signal.signal(signal.SIGTERM, _signal)
    while not stopping["flag"]:
        for name, proc in procs:
            if proc.poll() is not None:
                print(f"{name} exited with {proc.returncode}; stopping the stack", file=sys.stderr)
                return _stop(procs, 1)
        time.sleep(0.5)
    return _stop(procs, 0)


def _stop(procs, code: int) -> int:
    for _name, proc in reversed(procs):
        if proc.poll() is None:
            try:
                os.killpg(proc.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
    deadline = time.time() + 15
    for _name, proc in procs:
        try:
            proc.wait(timeout=max(0.1, deadline - time.time()))
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
    return code


if __name__ == "__main__":
    os.chdir(BASE)
    sys.path.insert(0, str(BASE))
    raise SystemExit(main())
