"""What a queued side effect is, in words, for the admin: "Invitation e-mail
to ana@example.com for 'Haircut' (Tue 8 Dec 2026 09:00)".

A pure function of the stored kind and payload (the kinds are queued by
``gateway.core.service``, ``gateway.core.mirror`` and ``mirror_admin``) and,
for an item about a booking, a glance at that booking as it is now (None when
it is gone). An unknown kind is still named, never an error: a newer
gateway's item may sit in an older one's queue. Times are the booking's wall
clock in its own time zone, the way its resource sees it. English only, as
the log is.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from .model import Booking

# The stored kinds, as written by the modules that queue them. Repeated here
# as text (not imported) so that this table stays a table of words; the
# table test imports the originals and fails when one changes.
_INVITATION = "invitation"
_GOOGLE_PUSH = "google_push"
_GOOGLE_STOP_CHANNEL = "google_stop_channel"
_GOOGLE_REMOVE = "google_remove"
_MAIL = "mail"

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


def describe(kind: str, payload: Mapping[str, Any], booking: BookingGlance | None) -> str:
    """One sentence naming what the item does and to whom/what."""
    if kind == _INVITATION:
        what = _ACTIONS.get(str(payload.get("action", "")), "Invitation")
        to = str(payload.get("attendee", "")) or "an attendee"
        return f"{what} e-mail to {to} for {_booking_words(booking)}"
    if kind == _GOOGLE_PUSH:
        return f"Copy of {_booking_words(booking)} to Google Calendar"
    if kind == _GOOGLE_REMOVE:
        event = str(payload.get("event_id", "")) or "an event"
        calendar = str(payload.get("calendar_id", "")) or "a calendar"
        return f"Removal of event {event} from Google calendar {calendar} (after a takeover)"
    if kind == _GOOGLE_STOP_CHANNEL:
        channel = str(payload.get("channel_id", "")) or "a channel"
        return f"Stop of Google push-notification channel {channel}"
    if kind == _MAIL:
        to = str(payload.get("to", "")) or "the resource"
        notice = str(payload.get("notice", ""))
        if notice:
            return f"{_NOTICES.get(notice, 'Notice')} e-mail to {to}"
        subject = str(payload.get("subject", ""))
        return f"Notice e-mail to {to}" + (f": {subject!r}" if subject else "")
    return f"Effect of kind {kind!r}"


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
