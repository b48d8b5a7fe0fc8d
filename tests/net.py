"""Loopback networking for tests."""

from __future__ import annotations

import socket

import aiohttp

LOOPBACK = "127.0.0.1"


def free_port() -> int:
    """A port nobody listens on right now (the kernel's pick for port 0)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((LOOPBACK, 0))
        return int(sock.getsockname()[1])


def from_address(address: str) -> aiohttp.ClientSession:
    """An HTTP client whose connections come from ``address`` (any of
    127.0.0.0/8 on Linux loopback): for behaviour that depends on the
    client's address. Use as ``async with from_address("127.0.0.2") as http``."""
    return aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(local_addr=(address, 0), limit=0),
        timeout=aiohttp.ClientTimeout(total=60),
    )
