"""Outbound safety for URLs that come from data (a supplier's API or feed URL typed into the admin).

Such a URL must not make the server reach itself or its network: loopback, private, link-local
(the cloud metadata service at 169.254.169.254 among them), carrier-grade NAT, multicast and
reserved addresses are refused, whatever name points at them, and so is a redirect to one. Only
http and https. `OUTBOUND_ALLOW_PRIVATE` lifts the address check (the sandbox runs on 127.0.0.1).

`GuardedTransport` checks every request it sends (each redirect hop is a request of its own), so
a client built on it cannot be talked into an internal address by a redirect. The check resolves
the host just before the connection is made; the connection resolves it again, so a DNS server
that answers differently within that instant (rebinding) is not covered: a supplier host is set by
a manager, not by a visitor, and the refusal guards against mistakes and hostile feed redirects.
"""
from __future__ import annotations

import ipaddress
import socket

import httpx
from django.conf import settings

from .errors import SyncError

SCHEMES = {"http", "https"}
#: addresses refused even if a future Python calls them global
METADATA = {ipaddress.ip_address("169.254.169.254"), ipaddress.ip_address("fd00:ec2::254"),
            ipaddress.ip_address("100.100.100.200")}


class OutboundRefused(SyncError):
    """The URL may not be fetched (scheme, or an internal address). Never retried."""


def _resolve(host: str, port: int) -> list[str]:
    """The addresses `host` resolves to (tests replace this)."""
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return [info[4][0] for info in infos]


def address_allowed(address: str) -> bool:
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.is_global and not ip.is_multicast and ip not in METADATA


def allow_private() -> bool:
    return bool(getattr(settings, "OUTBOUND_ALLOW_PRIVATE", False))


def check_url(url: str | httpx.URL) -> None:
    """Raise OutboundRefused unless `url` is http(s) on a public address (or the setting is on).
    A host that does not resolve raises httpx.ConnectError, as connecting would."""
    url = httpx.URL(str(url)) if not isinstance(url, httpx.URL) else url
    if url.scheme not in SCHEMES:
        raise OutboundRefused(f"only http and https URLs are fetched, not {url.scheme or 'a relative URL'!r}")
    host = url.host
    if not host:
        raise OutboundRefused("the URL has no host")
    if allow_private():
        return
    try:
        addresses = [str(ipaddress.ip_address(host))]
    except ValueError:
        try:
            addresses = _resolve(host, url.port or (443 if url.scheme == "https" else 80))
        except (socket.gaierror, UnicodeError, OSError) as exc:
            raise httpx.ConnectError(f"cannot resolve {host}: {exc}") from exc
    bad = [a for a in addresses if not address_allowed(a)]
    if bad or not addresses:
        raise OutboundRefused(
            f"{host} resolves to an internal address ({', '.join(bad) or 'none'}): refused; set "
            f"OUTBOUND_ALLOW_PRIVATE=1 only if this server should reach its own network")


class GuardedTransport(httpx.HTTPTransport):
    """httpx transport that refuses internal addresses before connecting (every hop)."""

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        check_url(request.url)
        return super().handle_request(request)


def guarded_client(*, timeout: float, follow_redirects: bool = False, max_redirects: int = 3,
                   headers: dict | None = None) -> httpx.Client:
    return httpx.Client(transport=GuardedTransport(), timeout=httpx.Timeout(timeout, connect=min(10.0, timeout)),
                        follow_redirects=follow_redirects, max_redirects=max_redirects, headers=headers or {})
