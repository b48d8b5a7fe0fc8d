"""The Google mirror as the core sees it: modes, connection state, the links
between bookings and Google events, the sync log, and what an import changes.

Nothing here talks to Google: ``google_bridge`` turns Google's answers into
these values and the ``BookingService`` commits them (DESIGN.md, data flow).
"""

from __future__ import annotations

import base64
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum

from .model import OutboxEffect, TimeSpan
from .outbox_payloads import OutboxKind, StopChannelPayload

# The outbox kinds of the mirror's effects (payloads: gateway.core.outbox_payloads).
GOOGLE_PUSH = OutboxKind.GOOGLE_PUSH.value
GOOGLE_STOP_CHANNEL = OutboxKind.GOOGLE_STOP_CHANNEL.value
GOOGLE_REMOVE = OutboxKind.GOOGLE_REMOVE.value
MAIL = OutboxKind.MAIL.value


class Notice(StrEnum):
    """What a notice e-mail tells a resource's owner (``gateway.mail.notice_texts``
    words it)."""

    GOOGLE_INVITE = "google_invite"  # values: url, expires (ISO 8601), zone
    GOOGLE_CONNECTED = "google_connected"  # values: calendar, account, taken_from
    GOOGLE_TAKEN_OVER = "google_taken_over"  # values: account, taker, calendar, removed


class Direction(StrEnum):
    OFF = "off"
    TO_GOOGLE = "to_google"
    FROM_GOOGLE = "from_google"
    TWO_WAY = "two_way"

    @property
    def pushes(self) -> bool:
        """Gateway bookings are written to Google."""
        return self in (Direction.TO_GOOGLE, Direction.TWO_WAY)

    @property
    def pulls(self) -> bool:
        """Google's events become busy blocks in the gateway."""
        return self in (Direction.FROM_GOOGLE, Direction.TWO_WAY)


class Details(StrEnum):
    """What gateway -> Google shows: everything, or only the time as "Busy"."""

    FULL = "full"
    ANONYMOUS = "anonymous"


class InvitePath(StrEnum):
    """How bookers hear of a booking (settings ``invitations.via``)."""

    EMAIL = "email"
    GOOGLE = "google"  # a guest of the Google event; Google sends the invitation
    GOOGLE_IMPORT = "google_import"  # a copy in the booker's own connected calendar


@dataclass(frozen=True, slots=True)
class MirrorPolicy:
    direction: Direction = Direction.OFF
    details: Details = Details.FULL
    invitations: InvitePath = InvitePath.EMAIL

    @property
    def guests_in_google(self) -> bool:
        """Whether the Google event carries the bookers as guests that Google
        invites (needs full details: an anonymous event has no guests)."""
        return (
            self.invitations is InvitePath.GOOGLE
            and self.direction.pushes
            and self.details is Details.FULL
        )


class ConnectionStatus(StrEnum):
    """Where a resource stands with Google (the admin sees this)."""

    NOT_INVITED = "not_invited"
    INVITED = "invited"  # link sent, consent not finished
    IMPORTING = "importing"  # connected, first full import running
    SYNCED = "synced"
    WARNING = "warning"  # connected but stuck: reconnect needed, quota, ...
    DISABLED = "disabled"  # disconnected (taken over, or by the admin)


class WarningReason(StrEnum):
    RECONNECT = "reconnect_needed"
    QUOTA = "quota_exceeded"
    CALENDAR_GONE = "calendar_gone"


@dataclass(frozen=True, slots=True)
class Channel:
    """A push-notification channel (Calendar API events.watch)."""

    id: str
    token: str
    resource_id: str  # Google's opaque id of the watched collection
    expires: datetime


@dataclass(frozen=True, slots=True)
class Connection:
    """A resource's link to one Google calendar."""

    resource_id: str
    status: ConnectionStatus
    account: str = ""  # the Google account (its primary calendar id, an e-mail)
    calendar_id: str = ""
    calendar_name: str = ""
    refresh_token: bytes = b""  # encrypted; only google_bridge can read it
    sync_token: str = ""  # "" until the first full sync finished
    imported: int = 0  # events seen by the running or last full sync
    warning: WarningReason | None = None
    warning_text: str = ""
    paused_until: datetime | None = None
    channel: Channel | None = None
    connected_at: datetime | None = None
    last_sync_at: datetime | None = None

    @property
    def connected(self) -> bool:
        return self.status in (
            ConnectionStatus.IMPORTING,
            ConnectionStatus.SYNCED,
            ConnectionStatus.WARNING,
        ) and bool(self.calendar_id)


@dataclass(frozen=True, slots=True)
class Invite:
    """An invitation to connect a Google calendar. Only a hash of its secret
    is stored: the link itself is in the admin's and the resource's hands."""

    token_hash: str
    resource_id: str
    created: datetime
    expires: datetime
    state: str = ""  # OAuth state bound to this invitation, once consent began
    code_verifier: str = ""  # PKCE (RFC 7636), secret until the code exchange
    account: str = ""  # after the callback: the Google account that consented
    refresh_token: bytes = b""  # after the callback, encrypted
    used: datetime | None = None


