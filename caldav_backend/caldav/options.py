"""OPTIONS: what the server speaks (RFC 4918 10.1, RFC 4791 5.1, RFC 6638 2)."""

from __future__ import annotations

from aiohttp import web

# Class 1 and 3 WebDAV (no locking: class 2 would promise LOCK), CalDAV and
# WebDAV sync; "access-control" is left out as ACL changes are not offered.
# calendar-auto-schedule: the server schedules the objects clients write
# (implicit scheduling, Schedule-Tag, If-Schedule-Tag-Match; RFC 6638 2).
DAV_HEADER = "1, 3, calendar-access, calendar-auto-schedule"
ALLOW = "OPTIONS, GET, HEAD, PUT, DELETE, PROPFIND, PROPPATCH, REPORT, MKCALENDAR, MKCOL, POST"


async def options(request: web.Request) -> web.Response:
    del request
    return web.Response(status=200, headers={"DAV": DAV_HEADER, "Allow": ALLOW})
