"""Big answers do not stay in memory on idle keep-alive connections."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from aiohttp import web
from aiohttp.web_response import ContentCoding

from gateway.web.responses import ReleasingResponse, releasing_json
from tests.conftest import AppClient

BODY = b"x" * 300_000


def _app(sent: list[web.Response]) -> web.Application:
    async def listing(request: web.Request) -> web.Response:
        response = ReleasingResponse(body=BODY, content_type="text/plain")
        if request.query.get("gzip"):
            response.enable_compression(ContentCoding.gzip)
        sent.append(response)
        return response

    async def document(request: web.Request) -> web.Response:
        response = releasing_json({"items": ["a"] * 1000}, status=201, headers={"X-N": "1"})
        sent.append(response)
        return response

    app = web.Application()
    app.router.add_get("/listing", listing)
    app.router.add_get("/document", document)
    return app


async def test_the_body_is_sent_whole_then_let_go(
    aiohttp_client: Callable[[web.Application], Awaitable[AppClient]],
) -> None:
    sent: list[web.Response] = []
    client = await aiohttp_client(_app(sent))
    for query in ("", "?gzip=1"):
        async with client.get(f"/listing{query}") as reply:
            assert reply.status == 200
            assert await reply.read() == BODY
        # The connection stays open (keep-alive) and aiohttp still holds the
        # response object; its body is gone.
        assert sent[-1].body is None
    assert reply.headers.get("Content-Encoding") == "gzip"


async def test_json_answers_keep_status_headers_and_content(
    aiohttp_client: Callable[[web.Application], Awaitable[AppClient]],
) -> None:
    sent: list[web.Response] = []
    client = await aiohttp_client(_app(sent))
    async with client.get("/document") as reply:
        assert reply.status == 201
        assert reply.headers["X-N"] == "1"
        assert reply.content_type == "application/json"
        assert await reply.json() == {"items": ["a"] * 1000}
    assert sent[-1].body is None
