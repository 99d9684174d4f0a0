"""Container healthchecks (docker-compose.yml): `python -m syncsite.healthcheck web|worker|beat`.

- web: GET /health/ on this container answers JSON at all (200, or 503 naming a *dependency*
  that is down: the web process itself is up). Sent with a Host from ALLOWED_HOSTS so the check
  passes Django's host validation; /health/ is exempt from the https redirect.
- worker: this container's worker (`celery@<hostname>`) wrote its heartbeat within 90 s.
- beat: this container's beat (`<hostname>`) did.
Exit 0 when healthy, 1 (with the reason on stderr) when not."""
from __future__ import annotations

import json
import os
import socket
import sys
import urllib.error
import urllib.request

DEFAULT_URL = "http://127.0.0.1:8000/health/"


def _host_header() -> str:
    for host in (h.strip() for h in os.environ.get("ALLOWED_HOSTS", "").split(",")):
        if host and host != "*":
            return host.lstrip(".")
    return "localhost"


def check_web(url: str = DEFAULT_URL) -> tuple[bool, str]:
    request = urllib.request.Request(url, headers={"Host": _host_header(), "Accept": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return True, response.read().decode()
    except urllib.error.HTTPError as exc:
        body = exc.read().decode(errors="replace")
        try:
            json.loads(body)
        except ValueError:
            return False, f"{exc.code}: {body[:200]}"
        return exc.code == 503, body
    except OSError as exc:
        return False, f"no answer: {exc}"


def check_process(kind: str, name: str | None = None) -> tuple[bool, str]:
    import django

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "syncsite.settings")
    django.setup()
    from syncsite.heartbeat import STALE_AFTER, heartbeat_age

    name = name or (f"celery@{socket.gethostname()}" if kind == "worker" else socket.gethostname())
    age = heartbeat_age(kind=kind, name=name)
    if age is None:
        return False, f"{kind} {name}: no heartbeat yet"
    if age > STALE_AFTER:
        return False, f"{kind} {name}: last heartbeat {int(age.total_seconds())} s ago"
    return True, f"{kind} {name}: ok"


def main(argv: list[str]) -> int:
    if len(argv) < 2 or argv[1] not in ("web", "worker", "beat"):
        print("usage: python -m syncsite.healthcheck web [URL] | worker [NAME] | beat [NAME]", file=sys.stderr)
        return 2
    kind, extra = argv[1], (argv[2] if len(argv) > 2 else None)
    ok, detail = check_web(extra or DEFAULT_URL) if kind == "web" else check_process(kind, extra)
    print(detail, file=sys.stdout if ok else sys.stderr)
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main(sys.argv))
