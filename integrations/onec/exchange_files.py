"""Where the exchange keeps 1C's uploads: one folder per session under var/onec-exchange/ (or
ONEC_EXCHANGE_DIR), a file per upload name. Names come from 1C's query string, so they are
reduced to a safe file name; nothing can point outside the session's folder."""
from __future__ import annotations

import hashlib
import re
import shutil
from pathlib import Path

from django.conf import settings

from syncsite.env import VAR_DIR

_SAFE = re.compile(r"[^0-9A-Za-z._-]")


def root() -> Path:
    configured = settings.ONEC.get("EXCHANGE_DIR") or ""
    return Path(configured) if configured else VAR_DIR / "onec-exchange"


def session_dir(session_id: int) -> Path:
    return root() / f"session-{int(session_id)}"


def clean_name(filename: str) -> str | None:
    """1C's `filename` (`offers.xml`, `import_files/ab/cd.jpg`) -> a flat, safe name, or None
    when it names nothing usable (empty, or `..` tricks)."""
    name = (filename or "").replace("\\", "/").strip()
    if not name or name.startswith("/") or any(part in ("", ".", "..") for part in name.split("/")):
        return None
    flat = _SAFE.sub("_", name.replace("/", "__"))
    if len(flat) > 120:
        flat = flat[:80] + "-" + hashlib.sha256(name.encode()).hexdigest()[:16]
    return flat


def upload_path(session_id: int, filename: str) -> Path:
    flat = clean_name(filename) or "invalid"
    return session_dir(session_id) / flat


def session_remove(session_id: int) -> None:
    shutil.rmtree(session_dir(session_id), ignore_errors=True)
