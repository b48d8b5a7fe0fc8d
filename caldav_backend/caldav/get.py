"""GET and HEAD of a calendar object: the text exactly as stored."""

from __future__ import annotations

from email.utils import format_datetime

from aiohttp import web

from caldav_backend.dav.conditions import precondition_from
from caldav_backend.dav.errors import DavError
from gateway.core.model import StoredText

from .tree import DavContext, Target


async def get_object(request: web.Request, ctx: DavContext, target: Target) -> web.Response:
    if target.kind != "object" or target.resource is None or target.name is None:
        raise DavError(
            405,
            "only calendar objects can be fetched with GET; use PROPFIND or REPORT here",
            headers={"Allow": "OPTIONS, PROPFIND, REPORT"},
        )
    condition = precondition_from(request.headers)
    # A conditional GET reads the validators first: when it ends in 304 the
    # text is never read (RFC 9110 13.1.2).
    conditional = condition.if_none_match is not None
    stored = await _read(ctx, target.resource.id, target.name, with_text=not conditional)
    if conditional:
        if not condition.holds(stored.etag):
            # RFC 9110 13.1.2: for GET/HEAD a matching If-None-Match is "not modified".
            return web.Response(status=304, headers=_validators(stored))
        # Changed since the client's copy: the text as it is now, with the
        # validators of that version.
        stored = await _read(ctx, target.resource.id, target.name, with_text=True)
    return web.Response(
        body=(stored.ics or "").encode("utf-8"),
        content_type="text/calendar",
        charset="utf-8",
        headers=_validators(stored),
    )


async def _read(ctx: DavContext, resource_id: str, name: str, *, with_text: bool) -> StoredText:
    stored = await ctx.repository.stored_text(resource_id, name, with_text=with_text)
    if stored is None:
        raise DavError(404, f"no calendar object {name!r} in {resource_id!r}")
    return stored


def _validators(stored: StoredText) -> dict[str, str]:
    return {
        "ETag": stored.etag,
        "Last-Modified": format_datetime(stored.updated, usegmt=True),
        # RFC 6638 3.2.10: what the next If-Schedule-Tag-Match names.
        "Schedule-Tag": stored.schedule_tag,
    }
