"""JSON booking API, mounted at ``/api/v1/``: resources, bookings,
availability, bookers' answers (iTIP REPLY), importing a calendar file, the
admin side of the Google mirror (invite, status, sync log, disconnect), and
the admin's outbox and invitation actions (list, retry, give up, resend)."""

from __future__ import annotations

from aiohttp import web
from aiohttp.typedefs import Handler

from gateway.web.auth import Principal, SignInRefused
from gateway.web.keys import bind_at_start

from . import handlers
from .handlers import API_SERVICES, PRINCIPAL, SERVICES, ApiServices
from .openapi import build_openapi
from .problems import ApiProblem, problem_middleware

_PUBLIC_ROUTES = frozenset({"openapi"})


@web.middleware
async def _authenticate(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Signs the caller in and hands the handlers the root's services
    (``ApiServices``, bound when the server starts)."""
    if request.match_info.route.name in _PUBLIC_ROUTES:
        return await handler(request)
    services = request[SERVICES] = request.app[API_SERVICES]
    request[PRINCIPAL] = await _principal(request, services)
    return await handler(request)


async def _principal(request: web.Request, services: ApiServices) -> Principal:
    try:
        principal = await services.authenticator.authenticate(
            request.headers.get("Authorization"), address=request.remote
        )
    except SignInRefused as refused:
        raise ApiProblem(
            refused.status, refused.title, refused.message, headers=refused.headers
        ) from None
    if principal is None:
        raise ApiProblem(
            401,
            "Unauthorized",
            "send HTTP Basic credentials of a configured user or a bearer API token",
            headers={"WWW-Authenticate": 'Basic realm="calgateway", charset="UTF-8"'},
        )
    return principal


def create_api_app(root: web.Application) -> web.Application:
    """The booking API, to be mounted on ``root``."""
    api = web.Application(middlewares=[problem_middleware, _authenticate])
    bind_at_start(api, API_SERVICES, ApiServices.of, root)
    document = build_openapi()

    async def openapi(_: web.Request) -> web.Response:
        return web.json_response(document)

    router = api.router
    router.add_get("/openapi.json", openapi, name="openapi")
    router.add_get("/resources", handlers.list_resources, name="resources")
    router.add_get("/resources/{resource_id}", handlers.get_resource, name="resource")
    router.add_get(
        "/resources/{resource_id}/availability", handlers.availability, name="availability"
    )
    router.add_post(
        "/resources/{resource_id}/google/invite", handlers.google_invite, name="google-invite"
    )
    router.add_delete("/resources/{resource_id}/google", handlers.google_disconnect)
    router.add_get("/resources/{resource_id}/sync/log", handlers.sync_log, name="sync-log")
    router.add_post(
        "/resources/{resource_id}/import", handlers.import_calendar, name="calendar-file"
    )
    router.add_get("/sync/status", handlers.sync_status, name="sync-status")
    router.add_get("/bookings", handlers.list_bookings, name="bookings")
    router.add_post("/bookings", handlers.create_booking)
    router.add_get("/bookings/{booking_id}", handlers.get_booking, name="booking")
    router.add_patch("/bookings/{booking_id}", handlers.patch_booking)
    router.add_delete("/bookings/{booking_id}", handlers.cancel_booking)
    router.add_post("/itip", handlers.itip_reply, name="itip")
    router.add_get("/outbox", handlers.list_outbox, name="outbox")
    router.add_post("/outbox/{item_id}/retry", handlers.retry_outbox, name="outbox-retry")
    router.add_post("/outbox/{item_id}/give-up", handlers.give_up_outbox, name="outbox-give-up")
    router.add_post(
        "/bookings/{booking_id}/invitation", handlers.resend_invitation, name="invitation"
    )
    return api
