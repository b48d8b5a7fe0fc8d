"""create_app(settings): the one composition root.

Everything long-lived (database, services, workers) is opened in a
``cleanup_ctx`` so that it starts with the server and is closed, in reverse
order, on shutdown, whatever way the server stops.
"""

from __future__ import annotations

import contextlib
import importlib.util
import logging
from collections.abc import AsyncIterator, Callable, Coroutine
from datetime import timedelta
from pathlib import Path
from typing import Any

import aiohttp
import jinja2
from aiohttp import web

from caldav_backend import DAV_ROOT, create_dav_app, server_root_to_dav, well_known_caldav
from gateway.admin import (
    build_admin_actions,
    build_booking_service,
    build_mirror_admin,
    domain_resources,
    mirror_policies,
    open_repository,
    recurrence_limits,
)
from gateway.core.clock import Clock, utc_now
from gateway.core.freshness import BusyTimeFreshness, FreshnessGuard, FreshnessRules, WhenStale
from gateway.core.mirror import MAIL
from gateway.core.outbox import Backoff, Handler, OutboxWorker
from gateway.core.resource_invitations import RESOURCE_REPLY
from gateway.core.service import INVITATION, BookingService
from gateway.front.api import create_api_app
from gateway.front.console import TEMPLATES as CONSOLE_TEMPLATES
from gateway.front.console import mount_console
from gateway.front.feeds import FEED_RESOURCES, FEED_SOURCE, FeedResource, create_feeds_app
from gateway.front.rsvp import create_invites_app, create_rsvp_app
from gateway.ical import ICalCodec, ICalQueryEngine
from gateway.links.signer import LinkSigner
from gateway.look import setup_look
from gateway.mail.imap import ImapConfig, ImapInbox
from gateway.mail.invitations import GooglePath, InvitationMailer
from gateway.mail.notices import NoticeMailer
from gateway.mail.replies import ReplyInbox
from gateway.mail.resource_replies import ResourceReplyMailer
from gateway.mail.sender import SmtpConfig, SmtpSender
from gateway.settings import Settings
from gateway.web.admission import ADMISSION, AdmissionGate
from gateway.web.auth import Authenticator
from gateway.web.background import BACKGROUND, BackgroundLoops
from gateway.web.forwarded import forwarded_middleware, parse_networks
from gateway.web.health import WRITE_CHECK, WriteCheck, healthz, storage_full_middleware
from gateway.web.keys import (
    ADMIN_ACTIONS,
    AUTHENTICATOR,
    BOOKINGS,
    CALENDAR_QUERIES,
    CLOCK,
    LINKS,
    METRICS,
    MIRROR_ADMIN,
    OUTBOX,
    REPOSITORY,
    SETTINGS,
)
from gateway.web.observability import (
    METRICS_CONTENT_TYPE,
    Metrics,
    metrics_access,
    metrics_middleware,
)

log = logging.getLogger("calgateway")

# Set when mail.imap is configured: the poller of bookers' e-mailed answers.
REPLY_INBOX = web.AppKey("reply_inbox", ReplyInbox)


def create_app(settings: Settings, *, clock: Clock = utc_now) -> web.Application:
    """The server for ``settings``. ``clock``: the one notion of now every
    part of it uses (``gateway.core.clock``; tests run the server at other
    dates with it)."""
    metrics = Metrics()
    proxies = parse_networks(settings.server.trusted_proxies)
    app = web.Application(
        client_max_size=settings.server.max_body_bytes,
        # The client's address first: every later middleware (the password
        # backoff behind the front ends) counts by it.
        middlewares=[
            *([forwarded_middleware(proxies)] if proxies else []),
            metrics_middleware(metrics),
            storage_full_middleware,
        ],
    )
    app[SETTINGS] = settings
    app[CLOCK] = clock
    app[METRICS] = metrics
    app[AUTHENTICATOR] = Authenticator.from_settings(settings)
    app[ADMISSION] = AdmissionGate.from_settings(settings.server, metrics)
    app[WRITE_CHECK] = WriteCheck()
    app.cleanup_ctx.append(_storage)
    app.cleanup_ctx.append(_workers)
    app.router.add_get("/healthz", _healthz, name="healthz")
    app.router.add_get("/metrics", _metrics, name="metrics")
    app.add_subapp("/api/v1/", create_api_app(app))
    app.add_subapp("/feeds/", create_feeds_app())
    app.add_subapp(DAV_ROOT, create_dav_app(app))
    templates: dict[str, jinja2.BaseLoader] = {
        "rsvp": jinja2.PackageLoader("gateway.front", "templates/rsvp"),
        # Found, not imported (PackageLoader would): see the Google import below.
        "google": jinja2.FileSystemLoader(_package_dir("google_bridge") / "templates"),
        **CONSOLE_TEMPLATES,
    }
    setup_look(app, settings, templates)
    mount_console(app)  # /admin/, and the landing page at /
    app.add_subapp("/rsvp/", create_rsvp_app())
    app.add_subapp("/invites/", create_invites_app())
    signer = link_signer(settings)
    if signer is not None:
        app[LINKS] = signer
    if settings.google is not None:
        # Imported only when configured: the Google client libraries cost a
        # gateway without Google about 9 MiB of memory and 70 ms at start.
        from google_bridge import create_google_app

        app.add_subapp("/google/", create_google_app())
    app.router.add_route("*", "/.well-known/caldav", well_known_caldav, name="well-known-caldav")
    app.router.add_route("PROPFIND", "/", server_root_to_dav, name="root-propfind")
    return app


