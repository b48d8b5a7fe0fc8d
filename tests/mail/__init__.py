"""Invitations: links, iTIP messages, iMIP e-mails, RSVP tokens, SMTP.

The values every test module here starts from live in this file."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

from gateway.core.model import Attendee, Booking, CalendarObject, Resource, TimeSpan
from gateway.ical import ICalCodec

BERLIN = ZoneInfo("Europe/Berlin")
ORGANIZER = "bookings@gateway.example"
ANNA = Resource(id="anna", name="Anna Schmidt", email="anna@example.com", timezone="Europe/Berlin")
ZOE = Attendee("zoe@example.com", "Zoë Müller")


def make_booking(**changes: Any) -> Booking:
    values: dict[str, Any] = {
        "id": "b1",
        "resource_id": "anna",
        "uid": "b1@gateway.test",
        "title": "Haircut",
        "start": datetime(2026, 12, 1, 9, tzinfo=BERLIN),
        "end": datetime(2026, 12, 1, 10, tzinfo=BERLIN),
        "timezone": "Europe/Berlin",
        "created": datetime(2026, 11, 1, 12, tzinfo=UTC),
        "updated": datetime(2026, 11, 2, 12, tzinfo=UTC),
        "description": "Short back and sides",
        "location": "Chair 2",
        "attendees": (ZOE,),
    }
    values.update(changes)
    return Booking(**values)


def stored(booking: Booking, previous: str | None = None) -> CalendarObject:
    """The calendar object the store would hold for ``booking``, rendered by
    the real codec (over ``previous``, as an update does)."""
    ics = ICalCodec().render(booking, ANNA, previous)
    return CalendarObject(booking, ics, TimeSpan(booking.start, booking.end).in_utc())


def with_lines(ics: str, before: str, lines: list[str]) -> str:
    """``ics`` with content lines inserted before the first ``before`` line."""
    head, sep, tail = ics.partition(before + "\r\n")
    assert sep, f"{before} not in the object"
    return head + "".join(line + "\r\n" for line in lines) + sep + tail


def moved(booking: Booking, **changes: Any) -> Booking:
    """The booking after a real change: SEQUENCE + 1 (RFC 5546 2.1.4)."""
    return replace(booking, sequence=booking.sequence + 1, **changes)
