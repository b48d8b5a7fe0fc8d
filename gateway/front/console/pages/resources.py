"""The overview of every resource and the page of one: where calendar apps
and feed readers connect, the Google mirror's state as the admin reads it,
the sync log and the upcoming bookings, and the resource's actions (send a
Google connect invitation, disconnect, send a booking's invitation again).

Every fact comes from the services (``MirrorAdmin``, ``BookingService``,
``AdminActions``) and every action is one call of theirs: this module only
arranges them on the page.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from datetime import datetime, timedelta

from aiohttp import web

from gateway.core.admin_actions import ActionRefused
from gateway.core.errors import GatewayError, NotFound
from gateway.core.mirror import ConnectionStatus, LogKind
from gateway.core.mirror_admin import ResourceStatus
from gateway.core.model import Booking, BookingStatus, TimeSpan
from gateway.look.dates import format_when
from gateway.settings import ResourceSettings, Settings
from gateway.web.keys import ADMIN_ACTIONS, BOOKINGS, CLOCK, MIRROR_ADMIN, SETTINGS

from .. import guard
from ..guard import Flash
from ..wording import DETAILS, DIRECTIONS, age_text, utc_text
from .render import console_page, done, not_found

# The resource page lists the bookings of this long ahead.
UPCOMING = timedelta(days=60)
LOG_ENTRIES = 100
# Read this many log entries to filter by kind (the newest of that kind).
LOG_SCAN = 1000
LOG_KINDS = tuple(kind.value for kind in LogKind)


@dataclass(frozen=True, slots=True)
class FeedLink:
    full: str
    busy: str


@dataclass(frozen=True, slots=True)
class GoogleView:
    configured: bool  # a google section in the settings
    direction: str
    direction_text: str
    details_text: str
    status: str  # ConnectionStatus value
    summary: str
    account: str
    calendar: str
    last_sync: str
    last_sync_age: str
    pending: int
    warning: str | None
    importing: bool
    imported: int
    connected: bool


@dataclass(frozen=True, slots=True)
class ResourceView:
    id: str
    name: str
    timezone: str
    caldav_url: str
    feeds: tuple[FeedLink, ...]
    google: GoogleView


def _resource_view(
    settings: Settings,
    entry: ResourceSettings,
    state: ResourceStatus,
    pending: int,
    configured: bool,
    now: datetime,
) -> ResourceView:
    public_url = settings.server.public_url
    feed = f"{public_url}/feeds/{entry.id}.ics?token="
    c = state.connection
    direction = state.policy.direction.value
    return ResourceView(
        id=entry.id,
        name=entry.name,
        timezone=entry.timezone,
        caldav_url=f"{public_url}/dav/calendars/{entry.id}/",
        feeds=tuple(
            FeedLink(feed + t.get_secret_value(), feed + t.get_secret_value() + "&view=busy")
            for t in entry.feed_tokens
        ),
        google=GoogleView(
            configured=configured,
            direction=direction,
            direction_text=DIRECTIONS.get(direction, direction),
            details_text=DETAILS.get(state.policy.details.value, state.policy.details.value),
            status=c.status.value,
            summary=state.summary,
            account=c.account,
            calendar=c.calendar_name or c.calendar_id,
            last_sync=utc_text(c.last_sync_at),
            last_sync_age=age_text(c.last_sync_at, now),
            pending=pending,
            warning=state.warning_message,
            importing=c.status is ConnectionStatus.IMPORTING,
            imported=c.imported,
            connected=c.connected,
        ),
    )


async def _views(request: web.Request, only: str | None = None) -> list[ResourceView]:
    settings = request.config_dict[SETTINGS]
    mirror = request.config_dict[MIRROR_ADMIN]
    pending = Counter(
        e.resource_id for e in await request.config_dict[ADMIN_ACTIONS].outbox("pending", 1000)
    )
    now = request.config_dict[CLOCK]()
    return [
        _resource_view(
            settings, entry, await mirror.status(entry.id), pending[entry.id], mirror.enabled, now
        )
        for entry in settings.resources
        if only is None or entry.id == only
    ]


async def overview(request: web.Request) -> web.StreamResponse:
    return await console_page(
        request, "overview.html", "Resources", {"resources": await _views(request)}
    )


@dataclass(frozen=True, slots=True)
class BookingRow:
    id: str
    title: str
    when: str
    status: str
    attendees: tuple[str, ...]
    can_resend: bool


def _booking_row(booking: Booking) -> BookingRow:
    cancelled = booking.status is BookingStatus.CANCELLED
    return BookingRow(
        id=booking.id,
        title=booking.title,
        when=format_when(booking.start, booking.end, booking.timezone, "en"),
        status=booking.status.value.lower(),
        attendees=tuple(
            f"{a.name} <{a.email}>: {a.partstat.value.lower().replace('-', ' ')}"
            if a.name
            else f"{a.email}: {a.partstat.value.lower().replace('-', ' ')}"
            for a in booking.attendees
        ),
        can_resend=bool(booking.attendees) and not cancelled,
    )


async def resource_page(request: web.Request) -> web.StreamResponse:
    resource_id = request.match_info["resource_id"]
    views = await _views(request, only=resource_id)
    if not views:
        return not_found(request, f"resource {resource_id!r}")
    kind = request.query.get("kind", "")
    if kind not in LOG_KINDS:
        kind = ""
    mirror = request.config_dict[MIRROR_ADMIN]
    entries = await mirror.log(resource_id, LOG_SCAN if kind else LOG_ENTRIES)
    if kind:
        entries = [e for e in entries if e.kind.value == kind][:LOG_ENTRIES]
    now = request.config_dict[CLOCK]()
    bookings = await request.config_dict[BOOKINGS].in_window(
        resource_id, TimeSpan(now, now + UPCOMING)
    )
    return await console_page(
        request,
        "resource.html",
        views[0].name,
        {
            "resource": views[0],
            "log": [
                {"at": utc_text(e.at), "kind": e.kind.value, "message": e.message} for e in entries
            ],
            "kinds": LOG_KINDS,
            "kind": kind,
            "bookings": [_booking_row(b) for b in bookings],
            "upcoming_days": UPCOMING.days,
        },
    )


# -- actions ---------------------------------------------------------------------------


def _resource_path(resource_id: str) -> str:
    return f"{guard.HOME}resources/{resource_id}"


async def invite(request: web.Request) -> web.StreamResponse:
    resource_id = request.match_info["resource_id"]
    back = _resource_path(resource_id)
    try:
        issued = await request.config_dict[MIRROR_ADMIN].invite(resource_id)
    except NotFound:
        return not_found(request, f"resource {resource_id!r}")
    except GatewayError as refused:
        return await done(request, back, Flash("error", f"No invitation sent: {refused}"))
    mailed = (
        "It was mailed to the resource's address."
        if issued.mailed
        else "It was not mailed (no mail settings): send this link yourself."
    )
    return await done(
        request,
        back,
        Flash(
            "done",
            f"Google connect invitation created, valid until {utc_text(issued.expires)}. {mailed}",
            link=issued.url,
        ),
    )


async def disconnect_form(request: web.Request) -> web.StreamResponse:
    """The confirmation step (a page, so it works without scripts)."""
    resource_id = request.match_info["resource_id"]
    views = await _views(request, only=resource_id)
    if not views:
        return not_found(request, f"resource {resource_id!r}")
    return await console_page(
        request,
        "disconnect.html",
        f"Disconnect {views[0].name} from Google?",
        {"resource": views[0]},
    )


async def disconnect(request: web.Request) -> web.StreamResponse:
    resource_id = request.match_info["resource_id"]
    session = guard.session_of(request)
    try:
        await request.config_dict[MIRROR_ADMIN].disconnect(
            resource_id, why=f"by the admin {session.user}"
        )
    except NotFound:
        return not_found(request, f"resource {resource_id!r}")
    except GatewayError as refused:
        return await done(
            request, _resource_path(resource_id), Flash("error", f"Not disconnected: {refused}")
        )
    return await done(
        request,
        _resource_path(resource_id),
        Flash("done", "Disconnected from Google. Nothing is synced with it any more."),
    )


async def resend_invitation(request: web.Request) -> web.StreamResponse:
    booking_id = request.match_info["booking_id"]
    session = guard.session_of(request)
    try:
        booking = await request.config_dict[BOOKINGS].get(booking_id)
    except NotFound:
        return not_found(request, f"booking {booking_id!r}")
    back = _resource_path(booking.resource_id)
    try:
        await request.config_dict[ADMIN_ACTIONS].resend_invitation(booking_id, by=session.user)
    except NotFound:
        return not_found(request, f"booking {booking_id!r}")
    except ActionRefused as refused:
        return await done(request, back, Flash("error", f"Not sent: {refused.message}"))
    return await done(
        request,
        back,
        Flash("done", f"The invitation to \u201c{booking.title}\u201d is queued to be sent again."),
    )
