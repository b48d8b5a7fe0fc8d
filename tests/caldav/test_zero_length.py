"""Zero-length events at the edges of a time range (RFC 4791 9.9), through
the real app: calendar-query, free-busy-query and the double-booking check.

9.9 counts an instant (DURATION zero, or a DATE-TIME DTSTART alone) in a
range when ``start <= DTSTART < end``: a range starting at it finds it, one
ending at it does not. An event whose DTEND equals its DTSTART (RFC 5545
3.6.1 wants it later) counts as an instant too, as the store indexes it; a
DATE with such a DTEND is the instant at midnight in the calendar's zone. A
DATE alone lasts the day. Each shape is tried as a single event, as the last
instance of a series, and as an overridden last instance: issue 13 found the
last instance of a zero-length series missed by a range starting at it.

Free-busy: an instant takes no time, so it adds no FREEBUSY period (RFC 5545
3.3.9: a period's start is before its end); a day does.

Double booking is no time-range query: an instant takes no time (RFC 5545
3.6.1), shows no busy period in free-busy, and so blocks no booking, nor
does a booking block it; a day does, where the booking overlaps it. What a
booking page is shown as free (free-busy, the availability API) is what can
be booked.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from icalendar import Calendar

from tests.caldav.dav import Answer, C, event, put, request, time_range_query
from tests.conftest import AppClient

ANNA = "/dav/calendars/anna/"
BERLIN = ZoneInfo("Europe/Berlin")

# Each shape's properties for a day in December 2026 ({day}), and whether it
# is the whole day (else an instant).
SHAPES = {
    "DTEND=DTSTART": ("DTSTART:202612{day}T090000Z\r\nDTEND:202612{day}T090000Z\r\n", False),
    "DURATION:PT0S": ("DTSTART:202612{day}T090000Z\r\nDURATION:PT0S\r\n", False),
    "DATE-TIME alone": ("DTSTART:202612{day}T090000Z\r\n", False),
    "zoned DATE-TIME alone": ("DTSTART;TZID=Europe/Berlin:202612{day}T100000\r\n", False),
    "DATE alone": ("DTSTART;VALUE=DATE:202612{day}\r\n", True),
    "DATE, DTEND=DTSTART": (
        "DTSTART;VALUE=DATE:202612{day}\r\nDTEND;VALUE=DATE:202612{day}\r\n",
        False,
    ),
}
KINDS = ("single", "series", "override")
# The series: 1, 3 and 5 December; its last instance is the single event's day.
LAST_DAY = 5


def _recurrence_id(shape: str) -> str:
    props, _ = SHAPES[shape]
    dtstart = props.split("\r\n")[0].format(day=f"{LAST_DAY:02d}")
    return dtstart.replace("DTSTART", "RECURRENCE-ID")


def zero_length(shape: str, kind: str, uid: str = "zero") -> str:
    """The object: a single event on 5 December, or a series whose last
    instance is then (overridden with the same times for ``override``)."""
    props, _ = SHAPES[shape]
    head = "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//test//caldav//EN\r\n"
    common = f"UID:{uid}\r\nDTSTAMP:20261101T000000Z\r\n"
    if kind == "single":
        body = f"BEGIN:VEVENT\r\n{common}{props.format(day='05')}SUMMARY:Note\r\nEND:VEVENT\r\n"
        return head + body + "END:VCALENDAR\r\n"
    master = (
        f"BEGIN:VEVENT\r\n{common}{props.format(day='01')}"
        "RRULE:FREQ=DAILY;INTERVAL=2;COUNT=3\r\nSUMMARY:Note\r\nEND:VEVENT\r\n"
    )
    override = ""
    if kind == "override":
        override = (
            f"BEGIN:VEVENT\r\n{common}{_recurrence_id(shape)}\r\n{props.format(day='05')}"
            "SUMMARY:Note, moved here\r\nEND:VEVENT\r\n"
        )
    return head + master + override + "END:VCALENDAR\r\n"


def last_start(shape: str) -> datetime:
    """When the last (or only) instance starts, in UTC."""
    if "DATE," in shape or shape == "DATE alone":
        return datetime(2026, 12, LAST_DAY, tzinfo=BERLIN).astimezone(UTC)
    return datetime(2026, 12, LAST_DAY, 9, tzinfo=UTC)


def stamp(value: datetime) -> str:
    return value.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")


HOUR = timedelta(hours=1)
# Ranges around the last instance's start L: [L, L+1h) finds it, [L-1h, L)
# does not (9.9: DTSTART < end), [L-1h, L+1h) does.
RANGES = {
    "starting at it": ((timedelta(0), HOUR), True),
    "ending at it": ((-HOUR, timedelta(0)), False),
    "around it": ((-HOUR, HOUR), True),
}

CASES = [
    pytest.param(shape, kind, where, id=f"{shape}-{kind}-{where}")
    for shape in SHAPES
    for kind in KINDS
    for where in RANGES
]


async def report(client: AppClient, body: str) -> Answer:
    return await request(client, "REPORT", ANNA, body, headers={"Depth": "1"})


def window(shape: str, where: str) -> tuple[datetime, datetime]:
    (before, after), _ = RANGES[where]
    at = last_start(shape)
    return at + before, at + after


@pytest.mark.parametrize(("shape", "kind", "where"), CASES)
async def test_calendar_query(client: AppClient, shape: str, kind: str, where: str) -> None:
    assert (await put(client, f"{ANNA}zero.ics", zero_length(shape, kind))).status == 201
    start, end = window(shape, where)
    answer = await report(client, time_range_query(stamp(start), stamp(end)))
    assert answer.status == 207
    _, found = RANGES[where]
    assert answer.hrefs() == ([f"{ANNA}zero.ics"] if found else [])


def _periods(body: bytes) -> list[str]:
    found: list[str] = []
    for component in Calendar.from_ical(body).walk("VFREEBUSY"):
        values = component.get("FREEBUSY", [])
        for prop in values if isinstance(values, list) else [values]:
            found.append(prop.to_ical().decode())
    return found


@pytest.mark.parametrize(("shape", "kind", "where"), CASES)
async def test_free_busy_query(client: AppClient, shape: str, kind: str, where: str) -> None:
    assert (await put(client, f"{ANNA}zero.ics", zero_length(shape, kind))).status == 201
    start, end = window(shape, where)
    body = (
        f'<C:free-busy-query xmlns:C="{C}">'
        f'<C:time-range start="{stamp(start)}" end="{stamp(end)}"/></C:free-busy-query>'
    )
    answer = await report(client, body)
    assert answer.status == 200
    _, whole_day = SHAPES[shape]
    _, found = RANGES[where]
    # A day is busy from its start to the range's end; an instant is never busy.
    expected = [f"{stamp(last_start(shape))}/{stamp(end)}"] if whole_day and found else []
    assert _periods(answer.body) == expected


def _blocks(shape: str, where: str) -> bool:
    """A booking over the range ``where`` meets this shape's last instance
    and the shape takes time (a day); an instant never blocks."""
    _, whole_day = SHAPES[shape]
    _, found = RANGES[where]
    return whole_day and found


@pytest.mark.parametrize(("shape", "kind", "where"), CASES)
async def test_a_booking_over_the_instant_is_not_refused(
    client: AppClient, shape: str, kind: str, where: str
) -> None:
    assert (await put(client, f"{ANNA}zero.ics", zero_length(shape, kind))).status == 201
    start, end = window(shape, where)
    booking = await put(client, f"{ANNA}booking.ics", event("booking", stamp(start), stamp(end)))
    if _blocks(shape, where):
        assert booking.status == 409, booking.body
        assert "no-double-booking" in booking.error()
    else:
        assert booking.status == 201, booking.body


@pytest.mark.parametrize(("shape", "kind", "where"), CASES)
async def test_the_instant_in_a_booking_is_not_refused(
    client: AppClient, shape: str, kind: str, where: str
) -> None:
    # The other way round: the booking is there first.
    start, end = window(shape, where)
    booking = await put(client, f"{ANNA}booking.ics", event("booking", stamp(start), stamp(end)))
    assert booking.status == 201
    answer = await put(client, f"{ANNA}zero.ics", zero_length(shape, kind))
    if _blocks(shape, where):
        assert answer.status == 409, answer.body
        assert "no-double-booking" in answer.error()
    else:
        assert answer.status == 201, answer.body


async def test_two_instants_at_one_time_do_not_clash(client: AppClient) -> None:
    first = zero_length("DATE-TIME alone", "single", uid="one")
    second = zero_length("DURATION:PT0S", "series", uid="two")
    assert (await put(client, f"{ANNA}one.ics", first)).status == 201
    assert (await put(client, f"{ANNA}two.ics", second)).status == 201
