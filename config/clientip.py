"""The client's IP address, for rate limits and per-address caps.

REMOTE_ADDR is the peer that connected to us. Only when that peer is one of
settings.TRUSTED_PROXIES (addresses or networks) is X-Forwarded-For read: from its
right end, skipping the trusted proxies, the first address is the client's. Anything
a client writes into the header itself sits to the left of that and is never used.
"""

from __future__ import annotations

import ipaddress
from functools import lru_cache

from django.conf import settings
from django.http import HttpRequest

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


@lru_cache(maxsize=8)
def _networks(proxies: tuple[str, ...]) -> tuple[Network, ...]:
    return tuple(ipaddress.ip_network(p.strip(), strict=False) for p in proxies if p.strip())


def _parse(value: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(value.strip())
    except ValueError:
        return None


def _trusted(address, networks: tuple[Network, ...]) -> bool:
    return any(address in network for network in networks)


def client_ip(request: HttpRequest) -> str:
    """The client's address as a string ("" when REMOTE_ADDR is empty or not an IP)."""
    peer = _parse(request.META.get("REMOTE_ADDR", "") or "")
    if peer is None:
        return ""
    networks = _networks(tuple(settings.TRUSTED_PROXIES))
    if not networks or not _trusted(peer, networks):
        return str(peer)
    client = peer
    for hop in reversed(request.META.get("HTTP_X_FORWARDED_FOR", "").split(",")):
        address = _parse(hop)
        if address is None:
            break  # a malformed hop: trust nothing to its left
        client = address
        if not _trusted(address, networks):
            break
    return str(client)


def client_ip_for_scope(scope: dict) -> str:
    """The same for an ASGI connection scope (the chat socket): the peer is scope["client"],
    X-Forwarded-For comes from its headers, and the same rule decides which to believe."""
    client = scope.get("client") or ("", 0)
    forwarded = [
        value.decode("latin-1") for name, value in scope.get("headers") or [] if name.lower() == b"x-forwarded-for"
    ]
    request = HttpRequest()
    request.META = {"REMOTE_ADDR": client[0] or "", "HTTP_X_FORWARDED_FOR": ",".join(forwarded)}
    return client_ip(request)
