"""The CalDAV sub-application, mounted at ``/dav/`` by ``gateway.app``.

One catch-all route: WebDAV methods are many and its URL space is a tree the
config defines, so the path is resolved here (``caldav.tree.resolve``) and
the method picks the handler, one module each.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from aiohttp import web
from aiohttp.typedefs import Handler

from gateway.core.errors import StorageFull
from gateway.web.admission import admission_middleware
from gateway.web.auth import Principal, SignInRefused
from gateway.web.keys import AUTHENTICATOR, BOOKINGS, CALENDAR_QUERIES, REPOSITORY, SETTINGS

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

PRINCIPAL = web.RequestKey("dav_principal", Principal)

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


@web.middleware
async def _dav_errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except DavError as error:
        if error.status == 405:
            # RFC 9110 15.5.6: a 405 lists the methods the resource does support.
            error.headers.setdefault("Allow", ALLOW)
        return error.response()
    except StorageFull as full:
        return insufficient_storage(full).response()


@web.middleware
async def _authenticate(request: web.Request, handler: Handler) -> web.StreamResponse:
    if request.method == "OPTIONS":
        return await handler(request)  # capabilities are no secret (RFC 4918 10.1)
    try:
        principal = await request.config_dict[AUTHENTICATOR].authenticate(
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
    request[PRINCIPAL] = principal
    return await handler(request)


async def _dispatch(request: web.Request) -> web.StreamResponse:
    if request.method == "OPTIONS":
        return await options(request)
    if request.method in ("MKCALENDAR", "MKCOL"):
        raise refuse_new_collection(request.method)
    method = METHODS.get(request.method)
    if method is None:
        raise DavError(405, f"{request.method} is not supported here")
    app = request.config_dict
    ctx = DavContext(
        principal=request[PRINCIPAL],
        repository=app[REPOSITORY],
        bookings=app[BOOKINGS],
        queries=app[CALENDAR_QUERIES],
        max_resource_size=app[SETTINGS].server.max_body_bytes,
    )
    target = resolve(ctx, request.rel_url.raw_path)
    return await method(request, ctx, target)


def create_dav_app() -> web.Application:
    # Admission after authentication: a client without credentials never
    # takes a slot or a place in the queue of heavy requests.
    dav = web.Application(middlewares=[_dav_errors, _authenticate, admission_middleware])
    dav.router.add_route("*", "/{path:.*}", _dispatch, name="dav")
    return dav


async def well_known_caldav(request: web.Request) -> web.Response:
    """RFC 6764 5: ``/.well-known/caldav`` points at the context path."""
    raise web.HTTPMovedPermanently(location=DAV_ROOT)


async def server_root_to_dav(request: web.Request) -> web.Response:
    """Clients given just the server's address (python-caldav, Thunderbird)
    PROPFIND ``/`` for the current-user-principal; 308 keeps the method and
    body on the way to ``/dav/`` (RFC 9110 15.4.9)."""
    raise web.HTTPPermanentRedirect(location=DAV_ROOT)
