"""create_app(settings): the one composition root.

Everything long-lived (database, services, workers) is opened in a
``cleanup_ctx`` so that it starts with the server and is closed, in reverse
order, on shutdown, whatever way the server stops.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from urllib.parse import urlsplit

from aiohttp import web

from caldav_backend import DAV_ROOT, create_dav_app, server_root_to_dav, well_known_caldav
from gateway.api import create_api_app
from gateway.core.model import Resource
from gateway.core.service import BookingService
from gateway.feeds import FEED_RESOURCES, FEED_SOURCE, FeedResource, create_feeds_app
from gateway.ical import ICalCodec, ICalQueryEngine
from gateway.settings import Settings
from gateway.store import open_sqlite_repository
from gateway.web.auth import Authenticator
from gateway.web.keys import (
    AUTHENTICATOR,
    BOOKINGS,
    CALENDAR_QUERIES,
    METRICS,
    REPOSITORY,
    SETTINGS,
)
from gateway.web.observability import METRICS_CONTENT_TYPE, Metrics, metrics_middleware

log = logging.getLogger("calgateway")


def domain_resources(settings: Settings) -> dict[str, Resource]:
    return {
        r.id: Resource(id=r.id, name=r.name, email=r.email, timezone=r.timezone)
        for r in settings.resources
    }


def create_app(settings: Settings) -> web.Application:
    metrics = Metrics()
    app = web.Application(
        client_max_size=settings.server.max_body_bytes,
        middlewares=[metrics_middleware(metrics)],
    )
    app[SETTINGS] = settings
    app[METRICS] = metrics
    app[AUTHENTICATOR] = Authenticator.from_settings(settings)
    app.cleanup_ctx.append(_storage)
    app.router.add_get("/healthz", _healthz, name="healthz")
    app.router.add_get("/metrics", _metrics, name="metrics")
    app.add_subapp("/api/v1/", create_api_app())
    app.add_subapp("/feeds/", create_feeds_app())
    app.add_subapp(DAV_ROOT, create_dav_app())
    app.router.add_route("*", "/.well-known/caldav", well_known_caldav, name="well-known-caldav")
    app.router.add_route("PROPFIND", "/", server_root_to_dav, name="root-propfind")
    return app


async def _storage(app: web.Application) -> AsyncIterator[None]:
    settings = app[SETTINGS]
    repository = await open_sqlite_repository(settings.storage.sqlite_path)
    resources = domain_resources(settings)
    app[REPOSITORY] = repository
    app[CALENDAR_QUERIES] = ICalQueryEngine()
    app[BOOKINGS] = BookingService(
        repository,
        ICalCodec(),
        resources,
        uid_domain=urlsplit(settings.server.public_url).hostname or "calgateway",
    )
    app[FEED_SOURCE] = repository
    app[FEED_RESOURCES] = {
        r.id: FeedResource(
            resource=resources[r.id],
            tokens=tuple(t.get_secret_value() for t in r.feed_tokens),
        )
        for r in settings.resources
    }
    log.info("storage open", extra={"path": str(settings.storage.sqlite_path)})
    try:
        yield
    finally:
        await repository.close()
        log.info("storage closed")


async def _healthz(request: web.Request) -> web.Response:
    """Liveness and readiness: answers 200 only if the database answers."""
    try:
        pending = await request.app[REPOSITORY].pending_outbox()
    except Exception as exc:  # any database failure means "not ready"
        log.warning("health check failed", exc_info=exc)
        return web.json_response({"status": "error", "database": str(exc)}, status=503)
    return web.json_response({"status": "ok", "database": "ok", "outbox_pending": pending})


async def _metrics(request: web.Request) -> web.Response:
    metrics = request.app[METRICS]
    metrics.outbox_pending.set(await request.app[REPOSITORY].pending_outbox())
    return web.Response(body=metrics.render(), headers={"Content-Type": METRICS_CONTENT_TYPE})
