"""Every connection has a deadline and the connections are capped (issue 12
item 4): raw sockets against a real ``calgateway serve``, small settings
(half-second deadlines, caps of a few connections), bounded counts.

The decisions (admission, the cap that fits the open-file limit) are also
tested as tables, without sockets.
"""

from __future__ import annotations

import asyncio
import contextlib
import resource
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from gateway.web.connections import (
    FILES_RESERVED,
    Admission,
    Caps,
    admission,
    connection_cap,
    oversized,
)
from tests.caldav.dav import ADMIN, propfind_body
from tests.conftest import API_TOKEN, settings_yaml
from tests.rawhttp import Conn, connect, request_head
from tests.serving import Served, serving

DEADLINE = 0.5  # head_timeout and body_timeout in these tests
# aiohttp also closes a connection that sent no whole head within
# keepalive_timeout; longer here, so that head_timeout is the one seen.
KEEPALIVE = 1.0
# How late past a deadline the cut may come (timers, a loaded test machine).
SLACK = 1.5
FAST = 0.1  # /healthz from a fresh connection while the caps hold others off
API = {"Authorization": f"Bearer {API_TOKEN}", "Content-Type": "application/json"}


def _config(tmp_path: Path, server: str) -> Path:
    path = tmp_path / "gateway.yaml"
    path.write_text(
        settings_yaml(tmp_path / "db.sqlite3", mail=False, server=server), encoding="utf-8"
    )
    return path


@pytest.fixture
async def deadlines(tmp_path: Path) -> AsyncIterator[Served]:
    server = (
        f"  head_timeout: {DEADLINE}\n"
        f"  body_timeout: {DEADLINE}\n"
        f"  keepalive_timeout: {KEEPALIVE}\n"
    )
    async with serving(_config(tmp_path, server)) as served:
        yield served


@contextlib.asynccontextmanager
async def opened(port: int, count: int, source: str = "127.0.0.1") -> AsyncIterator[list[Conn]]:
    conns = [await connect(port, source=source) for _ in range(count)]
    try:
        yield conns
    finally:
        await asyncio.gather(*(c.close() for c in conns))


async def _healthz(port: int, source: str) -> float:
    """Seconds from connecting to a 200 from /healthz, on a fresh connection."""
    started = time.monotonic()
    conn = await connect(port, source=source)
    try:
        await conn.send(request_head("GET", "/healthz", {"Connection": "close"}))
        answer = await conn.answer(within=5)
    finally:
        await conn.close()
    assert answer.status == 200
    return answer.at - started


# --------------------------------------------------------------------------- deadlines


async def test_a_head_trickled_byte_by_byte_gets_408_at_head_timeout(deadlines: Served) -> None:
    conn = await connect(deadlines.port)

    async def trickle() -> None:  # slowloris: a header line every 50 ms, never the end
        await conn.send("GET /healthz HTTP/1.1\r\nHost: gateway.test\r\n")
        for n in range(200):
            await conn.send(f"X-Slow-{n}: 1\r\n")
            await asyncio.sleep(0.05)

    sender = asyncio.create_task(trickle())
    try:
        answer = await conn.answer(within=DEADLINE + SLACK)
        assert answer.status == 408
        assert answer.headers["connection"] == "close"
        assert answer.at - conn.opened < DEADLINE + SLACK
        assert await conn.closed_by_server(within=SLACK)
    finally:
        sender.cancel()
        await conn.close()


async def test_a_silent_connection_is_closed_at_head_timeout(deadlines: Served) -> None:
    conn = await connect(deadlines.port)
    try:
        assert await conn.closed_by_server(within=DEADLINE + SLACK)
    finally:
        await conn.close()


async def test_an_idle_keepalive_connection_is_closed_at_keepalive_timeout(
    deadlines: Served,
) -> None:
    conn = await connect(deadlines.port)
    try:
        await conn.send(request_head("GET", "/healthz"))
        assert (await conn.answer()).status == 200
        answered = time.monotonic()
        assert await conn.closed_by_server(within=KEEPALIVE + SLACK)
        assert time.monotonic() - answered >= KEEPALIVE * 0.8
    finally:
        await conn.close()


