"""The codec's rendered text is byte for byte what icalendar writes for the
whole calendar (issue 17).

``ICalCodec.render`` takes the text of the VTIMEZONE it adds from a cache
instead of having icalendar write it again for every booking. Each booking of
the table below (zones with and without summer time, DST edges, bookings over
a year's end, attendees and descriptions with characters that are escaped,
quoted or folded, objects written over a client's text) is rendered twice:
as the codec does it, and as icalendar writes the same calendar in one piece.
The two texts must be equal, with a cold cache and with a warm one.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from gateway.core.model import Attendee, Booking, BookingStatus, PartStat, Resource
from gateway.ical import ICalCodec, timezones
from gateway.ical import codec as ical_codec
from tests.samples import make_booking

ANNA = Resource(id="anna", name="Anna Schmidt", email="anna@example.com", timezone="Europe/Berlin")
ODD = Resource(
    id="odd", name='Room "A", floor 2; east: wing', email="room+a@example.com", timezone="UTC"
)

CLIENT_TEXT = "\r\n".join(
    [
        "BEGIN:VCALENDAR",
        "VERSION:2.0",
        "PRODID:-//Apple Inc.//macOS 14//EN",
        "METHOD:REQUEST",
        "BEGIN:VTIMEZONE",
        "TZID:Europe/Berlin",
        "BEGIN:STANDARD",
        "DTSTART:19701025T030000",
        "RRULE:FREQ=YEARLY;BYMONTH=10;BYDAY=-1SU",
        "TZOFFSETFROM:+0200",
        "TZOFFSETTO:+0100",
        "TZNAME:CET",
        "END:STANDARD",
        "BEGIN:DAYLIGHT",
        "DTSTART:19700329T020000",
        "RRULE:FREQ=YEARLY;BYMONTH=3;BYDAY=-1SU",
        "TZOFFSETFROM:+0100",
        "TZOFFSETTO:+0200",
        "TZNAME:CEST",
        "END:DAYLIGHT",
        "END:VTIMEZONE",
        "BEGIN:VEVENT",
        "UID:b1@gateway.test",
        "DTSTAMP:20261101T120000Z",
        "DTSTART;TZID=Europe/Berlin:20261201T090000",
        "DURATION:PT1H",
        "RRULE:FREQ=WEEKLY;COUNT=10",
        "SUMMARY:Haircut",
        "DESCRIPTION;LANGUAGE=en:Short back and sides",
        "X-FOO;X-PARAM=1:keep me",
        "ORGANIZER;CN=Anna;SCHEDULE-AGENT=CLIENT:mailto:anna@example.com",
        "ATTENDEE;CN=Zoe;PARTSTAT=ACCEPTED;X-NOTE=kept:mailto:ZOE@example.com",
        "BEGIN:VALARM",
        "ACTION:DISPLAY",
        "DESCRIPTION:Reminder",
        "TRIGGER:-PT15M",
        "END:VALARM",
        "END:VEVENT",
        "BEGIN:VEVENT",
        "UID:b1@gateway.test",
        "DTSTAMP:20261101T120000Z",
        "RECURRENCE-ID;TZID=Europe/Berlin:20261208T090000",
        "DTSTART;TZID=Europe/Berlin:20261208T110000",
        "DURATION:PT1H",
        "SUMMARY:Haircut (moved)",
        "END:VEVENT",
        "END:VCALENDAR",
        "",
    ]
)


def _at(zone: str, start_utc: datetime, hours: float = 1, **changes: object) -> Booking:
    """A booking in ``zone`` from ``start_utc`` (an instant) for ``hours``."""
    tz = ZoneInfo(zone)
    end = start_utc + timedelta(hours=hours)
    return make_booking(
        start=start_utc.astimezone(tz), end=end.astimezone(tz), timezone=zone, **changes
    )


def _utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=UTC)


# (name, booking, resource, the text it is written over or None)
CASES: list[tuple[str, Booking, Resource, str | None]] = [
    ("berlin winter", make_booking(), ANNA, None),
    ("berlin into summer time", _at("Europe/Berlin", _utc(2027, 3, 28, 0, 30), 2), ANNA, None),
    ("berlin the repeated hour", _at("Europe/Berlin", _utc(2027, 10, 31, 0, 30)), ANNA, None),
    ("berlin over new year", _at("Europe/Berlin", _utc(2027, 12, 31, 22, 30), 3), ANNA, None),
    ("new york into summer time", _at("America/New_York", _utc(2027, 3, 14, 6)), ANNA, None),
    ("new york the repeated hour", _at("America/New_York", _utc(2027, 11, 7, 5, 30)), ANNA, None),
    ("lord howe, half an hour", _at("Australia/Lord_Howe", _utc(2027, 4, 3, 14, 45)), ANNA, None),
    ("chatham", _at("Pacific/Chatham", _utc(2027, 9, 25, 13)), ANNA, None),
    ("dublin, negative summer time", _at("Europe/Dublin", _utc(2027, 3, 28, 0, 30)), ANNA, None),
    ("kolkata, no summer time", _at("Asia/Kolkata", _utc(2027, 6, 1, 4, 30)), ANNA, None),
    ("sao paulo, summer time abolished", _at("America/Sao_Paulo", _utc(2027, 1, 5)), ANNA, None),
    ("utc, no vtimezone", _at("UTC", _utc(2027, 6, 1, 9)), ODD, None),
    ("a week long", _at("Europe/Berlin", _utc(2027, 3, 25, 9), 24 * 7), ANNA, None),
    (
        "people and text with special characters",
        make_booking(
            title='Cut, dye; "style": 100% \\ done',
            description="Line one\nLine two, with a comma; a semicolon\\ and a backslash\n"
            + "Zoë Müller 🎉 mag 日本語 " * 8,
            location="Chair 2, Rue de l'Église; 3rd floor",
            attendees=(
                Attendee("zoe@example.com", "Zoë Müller"),
                Attendee("o.brien+cut@example.com", 'Dónal "Danny" O\'Brien, Jr.; Esq:'),
                Attendee("quiet@example.com", "", PartStat.ACCEPTED),
                Attendee("LONG@example.com", "A" * 80, PartStat.TENTATIVE),
            ),
            sequence=3,
        ),
        ODD,
        None,
    ),
    ("no attendees", make_booking(attendees=(), description="", location=""), ANNA, None),
    ("cancelled", make_booking(status=BookingStatus.CANCELLED, sequence=2), ANNA, None),
    (
        "tentative and free",
        make_booking(status=BookingStatus.TENTATIVE, transparent=True),
        ANNA,
        None,
    ),
    ("over a client's series", make_booking(sequence=1, recurring=True), ANNA, CLIENT_TEXT),
    (
        "over a client's series, moved to new york",
        _at("America/New_York", _utc(2026, 12, 1, 14), sequence=1, recurring=True),
        ANNA,
        CLIENT_TEXT,
    ),
    (
        "over a client's series, cancelled",
        make_booking(sequence=2, recurring=True, status=BookingStatus.CANCELLED),
        ANNA,
        CLIENT_TEXT,
    ),
]


def _render(booking: Booking, resource: Resource, previous: str | None) -> str:
    return ICalCodec().render(booking, resource, previous)


def _whole(booking: Booking, resource: Resource, previous: str | None) -> str:
    """How the codec wrote an object before issue 17: the calendar it builds,
    written by icalendar in one piece."""
    calendar, _ = ical_codec._calendar(booking, resource, previous)
    return bytes(calendar.to_ical()).decode("utf-8")


def _forget_zones() -> None:
    for cached in (timezones._vtimezone, timezones._vtimezone_bytes, ical_codec._new_head):
        cached.cache_clear()


@pytest.mark.parametrize("cold", [True, False], ids=["cold", "warm"])
@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_render_is_what_icalendar_writes_in_one_piece(
    case: tuple[str, Booking, Resource, str | None], cold: bool
) -> None:
    _, booking, resource, previous = case
    if cold:
        _forget_zones()
    fast = _render(booking, resource, previous)
    assert fast == _whole(booking, resource, previous)
    # And the zone is in it, once, before the events (RFC 5545 3.6.5).
    if booking.timezone != "UTC":
        assert fast.count(f"TZID:{booking.timezone}\r\n") == 1
        assert fast.index("BEGIN:VTIMEZONE") < fast.index("BEGIN:VEVENT")


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_render_over_its_own_text_is_what_icalendar_writes(
    case: tuple[str, Booking, Resource, str | None],
) -> None:
    """A change over the gateway's own text: the zone stays, or is widened
    when the booking moves years ahead (a generated VTIMEZONE replaced)."""
    _, booking, resource, previous = case
    first = _render(booking, resource, previous)
    for later in (booking.start + timedelta(days=1), booking.start + timedelta(days=6 * 365)):
        moved = replace(
            booking,
            start=later,
            end=later + (booking.end - booking.start),
            sequence=booking.sequence + 1,
        )
        assert _render(moved, resource, first) == _whole(moved, resource, first)
