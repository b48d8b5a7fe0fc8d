"""The calendar-multiget REPORT (RFC 4791 7.9): named objects in one answer,
a 404 response for each name that is not there. The answer is built off the
event loop (calendar-data may expand recurrences), and an object too large
to expand answers 507 on its own (``expansion``)."""

from __future__ import annotations

from collections.abc import Callable
from urllib.parse import unquote, urlsplit

from aiohttp import web

from caldav_backend.dav.errors import DavError
from caldav_backend.dav.multistatus import (
    PropRequest,
    multistatus,
    node_response,
    status_response,
)
from caldav_backend.dav.xml import Element, children_named, dav
from gateway.core.errors import ExpansionLimit

from .expansion import off_loop, too_large_response
from .filters import parse_data_request
from .names import CALENDAR_DATA, calendar_href
from .tree import CalendarNode, ObjectNode

MAX_HREFS = 10_000


def _member_name(href: str, collection: str) -> str | None:
    """The object name an href points at inside ``collection``, else None.
    Clients send paths or absolute URLs, percent-encoded either way."""
    path = urlsplit(href.strip()).path
    if not path.startswith(collection):
        return None
    rest = path[len(collection) :]
    if not rest or "/" in rest:
        return None
    try:
        return unquote(rest, errors="strict")
    except UnicodeDecodeError:
        return None


async def calendar_multiget(
    request: web.Request, node: CalendarNode, root: Element
) -> web.Response:
    hrefs = [(h.text or "").strip() for h in children_named(root, dav("href"))]
    if not hrefs:
        raise DavError(400, "calendar-multiget needs at least one DAV:href")
    if len(hrefs) > MAX_HREFS:
        raise DavError(403, f"ask for at most {MAX_HREFS} objects at a time")
    props = PropRequest.from_parent(root)
    data_request = parse_data_request(props.requested.get(CALENDAR_DATA))
    ctx = node.ctx
    resource_id = node.resource.id
    collection = calendar_href(resource_id)
    names = {href: _member_name(href, collection) for href in hrefs}
    wanted = [name for name in names.values() if name is not None]
    found = {obj.href: obj for obj in await ctx.repository.get_many(resource_id, wanted)}

    def responses(stopped: Callable[[], bool]) -> list[Element]:
        answered: list[Element] = []
        for href, name in names.items():
            if stopped():
                break  # the client is gone
            obj = found.get(name) if name is not None else None
            if obj is None:
                answered.append(status_response(href, 404))
                continue
            node = ObjectNode(ctx, resource_id, obj, data_request=data_request)
            try:
                answered.append(node_response(node, props))
            except ExpansionLimit as error:
                answered.append(too_large_response(node.href, error))
        return answered

    return multistatus(await off_loop(responses))
