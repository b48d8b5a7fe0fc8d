"""The CalDAV sub-application, mounted at ``/dav/`` by ``gateway.app``.

One catch-all route: WebDAV methods are many and its URL space is a tree the
config defines, so the path is resolved here (``caldav.tree.resolve``) and
the method picks the handler, one module each.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from functools import partial

from aiohttp import web

from gateway.core.errors import StorageFull
from gateway.core.ports import CalendarQuerying, CalendarStore
from gateway.core.service import BookingService
from gateway.web.admission import admitted
from gateway.web.auth import Authenticator, Principal, SignInRefused
from gateway.web.keys import (
    AUTHENTICATOR,
    BOOKINGS,
    CALENDAR_QUERIES,
    REPOSITORY,
    SETTINGS,
    bind_at_start,
)

from .caldav.delete import delete
from .caldav.get import get_object
from .caldav.mkcalendar import refuse_new_collection
from .caldav.names import DAV_ROOT
from .caldav.options import ALLOW, options
from .caldav.put import put_object
from .caldav.report import report
from .caldav.schedule_outbox import schedule_post
from .caldav.tree import (
    CalendarNode,
    DavContext,
    HomeNode,
    ObjectNode,
    PrincipalNode,
    PrincipalsNode,
    RootNode,
    ScheduleInboxNode,
    ScheduleOutboxNode,
    Target,
    resolve,
)
from .dav.errors import DavError, insufficient_storage
from .dav.propfind import propfind
from .dav.proppatch import proppatch
from .dav.resource import DavNode

log = logging.getLogger(__name__)

Method = Callable[[web.Request, DavContext, Target], Awaitable[web.StreamResponse]]


async def load_node(ctx: DavContext, target: Target) -> DavNode:
    match target.kind:
        case "root":
            return RootNode(DAV_ROOT, ctx)
        case "principals":
            return PrincipalsNode(ctx)
        case "principal":
            return PrincipalNode(ctx)
        case "home":
            return HomeNode(ctx)
        case "outbox":
            return ScheduleOutboxNode(ctx)
        case "inbox":
            return ScheduleInboxNode(ctx)
        case "foreign-outbox":
            raise DavError(404, "nothing here")
    assert target.resource is not None
    if target.kind == "calendar":
        return await CalendarNode.load(ctx, target.resource)
    assert target.name is not None
    obj = await ctx.repository.get_by_href(target.resource.id, target.name)
    if obj is None:
        raise DavError(404, f"no calendar object {target.name!r} in {target.resource.id!r}")
    return ObjectNode(ctx, target.resource.id, obj)


async def _propfind(request: web.Request, ctx: DavContext, target: Target) -> web.StreamResponse:
    return await propfind(request, await load_node(ctx, target))


async def _proppatch(request: web.Request, ctx: DavContext, target: Target) -> web.Response:
    return await proppatch(request, await load_node(ctx, target))


async def _report(request: web.Request, ctx: DavContext, target: Target) -> web.StreamResponse:
    return await report(request, await load_node(ctx, target))


METHODS: dict[str, Method] = {
    "GET": get_object,
    "HEAD": get_object,
    "PUT": put_object,
    "DELETE": delete,
    "PROPFIND": _propfind,
    "PROPPATCH": _proppatch,
    "REPORT": _report,
    "POST": schedule_post,
}


@dataclass(frozen=True, slots=True)
class DavServices:
    """What every CalDAV request needs from the root application, looked up
    once when the server starts (``bind_at_start``)."""

    authenticator: Authenticator
    repository: CalendarStore
    bookings: BookingService
    queries: CalendarQuerying
    max_resource_size: int

    @classmethod
    def of(cls, root: web.Application) -> DavServices:
        return cls(
            authenticator=root[AUTHENTICATOR],
            repository=root[REPOSITORY],
            bookings=root[BOOKINGS],
            queries=root[CALENDAR_QUERIES],
            max_resource_size=root[SETTINGS].server.max_body_bytes,
        )


DAV_SERVICES = web.AppKey("dav_services", DavServices)


async def _serve(request: web.Request) -> web.StreamResponse:
    """Every request under ``/dav/``: errors as ``DAV:error`` bodies, then
    authentication, then admission, then the method's handler. One function
    rather than three middlewares: each layer is a call and a coroutine on
    every request, the smallest of which (a GET answered 304) is little
    more than this path (issue 17)."""
    services = request.app[DAV_SERVICES]
    try:
        if request.method == "OPTIONS":
            return await options(request)  # capabilities are no secret (RFC 4918 10.1)
        principal = await _authenticate(request, services.authenticator)
        # Admission after authentication: a client without credentials never
        # takes a slot or a place in the queue of heavy requests.
        return await admitted(request, partial(_dispatch, services=services, principal=principal))
    except DavError as error:
        if error.status == 405:
            # RFC 9110 15.5.6: a 405 lists the methods the resource does support.
            error.headers.setdefault("Allow", ALLOW)
        return error.response()
    except StorageFull as full:
        return insufficient_storage(full).response()


async def _authenticate(request: web.Request, authenticator: Authenticator) -> Principal:
    try:
        principal = await authenticator.authenticate(
            request.headers.get("Authorization"), address=request.remote
        )
    except SignInRefused as refused:
        raise DavError(refused.status, refused.message, headers=refused.headers) from None
    if principal is None:
        raise DavError(
            401,
            "sign in with the user name and password of a user in the gateway's config",
            headers={"WWW-Authenticate": 'Basic realm="calgateway", charset="UTF-8"'},
        )
    return principal


async def _dispatch(
    request: web.Request, *, services: DavServices, principal: Principal
) -> web.StreamResponse:
    if request.method in ("MKCALENDAR", "MKCOL"):
        raise refuse_new_collection(request.method)
    method = METHODS.get(request.method)
    if method is None:
        raise DavError(405, f"{request.method} is not supported here")
    ctx = DavContext(
        principal=principal,
        repository=services.repository,
        bookings=services.bookings,
        queries=services.queries,
        max_resource_size=services.max_resource_size,
    )
    target = resolve(ctx, request.rel_url.raw_path)
    return await method(request, ctx, target)


def create_dav_app(root: web.Application) -> web.Application:
    """The CalDAV tree, to be mounted on ``root``."""
    dav = web.Application()
    dav.router.add_route("*", "/{path:.*}", _serve, name="dav")
    bind_at_start(dav, DAV_SERVICES, DavServices.of, root)
    return dav


async def well_known_caldav(request: web.Request) -> web.Response:
    """RFC 6764 5: ``/.well-known/caldav`` points at the context path."""
    raise web.HTTPMovedPermanently(location=DAV_ROOT)


async def server_root_to_dav(request: web.Request) -> web.Response:
    """Clients given just the server's address (python-caldav, Thunderbird)
    PROPFIND ``/`` for the current-user-principal; 308 keeps the method and
    body on the way to ``/dav/`` (RFC 9110 15.4.9)."""
    raise web.HTTPPermanentRedirect(location=DAV_ROOT)
