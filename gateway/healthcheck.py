"""``calgateway healthcheck --config FILE``: is the server of this settings
file up? For container health checks (docker/Dockerfile's HEALTHCHECK), so
that the check follows ``server.host`` and ``server.port`` instead of
repeating them.

GET /healthz on the configured address (a wildcard address such as 0.0.0.0
or :: is asked on loopback) with a short timeout; healthy is a 200 answer.
One line on stderr says why not. Plain HTTP from this host: it does not go
through ``server.base_url`` (a proxy or TLS in front is not this process).
"""

from __future__ import annotations

import http.client
import ipaddress

from gateway.settings import Settings

TIMEOUT_S = 3.0


def probe_address(settings: Settings) -> tuple[str, int]:
    """Where to ask: the listening host (loopback for a wildcard) and port."""
    host = settings.server.host
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return host, settings.server.port  # a name, e.g. localhost
    if address.is_unspecified:
        host = "::1" if address.version == 6 else "127.0.0.1"
    return host, settings.server.port


def check(settings: Settings, timeout_s: float = TIMEOUT_S) -> str | None:
    """None when /healthz answers 200 within ``timeout_s``; else why not."""
    host, port = probe_address(settings)
    connection = http.client.HTTPConnection(host, port, timeout=timeout_s)
    try:
        connection.request("GET", "/healthz", headers={"Connection": "close"})
        response = connection.getresponse()
        response.read(4096)
        if response.status != 200:
            return f"http://{host}:{port}/healthz answered {response.status} {response.reason}"
        return None
    except (OSError, http.client.HTTPException) as exc:
        return f"http://{host}:{port}/healthz: {exc or type(exc).__name__}"
    finally:
        connection.close()
