"""The floor: the smallest aiohttp server, answering every GET with a fixed small body.

    .venv/bin/python -m bench.floor --port 8123

Started by ``bench.side_by_side`` as a process of its own, hit by the same
client as the CalDAV servers: what a request costs that does nothing but go
through aiohttp and the loopback. A GET with ``If-None-Match`` naming its
ETag is answered 304, like a conditional GET of a calendar object.
"""

from __future__ import annotations

import argparse

from aiohttp import web

BODY = b"BEGIN:VCALENDAR\r\nVERSION:2.0\r\nEND:VCALENDAR\r\n"
ETAG = '"floor"'


async def handle(request: web.Request) -> web.Response:
    if request.headers.get("If-None-Match") == ETAG:
        return web.Response(status=304, headers={"ETag": ETAG})
    return web.Response(body=BODY, content_type="text/calendar", headers={"ETag": ETAG})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    app = web.Application()
    app.router.add_get("/{tail:.*}", handle)
    web.run_app(app, host=args.host, port=args.port, print=None, access_log=None)


if __name__ == "__main__":
    main()
