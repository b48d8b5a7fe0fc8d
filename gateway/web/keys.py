"""AppKeys the composition root (``gateway.app``) fills and front ends read.

Front ends mounted as sub-applications read them through
``request.config_dict``, which also sees the root application's state.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from aiohttp import web

from gateway.core.admin_actions import AdminActions
from gateway.core.clock import Clock
from gateway.core.mirror_admin import MirrorAdmin
from gateway.core.outbox import OutboxWorker
from gateway.core.ports import CalendarQuerying, MirrorRepository
from gateway.core.service import BookingService
from gateway.links.signer import LinkSigner
from gateway.settings import Settings

from .auth import Authenticator
from .observability import Metrics

SETTINGS = web.AppKey("settings", Settings)
# The one notion of now of the whole server (``gateway.core.clock``).
CLOCK: web.AppKey[Clock] = web.AppKey("clock")
AUTHENTICATOR = web.AppKey("authenticator", Authenticator)
METRICS = web.AppKey("metrics", Metrics)
REPOSITORY = web.AppKey("repository", MirrorRepository)
BOOKINGS = web.AppKey("bookings", BookingService)
CALENDAR_QUERIES = web.AppKey("calendar_queries", CalendarQuerying)
MIRROR_ADMIN = web.AppKey("mirror_admin", MirrorAdmin)
# The admin's actions (outbox, resend invitation, console session key):
# one service for the console, the API and the CLI.
ADMIN_ACTIONS = web.AppKey("admin_actions", AdminActions)
# Set only when invitations.link_key is configured: read with .get().
LINKS = web.AppKey("links", LinkSigner)
OUTBOX = web.AppKey("outbox", OutboxWorker)


_T = TypeVar("_T")


def bind_at_start(
    sub: web.Application,
    key: web.AppKey[_T],
    build: Callable[[web.Application], _T],
    root: web.Application,
) -> None:
    """Set ``sub[key]`` to ``build(root)`` when the server starts: what a
    sub-application's requests take from the root, looked up once rather
    than through ``request.config_dict`` (a proxy built per call that misses
    in the sub-application first). The root's cleanup contexts (storage)
    have run by then: they start before its sub-applications do."""

    async def bind(_: web.Application) -> None:
        sub[key] = build(root)

    sub.on_startup.append(bind)