async def _storage(app: web.Application) -> AsyncIterator[None]:
    settings = app[SETTINGS]
    repository = await open_repository(settings)
    resources = domain_resources(settings)
    app[REPOSITORY] = repository
    app[CALENDAR_QUERIES] = ICalQueryEngine(limits=recurrence_limits(settings), clock=app[CLOCK])
    policies = mirror_policies(settings)
    app[BOOKINGS] = build_booking_service(
        settings, repository, resources=resources, policies=policies, clock=app[CLOCK]
    )
    if settings.mail is None:
        log.info("no mail section: bookers are not sent invitations")
    app[MIRROR_ADMIN] = build_mirror_admin(
        settings, repository, resources=resources, policies=policies, clock=app[CLOCK]
    )
    app[ADMIN_ACTIONS] = build_admin_actions(
        settings, repository, resources=resources, clock=app[CLOCK]
    )
    app[FEED_SOURCE] = repository
    app[FEED_RESOURCES] = {
        r.id: FeedResource(
            resource=resources[r.id],
            tokens=tuple(t.get_secret_value() for t in r.feed_tokens),
        )
        for r in settings.resources
    }
    log.info("storage open", extra={"path": settings.storage.describe()})
    try:
        yield
    finally:
        await repository.close()
        log.info("storage closed")


async def _workers(app: web.Application) -> AsyncIterator[None]:
    """The outbox worker and, with Google configured, the bridge and its
    sync loop; both stop (cancelled, awaited) before storage closes."""
    settings = app[SETTINGS]
    handlers: dict[str, Handler] = {}
    async with contextlib.AsyncExitStack() as stack:
        loops: list[Callable[[], Coroutine[Any, Any, None]]] = []
        if settings.google is not None:
            from google_bridge import GOOGLE_BRIDGE, build_bridge  # see create_app

            session = await stack.enter_async_context(aiohttp.ClientSession())
            bridge = build_bridge(
                settings.google,
                public_url=settings.server.public_url,
                repository=app[REPOSITORY],
                codec=ICalCodec(limits=recurrence_limits(settings)),
                bookings=app[BOOKINGS],
                admin=app[MIRROR_ADMIN],
                session=session,
                resource_names={r.id: r.name for r in settings.resources},
                organizer_address=settings.mail.from_address if settings.mail else "",
                clock=app[CLOCK],
            )
            app[GOOGLE_BRIDGE] = bridge
            handlers.update(bridge.outbox_handlers())
            loops.append(bridge.worker.run)
            app[BOOKINGS].look_at_google_first(_freshness_guard(app, bridge.freshness))
            stack.push_async_callback(bridge.freshness.close)
        google_path = bridge.invite_path if settings.google is not None else None
        handlers.update(_mail_handlers(app, google_path))
        outbox = OutboxWorker(
            app[REPOSITORY],
            handlers,
            backoff=Backoff(settings.outbox.initial_retry_delay, settings.outbox.max_retry_delay),
            poll_interval=settings.outbox.poll_interval,
            batch_size=settings.outbox.batch_size,
            clock=app[CLOCK],
        )
        app[OUTBOX] = outbox
        inbox = _reply_inbox(settings, app[BOOKINGS])
        if inbox is not None:
            app[REPLY_INBOX] = inbox
            loops.append(inbox.run)
        app[BOOKINGS].on_change(outbox.wake)
        app[MIRROR_ADMIN].on_queued(outbox.wake)
        app[ADMIN_ACTIONS].on_queued(outbox.wake)
        loops.append(outbox.run)
        # Held when a settings reload starts this app beside the running one
        # (gateway.web.background says why); stopped before storage closes.
        if BACKGROUND not in app:
            app[BACKGROUND] = BackgroundLoops()
        app[BACKGROUND].start(loops)
        # Mails and Google writes in flight get to end before the stop
        # cancels them: one cut off could only be done again (a duplicate).
        shutdown_timeout = settings.server.shutdown_timeout
        app[BACKGROUND].before_stop(lambda: outbox.finish_in_flight(shutdown_timeout))
        try:
            yield
        finally:
            await app[BACKGROUND].stop()


