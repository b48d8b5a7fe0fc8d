"""The calendar-query REPORT (RFC 4791 7.8).

Candidates come from the store's time index when the filter bounds time,
read as ``QueriedObject`` (what a query needs, not the booking), then the
query engine checks each one; the common "events in this week"
query on non-recurring objects never parses a single object. A page of
those holding little text is answered on the event loop; any other page is
checked off it (recurring objects are expanded), and an object too large to
expand answers 507 on its own (``expansion``)."""

from __future__ import annotations

import functools
from collections.abc import AsyncGenerator, Callable, Sequence
from contextlib import aclosing

from aiohttp import web

from caldav_backend.dav.multistatus import (
    PropRequest,
    ResponseFormatter,
    multistatus,
    response_text,
    stream_multistatus,
)
from caldav_backend.dav.xml import Element
from gateway.core.errors import ExpansionLimit
from gateway.core.query import CompFilter, QueriedObject

from .expansion import off_loop, too_large_response
from .filters import parse_data_request, parse_filter
from .names import CALENDAR_DATA, object_href
from .tree import CalendarNode, ObjectNode

# Components a stored object can hold (RFC 4791 4.1: one type per object,
# and this gateway stores events only).
_STORED = frozenset({"VEVENT", "VTIMEZONE"})

# Characters of calendar data a page may hold and still be answered on the
# event loop (escaping them takes about a millisecond); more go to a worker.
ON_LOOP_TEXT = 256 * 1024


def _can_match(query: CompFilter) -> bool:
    """False when the filter asks for a component no stored object has
    (Thunderbird asks every calendar for VTODOs)."""
    return all(c.name in _STORED or c.is_not_defined for c in query.comp_filters)


def _going_on() -> bool:
    """``stopped`` for work on the loop: a cancelled request stops at its
    next await, not inside a page."""
    return False


async def calendar_query(
    request: web.Request, node: CalendarNode, root: Element
) -> web.StreamResponse:
    query = parse_filter(root)
    props = PropRequest.from_parent(root)
    data_request = parse_data_request(props.requested.get(CALENDAR_DATA))
    if not _can_match(query):
        return multistatus([])
    ctx = node.ctx
    resource_id = node.resource.id

    formatter = ResponseFormatter(props)  # one for all the pages
    matches = ctx.queries.matcher(query)  # and one filter

    def responses(candidates: Sequence[QueriedObject], stopped: Callable[[], bool]) -> bytes:
        found: list[str] = []
        for obj in candidates:
            if stopped():
                break  # the client is gone
            try:
                if matches(obj):
                    node = ObjectNode(ctx, resource_id, obj, data_request=data_request)
                    found.append(formatter.text(node))
            except ExpansionLimit as error:
                href = object_href(resource_id, obj.href)
                found.append(response_text(too_large_response(href, error)))
        return "".join(found).encode("utf-8")

    # Read and answered a page at a time: without a time bound ("every
    # VEVENT", as iOS and DAVx5 ask) or with a window of years, the
    # candidates are the whole calendar.
    candidates = ctx.repository.iter_candidates(resource_id, query.index_window())

    # A page that parses nothing and holds little text is answered on the
    # loop: its work (a span test and escaping the text, well under a
    # millisecond for a week's page) costs less than the hop to a worker
    # thread and back.
    plain = query.plain_time_range() is not None and data_request.expand is None

    def light(page: Sequence[QueriedObject]) -> bool:
        return (
            plain
            and not any(obj.recurring for obj in page)
            and sum(len(obj.ics) for obj in page) <= ON_LOOP_TEXT
        )

    async def pages() -> AsyncGenerator[bytes]:
        async with aclosing(candidates):
            async for page in candidates:
                if light(page):
                    yield responses(page, _going_on)
                else:
                    yield await off_loop(functools.partial(responses, page))

    return await stream_multistatus(request, [], pages())
