"""The VEVENT of a new booking's calendar object, written as text (issue 17).

``ICalCodec.render`` of a new object used to build an icalendar ``Event`` per
booking and have icalendar write it: about half of a create's CPU in the
booking API. ``new_event`` writes the same bytes directly: icalendar's
property order (its canonical order, then by name), its value formats, its
quoting and its folding. Text with nothing icalendar escapes, quotes or
folds specially (the common case) is written as it is; other text goes
through icalendar's own ``vText``, ``Parameters`` and ``Contentline``.

What is the same for many bookings is kept, keyed by everything it is made
of, so it can never be out of date: the ORGANIZER line of a resource (its
name and e-mail) and the TZID prefix icalendar writes for a zone (its key).

It does not write over a client's text (that keeps the icalendar path), and
it answers None (the caller then uses icalendar) for what it does not cover:
a zone icalendar would name differently at different times, addresses with
line breaks (which icalendar refuses). ``tests/test_ical_render_identity.py``
holds it to icalendar's text.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC, datetime
from functools import lru_cache
from typing import cast
from zoneinfo import ZoneInfo

from icalendar import Event, Parameters, vText
from icalendar.parser import Contentline

from gateway.core.model import Attendee, Booking, BookingStatus, PartStat, Resource

# The STATUS of a booking's VEVENT (RFC 5545 3.8.1.11); the codec uses it too.
STATUS = {
    BookingStatus.CONFIRMED: "CONFIRMED",
    BookingStatus.TENTATIVE: "TENTATIVE",
    BookingStatus.CANCELLED: "CANCELLED",
}

# icalendar's API is untyped; these are its signatures.
_content_line: Callable[[str], Contentline] = Contentline
_line_to_ical = cast(Callable[[Contentline], bytes], Contentline.to_ical)
_params_to_ical = cast(Callable[[Parameters], bytes], Parameters.to_ical)
_text_to_ical = cast(Callable[[vText], bytes], vText.to_ical)


def _fold(line: str) -> str:
    """The line as icalendar folds it (RFC 5545 3.1): a line of up to 74
    octets is left alone (icalendar breaks before the 75th)."""
    if line.isascii():
        return line if len(line) <= 74 else _fold_ascii(line)
    if len(line.encode("utf-8")) <= 74:
        return line
    return _line_to_ical(_content_line(line)).decode("utf-8")


def _fold_ascii(line: str) -> str:
    """icalendar's folding of an ASCII line (one octet a character): pieces
    of 74, except that a piece does not end in the backslash of a TEXT escape
    or the caret of an RFC 6868 one, which then starts the next piece."""
    pieces = []
    start = 0
    while len(line) - start > 74:
        end = start + 74
        if line[end - 1] in "\\^":
            end -= 1
        pieces.append(line[start:end])
        start = end
    pieces.append(line[start:])
    return "\r\n ".join(pieces)


# What icalendar's TEXT escaping touches (backslash, also of "\\N"); a value
# without any of them is written as it is.
_ESCAPED = re.compile(r"[\\;,\r\n]")


def _text(value: str) -> str:
    """A TEXT value escaped as icalendar escapes it (RFC 5545 3.3.11)."""
    if _ESCAPED.search(value) is None:
        return value
    return _text_to_ical(vText(value)).decode("utf-8")


def _stamp(value: datetime) -> str:
    """A DATE-TIME in UTC ("Z" form), as icalendar writes it: seconds, no fraction."""
    t = value.astimezone(UTC)
    return f"{t.year:04}{t.month:02}{t.day:02}T{t.hour:02}{t.minute:02}{t.second:02}Z"


def _local(value: datetime) -> str:
    return (
        f"{value.year:04}{value.month:02}{value.day:02}"
        f"T{value.hour:02}{value.minute:02}{value.second:02}"
    )


@lru_cache(maxsize=64)
def _zone_form(zone_key: str) -> tuple[str, str] | None:
    """What icalendar writes around a DTSTART in zone ``zone_key``: the text
    between the property name and the value (";TZID=...:" or ":") and after
    the value ("Z" for UTC). Taken from icalendar itself for a winter and a
    summer instant; None if the two differ (a zone icalendar names by its
    abbreviation), and then the caller writes with icalendar.

    Cached by the key: icalendar names a ``ZoneInfo`` by its key, or writes
    "Z" for a key its equivalence table (fixed when it is imported) puts with
    UTC, so the form depends on nothing else (bounded, 64 zones)."""
    zone = ZoneInfo(zone_key)
    forms = set()
    for month in (1, 7):
        event = Event()
        event.add("DTSTART", datetime(2001, month, 1, 12, tzinfo=zone))
        line = bytes(event.to_ical()).decode("utf-8").split("\r\n")[1]
        value = _local(datetime(2001, month, 1, 12))
        before, found, after = line.partition(value)
        if not found or not before.startswith("DTSTART"):
            return None
        forms.add((before[len("DTSTART") :], after))
    return forms.pop() if len(forms) == 1 else None


def _address_line(name: str, params: Parameters, email: str) -> str:
    head = _params_to_ical(params).decode("utf-8")
    return _fold(f"{name};{head}:mailto:{email}" if head else f"{name}:mailto:{email}")


@lru_cache(maxsize=256)
def _organizer_line(name: str, email: str) -> str:
    """The ORGANIZER line of a resource (codec ``_organizer`` with nothing
    before it). Cached by everything it is made of (bounded, 256 resources)."""
    return _address_line("ORGANIZER", Parameters({"CN": name}), email)


# A CN that icalendar's ``Parameters`` writes as it is: nothing it escapes
# (RFC 6868: caret, quote, line breaks), quotes when it holds one of
# ``Parameters.quote_also["CN"]`` or of ``parameter.QUOTABLE``.
_CN_ESCAPED = re.compile(r'[\^"\r\n]')
_CN_QUOTED = re.compile("[ ',;:\u2019]")
_PARTSTAT = {p: p.value for p in PartStat}


def _attendee_line(attendee: Attendee) -> str:
    """codec ``_attendee`` with nothing before it: CN if named, then (by
    name, as icalendar sorts them) PARTSTAT, ROLE, RSVP."""
    name = attendee.name
    rest = f"PARTSTAT={_PARTSTAT[attendee.partstat]};ROLE=REQ-PARTICIPANT;RSVP=TRUE"
    if not name:
        head = rest
    elif _CN_ESCAPED.search(name) is None:
        cn = f'"{name}"' if _CN_QUOTED.search(name) else name
        head = f"CN={cn};{rest}"
    else:
        cn_head = _params_to_ical(Parameters({"CN": name})).decode("utf-8")
        head = f"{cn_head};{rest}"
    return _fold(f"ATTENDEE;{head}:mailto:{attendee.email}")


def _plain(address: str) -> bool:
    return "\n" not in address and "\r" not in address


def new_event(booking: Booking, resource: Resource) -> bytes | None:
    """The VEVENT text (with its BEGIN and END lines) that icalendar writes
    for an empty ``Event`` after the codec's ``_apply``; None where this
    writer does not vouch for the same bytes."""
    form = _zone_form(booking.timezone)
    if form is None or not _plain(resource.email):
        return None
    if not all(_plain(a.email) for a in booking.attendees):
        return None
    tz_head, tz_tail = form
    zone = ZoneInfo(booking.timezone)
    lines = ["BEGIN:VEVENT"]
    # icalendar's canonical order first: SUMMARY, DTSTART, DTEND, DTSTAMP,
    # UID, SEQUENCE; then the others by name.
    if booking.title:
        lines.append(_fold("SUMMARY:" + _text(booking.title)))
    start, end = booking.start.astimezone(zone), booking.end.astimezone(zone)
    lines.append(_fold(f"DTSTART{tz_head}{_local(start)}{tz_tail}"))
    lines.append(_fold(f"DTEND{tz_head}{_local(end)}{tz_tail}"))
    lines.append("DTSTAMP:" + _stamp(booking.updated))
    lines.append(_fold("UID:" + _text(booking.uid)))
    lines.append(f"SEQUENCE:{int(booking.sequence)}")
    lines.extend(_attendee_line(a) for a in booking.attendees)
    lines.append("CREATED:" + _stamp(booking.created))
    if booking.description:
        lines.append(_fold("DESCRIPTION:" + _text(booking.description)))
    lines.append("LAST-MODIFIED:" + _stamp(booking.updated))
    if booking.location:
        lines.append(_fold("LOCATION:" + _text(booking.location)))
    lines.append(_organizer_line(resource.name, resource.email))
    lines.append("STATUS:" + STATUS[booking.status])
    lines.append("TRANSP:" + ("TRANSPARENT" if booking.transparent else "OPAQUE"))
    lines.append("END:VEVENT\r\n")
    return "\r\n".join(lines).encode("utf-8")