async def test_the_rest_of_an_unread_body_is_not_taken_for_a_slow_head(tmp_path: Path) -> None:
    """A request answered before its body was read (here a 401) leaves the
    body's bytes to arrive on an idle keep-alive connection; they are not a
    head, so no 408 is written for a request the client never made (it would
    read that 408 as the answer to its next request)."""
    server = f"  head_timeout: {DEADLINE}\n  keepalive_timeout: 30\n"
    async with serving(_config(tmp_path, server)) as served:
        conn = await connect(served.port)
        try:
            body = b'{"resource": "anna"}'
            headers = {"Content-Type": "application/json", "Content-Length": str(len(body))}
            await conn.send(request_head("POST", "/api/v1/bookings", headers))
            assert (await conn.answer()).status == 401
            await conn.send(body)
            assert not await conn.closed_by_server(within=DEADLINE + SLACK)
            await conn.send(request_head("GET", "/healthz"))
            assert (await conn.answer()).status == 200
        finally:
            await conn.close()


async def test_a_keepalive_connection_after_a_report_keeps_to_keepalive_timeout(
    tmp_path: Path,
) -> None:
    """aiohttp reparses its buffer by calling data_received(b"") while a
    request is handled; that is no next head, so the idle connection after
    the answer is not cut (with a 408 nobody asked for) at head_timeout."""
    server = f"  head_timeout: {DEADLINE}\n  keepalive_timeout: 30\n"
    async with serving(_config(tmp_path, server)) as served:
        conn = await connect(served.port)
        try:
            body = propfind_body("D:getetag").encode()
            headers = {**ADMIN, "Depth": "1", "Content-Type": "application/xml"}
            headers["Content-Length"] = str(len(body))
            await conn.send(
                request_head("PROPFIND", "/dav/calendars/anna/", headers).encode() + body
            )
            assert (await conn.answer()).status == 207
            # Reads the rest of the (chunked) answer; the server must not close.
            assert not await conn.closed_by_server(within=DEADLINE + SLACK)
        finally:
            await conn.close()


@pytest.mark.parametrize(
    ("framing", "start"),
    [
        ({"Content-Length": "1000"}, b'{"resource": "anna",'),  # lying Content-Length
        ({"Transfer-Encoding": "chunked"}, b"14\r\n" + b'{"resource": "anna",' + b"\r\n"),
    ],
    ids=["lying-content-length", "endless-chunked"],
)
async def test_a_body_that_never_ends_gets_408_at_body_timeout(
    deadlines: Served, framing: dict[str, str], start: bytes
) -> None:
    conn = await connect(deadlines.port)
    try:
        await conn.send(request_head("POST", "/api/v1/bookings", {**API, **framing}))
        sent = time.monotonic()
        await conn.send(start)
        answer = await conn.answer(within=DEADLINE + SLACK)
        assert answer.status == 408
        assert answer.at - sent < DEADLINE + SLACK
        assert answer.headers["connection"] == "close"
        assert await conn.closed_by_server(within=SLACK)
    finally:
        await conn.close()


@pytest.mark.parametrize(
    ("method", "path", "headers"),
    [
        ("POST", "/api/v1/bookings", API),
        ("PUT", "/dav/calendars/anna/big.ics", {"Content-Type": "text/calendar"}),
        ("GET", "/healthz", {}),
    ],
    ids=["api", "caldav", "healthz"],
)
async def test_a_content_length_over_max_body_bytes_gets_413_before_the_body_is_sent(
    deadlines: Served, method: str, path: str, headers: dict[str, str]
) -> None:
    conn = await connect(deadlines.port)
    try:
        # Only the head: the client would send 2 MB once told to go on.
        await conn.send(request_head(method, path, {**headers, "Content-Length": "2000000"}))
        answer = await conn.answer(within=DEADLINE)
        assert answer.status == 413
        assert b"max_body_bytes" in answer.body
        assert await conn.closed_by_server(within=DEADLINE)
    finally:
        await conn.close()


# --------------------------------------------------------------------------- caps


async def test_beyond_the_per_address_cap_new_connections_get_503_and_others_are_served(
    tmp_path: Path,
) -> None:
    config = _config(tmp_path, "  max_connections_per_address: 5\n  head_timeout: 30\n")
    async with serving(config) as server, opened(server.port, 5) as held:
        for conn in held:  # all five are counted before the sixth comes
            await conn.send("GET /healthz HTTP/1.1\r\n")
        refused = await connect(server.port)
        try:
            answer = await refused.answer(within=1)
            assert answer.status == 503
            assert await refused.closed_by_server(within=1)
        finally:
            await refused.close()
        assert await _healthz(server.port, source="127.0.0.2") < FAST


