"""The client's address, believing ``X-Forwarded-For`` only from the proxies the config names.

uvicorn's own ``proxy_headers`` trusts the header from 127.0.0.1 by default, so anything local
(an SSH tunnel, a sidecar) could name any address it liked and slip past the login lockout. The
desk runs uvicorn with proxy headers off and uses this middleware instead: with
``[admin] trusted_proxies`` empty (the default) the header is ignored; otherwise, when the peer
is a trusted proxy, the client is the right-most address in the header that is not one.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable

from starlette.types import ASGIApp, Receive, Scope, Send

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def networks(entries: Iterable[str]) -> tuple[Network, ...]:
    return tuple(ipaddress.ip_network(entry, strict=False) for entry in entries)


def _trusted(address: str, trusted: tuple[Network, ...]) -> bool:
    try:
        ip = ipaddress.ip_address(address.strip())
    except ValueError:
        return False
    return any(ip in network for network in trusted)


def client_address(peer: str, forwarded_for: str | None, trusted: tuple[Network, ...]) -> str:
    """Who is really asking: ``peer`` unless it is a trusted proxy that says otherwise."""
    if not forwarded_for or not _trusted(peer, trusted):
        return peer
    hops = [hop.strip() for hop in forwarded_for.split(",") if hop.strip()]
    for hop in reversed(hops):
        if not _trusted(hop, trusted):
            return hop[:64]
    return hops[0][:64] if hops else peer


class TrustedProxies:
    """Rewrites the ASGI scope's client from ``X-Forwarded-For`` when its peer is trusted."""

    def __init__(self, app: ASGIApp, trusted: Iterable[str] = ()) -> None:
        self.app = app
        self.trusted = networks(trusted)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and self.trusted and scope.get("client"):
            host, port = scope["client"]
            header = next((v.decode("latin-1") for k, v in scope.get("headers", ()) if k == b"x-forwarded-for"), None)
            found = client_address(host, header, self.trusted)
            if found != host:
                scope = {**scope, "client": (found, port)}
        await self.app(scope, receive, send)
