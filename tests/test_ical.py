"""The iCalendar codec and feed rendering on values built here (no server).

Everything rendered is parsed back with two independent parsers, icalendar
and vobject.
"""

from __future__ import annotations

import warnings
from dataclasses import replace
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import icalendar
import pytest
import vobject

from gateway.core.model import (
    FAR_FUTURE,
    Attendee,
    Booking,
    BookingStatus,
    CalendarObject,
    PartStat,
    Resource,
    TimeSpan,
)
from gateway.ical import PRODID, FeedView, ICalCodec, render_feed
from gateway.ical import codec as ical_codec
from gateway.ical import feed as ical_feed
from tests.corpus import corpus_files, read_utf8
from tests.samples import make_booking

BERLIN = ZoneInfo("Europe/Berlin")
NEW_YORK = ZoneInfo("America/New_York")
VIEWS: tuple[FeedView, FeedView] = ("full", "busy")

ANNA = Resource(id="anna", name="Anna Schmidt", email="anna@example.com", timezone="Europe/Berlin")
BOB = Resource(id="bob", name="Bob Jones", email="bob@example.com", timezone="America/New_York")


def stored(ics: str, **changes: Any) -> CalendarObject:
    """A stored object: the text as given plus the fields a store would hold."""
    booking = make_booking(**changes)
    end = FAR_FUTURE if booking.recurring else booking.end
    return CalendarObject(booking=booking, ics=ics, span=TimeSpan(booking.start, end).in_utc())


def rendered(booking: Booking | None = None, resource: Resource = ANNA) -> CalendarObject:
    booking = booking or make_booking()
    ics = ICalCodec().render(booking, resource, None)
    return CalendarObject(booking, ics, TimeSpan(booking.start, booking.end).in_utc())


def crlf(text: str) -> str:
    return "\r\n".join(text.strip().splitlines()) + "\r\n"


def parse(data: str | bytes) -> icalendar.Calendar:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        calendar = icalendar.Calendar.from_ical(data)
    assert isinstance(calendar, icalendar.Calendar)
    return calendar


def parse_vobject(data: str | bytes) -> Any:
    text = data.decode("utf-8") if isinstance(data, bytes) else data
    # vobject keeps the first VTIMEZONE it meets per TZID for the whole
    # process; objects carry definitions limited to their own years, so let it
    # read each calendar's own.
    getattr(vobject.icalendar, "__tzidMap").clear()
    return vobject.readOne(text)


def events(calendar: icalendar.Calendar) -> list[icalendar.Event]:
    return [e for e in calendar.walk("VEVENT") if isinstance(e, icalendar.Event)]


def assert_wire_format(data: str | bytes) -> None:
    """CRLF line ends and lines of at most 75 octets (RFC 5545 3.1)."""
    raw = data.encode("utf-8") if isinstance(data, str) else data
    assert raw.endswith(b"\r\n")
    assert b"\n" not in raw.replace(b"\r\n", b"")
    assert b"\r" not in raw.replace(b"\r\n", b"")
    for line in raw.split(b"\r\n"):
        assert len(line) <= 75, line


def assert_timezones_complete(calendar: icalendar.Calendar) -> None:
    """Exactly one VTIMEZONE for every TZID used (RFC 5545 3.6.5)."""
    defined = [str(tz["TZID"]) for tz in calendar.walk("VTIMEZONE")]
    assert len(defined) == len(set(defined)), defined
    assert calendar.get_used_tzids() <= set(defined)


def unfolded(data: bytes) -> bytes:
    return data.replace(b"\r\n ", b"").replace(b"\r\n\t", b"")


# -- render -----------------------------------------------------------------------


def test_render_parses_back_with_icalendar_and_vobject() -> None:
    booking = make_booking(sequence=2)
    text = ICalCodec().render(booking, ANNA, None)
    assert isinstance(text, str)
    assert_wire_format(text)

    calendar = parse(text)
    assert str(calendar["VERSION"]) == "2.0"
    assert str(calendar["PRODID"]) == PRODID
    assert str(calendar["CALSCALE"]) == "GREGORIAN"
    assert "METHOD" not in calendar  # stored objects carry none (RFC 4791 4.1)
    [event] = events(calendar)
    assert str(event["UID"]) == "b1@gateway.test"
    assert event.decoded("DTSTAMP") == booking.updated
    assert event.decoded("CREATED") == booking.created
    assert event.decoded("LAST-MODIFIED") == booking.updated
    assert "DTSTAMP:20261102T120000Z" in text
    assert int(event["SEQUENCE"]) == 2
    assert "DTSTART;TZID=Europe/Berlin:20261201T090000" in text
    assert "DTEND;TZID=Europe/Berlin:20261201T100000" in text
    assert event.decoded("DTSTART") == booking.start
    assert str(event["SUMMARY"]) == "Haircut"
    assert str(event["DESCRIPTION"]) == "Short back and sides"
    assert str(event["LOCATION"]) == "Chair 2"
    assert str(event["STATUS"]) == "CONFIRMED"
    assert str(event["TRANSP"]) == "OPAQUE"
    organizer = event["ORGANIZER"]
    assert str(organizer) == "mailto:anna@example.com"
    assert organizer.params["CN"] == "Anna Schmidt"
    attendee = event["ATTENDEE"]
    assert str(attendee) == "mailto:zoe@example.com"
    assert attendee.params["CN"] == "Zoë Müller"
    assert attendee.params["ROLE"] == "REQ-PARTICIPANT"
    assert attendee.params["PARTSTAT"] == "NEEDS-ACTION"
    assert attendee.params["RSVP"] == "TRUE"
    assert_timezones_complete(calendar)

    other = parse_vobject(text)
    assert other.vevent.uid.value == "b1@gateway.test"
    assert other.vevent.dtstart.value == booking.start
    assert other.vevent.dtend.value == booking.end
    assert other.vevent.summary.value == "Haircut"
    assert other.vevent.attendee.params["CN"] == ["Zoë Müller"]
    assert other.vevent.organizer.value == "mailto:anna@example.com"


