"""Invitations: links, iTIP messages, iMIP e-mails, RSVP tokens, SMTP.

The values every test module here starts from live in this file."""

from __future__ import annotations

from dataclasses import replace
from typing import Any
from zoneinfo import ZoneInfo

from gateway.core.model import Attendee, Booking, CalendarObject, Resource, TimeSpan
from gateway.ical import ICalCodec
from tests.samples import make_booking

__all__ = ["ANNA", "BERLIN", "ORGANIZER", "ZOE", "make_booking", "moved", "stored", "with_lines"]

BERLIN = ZoneInfo("Europe/Berlin")
ORGANIZER = "bookings@gateway.example"
ANNA = Resource(id="anna", name="Anna Schmidt", email="anna@example.com", timezone="Europe/Berlin")
ZOE = Attendee("zoe@example.com", "Zoë Müller")


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
