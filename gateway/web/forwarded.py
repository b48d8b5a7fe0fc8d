"""The client's address behind trusted reverse proxies (``server.trusted_proxies``).

Behind a reverse proxy every connection comes from the proxy, so whatever is
counted per client address (password backoff, the fairness of password
checks, the access log) would count every client as one: ten wrong guesses
by one attacker would lock everybody out of signing in. A proxy says whom it
forwards for in ``X-Forwarded-For`` (each proxy appends the address it got
the request from). That header is only believed when the connection comes
from a configured proxy: anyone else could write anything in it.

``client_address`` walks the header from the right, past the trusted
proxies, and takes the first address that is not one of them (as nginx's
``real_ip_recursive on`` does); the middleware hands that address on as
``request.remote``. Connection caps (``gateway.web.connections``) still count
the connection's own peer: that is what holds the sockets.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Sequence

from aiohttp import web
from aiohttp.typedefs import Handler, Middleware

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
Address = ipaddress.IPv4Address | ipaddress.IPv6Address

# Where the middleware leaves the client's address for the access log, which
# aiohttp hands the request as it came in (before any middleware's clone).
CLIENT_ADDRESS = web.RequestKey("client_address", str)


def parse_networks(values: Iterable[str]) -> tuple[Network, ...]:
    """Addresses or CIDR networks (``10.0.0.0/8``); ValueError names a bad one."""
    return tuple(ipaddress.ip_network(value.strip(), strict=False) for value in values)


def _address(text: str) -> Address | None:
    """An IP address as a proxy writes it: bare, ``[v6]``, or ``v4:port``."""
    text = text.strip()
    if text.startswith("[") and "]" in text:
        text = text[1 : text.index("]")]
    elif text.count(":") == 1:
        text = text.partition(":")[0]
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        return None
    # A dual-stack listener sees IPv4 peers as ::ffff:a.b.c.d.
    mapped = address.ipv4_mapped if isinstance(address, ipaddress.IPv6Address) else None
    return mapped or address


def _trusted(address: Address, trusted: Sequence[Network]) -> bool:
    return any(address in network for network in trusted)


def client_address(
    peer: str | None, forwarded_for: Sequence[str], trusted: Sequence[Network]
) -> str | None:
    """The client's address: the connection's ``peer`` unless it is a trusted
    proxy, else the rightmost ``X-Forwarded-For`` entry that is not a trusted
    proxy. An entry that is not an address ends the walk at the last trusted
    hop: nothing left of it can be believed."""
    peer_address = _address(peer) if peer is not None else None
    if peer_address is None or not _trusted(peer_address, trusted):
        return peer
    hops = [hop for value in forwarded_for for hop in value.split(",") if hop.strip()]
    found = str(peer_address)
    for hop in reversed(hops):
        address = _address(hop)
        if address is None:
            return found
        found = str(address)
        if not _trusted(address, trusted):
            return found
    return found


def forwarded_middleware(trusted: Sequence[Network]) -> Middleware:
    """Hands on the client's address behind ``trusted`` proxies as ``request.remote``."""

    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        address = client_address(
            request.remote, request.headers.getall("X-Forwarded-For", []), trusted
        )
        if address is None or address == request.remote:
            return await handler(request)
        request[CLIENT_ADDRESS] = address
        return await handler(request.clone(remote=address))

    return middleware
