"""REPORT (RFC 3253 3.6): dispatch on the body's root element."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from aiohttp import web

from caldav_backend.dav.errors import DavError
from caldav_backend.dav.resource import DavNode
from caldav_backend.dav.sync import sync_collection
from caldav_backend.dav.xml import Element, dav, parse_body

from .calendar_multiget import calendar_multiget
from .calendar_query import calendar_query
from .free_busy_query import free_busy_query
from .names import cal
from .principal_search import principal_property_search, principal_search_property_set
from .tree import CalendarNode

Report = Callable[[web.Request, CalendarNode, Element], Awaitable[web.StreamResponse]]
PrincipalReport = Callable[[web.Request, DavNode, Element], Awaitable[web.StreamResponse]]


async def _sync_collection(
    request: web.Request, node: CalendarNode, root: Element
) -> web.StreamResponse:
    return await sync_collection(request, root, node)


REPORTS: dict[str, Report] = {
    cal("calendar-query"): calendar_query,
    cal("calendar-multiget"): calendar_multiget,
    cal("free-busy-query"): free_busy_query,
    dav("sync-collection"): _sync_collection,
}


# RFC 3744 9.4, 9.5: on the principals collection or a principal.
PRINCIPAL_REPORTS: dict[str, PrincipalReport] = {
    dav("principal-property-search"): principal_property_search,
    dav("principal-search-property-set"): principal_search_property_set,
}


async def report(request: web.Request, node: object) -> web.StreamResponse:
    root = parse_body(await request.read())
    if root is None:
        raise DavError(400, "REPORT needs a body naming the report")
    principal_report = PRINCIPAL_REPORTS.get(root.tag)
    if principal_report is not None and isinstance(node, DavNode):
        return await principal_report(request, node, root)
    handler = REPORTS.get(root.tag)
    if handler is None or not isinstance(node, CalendarNode):
        where = "on a calendar" if isinstance(node, CalendarNode) else "here"
        raise DavError(
            403,
            f"the report {root.tag} is not supported {where}; calendars support "
            + ", ".join(REPORTS),
            dav("supported-report"),
        )
    return await handler(request, node, root)
