"""The calendar-query REPORT (RFC 4791 7.8).

Candidates come from the store's time index when the filter bounds time,
read as ``QueriedObject`` (what a query needs, not the booking), then the
query engine checks each one; the common "events in this week"
query on non-recurring objects never parses a single object. A page holding
little text whose every answer is known without parsing (single events, or
recurring ones whose answer to this filter the engine kept) is answered on
the event loop; any other page is checked off it (recurring objects are
expanded), and an object too large to expand answers 507 on its own
(``expansion``)."""

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
from .names import CALENDAR_DATA, member_href
from .tree import CalendarNode, Listing, ObjectNode

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
    known = ctx.queries.known_matcher(query)
    # What every member shares (the calendar's href, the caller's principal
    # href, write access), worked out once instead of once a member.
    listing = Listing.of(ctx, resource_id)

    def response(obj: QueriedObject) -> str:
        node = ObjectNode(ctx, resource_id, obj, data_request=data_request, listing=listing)
        return formatter.text(node)

    def responses(candidates: Sequence[QueriedObject], stopped: Callable[[], bool]) -> bytes:
        found: list[str] = []
        for obj in candidates:
            if stopped():
                break  # the client is gone
            try:
                if matches(obj):
                    found.append(response(obj))
            except ExpansionLimit as error:
                href = member_href(listing.calendar_href, obj.href)
                found.append(response_text(too_large_response(href, error)))
        return "".join(found).encode("utf-8")

    # Read and answered a page at a time: without a time bound ("every
    # VEVENT", as iOS and DAVx5 ask) or with a window of years, the
    # candidates are the whole calendar.
    candidates = ctx.repository.iter_candidates(resource_id, query.index_window())

    # A page that parses nothing and holds little text is answered on the
    # loop: its work (a span test or a kept answer per object, and escaping
    # the text: well under a millisecond for a week's page) costs less than
    # the hop to a worker thread and back. What bounds it is the text alone:
    # nothing in it is parsed or expanded, whatever the recurrence rules.
    # Expanded data parses every object (RFC 4791 9.6.5), a limited
    # recurrence set every recurring one (9.6.6).
    expands = data_request.expand is not None
    limited = data_request.limit_recurrence_set is not None

    def on_loop(page: Sequence[QueriedObject]) -> bytes | None:
        """The page's answer when nothing in it needs parsing, else None."""
        if expands or sum(len(obj.ics) for obj in page) > ON_LOOP_TEXT:
            return None
        answers = [None if limited and obj.recurring else known(obj) for obj in page]
        if None in answers:
            return None  # to a worker
        found = [response(obj) for obj, yes in zip(page, answers, strict=True) if yes]
        return "".join(found).encode("utf-8")

    async def pages() -> AsyncGenerator[bytes]:
        async with aclosing(candidates):
            async for page in candidates:
                answer = on_loop(page)
                if answer is None:
                    answer = await off_loop(functools.partial(responses, page))
                yield answer

    return await stream_multistatus(request, [], pages())
