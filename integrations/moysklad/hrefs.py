"""Is this link one of MoySklad's? The one check every place that follows a MoySklad link uses.

A webhook notification carries only links (`meta.href`, `reportUrl`), and our Authorization header
goes wherever we follow them, so a link is followed only when it points exactly at the configured
`MOYSKLAD_BASE_URL`: the same scheme, host and port, a path under the base path. The link is parsed,
never prefix-matched as a string, and anything that could make two parsers disagree about where it
leads is refused outright rather than normalised: user info, backslashes, control characters or
whitespace, non-ASCII, a fragment, percent-escapes in the path (`%2e%2e`, `%2f`, double escapes),
and empty, `.` or `..` segments. MoySklad's own links never contain any of these.
"""
from __future__ import annotations

import re
from urllib.parse import urlsplit

DEFAULT_PORTS = {"http": 80, "https": 443}
MAX_HREF = 4096
_SEGMENT = re.compile(r"[A-Za-z0-9._~-]+")
_FORBIDDEN = re.compile(r"[\x00-\x1f\x7f\\#]|[^\x00-\x7f]")
_ID = re.compile(r"[A-Za-z0-9-]{1,64}")   # MoySklad ids are UUIDs; bindings keep 64 characters


def _origin(parts) -> tuple[str, str, int] | None:
    try:
        port = parts.port
    except ValueError:
        return None
    scheme = parts.scheme.lower()
    if scheme not in DEFAULT_PORTS or not parts.hostname:
        return None
    return scheme, parts.hostname, port if port is not None else DEFAULT_PORTS[scheme]


def href_relative(href: object, base_url: str) -> str | None:
    """The part of `href` after the base path (`/entity/product/…?…`) when `href` points at the
    MoySklad API configured as `base_url`; None for anything else. A space in the query (MoySklad
    writes `changedSince=2026-11-23 19:14:32` unescaped) is returned escaped."""
    if not isinstance(href, str) or not href or len(href) > MAX_HREF or _FORBIDDEN.search(href):
        return None
    path_part, _, query = href.partition("?")
    if " " in path_part:
        return None
    target, base = urlsplit(path_part), urlsplit(base_url)
    if target.username is not None or target.password is not None or "@" in target.netloc:
        return None
    host_port = target.netloc.rsplit(":", 1)
    if len(host_port) == 2 and not host_port[1].isdigit():
        return None  # "host:" or "host:x": refuse what urlsplit would read as the default port
    origin = _origin(target)
    if origin is None or origin != _origin(base):
        return None
    base_path = base.path.rstrip("/")
    if not target.path.startswith(base_path + "/"):
        return None
    rest = target.path[len(base_path):]
    segments = rest.split("/")[1:]
    if not segments or any(s in ("", ".", "..") or not _SEGMENT.fullmatch(s) for s in segments):
        return None
    return rest + (f"?{query.replace(' ', '%20')}" if query else "")


def entity_ref(href: object, base_url: str) -> tuple[str, str] | None:
    """`(entity type, id)` when `href` is exactly `BASE/entity/<type>/<id>` (no query) under the
    configured base: what a webhook event names. The id is safe to put in a `filter=id=…`."""
    rest = href_relative(href, base_url)
    if rest is None or "?" in rest:
        return None
    segments = rest.split("/")[1:]
    if len(segments) != 3 or segments[0] != "entity" or not _ID.fullmatch(segments[2]):
        return None
    return segments[1], segments[2]
