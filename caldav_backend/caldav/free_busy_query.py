"""The free-busy-query REPORT (RFC 4791 7.10): a VFREEBUSY for a time range,
answered as text/calendar (not multistatus). Recurring objects are expanded
off the event loop; one too large to expand within the ``limits`` settings
makes the answer 507 (RFC 4918 11.5): a VFREEBUSY without its busy time
would tell the client the time is free."""

from __future__ import annotations

from aiohttp import web

from caldav_backend.dav.errors import DavError
from caldav_backend.dav.xml import Element, child_named
from gateway.core.errors import ExpansionLimit
from gateway.core.service import MAX_QUERY_WINDOW
from gateway.web.responses import ReleasingResponse

from .expansion import MAX_INSTANCES, off_loop
from .filters import parse_time_range
from .names import cal
from .tree import CalendarNode


async def free_busy_query(request: web.Request, node: CalendarNode, root: Element) -> web.Response:
    found = child_named(root, cal("time-range"))
    if found is None:
        raise DavError(400, "free-busy-query needs a CALDAV:time-range (RFC 4791 7.10)")
    time_range = parse_time_range(found)
    if time_range.start is None or time_range.end is None:
        raise DavError(400, "the free-busy time-range needs both start and end")
    window = time_range.as_span()
    if window.end - window.start > MAX_QUERY_WINDOW:
        raise DavError(
            403,
            f"ask for at most {MAX_QUERY_WINDOW.days} days of free/busy time at once",
            cal("max-date-time"),
        )
    ctx = node.ctx
    objects = await ctx.repository.in_span(node.resource.id, window, blocking_only=True)
    try:
        body = await off_loop(lambda stopped: ctx.queries.freebusy(objects, window))
    except ExpansionLimit as error:
        raise DavError(507, error.message, MAX_INSTANCES) from None
    return ReleasingResponse(
        body=body.encode("utf-8"), content_type="text/calendar", charset="utf-8"
    )
