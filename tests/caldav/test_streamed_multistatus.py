"""A multistatus sent page by page: failures before the first byte get a
proper error answer; later ones cut the connection instead of passing off a
short listing as whole."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncGenerator, Awaitable, Callable, Sequence

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from aiohttp.typedefs import Handler
from lxml import etree

from caldav_backend.dav import multistatus
from caldav_backend.dav.errors import DavError
from caldav_backend.dav.multistatus import status_response, stream_multistatus
from caldav_backend.dav.xml import Element
from tests.conftest import AppClient

NS = {"D": "DAV:"}


def _app(fail_after_pages: int | None) -> web.Application:
    async def pages() -> AsyncGenerator[Sequence[Element]]:
        for n in range(3):
            if n == fail_after_pages:
                raise DavError(503, "storage went away")
            yield [status_response(f"/c/{n}-{k}.ics", 200) for k in range(2)]

    async def listing(request: web.Request) -> web.StreamResponse:
        return await stream_multistatus(request, [status_response("/c/", 200)], pages())

    @web.middleware
    async def dav_errors(request: web.Request, handler: Handler) -> web.StreamResponse:
        try:
            return await handler(request)
        except DavError as error:
            return error.response()

    app = web.Application(middlewares=[dav_errors])
    app.router.add_get("/c/", listing)
    return app


Client = Callable[[web.Application], Awaitable[AppClient]]


async def test_every_page_arrives_in_one_well_formed_document(aiohttp_client: Client) -> None:
    client = await aiohttp_client(_app(fail_after_pages=None))
    async with client.get("/c/") as reply:
        assert reply.status == 207
        body = await reply.read()
    hrefs = [h.text for h in etree.fromstring(body).findall("D:response/D:href", NS)]
    assert hrefs == [
        "/c/",
        "/c/0-0.ics",
        "/c/0-1.ics",
        "/c/1-0.ics",
        "/c/1-1.ics",
        "/c/2-0.ics",
        "/c/2-1.ics",
    ]


async def test_a_failure_before_the_first_page_is_a_proper_error(aiohttp_client: Client) -> None:
    client = await aiohttp_client(_app(fail_after_pages=0))
    async with client.get("/c/") as reply:
        assert reply.status == 503
        assert b"storage went away" in await reply.read()


async def test_a_failure_after_the_first_page_cuts_the_connection(aiohttp_client: Client) -> None:
    client = await aiohttp_client(_app(fail_after_pages=2))
    async with client.get("/c/") as reply:
        assert reply.status == 207
        with pytest.raises(aiohttp.ClientPayloadError):
            await reply.read()


async def test_a_client_that_stops_reading_is_cut_off_and_the_listing_closed(
    aiohttp_server: Callable[[web.Application], Awaitable[TestServer]],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A stalled reader must not hold the listing (and its database
    snapshot) for ever."""
    monkeypatch.setattr(multistatus, "PAGE_SEND_TIMEOUT", 0.2)
    sent_pages: list[int] = []
    closed = asyncio.Event()

    async def pages() -> AsyncGenerator[Sequence[Element]]:
        try:
            for n in range(200):  # about 60 MB in all: far more than socket buffers
                sent_pages.append(n)
                yield [status_response(f"/c/{n}-{k}-{'x' * 200}.ics", 200) for k in range(1000)]
        finally:
            closed.set()

    async def listing(request: web.Request) -> web.StreamResponse:
        return await stream_multistatus(request, [], pages())

    app = web.Application()
    app.router.add_get("/c/", listing)
    server = await aiohttp_server(app)
    with socket.socket() as stalled:
        stalled.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        stalled.connect((server.host, server.port))
        stalled.sendall(b"GET /c/ HTTP/1.1\r\nHost: x\r\n\r\n")  # and never read
        async with asyncio.timeout(30):
            await closed.wait()
    assert len(sent_pages) < 200


def _big_page(n: int) -> list[Element]:
    return [status_response(f"/c/{n}-{k}-{'x' * 200}.ics", 200) for k in range(1000)]


async def _serve_listing(
    aiohttp_server: Callable[[web.Application], Awaitable[TestServer]],
    pages: Callable[[], AsyncGenerator[Sequence[Element]]],
    tail: Sequence[Element],
    finished: asyncio.Event,
) -> TestServer:
    async def listing(request: web.Request) -> web.StreamResponse:
        try:
            return await stream_multistatus(request, [], pages(), tail)
        finally:
            finished.set()

    app = web.Application()
    app.router.add_get("/c/", listing)
    return await aiohttp_server(app)


def _small_window_socket(server: TestServer) -> socket.socket:
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.connect((server.host, server.port))
    sock.sendall(b"GET /c/ HTTP/1.1\r\nHost: x\r\n\r\n")
    return sock


async def test_a_client_that_stops_reading_at_the_end_is_cut_off_too(
    aiohttp_server: Callable[[web.Application], Awaitable[TestServer]],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The last write (write_eof) also waits for the client: it has the same
    bound as every page, or a reader that stops at the end holds the
    request (and its heavy-request slot) as long as the socket lives."""
    monkeypatch.setattr(multistatus, "PAGE_SEND_TIMEOUT", 0.2)
    finished = asyncio.Event()

    async def pages() -> AsyncGenerator[Sequence[Element]]:
        yield [status_response("/c/small.ics", 200)]

    tail = [response for n in range(20) for response in _big_page(n)]  # about 6 MB
    server = await _serve_listing(aiohttp_server, pages, tail, finished)
    with _small_window_socket(server):  # and never read
        async with asyncio.timeout(10):
            await finished.wait()


async def test_a_reader_that_trickles_is_cut_off_at_the_stream_deadline(
    aiohttp_server: Callable[[web.Application], Awaitable[TestServer]],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Each page taken just in time must not stretch one answer to
    pages x PAGE_SEND_TIMEOUT: the whole answer has its own deadline."""
    monkeypatch.setattr(multistatus, "STREAM_TIMEOUT", 0.5)
    finished = asyncio.Event()
    sent_pages: list[int] = []

    async def pages() -> AsyncGenerator[Sequence[Element]]:
        for n in range(200):  # about 60 MB: minutes at the pace read below
            sent_pages.append(n)
            yield _big_page(n)

    server = await _serve_listing(aiohttp_server, pages, (), finished)
    sock = _small_window_socket(server)
    reader, writer = await asyncio.open_connection(sock=sock)
    try:
        async with asyncio.timeout(10):
            while not finished.is_set():
                if not await reader.read(4096):
                    break
                await asyncio.sleep(0.005)  # pacing the reader, not waiting for an outcome
            await finished.wait()
    finally:
        writer.close()
    assert len(sent_pages) < 200