def test_render_status_transparency_and_several_attendees() -> None:
    booking = make_booking(
        status=BookingStatus.TENTATIVE,
        transparent=True,
        attendees=(
            Attendee("zoe@example.com", "Zoë", PartStat.ACCEPTED),
            Attendee("max@example.com", "", PartStat.DECLINED),
        ),
    )
    [event] = events(parse(ICalCodec().render(booking, ANNA, None)))
    assert str(event["STATUS"]) == "TENTATIVE"
    assert str(event["TRANSP"]) == "TRANSPARENT"
    attendees = {str(a): a.params for a in event["ATTENDEE"]}
    assert attendees["mailto:zoe@example.com"]["PARTSTAT"] == "ACCEPTED"
    assert attendees["mailto:max@example.com"]["PARTSTAT"] == "DECLINED"
    assert "CN" not in attendees["mailto:max@example.com"]


def test_render_leaves_out_empty_description_and_location() -> None:
    text = ICalCodec().render(make_booking(description="", location=""), ANNA, None)
    [event] = events(parse(text))
    assert "DESCRIPTION" not in event
    assert "LOCATION" not in event


def test_render_folds_long_unicode_lines_and_uses_crlf() -> None:
    description = "Zoë möchte 💇 einen Schnitt, bitte; danke\\ " * 12 + "\nzweite Zeile"
    booking = make_booking(description=description, title="Ärger, Ölung; 日本語 " * 4)
    text = ICalCodec().render(booking, ANNA, None)
    assert_wire_format(text)
    assert any(line.startswith(" ") for line in text.split("\r\n"))  # really folded
    [event] = events(parse(text))
    assert str(event["DESCRIPTION"]) == description
    assert str(event["SUMMARY"]) == booking.title
    assert parse_vobject(text).vevent.description.value == description


def test_render_writes_a_vtimezone_for_the_booking_zone() -> None:
    booking = make_booking(
        start=datetime(2026, 12, 1, 9, tzinfo=NEW_YORK),
        end=datetime(2026, 12, 1, 10, tzinfo=NEW_YORK),
        timezone="America/New_York",
    )
    text = ICalCodec().render(booking, BOB, None)
    calendar = parse(text)
    assert [str(tz["TZID"]) for tz in calendar.walk("VTIMEZONE")] == ["America/New_York"]
    assert_timezones_complete(calendar)
    # Restricted to the years around the booking, so the object stays small.
    assert len(text) < 3000


def test_every_parser_reads_summer_time_from_the_vtimezone() -> None:
    # 2027 lies in the second year the VTIMEZONE describes: written as an
    # RDATE of the first summer, vobject would read it as winter time.
    summer = datetime(2027, 7, 1, 9, tzinfo=BERLIN)
    text = ICalCodec().render(
        make_booking(start=summer, end=summer + timedelta(hours=1)), ANNA, None
    )
    assert events(parse(text))[0].decoded("DTSTART").utcoffset() == timedelta(hours=2)
    assert parse_vobject(text).vevent.dtstart.value.utcoffset() == timedelta(hours=2)
    assert "RDATE" not in text


def test_render_in_utc_needs_no_vtimezone() -> None:
    booking = make_booking(
        start=datetime(2026, 12, 1, 9, tzinfo=ZoneInfo("UTC")),
        end=datetime(2026, 12, 1, 10, tzinfo=ZoneInfo("UTC")),
        timezone="UTC",
    )
    text = ICalCodec().render(booking, ANNA, None)
    assert "DTSTART:20261201T090000Z" in text
    assert "VTIMEZONE" not in text


PREVIOUS = crlf("""
BEGIN:VCALENDAR
VERSION:2.0
PRODID:-//Apple Inc.//macOS 14//EN
METHOD:REQUEST
BEGIN:VTIMEZONE
TZID:Europe/Berlin
BEGIN:STANDARD
DTSTART:19701025T030000
RRULE:FREQ=YEARLY;BYMONTH=10;BYDAY=-1SU
TZOFFSETFROM:+0200
TZOFFSETTO:+0100
TZNAME:CET
END:STANDARD
BEGIN:DAYLIGHT
DTSTART:19700329T020000
RRULE:FREQ=YEARLY;BYMONTH=3;BYDAY=-1SU
TZOFFSETFROM:+0100
TZOFFSETTO:+0200
TZNAME:CEST
END:DAYLIGHT
END:VTIMEZONE
BEGIN:VEVENT
UID:b1@gateway.test
DTSTAMP:20261101T120000Z
DTSTART;TZID=Europe/Berlin:20261201T090000
DURATION:PT1H
SUMMARY:Haircut
DESCRIPTION;LANGUAGE=en:Short back and sides
LOCATION:Chair 2
X-FOO;X-PARAM=1:keep me
X-APPLE-TRAVEL-ADVISORY-BEHAVIOR:AUTOMATIC
CONFERENCE;VALUE=URI;FEATURE=VIDEO:https://meet.example.com/x
ORGANIZER;CN=Anna;SCHEDULE-AGENT=CLIENT:mailto:anna@example.com
ATTENDEE;CN=Zoe;PARTSTAT=ACCEPTED;X-NOTE=kept:mailto:ZOE@example.com
ATTENDEE;CN=Gone:mailto:gone@example.com
BEGIN:VALARM
ACTION:DISPLAY
DESCRIPTION:Reminder
TRIGGER:-PT15M
X-WR-ALARMUID:alarm-1
END:VALARM
END:VEVENT
END:VCALENDAR
""")