def _freshness_guard(app: web.Application, source: BusyTimeFreshness) -> FreshnessGuard | None:
    """The fresh look at Google before a booking (``gateway.core.freshness``);
    None with ``google.freshness_seconds: 0``."""
    settings = app[SETTINGS]
    google = settings.google
    if google is None or google.freshness_seconds <= 0:
        return None
    rules = FreshnessRules(
        max_age=timedelta(seconds=google.freshness_seconds),
        deadline=timedelta(seconds=google.freshness_deadline),
        when_stale={r.id: WhenStale(settings.when_stale(r.id)) for r in settings.resources},
        default=WhenStale(google.when_stale),
    )
    bookings = app[BOOKINGS]
    return FreshnessGuard(app[REPOSITORY], source, rules, bookings.mirror_policy, app[CLOCK])


def smtp_config(settings: Settings) -> SmtpConfig | None:
    mail = settings.mail
    if mail is None:
        return None
    return SmtpConfig(
        host=mail.smtp_host,
        port=mail.smtp_port,
        security=mail.security,
        username=mail.username,
        password=mail.password.get_secret_value() if mail.password else None,
        timeout=mail.timeout,
        data_timeout=mail.data_timeout,
        from_address=mail.from_address,
        from_name=mail.from_name,
    )


def _reply_inbox(settings: Settings, bookings: BookingService) -> ReplyInbox | None:
    imap = settings.mail.imap if settings.mail is not None else None
    if imap is None:
        return None
    config = ImapConfig(
        host=imap.host,
        port=imap.port,
        security=imap.security,
        username=imap.username,
        password=imap.password.get_secret_value(),
        folder=imap.folder,
        processed_folder=imap.processed_folder,
        timeout=imap.timeout,
    )
    return ReplyInbox(ImapInbox(config), bookings.apply_reply, poll_interval=imap.poll_interval)


def _package_dir(name: str) -> Path:
    """The directory of package ``name``, without importing it."""
    spec = importlib.util.find_spec(name)
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError(f"package {name} is not installed")
    return Path(next(iter(spec.submodule_search_locations)))


def link_signer(settings: Settings) -> LinkSigner | None:
    """Signed accept/decline and .ics links, when a key is configured."""
    key = settings.invitations.link_key
    if key is None:
        return None
    return LinkSigner(key.get_secret_value().encode("utf-8"), settings.server.public_url)


def _mail_handlers(app: web.Application, google_path: GooglePath | None) -> dict[str, Handler]:
    settings = app[SETTINGS]
    config = smtp_config(settings)
    if config is None:
        return {}  # no invitations are queued without mail (BookingService)
    sender = SmtpSender(config)
    notices = NoticeMailer(
        sender,
        from_address=config.from_address,
        from_name=config.from_name,
        language=settings.language,
        journal=app[REPOSITORY],
    )
    invitations = InvitationMailer(
        app[REPOSITORY],
        app[BOOKINGS].resources,
        sender,
        organizer_address=config.from_address,
        organizer_name=config.from_name,
        language=settings.language,
        links=link_signer(settings),
        google_path=google_path,
        journal=app[REPOSITORY],
        clock=app[CLOCK],
        schedule_status=app[BOOKINGS].record_schedule_status,
    )
    if invitations.links_missing:
        log.warning(
            "invitations.link_key is not set: invitations carry no accept/decline or .ics links"
        )
    replies = ResourceReplyMailer(
        app[BOOKINGS].resources,
        sender,
        language=settings.language,
        journal=app[REPOSITORY],
        clock=app[CLOCK],
    )
    return {MAIL: notices.send, INVITATION: invitations.send, RESOURCE_REPLY: replies.send}


async def _healthz(request: web.Request) -> web.Response:
    """Liveness and readiness: 200 only if the database answers and takes a
    write (``gateway.web.health``)."""
    return await healthz(request)


async def _metrics(request: web.Request) -> web.Response:
    server = request.app[SETTINGS].server
    token = server.metrics_token.get_secret_value() if server.metrics_token else None
    access = metrics_access(server.metrics, token, request.headers.get("Authorization"))
    if access == "hidden":
        raise web.HTTPNotFound()
    if access == "unauthorized":
        raise web.HTTPUnauthorized(
            text="send Authorization: Bearer <server.metrics_token>\n",
            headers={"WWW-Authenticate": 'Bearer realm="calgateway metrics"'},
        )
    metrics = request.app[METRICS]
    metrics.outbox_pending.set(await request.app[REPOSITORY].pending_outbox())
    if request.app[SETTINGS].google is not None:
        now = request.app[CLOCK]()
        metrics.google_sync_age.clear()  # disconnected calendars have no age
        for connection in await request.app[REPOSITORY].connections():
            if connection.connected and connection.last_sync_at is not None:
                age = (now - connection.last_sync_at).total_seconds()
                metrics.google_sync_age.labels(connection.resource_id).set(age)
    return web.Response(body=metrics.render(), headers={"Content-Type": METRICS_CONTENT_TYPE})
