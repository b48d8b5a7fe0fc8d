"""Whether a browser's request comes from our own pages, by its ``Origin``
header (RFC 6454; browsers send it with every POST, Fetch standard): the
one rule behind the booker pages' and the console's cross-site refusals."""

from __future__ import annotations

from collections.abc import Iterable
from urllib.parse import urlsplit


def same_origin(origin_header: str | None, own_urls: Iterable[str]) -> bool:
    """Whether a POST with this ``Origin`` may come from our own pages:
    ``own_urls`` are the server's addresses (``server.public_url``, and for
    the console also the one the request was sent to, which a browser cannot
    be made to forge in a cross-site request). No header: not sent by a
    browser form (curl, a test, a mail client's own request), allowed; what
    else the request needs (a CSRF token, a signed link) still applies."""
    if origin_header is None:
        return True
    given = origin_of(origin_header)
    return given is not None and any(given == origin_of(url) for url in own_urls)


def origin_of(url: str) -> tuple[str, str, int] | None:
    """(scheme, host, port) of a URL or serialized origin (RFC 6454 4), with
    the scheme's default port filled in; None for "null" or anything else
    that names no origin."""
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError:
        return None
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https") or not parts.hostname:
        return None
    return scheme, parts.hostname.lower(), port or (443 if scheme == "https" else 80)