def test_render_over_previous_keeps_what_the_gateway_does_not_model() -> None:
    booking = make_booking(
        start=datetime(2026, 12, 1, 9, tzinfo=NEW_YORK),
        end=datetime(2026, 12, 1, 10, tzinfo=NEW_YORK),
        timezone="America/New_York",
        sequence=1,
        title="Haircut and beard",
    )
    text = ICalCodec().render(booking, ANNA, PREVIOUS)
    assert_wire_format(text)
    calendar = parse(text)
    assert "METHOD" not in calendar
    [event] = events(calendar)
    # Unmodelled things survive.
    assert str(event["X-FOO"]) == "keep me"
    assert event["X-FOO"].params["X-PARAM"] == "1"
    assert "X-APPLE-TRAVEL-ADVISORY-BEHAVIOR" in event
    assert "CONFERENCE" in event
    [alarm] = event.walk("VALARM")
    assert str(alarm["TRIGGER"].to_ical().decode()) == "-PT15M"
    assert str(alarm["X-WR-ALARMUID"]) == "alarm-1"
    # Modelled things follow the booking.
    assert str(event["SUMMARY"]) == "Haircut and beard"
    assert int(event["SEQUENCE"]) == 1
    assert event.decoded("DTSTART") == booking.start
    assert event.decoded("DTEND") == booking.end
    assert "DURATION" not in event  # DTEND and DURATION exclude each other
    # An unchanged description keeps its parameters.
    assert event["DESCRIPTION"].params["LANGUAGE"] == "en"
    attendees = _as_list(event["ATTENDEE"])
    assert [str(a) for a in attendees] == ["mailto:zoe@example.com"]
    assert attendees[0].params["X-NOTE"] == "kept"
    assert attendees[0].params["CN"] == "Zoë Müller"
    assert attendees[0].params["PARTSTAT"] == "NEEDS-ACTION"
    assert event["ORGANIZER"].params["SCHEDULE-AGENT"] == "CLIENT"
    assert event["ORGANIZER"].params["CN"] == "Anna Schmidt"
    # The client's VTIMEZONE stays, one for the new zone is added.
    zones = [str(tz["TZID"]) for tz in calendar.walk("VTIMEZONE")]
    assert sorted(zones) == ["America/New_York", "Europe/Berlin"]
    assert_timezones_complete(calendar)
    assert parse_vobject(text).vevent.dtstart.value == booking.start


def test_render_over_previous_with_same_time_keeps_the_time_as_written() -> None:
    text = ICalCodec().render(make_booking(sequence=1), ANNA, PREVIOUS)
    [event] = events(parse(text))
    assert "DURATION:PT1H" in text
    assert "DTEND" not in event
    assert [str(tz["TZID"]) for tz in parse(text).walk("VTIMEZONE")] == ["Europe/Berlin"]
    # The client's own (rule-based) definition, not a generated one.
    [vtimezone] = parse(text).walk("VTIMEZONE")
    assert all("RRULE" in part for part in vtimezone.subcomponents)


def test_moving_a_booking_years_ahead_widens_its_vtimezone() -> None:
    codec = ICalCodec()
    first = codec.render(make_booking(), ANNA, None)
    summer = datetime(2031, 7, 1, 9, tzinfo=BERLIN)
    moved = make_booking(start=summer, end=summer + timedelta(hours=1), sequence=1)
    text = codec.render(moved, ANNA, first)
    [vtimezone] = parse(text).walk("VTIMEZONE")
    # The zone written for 2026 would have left 2031 in winter time.
    assert datetime(2031, 7, 1, 9, tzinfo=vtimezone.to_tz()).utcoffset() == timedelta(hours=2)
    assert parse_vobject(text).vevent.dtstart.value.astimezone(UTC) == utc(2031, 7, 1, 7)


ALL_DAY_SERIES = crlf("""
BEGIN:VCALENDAR
VERSION:2.0
PRODID:-//test//EN
BEGIN:VEVENT
UID:series@example.com
DTSTAMP:20260101T000000Z
DTSTART;VALUE=DATE:20260601
DTEND;VALUE=DATE:20260602
RRULE:FREQ=WEEKLY;UNTIL=20260629
SUMMARY:Closed
END:VEVENT
BEGIN:VEVENT
UID:series@example.com
DTSTAMP:20260101T000000Z
RECURRENCE-ID;VALUE=DATE:20260608
DTSTART;VALUE=DATE:20260609
DTEND;VALUE=DATE:20260610
SUMMARY:Closed (moved)
END:VEVENT
END:VCALENDAR
""")


