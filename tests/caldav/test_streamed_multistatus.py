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