async def test_at_the_total_cap_idle_connections_make_room_for_new_ones(tmp_path: Path) -> None:
    """Idle sockets (the attack that used to take every file descriptor) fill
    the cap; a fresh connection is still served, at once."""
    config = _config(tmp_path, "  max_connections: 10\n  head_timeout: 30\n")
    async with serving(config) as server, opened(server.port, 10, source="127.0.0.3") as idle:
        for conn in idle:
            await conn.send("GET /healthz HTTP/1.1\r\n")  # slowloris, half a head
        # The kernel hands connections over in order: all ten are counted now.
        assert await _healthz(server.port, source="127.0.0.2") < FAST
        # The one closed to make room (the longest idle) was told why.
        cut = await asyncio.gather(*(c.closed_by_server(within=0.5) for c in idle))
        assert cut == [True] + [False] * 9


async def test_at_the_total_cap_of_working_connections_new_ones_get_503(tmp_path: Path) -> None:
    config = _config(tmp_path, "  max_connections: 10\n  body_timeout: 30\n")
    async with serving(config) as server, opened(server.port, 10, source="127.0.0.5") as busy:
        for conn in busy:  # each waits for its body: working, not idle
            head = {**API, "Content-Length": "50", "Expect": "100-continue"}
            await conn.send(request_head("POST", "/api/v1/bookings", head))
            assert (await conn.answer()).status == 100  # its handler runs
        refused = await connect(server.port, source="127.0.0.6")
        try:
            answer = await refused.answer(within=1)
            assert answer.status == 503
        finally:
            await refused.close()


async def test_the_open_file_limit_is_raised_and_a_cap_that_cannot_fit_is_lowered(
    tmp_path: Path,
) -> None:
    def low_soft_limit() -> None:  # in the child, before exec
        resource.setrlimit(resource.RLIMIT_NOFILE, (FILES_RESERVED + 40, 4096))

    async with serving(_config(tmp_path, ""), preexec=low_soft_limit) as server:
        limits = Path(f"/proc/{server.process.pid}/limits").read_text()  # noqa: ASYNC240
        soft = next(line for line in limits.splitlines() if line.startswith("Max open files"))
        assert soft.split()[3] == "4096"
        assert not [e for e in server.entries if e["msg"].startswith("max_connections lowered")]

    def low_hard_limit() -> None:
        resource.setrlimit(resource.RLIMIT_NOFILE, (FILES_RESERVED + 40, FILES_RESERVED + 40))

    async with serving(_config(tmp_path, ""), preexec=low_hard_limit) as server:
        lowered = await server.wait_for_log(
            lambda e: e["msg"] == "max_connections lowered to fit the open-file limit"
        )
        assert (lowered["max_connections"], lowered["effective"]) == (1000, 40)


# --------------------------------------------------------------------------- decisions


@pytest.mark.parametrize(
    ("caps", "total", "from_address", "idle", "expected"),
    [
        (Caps(10, 3), 0, 0, 0, Admission.ADMIT),
        (Caps(10, 3), 9, 2, 0, Admission.ADMIT),
        (Caps(10, 3), 5, 3, 5, Admission.REFUSE_ADDRESS),  # its share, whatever is free
        (Caps(10, 0), 5, 500, 0, Admission.ADMIT),  # 0: no per-address cap
        (Caps(10, 3), 10, 0, 4, Admission.EVICT_IDLE),
        (Caps(10, 3), 10, 0, 0, Admission.REFUSE_TOTAL),  # all working: nothing to close
        (Caps(10, 3), 10, 3, 4, Admission.REFUSE_ADDRESS),  # no evicting for a greedy address
    ],
)
def test_admission(
    caps: Caps, total: int, from_address: int, idle: int, expected: Admission
) -> None:
    assert admission(caps, open_total=total, open_from_address=from_address, idle=idle) is expected


@pytest.mark.parametrize(
    ("max_connections", "file_limit", "expected"),
    [
        (1000, 20000, 1000),
        (1000, 1024, 1024 - FILES_RESERVED),  # the attack's limit: room kept for the rest
        (100, 1024, 100),
        (1000, FILES_RESERVED, 1),  # absurdly low limit: still one
    ],
)
def test_connection_cap_fits_the_open_file_limit(
    max_connections: int, file_limit: int, expected: int
) -> None:
    assert connection_cap(max_connections, file_limit) == expected


@pytest.mark.parametrize(
    ("length", "limit", "expected"),
    [(None, 1024, False), (1024, 1024, False), (1025, 1024, True), (0, 1024, False)],
)
def test_oversized(length: int | None, limit: int, expected: bool) -> None:
    assert oversized(length, limit) is expected