class LinkKind(StrEnum):
    PUSHED = "pushed"  # our booking, written to Google
    IMPORTED = "imported"  # a Google event (or instance), kept as a busy block
    SERIES = "series"  # a recurring Google event whose instances are imported


@dataclass(frozen=True, slots=True)
class EventLink:
    """One Google event and the booking it belongs to."""

    resource_id: str
    event_id: str
    kind: LinkKind
    booking_id: str = ""
    etag: str = ""
    # PUSHED: the detail level chosen when first pushed (a settings change
    # applies to future events only) and a digest of what was last written.
    details: Details = Details.FULL
    digest: str = ""
    # IMPORTED instances: their recurring event. SERIES: itself.
    series_id: str = ""
    expanded_until: datetime | None = None


class LogKind(StrEnum):
    MIRRORED = "mirrored"
    IMPORTED = "imported"
    CONFLICT = "conflict"
    WARNING = "warning"
    INFO = "info"


@dataclass(frozen=True, slots=True)
class SyncLogEntry:
    resource_id: str
    kind: LogKind
    message: str
    at: datetime
    booking_id: str = ""
    event_id: str = ""
    id: int = 0


# -- what an import changes --------------------------------------------------


@dataclass(frozen=True, slots=True)
class BusyBlock:
    """A Google event (or one instance of a series) as the gateway keeps it:
    only the time span (Google -> gateway is always anonymous)."""

    event_id: str
    span: TimeSpan
    timezone: str
    all_day: bool = False
    tentative: bool = False
    series_id: str = ""


@dataclass(frozen=True, slots=True)
class AttendeeResponse:
    """A booker's answer seen on our event in Google (responseStatus)."""

    booking_id: str
    email: str
    partstat: str


@dataclass(frozen=True, slots=True)
class ImportBatch:
    """What one page of Google changes does in the gateway, applied in one
    transaction: the gateway half of ``google_bridge.reconcile``'s plan.

    ``status`` is the new saved status of the events concerned (None: the
    link is forgotten); a new busy block's link gets the id of the booking
    written for it. ``seen`` is set on the pages of a full sync: the ids of
    every event met so far. ``sync_token`` is set on the last page only."""

    resource_id: str
    upserts: tuple[BusyBlock, ...] = ()
    removals: tuple[str, ...] = ()  # event ids of busy blocks (events or instances)
    repush: tuple[str, ...] = ()  # booking ids whose Google event was edited there
    responses: tuple[AttendeeResponse, ...] = ()
    notes: tuple[SyncLogEntry, ...] = ()
    status: tuple[tuple[str, EventLink | None], ...] = ()
    seen: frozenset[str] | None = None
    sync_token: str = ""
    imported: int = 0


@dataclass(frozen=True, slots=True)
class ImportResult:
    created: int = 0
    updated: int = 0
    removed: int = 0
    conflicts: int = 0
    unchanged: int = 0
    notes: list[str] = field(default_factory=list)


def pushes_booking(direction: Direction, in_google: bool) -> bool:
    """Whether a change of a booking is written to Google: always while the
    resource mirrors to Google, and afterwards for the bookings the gateway
    had written there (``in_google``), so that Google never keeps a stale
    copy. A direction change applies to new bookings; events already in
    Google follow their booking (moved, cancelled) until it is gone."""
    return direction.pushes or in_google


def google_event_id(booking_id: str) -> str:
    """The Google event id of a booking: base32hex of its id (Calendar API:
    ids use the characters a-v and 0-9, 5 to 1024 of them), so every retry of
    an insert names the same event and Google answers 409 instead of making a
    duplicate."""
    encoded = base64.b32hexencode(booking_id.encode("utf-8")).decode("ascii")
    return encoded.rstrip("=").lower()


def booking_id_of_event(event_id: str) -> str | None:
    """The booking id a ``google_event_id`` was made from, or None."""
    text = event_id.upper()
    try:
        return base64.b32hexdecode(text + "=" * (-len(text) % 8)).decode("utf-8")
    except (ValueError, UnicodeDecodeError):
        return None


def imported_uid(resource_id: str, event_id: str) -> str:
    """The UID of the busy block of a Google event (stable: re-imports after
    a 410 full sync land on the same object instead of duplicating it)."""
    return f"google-{event_id}@{resource_id}.calgateway"


def is_imported_uid(uid: str) -> bool:
    """Whether ``uid`` has the form of ``imported_uid``: reserved for busy
    blocks, so that no client can store an object under the UID a Google
    event of some calendar will get, and so make its import fail."""
    return uid.startswith("google-") and uid.endswith(".calgateway") and "@" in uid


def stop_channel_effect(resource_id: str, channel: Channel, sealed_refresh: bytes) -> OutboxEffect:
    """The outbox item that stops a push channel with the credentials that
    opened it (the sealed refresh token: a takeover or reconnect may have
    replaced the connection's own by the time it runs)."""
    return OutboxEffect(
        resource_id,
        "",
        StopChannelPayload(channel.id, channel.resource_id, sealed_refresh.decode("ascii")),
    )
