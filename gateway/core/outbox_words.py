"""What a queued side effect is, in words, for the admin: "Invitation e-mail
to ana@example.com for 'Haircut' (Tue 8 Dec 2026 09:00)".

A pure function of the stored payload (``gateway.core.outbox_payloads``)
and, for an item about a booking, a glance at that booking as it is now
(None when it is gone). An unreadable record is still named, never an
error: a newer gateway's item may sit in an older one's queue. Times are the booking's wall
clock in its own time zone, the way its resource sees it. English only, as
the log is.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import assert_never
from zoneinfo import ZoneInfo

from .model import Booking
from .outbox_payloads import (
    GooglePushPayload,
    GoogleRemovePayload,
    InvitationPayload,
    MailPayload,
    Payload,
    ResourceReplyPayload,
    StopChannelPayload,
    UnreadablePayload,
)

_ACTIONS = {
    "created": "Invitation",
    "updated": "Updated invitation",
    "rescheduled": "Updated invitation",
    "cancelled": "Cancellation",
    "resent": "Invitation sent again",
}

# Notices to a resource's owner (``mirror.Notice``), worded when sent.
_NOTICES = {
    "google_invite": "Google connect invitation",
    "google_connected": "Google connected confirmation",
    "google_taken_over": "Google account taken over",
}


@dataclass(frozen=True, slots=True)
class BookingGlance:
    """What the words need of a booking: its title and first start."""

    title: str
    start: datetime
    timezone: str

    @classmethod
    def of(cls, booking: Booking) -> BookingGlance:
        return cls(
            title=booking.title,
            start=booking.start,
            timezone=booking.timezone,
        )


def describe(payload: Payload, booking: BookingGlance | None) -> str:
    """One sentence naming what the item does and to whom/what."""
    match payload:
        case InvitationPayload():
            what = _ACTIONS.get(payload.action.value, "Invitation")
            to = payload.attendee or "an attendee"
            return f"{what} e-mail to {to} for {_booking_words(booking)}"
        case GooglePushPayload():
            return f"Copy of {_booking_words(booking)} to Google Calendar"
        case GoogleRemovePayload():
            return (
                f"Removal of event {payload.event_id} from Google calendar "
                f"{payload.calendar_id} (after a takeover)"
            )
        case StopChannelPayload():
            return f"Stop of Google push-notification channel {payload.channel_id}"
        case MailPayload():
            to = payload.to or "the resource"
            if payload.notice:
                return f"{_NOTICES.get(payload.notice, 'Notice')} e-mail to {to}"
            subject = payload.subject
            return f"Notice e-mail to {to}" + (f": {subject!r}" if subject else "")
        case ResourceReplyPayload():
            answer = payload.partstat.lower()
            return f"Reply ({answer}) of {payload.attendee} to {payload.organizer}"
        case UnreadablePayload():
            return f"Unreadable item of kind {payload.kind!r} ({payload.problem})"
    assert_never(payload)


def _booking_words(booking: BookingGlance | None) -> str:
    if booking is None:
        return "a booking that no longer exists"
    title = booking.title.strip() or "Booking"
    return f"{title!r} ({when(booking.start, booking.timezone)})"


def when(start: datetime, timezone: str) -> str:
    """ "Tue 8 Dec 2026 09:00", in ``timezone`` (UTC if the zone is unknown)."""
    try:
        local = start.astimezone(ZoneInfo(timezone))
    except (ValueError, KeyError):  # ZoneInfoNotFoundError is a KeyError
        local = start
    return f"{local:%a} {local.day} {local:%b %Y %H:%M}"
