"""GET and HEAD of a calendar object: the text exactly as stored."""

from __future__ import annotations

from email.utils import format_datetime

from aiohttp import web

from caldav_backend.dav.conditions import precondition_from
from caldav_backend.dav.errors import DavError

from .tree import DavContext, Target


async def get_object(request: web.Request, ctx: DavContext, target: Target) -> web.Response:
    if target.kind != "object" or target.resource is None or target.name is None:
        raise DavError(
            405,
            "only calendar objects can be fetched with GET; use PROPFIND or REPORT here",
            headers={"Allow": "OPTIONS, PROPFIND, REPORT"},
        )
    obj = await ctx.repository.get_by_href(target.resource.id, target.name)
    if obj is None:
        raise DavError(404, f"no calendar object {target.name!r} in {target.resource.id!r}")
    headers = {
        "ETag": obj.etag,
        "Last-Modified": format_datetime(obj.booking.updated, usegmt=True),
        # RFC 6638 3.2.10: what the next If-Schedule-Tag-Match names.
        "Schedule-Tag": obj.schedule_tag,
    }
    condition = precondition_from(request.headers)
    if condition.if_none_match is not None and not condition.holds(obj.etag):
        # RFC 9110 13.1.2: for GET/HEAD a matching If-None-Match is "not modified".
        return web.Response(status=304, headers=headers)
    return web.Response(
        body=obj.ics.encode("utf-8"),
        content_type="text/calendar",
        charset="utf-8",
        headers=headers,
    )