def test_cancelling_a_series_keeps_all_day_dates_and_cancels_overrides() -> None:
    booking = make_booking(
        uid="series@example.com",
        start=datetime(2026, 6, 1, tzinfo=BERLIN),
        end=datetime(2026, 6, 2, tzinfo=BERLIN),
        recurring=True,
        status=BookingStatus.CANCELLED,
        sequence=1,
    )
    text = ICalCodec().render(booking, ANNA, ALL_DAY_SERIES)
    calendar = parse(text)
    master, override = events(calendar)
    assert "DTSTART;VALUE=DATE:20260601" in text  # not turned into a DATE-TIME
    assert "UNTIL=20260629" in text
    assert str(master["STATUS"]) == "CANCELLED"
    assert str(override["STATUS"]) == "CANCELLED"
    parse_vobject(text)


def test_moving_an_all_day_series_makes_until_utc() -> None:
    booking = make_booking(
        uid="series@example.com",
        start=datetime(2026, 6, 1, 9, tzinfo=BERLIN),
        end=datetime(2026, 6, 1, 10, tzinfo=BERLIN),
        recurring=True,
    )
    text = ICalCodec().render(booking, ANNA, ALL_DAY_SERIES)
    master = events(parse(text))[0]
    assert master.decoded("DTSTART") == booking.start
    # RFC 5545 3.3.10: with a zoned DTSTART, UNTIL is a UTC DATE-TIME.
    assert master["RRULE"]["UNTIL"] == [datetime(2026, 6, 29, 21, 59, 59, tzinfo=UTC)]
    parse_vobject(text)


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


# -- occurrences ------------------------------------------------------------------


def window(start: datetime, end: datetime) -> TimeSpan:
    return TimeSpan(start, end)


def utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=UTC)


def test_occurrences_of_a_single_booking() -> None:
    codec = ICalCodec()
    obj = rendered()  # 2026-12-01 09:00-10:00 Berlin = 08:00-09:00 UTC
    assert codec.occurrences(obj, window(utc(2026, 12, 1), utc(2026, 12, 2))) == [
        TimeSpan(utc(2026, 12, 1, 8), utc(2026, 12, 1, 9))
    ]
    # Half-open: touching is not overlapping.
    assert codec.occurrences(obj, window(utc(2026, 12, 1, 9), utc(2026, 12, 1, 10))) == []
    assert codec.occurrences(obj, window(utc(2026, 12, 1, 7), utc(2026, 12, 1, 8))) == []
    assert codec.occurrences(obj, window(utc(2026, 12, 2), utc(2026, 12, 3))) == []


def test_occurrences_of_an_instant() -> None:
    codec = ICalCodec()
    at = datetime(2026, 12, 1, 9, tzinfo=BERLIN)
    obj = rendered(make_booking(start=at, end=at))
    instant = [TimeSpan(utc(2026, 12, 1, 8), utc(2026, 12, 1, 8))]
    assert codec.occurrences(obj, window(utc(2026, 12, 1, 8), utc(2026, 12, 1, 9))) == instant
    assert codec.occurrences(obj, window(utc(2026, 12, 1, 7), utc(2026, 12, 1, 8))) == []


WEEKLY = crlf("""
BEGIN:VCALENDAR
VERSION:2.0
PRODID:-//test//EN
BEGIN:VEVENT
UID:weekly@example.com
DTSTAMP:20260101T000000Z
DTSTART;TZID=Europe/Berlin:20260302T090000
DTEND;TZID=Europe/Berlin:20260302T100000
RRULE:FREQ=WEEKLY;COUNT=8
EXDATE;TZID=Europe/Berlin:20260309T090000
SUMMARY:Weekly
END:VEVENT
BEGIN:VEVENT
UID:weekly@example.com
DTSTAMP:20260101T000000Z
RECURRENCE-ID;TZID=Europe/Berlin:20260316T090000
DTSTART;TZID=Europe/Berlin:20260601T090000
DTEND;TZID=Europe/Berlin:20260601T100000
SUMMARY:Weekly (moved far away)
END:VEVENT
BEGIN:VEVENT
UID:weekly@example.com
DTSTAMP:20260101T000000Z
RECURRENCE-ID;TZID=Europe/Berlin:20260406T090000
DTSTART;TZID=Europe/Berlin:20260406T090000
DTEND;TZID=Europe/Berlin:20260406T100000
STATUS:CANCELLED
SUMMARY:Weekly (cancelled)
END:VEVENT
END:VCALENDAR
""")


def weekly(**changes: Any) -> CalendarObject:
    return stored(
        WEEKLY,
        uid="weekly@example.com",
        start=datetime(2026, 3, 2, 9, tzinfo=BERLIN),
        end=datetime(2026, 3, 2, 10, tzinfo=BERLIN),
        recurring=True,
        **changes,
    )


def test_occurrences_of_a_weekly_series_with_exdate_and_overrides() -> None:
    spans = ICalCodec().occurrences(weekly(), window(utc(2026, 3, 1), utc(2026, 4, 13)))
    # 9 March excluded, 16 March moved to June, 6 April cancelled; the clocks
    # change on 29 March (09:00 CET = 08:00Z, 09:00 CEST = 07:00Z).
    assert spans == [
        TimeSpan(utc(2026, 3, 2, 8), utc(2026, 3, 2, 9)),
        TimeSpan(utc(2026, 3, 23, 8), utc(2026, 3, 23, 9)),
        TimeSpan(utc(2026, 3, 30, 7), utc(2026, 3, 30, 8)),
    ]
    assert all(s.start.tzinfo is UTC for s in spans)


