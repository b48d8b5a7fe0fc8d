"""Loopback networking for tests."""

from __future__ import annotations

import itertools
import os
import random
import socket
from collections.abc import Iterator

import aiohttp

LOOPBACK = "127.0.0.1"

# The ports ``free_port`` hands out lie below the kernel's ephemeral range
# (Linux: 32768-60999; macOS: 49152 and up), where the kernel picks a port
# for a bind to port 0 and for outgoing connections: so no server that let
# the kernel choose can take a port a test picked and has not bound yet
# (or, like the closed SMTP port of tests.conftest, never binds). Each
# pytest-xdist worker (PYTEST_XDIST_WORKER=gw0, gw1, ...) has a block of its
# own, so two workers running side by side never pick the same port.
FIRST_PORT = 20000
BLOCK = 1000
BLOCKS = 12  # 20000-31999


def _worker_block() -> range:
    worker = os.environ.get("PYTEST_XDIST_WORKER", "gw0")
    index = int(worker[2:]) if worker[2:].isdigit() else 0
    start = FIRST_PORT + BLOCK * (index % BLOCKS)
    return range(start, start + BLOCK)


def _candidates() -> Iterator[int]:
    """Round the block, so that a port is not picked again soon after a test
    let it go (a closed server's port may linger in TIME_WAIT), from a
    random start: two test runs at once on one machine (not workers of one
    run) then do not walk the same ports in step."""
    block = _worker_block()
    start = random.randrange(len(block))
    return itertools.cycle([*block[start:], *block[:start]])


_CANDIDATES = _candidates()


def free_port() -> int:
    """A loopback port nobody listens on right now, from this worker's block."""
    for _ in range(BLOCK):
        port = next(_CANDIDATES)
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            try:
                sock.bind((LOOPBACK, port))
            except OSError:
                continue  # taken, or still in TIME_WAIT: try the next one
            return port
    raise OSError(f"no free loopback port in {_worker_block()}")


def from_address(address: str) -> aiohttp.ClientSession:
    """An HTTP client whose connections come from ``address`` (any of
    127.0.0.0/8 on Linux loopback): for behaviour that depends on the
    client's address. Use as ``async with from_address("127.0.0.2") as http``."""
    return aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(local_addr=(address, 0), limit=0),
        timeout=aiohttp.ClientTimeout(total=60),
    )
