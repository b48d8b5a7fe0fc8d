"""Invitations (iMIP/iTIP) as domain values, and the rule that decides whether
an attendee's reply updates a booking. No I/O and no format library: the
calendar text is written and read in ``gateway.ical.itip``, the e-mail built in
``gateway.mail``."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import UTC, date, datetime, time
from enum import StrEnum
from zoneinfo import ZoneInfo

from .model import Booking, BookingStatus, PartStat


class InvitationKind(StrEnum):
    """The iTIP method of an invitation the organizer sends (RFC 5546 1.4).

    A new booking and every reschedule are a REQUEST (a reschedule with the
    next SEQUENCE, RFC 5546 2.1.4); a cancellation is a CANCEL (3.2.5)."""

    REQUEST = "REQUEST"
    CANCEL = "CANCEL"


def invitation_kind(booking: Booking) -> InvitationKind:
    """The method that tells attendees about the booking as it now is."""
    if booking.status is BookingStatus.CANCELLED:
        return InvitationKind.CANCEL
    return InvitationKind.REQUEST


class InvalidReply(ValueError):
    """A calendar text that is not a usable iTIP REPLY (RFC 5546 3.2.3)."""


@dataclass(frozen=True, slots=True)
class ItipReply:
    """What an attendee's METHOD:REPLY says (RFC 5546 3.2.3).

    ``dtstamp`` is in UTC. ``recurrence_id`` is set when the reply is about
    one occurrence of a series (a DATE for an all-day series). ``organizer_email``
    is None when the reply names no ORGANIZER, as Outlook's do."""

    uid: str
    attendee_email: str
    partstat: PartStat
    sequence: int
    dtstamp: datetime
    recurrence_id: datetime | date | None = None
    organizer_email: str | None = None
    comment: str = ""


@dataclass(frozen=True, slots=True)
class ReplyOutcome:
    """What became of an answer: ``applied`` and why (not)."""

    applied: bool
    reason: str
    booking: Booking | None = None


@dataclass(frozen=True, slots=True)
class CalendarLinks:
    """Ways to put a booking into a calendar the gateway cannot write to:
    prefilled "add event" pages of the big web calendars and the .ics itself."""

    google: str
    outlook: str
    office365: str
    yahoo: str
    ics: str

    def as_dict(self) -> dict[str, str]:
        return asdict(self)


def same_address(a: str, b: str) -> bool:
    """Whether two e-mail addresses name the same mailbox."""
    return mailbox(a) == mailbox(b)


def mailbox(address: str) -> str:
    """The spelling of an e-mail address that every spelling of the same
    mailbox shares. The local part is case-sensitive in theory (RFC 5321
    2.4) but not in any mail system a booker uses, and calendar clients
    change its case freely."""
    return address.strip().casefold()


def reply_applies(booking: Booking, reply: ItipReply) -> tuple[bool, str]:
    """Whether ``reply`` may update the booking's attendee, and why (not).

    RFC 5546 3.2.3: a REPLY names the event by UID and the replying attendee,
    who must be one the organizer invited. RFC 5546 2.1.5: the reply answers
    one revision of the event, named by SEQUENCE; an answer to an older
    revision (the booker accepted 10:00, then the booking moved to 11:00) says
    nothing about the current one and is stale. A higher SEQUENCE than the
    organizer ever sent cannot come from a genuine reply.

    The gateway keeps one participation status per booking, not per
    occurrence, so a reply about a single occurrence (RECURRENCE-ID) is not
    applied; nor is one about a cancelled booking, which has nothing left to
    accept or decline."""
    if reply.uid != booking.uid:
        return False, f"UID {reply.uid!r} is not the booking's ({booking.uid!r})"
    if not any(same_address(a.email, reply.attendee_email) for a in booking.attendees):
        return False, f"{reply.attendee_email!r} is not an attendee of the booking"
    if reply.sequence < booking.sequence:
        return False, (
            f"stale reply: it answers SEQUENCE {reply.sequence}, "
            f"the booking is at SEQUENCE {booking.sequence}"
        )
    if reply.sequence > booking.sequence:
        return False, (
            f"reply answers SEQUENCE {reply.sequence}, which was never sent "
            f"(the booking is at SEQUENCE {booking.sequence})"
        )
    if reply.recurrence_id is not None:
        return False, "replies about a single occurrence are not tracked"
    if booking.status is BookingStatus.CANCELLED:
        return False, "the booking is cancelled"
    return True, "applies"


def is_all_day(booking: Booking) -> bool:
    """Whether the booking covers whole days: it starts and ends at midnight
    in its own time zone and is not empty. That is how an all-day event (DATE
    values, RFC 5545 3.6.1) reads once the gateway has parsed it, and how a
    booking made through the API for whole days looks.

    Midnight is the day's first instant, so a day whose midnight the clocks
    skip (a DST change at 00:00) still counts."""
    return spans_whole_days(booking.start, booking.end, ZoneInfo(booking.timezone))


def spans_whole_days(start: datetime, end: datetime, zone: ZoneInfo) -> bool:
    """Whether ``start`` to ``end`` is one or more whole days in ``zone``
    (``is_all_day`` for any span and zone, e.g. a booking seen from the
    booker's zone)."""
    return end.astimezone(UTC) > start.astimezone(UTC) and all(
        _at_midnight(value, zone) for value in (start, end)
    )


def local_dates(booking: Booking) -> tuple[date, date]:
    """First day and the day after the last (exclusive end, as DTEND of an
    all-day event, RFC 5545 3.6.1) of an all-day booking, in its zone."""
    zone = ZoneInfo(booking.timezone)
    return booking.start.astimezone(zone).date(), booking.end.astimezone(zone).date()


def _at_midnight(value: datetime, zone: ZoneInfo) -> bool:
    local = value.astimezone(zone)
    midnight = datetime.combine(local.date(), time(), zone)
    # Compared as instants: Python compares two datetimes of the same zone by
    # their wall-clock fields, and a skipped 00:00 is the same instant as 01:00.
    return value.astimezone(UTC) == midnight.astimezone(UTC)