def test_occurrences_include_an_override_moved_into_the_window() -> None:
    spans = ICalCodec().occurrences(weekly(), window(utc(2026, 6, 1), utc(2026, 6, 2)))
    assert spans == [TimeSpan(utc(2026, 6, 1, 7), utc(2026, 6, 1, 8))]


def test_occurrences_of_an_all_day_series_are_days_in_the_booking_zone() -> None:
    obj = stored(
        ALL_DAY_SERIES,
        uid="series@example.com",
        start=datetime(2026, 6, 1, tzinfo=BERLIN),
        end=datetime(2026, 6, 2, tzinfo=BERLIN),
        recurring=True,
    )
    spans = ICalCodec().occurrences(obj, window(utc(2026, 6, 1), utc(2026, 6, 16)))
    assert spans == [
        # 1 June (local midnight = 22:00Z the day before) overlaps the window.
        TimeSpan(utc(2026, 5, 31, 22), utc(2026, 6, 1, 22)),
        TimeSpan(utc(2026, 6, 8, 22), utc(2026, 6, 9, 22)),  # moved from 8 June
        TimeSpan(utc(2026, 6, 14, 22), utc(2026, 6, 15, 22)),
    ]


def test_occurrences_of_a_floating_series_use_the_booking_zone() -> None:
    ics = crlf("""
BEGIN:VCALENDAR
VERSION:2.0
PRODID:-//test//EN
BEGIN:VEVENT
UID:floating@example.com
DTSTAMP:20260101T000000Z
DTSTART:20260105T090000
DURATION:PT30M
RRULE:FREQ=DAILY;COUNT=3
END:VEVENT
END:VCALENDAR
""")
    obj = stored(
        ics,
        uid="floating@example.com",
        start=datetime(2026, 1, 5, 9, tzinfo=NEW_YORK),
        end=datetime(2026, 1, 5, 9, 30, tzinfo=NEW_YORK),
        timezone="America/New_York",
        recurring=True,
    )
    spans = ICalCodec().occurrences(obj, window(utc(2026, 1, 6), utc(2026, 1, 7)))
    assert spans == [TimeSpan(utc(2026, 1, 6, 14), utc(2026, 1, 6, 14, 30))]


def test_occurrences_of_an_unbounded_series() -> None:
    ics = crlf("""
BEGIN:VCALENDAR
VERSION:2.0
PRODID:-//test//EN
BEGIN:VEVENT
UID:forever@example.com
DTSTAMP:20260101T000000Z
DTSTART:20260105T090000Z
DTEND:20260105T100000Z
RRULE:FREQ=DAILY
END:VEVENT
END:VCALENDAR
""")
    obj = stored(
        ics,
        uid="forever@example.com",
        start=utc(2026, 1, 5, 9),
        end=utc(2026, 1, 5, 10),
        recurring=True,
    )
    spans = ICalCodec().occurrences(obj, window(utc(2040, 1, 1), utc(2040, 1, 8)))
    assert [s.start for s in spans] == [utc(2040, 1, d, 9) for d in range(1, 8)]
    assert all(s.end - s.start == timedelta(hours=1) for s in spans)


def test_an_object_that_fails_to_expand_falls_back_every_time() -> None:
    # dateutil fails on RDATE;VALUE=TIME and leaves the cached expansion half
    # iterated; asking it again used to never return. Each call must answer.
    ics = crlf(
        """BEGIN:VCALENDAR
VERSION:2.0
PRODID:-//t//t//EN
BEGIN:VEVENT
UID:b1@gateway.test
DTSTAMP:20260101T000000Z
DTSTART:20261201T080000Z
DTEND:20261201T090000Z
RDATE;VALUE=TIME:133000Z
END:VEVENT
END:VCALENDAR
"""
    )
    obj = stored(ics, recurring=True)
    codec = ICalCodec()
    december = window(utc(2026, 12, 1), utc(2026, 12, 2))
    for _ in range(3):
        assert codec.occurrences(obj, december) == [TimeSpan(obj.booking.start, obj.booking.end)]


def test_occurrences_parse_each_object_once(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[str] = []
    real = ical_codec._parse_calendar

    def counting(text: str) -> icalendar.Calendar:
        calls.append(text)
        return real(text)

    monkeypatch.setattr(ical_codec, "_parse_calendar", counting)
    codec = ICalCodec()
    obj = weekly()
    for month in (3, 4, 5):
        codec.occurrences(obj, window(utc(2026, month, 1), utc(2026, month, 28)))
    assert len(calls) == 1
    changed = replace(obj, ics=obj.ics.replace("COUNT=8", "COUNT=9"))  # a new ETag
    codec.occurrences(changed, window(utc(2026, 3, 1), utc(2026, 3, 28)))
    assert len(calls) == 2


# -- feeds ------------------------------------------------------------------------


def test_full_feed_holds_objects_as_stored() -> None:
    one = rendered()
    two = stored(PREVIOUS, start=datetime(2026, 12, 1, 9, tzinfo=BERLIN))
    series = weekly(id="b3")
    data = render_feed(ANNA, [one, two, series], "full")
    assert isinstance(data, bytes)
    assert_wire_format(data)
    calendar = parse(data)
    assert str(calendar["METHOD"]) == "PUBLISH"
    assert str(calendar["X-WR-CALNAME"]) == "Anna Schmidt"
    assert str(calendar["X-WR-TIMEZONE"]) == "Europe/Berlin"
    assert b"REFRESH-INTERVAL;VALUE=DURATION:PT15M\r\n" in data
    uids = [str(e["UID"]) for e in events(calendar)]
    assert uids.count("weekly@example.com") == 3  # master and both overrides
    assert "b1@gateway.test" in uids
    assert b"X-FOO;X-PARAM=1:keep me" in data
    assert b"BEGIN:VALARM" in data
    # Three objects use Europe/Berlin, each with a VTIMEZONE: the feed has one.
    assert [str(tz["TZID"]) for tz in calendar.walk("VTIMEZONE")] == ["Europe/Berlin"]
    assert_timezones_complete(calendar)
    other = parse_vobject(data)
    assert len(other.vevent_list) == 5


def test_busy_feed_shows_only_time() -> None:
    objects = [rendered(), stored(PREVIOUS, uid="b1-prev@gateway.test"), weekly(id="b3")]
    data = render_feed(ANNA, objects, "busy")
    assert_wire_format(data)
    flat = unfolded(data)
    for secret in (
        b"Haircut",
        "Zoë".encode(),
        b"zoe@example.com",
        b"anna@example.com",
        b"Short back and sides",
        b"Chair 2",
        b"b1@gateway.test",
        b"weekly@example.com",
        b"Weekly",
        b"keep me",
        b"Reminder",
        b"meet.example.com",
    ):
        assert secret not in flat, secret
    for absent in (b"ATTENDEE", b"ORGANIZER", b"DESCRIPTION", b"LOCATION", b"VALARM", b"X-FOO"):
        assert absent not in flat, absent
    calendar = parse(data)
    busy = events(calendar)
    # The cancelled override of the series is left out and excluded.
    assert len(busy) == 4
    for event in busy:
        assert str(event["SUMMARY"]) == "Busy"
        assert str(event["TRANSP"]) == "OPAQUE"
        assert str(event["CLASS"]) == "PRIVATE"
        assert "DTSTAMP" in event and "DTSTART" in event
        assert set(event.keys()) <= {
            "UID",
            "DTSTAMP",
            "DTSTART",
            "DTEND",
            "DURATION",
            "RRULE",
            "RDATE",
            "EXDATE",
            "RECURRENCE-ID",
            "SUMMARY",
            "TRANSP",
            "CLASS",
        }
    master = next(e for e in busy if "RRULE" in e)
    exdates = [d.dt for x in _as_list(master["EXDATE"]) for d in x.dts]
    assert datetime(2026, 4, 6, 9, tzinfo=BERLIN) in exdates
    assert_timezones_complete(calendar)
    assert len(parse_vobject(data).vevent_list) == 4


def test_busy_uids_are_opaque_and_stable() -> None:
    obj = rendered()
    first = events(parse(render_feed(ANNA, [obj], "busy")))[0]["UID"]
    again = events(parse(render_feed(ANNA, [obj], "busy")))[0]["UID"]
    elsewhere = events(parse(render_feed(BOB, [obj], "busy")))[0]["UID"]
    assert first == again
    assert first != obj.uid
    assert "gateway.test" not in first
    assert first.endswith("@busy.calgateway")
    assert first != elsewhere


def test_cancelled_bookings_are_left_out_of_both_views() -> None:
    cancelled = rendered(make_booking(status=BookingStatus.CANCELLED))
    kept = rendered(make_booking(id="b2", uid="b2@gateway.test", title="Kept"))
    for view in VIEWS:
        data = render_feed(ANNA, [cancelled, kept], view)
        assert len(events(parse(data))) == 1
    assert b"b1@gateway.test" not in render_feed(ANNA, [cancelled, kept], "full")


def test_transparent_bookings_are_left_out_of_the_busy_view() -> None:
    free = rendered(make_booking(transparent=True))
    assert len(events(parse(render_feed(ANNA, [free], "full")))) == 1
    assert events(parse(render_feed(ANNA, [free], "busy"))) == []


def test_empty_feed_is_a_valid_calendar() -> None:
    for view in VIEWS:
        data = render_feed(ANNA, [], view)
        assert events(parse(data)) == []
        parse_vobject(data)


OUTLOOK = crlf("""
BEGIN:VCALENDAR
PRODID:-//Microsoft Corporation//Outlook 16.0 MIMEDIR//EN
VERSION:2.0
BEGIN:VTIMEZONE
TZID:W. Europe Standard Time
BEGIN:STANDARD
DTSTART:16011028T030000
RRULE:FREQ=YEARLY;BYDAY=-1SU;BYMONTH=10
TZOFFSETFROM:+0200
TZOFFSETTO:+0100
END:STANDARD
BEGIN:DAYLIGHT
DTSTART:16010325T020000
RRULE:FREQ=YEARLY;BYDAY=-1SU;BYMONTH=3
TZOFFSETFROM:+0100
TZOFFSETTO:+0200
END:DAYLIGHT
END:VTIMEZONE
BEGIN:VEVENT
UID:outlook@example.com
DTSTAMP:20260101T000000Z
DTSTART;TZID="W. Europe Standard Time":20260114T090000
DTEND;TZID="W. Europe Standard Time":20260114T100000
SUMMARY:Outlook meeting
X-MICROSOFT-CDO-BUSYSTATUS:BUSY
END:VEVENT
END:VCALENDAR
""")


@pytest.mark.parametrize("view", VIEWS)
def test_outlook_zone_names_produce_a_valid_feed(view: FeedView) -> None:
    obj = stored(
        OUTLOOK,
        uid="outlook@example.com",
        start=datetime(2026, 1, 14, 9, tzinfo=BERLIN),
        end=datetime(2026, 1, 14, 10, tzinfo=BERLIN),
    )
    data = render_feed(ANNA, [obj, rendered()], view)
    assert_wire_format(data)
    calendar = parse(data)
    assert_timezones_complete(calendar)
    zones = sorted(str(tz["TZID"]) for tz in calendar.walk("VTIMEZONE"))
    assert zones == ["Europe/Berlin", "W. Europe Standard Time"]
    event = next(e for e in events(calendar) if e.decoded("DTSTART").month == 1)
    assert event.decoded("DTSTART").astimezone(UTC) == utc(2026, 1, 14, 8)
    other = parse_vobject(data)
    starts = sorted(e.dtstart.value.astimezone(UTC) for e in other.vevent_list)
    assert starts[0] == utc(2026, 1, 14, 8)


@pytest.mark.parametrize("view", VIEWS)
def test_undefined_zone_names_become_utc(view: FeedView) -> None:
    ics = crlf("""
BEGIN:VCALENDAR
VERSION:2.0
PRODID:-//test//EN
BEGIN:VEVENT
UID:nozone@example.com
DTSTAMP:20260101T000000Z
DTSTART;TZID=Mars/Olympus_Mons:20260714T090000
DTEND;TZID=Mars/Olympus_Mons:20260714T100000
RRULE:FREQ=DAILY;COUNT=3
EXDATE;TZID=Mars/Olympus_Mons:20260715T090000
SUMMARY:Undefined zone
END:VEVENT
BEGIN:VEVENT
UID:winzone@example.com
DTSTAMP:20260101T000000Z
DTSTART;TZID=Eastern Standard Time:20260714T090000
DTEND;TZID=Eastern Standard Time:20260714T100000
SUMMARY:Windows zone without definition
END:VEVENT
END:VCALENDAR
""")
    obj = stored(
        ics,
        uid="nozone@example.com",
        start=datetime(2026, 7, 14, 9, tzinfo=BERLIN),
        end=datetime(2026, 7, 14, 10, tzinfo=BERLIN),
        recurring=True,
    )
    data = render_feed(ANNA, [obj], view)
    assert b"Mars" not in data
    assert b"Eastern Standard Time" not in data
    calendar = parse(data)
    assert_timezones_complete(calendar)
    first, second = events(calendar)
    # Read in the booking's zone: 09:00 CEST = 07:00Z.
    assert first.decoded("DTSTART") == utc(2026, 7, 14, 7)
    assert first["EXDATE"].dts[0].dt == utc(2026, 7, 15, 7)
    # A Windows name icalendar knows: 09:00 EDT = 13:00Z.
    assert second.decoded("DTSTART") == utc(2026, 7, 14, 13)
    parse_vobject(data)


@pytest.mark.parametrize("view", VIEWS)
def test_events_that_cannot_be_placed_in_time_are_left_out(
    view: FeedView, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(*args: Any) -> str:
        raise ValueError("icalendar cannot read it")

    monkeypatch.setattr(ical_feed, "_zones_to_utc", broken)
    ics = OUTLOOK.replace("BEGIN:VTIMEZONE", "BEGIN:X-GONE").replace("END:VTIMEZONE", "END:X-GONE")
    obj = stored(ics, uid="outlook@example.com")
    data = render_feed(ANNA, [obj, rendered()], view)
    calendar = parse(data)
    assert_timezones_complete(calendar)
    assert len(events(calendar)) == 1
    assert b"W. Europe Standard Time" not in data


def test_feed_timezones_cover_every_booking_year() -> None:
    early = rendered()
    late_start = datetime(2031, 7, 1, 9, tzinfo=BERLIN)
    late = rendered(
        make_booking(
            id="b2", uid="b2@gateway.test", start=late_start, end=late_start + timedelta(hours=1)
        )
    )
    for view in VIEWS:
        calendar = parse(render_feed(ANNA, [early, late], view))
        [vtimezone] = calendar.walk("VTIMEZONE")
        # Each stored object's VTIMEZONE ends a year after it; the feed's must
        # place the summer of 2031 in CEST.
        zone = vtimezone.to_tz()
        assert datetime(2031, 7, 1, 9, tzinfo=zone).utcoffset() == timedelta(hours=2)
        data = render_feed(ANNA, [early, late], view)
        starts = sorted(e.dtstart.value for e in parse_vobject(data).vevent_list)
        assert [s.utcoffset() for s in starts] == [timedelta(hours=1), timedelta(hours=2)]


def test_feed_unfolds_and_refolds_objects_stored_unfolded() -> None:
    long_description = "Line with ünïcödé " * 20
    ics = crlf(f"""
BEGIN:VCALENDAR
VERSION:2.0
PRODID:-//sloppy client//EN
begin:vevent
UID:sloppy@example.com
DTSTAMP:20260101T000000Z
DTSTART:20260714T090000Z
DTEND:20260714T100000Z
DESCRIPTION:{long_description}
end:vevent
END:VCALENDAR
""").replace("\r\n", "\n")  # bare LF, lower-case markers, no folding
    obj = stored(ics, uid="sloppy@example.com")
    data = render_feed(ANNA, [obj], "full")
    assert_wire_format(data)
    [event] = events(parse(data))
    assert str(event["DESCRIPTION"]) == long_description
    parse_vobject(data)


def _count_fragment_builds(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The UIDs of the fragments the feed builds from now on, in order."""
    builds: list[str] = []
    real = ical_feed._build_fragment

    def counting(*args: Any, **kwargs: Any) -> Any:
        builds.append(args[1].uid)
        return real(*args, **kwargs)

    monkeypatch.setattr(ical_feed, "_build_fragment", counting)
    return builds


def test_feed_renders_each_object_once(monkeypatch: pytest.MonkeyPatch) -> None:
    builds = _count_fragment_builds(monkeypatch)
    renderer = ical_feed.FeedRenderer()
    objects = [rendered(make_booking(id=f"c{i}", uid=f"c{i}@gateway.test")) for i in range(5)]
    first = renderer.render(ANNA, objects, "full")
    assert renderer.render(ANNA, objects, "full") == first
    assert len(builds) == 5
    renderer.render(ANNA, objects, "busy")
    assert len(builds) == 10
    moved = replace(objects[0], ics=objects[0].ics.replace("Haircut", "Trim"))
    renderer.render(ANNA, [moved, *objects[1:]], "full")
    assert len(builds) == 11


def test_feed_fragments_kept_are_bounded_in_bytes(monkeypatch: pytest.MonkeyPatch) -> None:
    """Fragments past the cache's byte budget are rendered again, not kept:
    the feed is the same either way."""
    builds = _count_fragment_builds(monkeypatch)
    objects = [rendered(make_booking(id=f"c{i}", uid=f"c{i}@gateway.test")) for i in range(5)]
    unbounded = ical_feed.FeedRenderer().render(ANNA, objects, "full")
    one = len(ical_feed.FeedRenderer().fragment(ANNA, objects[0], "full").body)
    builds.clear()
    small = ical_feed.FeedRenderer(cache_bytes=2 * one + one // 2)  # room for two
    assert small.render(ANNA, objects, "full") == unbounded
    assert small.render(ANNA, objects, "full") == unbounded
    assert len(builds) == 10
    builds.clear()
    assert small.render(ANNA, objects[-2:], "full") != unbounded
    assert builds == []  # the last two were kept


def test_feed_of_many_events_is_one_valid_calendar() -> None:
    template = rendered(make_booking(uid="UID-PLACEHOLDER"))
    objects = []
    for i in range(300):
        start = datetime(2026, 1, 5, 9, tzinfo=BERLIN) + timedelta(days=i)
        booking = make_booking(
            id=f"m{i}", uid=f"m{i}@gateway.test", start=start, end=start + timedelta(hours=1)
        )
        text = template.ics.replace("UID-PLACEHOLDER", booking.uid).replace(
            "20261201T09", start.strftime("%Y%m%dT%H")
        )
        objects.append(CalendarObject(booking, text, TimeSpan(booking.start, booking.end)))
    data = render_feed(ANNA, objects, "full")
    calendar = parse(data)
    assert len(events(calendar)) == 300
    assert_timezones_complete(calendar)
    assert len(calendar.walk("VTIMEZONE")) == 1


# -- real-world calendars -----------------------------------------------------------


def _booking_fields(event: icalendar.Event) -> dict[str, Any]:
    """What a store would have parsed: best effort, with fallbacks for the
    broken files (their objects still go through the feed)."""
    try:
        start = _aware(event.decoded("DTSTART"))
    except Exception:
        start = datetime(2026, 1, 1, 9, tzinfo=BERLIN)
    try:
        end = max(start, _aware(event.end))
    except Exception:
        end = start
    return {
        "uid": str(event.get("UID", "corpus@example.com")),
        "title": str(event.get("SUMMARY", "")),
        "start": start,
        "end": end,
        "recurring": bool(event.get("RRULE") or event.get("RDATE")),
    }


def _aware(value: date | datetime) -> datetime:
    if isinstance(value, datetime):
        return value if value.tzinfo is not None else value.replace(tzinfo=BERLIN)
    return datetime.combine(value, time(), BERLIN)


@pytest.mark.parametrize("path", corpus_files(), ids=lambda p: p.name)
def test_corpus_calendars_make_valid_feeds(path: Path) -> None:
    text = read_utf8(path)
    if text is None:
        pytest.skip("not UTF-8: refused at PUT")
    try:
        source = parse(text)
    except Exception as exc:
        pytest.skip(f"icalendar rejects it ({type(exc).__name__}): refused at PUT")
    source_events = events(source)
    if not source_events:
        pytest.skip("no VEVENT: nothing for a feed")
    try:
        vobject.readOne(text)
        vobject_reads_source = True
    except Exception:
        vobject_reads_source = False

    obj = stored(text, **_booking_fields(source_events[0]))
    for view in VIEWS:
        data = render_feed(ANNA, [obj], view)
        assert_wire_format(data)
        calendar = parse(data)
        assert_timezones_complete(calendar)
        expected = [e for e in source_events if "DTSTART" in e]
        if view == "busy":
            expected = [
                e
                for e in expected
                if str(e.get("TRANSP", "")).upper() != "TRANSPARENT"
                and str(e.get("STATUS", "")).upper() != "CANCELLED"
            ]
        # Every event with a start is there; a DTSTART line icalendar drops as
        # broken (broken_ical.ics) still counts for the feed, which copies it.
        assert len(expected) <= len(events(calendar)) <= len(source_events)
        if vobject_reads_source:
            parse_vobject(data)
