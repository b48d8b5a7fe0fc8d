"""``ICalCodec.parse``: validation of a client's calendar object (RFC 4791
4.1, 5.3.2.1) and the fields read from it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from gateway.core.errors import InvalidCalendarData
from gateway.core.model import FAR_FUTURE, BookingStatus, ParsedObject, PartStat
from gateway.ical import ICalCodec
from tests.corpus import corpus_files, read_utf8

BERLIN = ZoneInfo("Europe/Berlin")
CODEC = ICalCodec()


def calendar(*components: str, head: str = "") -> str:
    lines = ["BEGIN:VCALENDAR", "VERSION:2.0", "PRODID:-//test//test//EN"]
    if head:
        lines.append(head)
    for component in components:
        lines.extend(component.strip().splitlines())
    lines.append("END:VCALENDAR")
    return "\r\n".join(lines) + "\r\n"


def event(*props: str, uid: str = "b1@test", name: str = "VEVENT") -> str:
    lines = [f"BEGIN:{name}", f"UID:{uid}", "DTSTAMP:20260101T000000Z", *props, f"END:{name}"]
    return "\n".join(lines)


BOOKING = event(
    "DTSTART;TZID=Europe/Berlin:20261201T090000",
    "DTEND;TZID=Europe/Berlin:20261201T100000",
    "SUMMARY:Haircut",
    "DESCRIPTION:Short please",
    "LOCATION:Salon",
    "ATTENDEE;CN=Carla;PARTSTAT=ACCEPTED:mailto:carla@example.com",
    "ATTENDEE;PARTSTAT=X-WEIRD:MAILTO:dan@example.com",
    "STATUS:TENTATIVE",
    "TRANSP:TRANSPARENT",
    "SEQUENCE:3",
)

OUTLOOK_TZ = """BEGIN:VTIMEZONE
TZID:W. Europe Standard Time
BEGIN:STANDARD
DTSTART:16010101T030000
TZOFFSETFROM:+0200
TZOFFSETTO:+0100
RRULE:FREQ=YEARLY;BYDAY=-1SU;BYMONTH=10
END:STANDARD
BEGIN:DAYLIGHT
DTSTART:16010101T020000
TZOFFSETFROM:+0100
TZOFFSETTO:+0200
RRULE:FREQ=YEARLY;BYDAY=-1SU;BYMONTH=3
END:DAYLIGHT
END:VTIMEZONE"""


def parse(ics: str, default: str = "Europe/Berlin") -> ParsedObject:
    return CODEC.parse(ics, default)


def refused(ics: str) -> InvalidCalendarData:
    with pytest.raises(InvalidCalendarData) as info:
        parse(ics)
    assert info.value.message
    return info.value


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)  # type: ignore[misc]


# -- fields ------------------------------------------------------------------------


def test_booking_with_tzid() -> None:
    parsed = parse(calendar(BOOKING))
    assert parsed.uid == "b1@test"
    assert parsed.component == "VEVENT"
    assert parsed.title == "Haircut"
    assert parsed.start == datetime(2026, 12, 1, 9, tzinfo=BERLIN)
    assert parsed.end == datetime(2026, 12, 1, 10, tzinfo=BERLIN)
    assert parsed.start.tzinfo is not None and parsed.start.utcoffset() == timedelta(hours=1)
    assert parsed.timezone == "Europe/Berlin"
    assert parsed.description == "Short please"
    assert parsed.location == "Salon"
    assert [(a.email, a.name, a.partstat) for a in parsed.attendees] == [
        ("carla@example.com", "Carla", PartStat.ACCEPTED),
        ("dan@example.com", "", PartStat.NEEDS_ACTION),
    ]
    assert parsed.status is BookingStatus.TENTATIVE
    assert parsed.transparent
    assert parsed.sequence == 3
    assert not parsed.recurring
    assert parsed.span.start == utc(2026, 12, 1, 8)
    assert parsed.span.end == utc(2026, 12, 1, 9)


def test_defaults() -> None:
    parsed = parse(calendar(event("DTSTART:20261201T090000Z", "DTEND:20261201T100000Z")))
    assert parsed.title == ""
    assert parsed.status is BookingStatus.CONFIRMED
    assert not parsed.transparent
    assert parsed.sequence == 0
    assert parsed.attendees == ()
    assert parsed.timezone == "UTC"
    assert parsed.start == utc(2026, 12, 1, 9)


def test_all_day_event_in_default_zone() -> None:
    parsed = parse(calendar(event("DTSTART;VALUE=DATE:20261201")), "America/New_York")
    new_york = ZoneInfo("America/New_York")
    assert parsed.start == datetime(2026, 12, 1, tzinfo=new_york)
    assert parsed.end == datetime(2026, 12, 2, tzinfo=new_york)  # RFC 5545 3.6.1
    assert parsed.timezone == "America/New_York"


def test_floating_event_in_default_zone() -> None:
    parsed = parse(calendar(event("DTSTART:20260701T090000", "DTEND:20260701T093000")))
    assert parsed.start == datetime(2026, 7, 1, 9, tzinfo=BERLIN)
    assert parsed.end == datetime(2026, 7, 1, 9, 30, tzinfo=BERLIN)
    assert parsed.timezone == "Europe/Berlin"
    assert parsed.span.start == utc(2026, 7, 1, 7)


def test_datetime_without_end_is_an_instant() -> None:
    parsed = parse(calendar(event("DTSTART:20260701T090000Z")))
    assert parsed.start == parsed.end == utc(2026, 7, 1, 9)


def test_duration_instead_of_dtend() -> None:
    parsed = parse(calendar(event("DTSTART;TZID=Europe/Berlin:20261201T090000", "DURATION:PT45M")))
    assert parsed.end == datetime(2026, 12, 1, 9, 45, tzinfo=BERLIN)


def test_outlook_tzid_with_vtimezone() -> None:
    ics = calendar(
        OUTLOOK_TZ,
        event(
            "DTSTART;TZID=W. Europe Standard Time:20260701T090000",
            "DTEND;TZID=W. Europe Standard Time:20260701T100000",
        ),
    )
    parsed = parse(ics, "UTC")
    assert parsed.start == utc(2026, 7, 1, 7)
    assert parsed.end == utc(2026, 7, 1, 8)
    assert parsed.timezone == "Europe/Berlin"


def test_custom_tzid_with_vtimezone() -> None:
    zone = OUTLOOK_TZ.replace("W. Europe Standard Time", "Salon Time")
    ics = calendar(zone, event("DTSTART;TZID=Salon Time:20260101T090000"))
    parsed = parse(ics, "America/New_York")
    assert parsed.start == utc(2026, 1, 1, 8)
    assert parsed.timezone == "America/New_York"


def test_unknown_tzid_without_vtimezone() -> None:
    error = refused(calendar(event("DTSTART;TZID=Nowhere/Special:20260101T090000")))
    assert error.precondition == "valid-calendar-data"
    assert "Nowhere/Special" in error.message


def test_tzid_defined_in_another_object_does_not_count() -> None:
    zone = OUTLOOK_TZ.replace("W. Europe Standard Time", "Shop Zone")
    parse(calendar(zone, event("DTSTART;TZID=Shop Zone:20260101T090000")))
    # An earlier object's zone is not this one's (gateway.ical.zone_cache).
    error = refused(calendar(event("DTSTART;TZID=Shop Zone:20260101T090000")))
    assert error.precondition == "valid-calendar-data"


def fixed_zone(tzid: str, offset: str) -> str:
    return (
        f"BEGIN:VTIMEZONE\nTZID:{tzid}\nBEGIN:STANDARD\nDTSTART:19700101T000000\n"
        f"TZOFFSETFROM:{offset}\nTZOFFSETTO:{offset}\nEND:STANDARD\nEND:VTIMEZONE"
    )


def test_one_objects_zone_never_decides_anothers_times() -> None:
    """icalendar remembers the first VTIMEZONE of an unknown TZID for the
    whole process; two clients naming different zones alike must each get
    their own, or one client's object moves another's bookings."""
    first = calendar(
        fixed_zone("Office Time", "+0300"), event("DTSTART;TZID=Office Time:20260101T090000")
    )
    second = calendar(
        fixed_zone("Office Time", "+0500"),
        event("DTSTART;TZID=Office Time:20260101T090000", uid="b2@test"),
    )
    assert parse(first).start == utc(2026, 1, 1, 6)
    assert parse(second).start == utc(2026, 1, 1, 4)
    assert parse(first).start == utc(2026, 1, 1, 6)


def test_a_windows_zone_name_defined_oddly_once_stays_the_real_zone_for_others() -> None:
    odd = calendar(
        fixed_zone("W. Europe Standard Time", "+0300"),
        event("DTSTART;TZID=W. Europe Standard Time:20260101T090000"),
    )
    assert parse(odd).start == utc(2026, 1, 1, 6)
    # Outlook sends the name alone: it is Europe/Berlin (icalendar's table).
    outlook = calendar(event("DTSTART;TZID=W. Europe Standard Time:20260101T090000", uid="b2@test"))
    assert parse(outlook).start == utc(2026, 1, 1, 8)


# -- recurrence --------------------------------------------------------------------


def test_weekly_count_series_span() -> None:
    ics = calendar(
        event(
            "DTSTART;TZID=Europe/Berlin:20260105T090000",
            "DTEND;TZID=Europe/Berlin:20260105T100000",
            "RRULE:FREQ=WEEKLY;COUNT=10",
        )
    )
    parsed = parse(ics)
    assert parsed.recurring
    assert parsed.start == datetime(2026, 1, 5, 9, tzinfo=BERLIN)
    assert parsed.span.start == utc(2026, 1, 5, 8)
    assert parsed.span.end == utc(2026, 3, 9, 9)  # tenth Monday, still winter time


def test_until_series_span() -> None:
    ics = calendar(
        event(
            "DTSTART;TZID=Europe/Berlin:20260105T090000",
            "DTEND;TZID=Europe/Berlin:20260105T100000",
            "RRULE:FREQ=DAILY;UNTIL=20260401T080000Z",
        )
    )
    parsed = parse(ics)
    # 1 April 09:00 CEST is 07:00Z, before UNTIL: the last occurrence.
    assert parsed.span.end == utc(2026, 4, 1, 8)


def test_unbounded_rrule_is_far_future() -> None:
    parsed = parse(calendar(event("DTSTART:20260105T090000Z", "RRULE:FREQ=WEEKLY")))
    assert parsed.recurring
    assert parsed.span.start == utc(2026, 1, 5, 9)
    assert parsed.span.end == FAR_FUTURE


def test_series_past_2200_is_far_future() -> None:
    ics = calendar(event("DTSTART:20260105T090000Z", "RRULE:FREQ=YEARLY;UNTIL=23000101T000000Z"))
    assert parse(ics).span.end == FAR_FUTURE


def test_override_moved_later_widens_span() -> None:
    master = event("DTSTART:20260105T090000Z", "DTEND:20260105T100000Z", "RRULE:FREQ=DAILY;COUNT=3")
    moved = event(
        "RECURRENCE-ID:20260107T090000Z", "DTSTART:20260301T090000Z", "DTEND:20260301T100000Z"
    )
    assert parse(calendar(master)).span.end == utc(2026, 1, 7, 10)
    parsed = parse(calendar(master, moved))
    assert parsed.span.start == utc(2026, 1, 5, 9)
    assert parsed.span.end == utc(2026, 3, 1, 10)
    assert parsed.start == utc(2026, 1, 5, 9)


# -- refusals ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "ics",
    [
        "",
        "this is not iCalendar",
        calendar(BOOKING) + calendar(BOOKING),
        calendar(event("DTSTART:INVALID-DATE")),
        calendar(event("SUMMARY:no start")),
        calendar(event("DTSTART:20260101T100000Z", "DTEND:20260101T090000Z")),
        calendar(event("DTSTART:20260101T100000Z", "DURATION:-PT1H")),
        calendar(event("DTSTART:20260101T100000Z", "RRULE:FREQ=SOMETIMES")),
    ],
    ids=[
        "empty",
        "garbage",
        "two-calendars",
        "bad-dtstart",
        "no-dtstart",
        "end-first",
        "negative-duration",
        "bad-rrule",
    ],
)
def test_invalid_calendar_data(ics: str) -> None:
    assert refused(ics).precondition == "valid-calendar-data"


def test_method_refused() -> None:
    error = refused(calendar(BOOKING, head="METHOD:REQUEST"))
    assert error.precondition == "valid-calendar-object-resource"
    assert "METHOD" in error.message


def test_two_uids_refused() -> None:
    ics = calendar(BOOKING, event("DTSTART:20260101T100000Z", uid="other@test"))
    assert refused(ics).precondition == "valid-calendar-object-resource"


def test_two_masters_refused() -> None:
    ics = calendar(BOOKING, event("DTSTART:20260101T100000Z"))
    assert refused(ics).precondition == "valid-calendar-object-resource"


def test_missing_uid_refused() -> None:
    ics = calendar("BEGIN:VEVENT\nDTSTART:20260101T100000Z\nEND:VEVENT")
    assert refused(ics).precondition == "valid-calendar-object-resource"


def test_no_component_refused() -> None:
    assert refused(calendar()).precondition == "valid-calendar-object-resource"
    assert refused(calendar(OUTLOOK_TZ)).precondition == "valid-calendar-object-resource"


@pytest.mark.parametrize("name", ["VTODO", "VJOURNAL", "VFREEBUSY"])
def test_other_components_refused(name: str) -> None:
    error = refused(calendar(event("DTSTART:20260101T100000Z", name=name)))
    assert error.precondition == "supported-calendar-component"
    assert name in error.message


def test_bad_default_timezone_is_a_caller_bug() -> None:
    with pytest.raises(ValueError):
        CODEC.parse(calendar(BOOKING), "Not/AZone")


# -- real-world calendars ------------------------------------------------------------


@pytest.mark.parametrize("path", corpus_files(), ids=lambda p: p.name)
def test_corpus_parses_or_is_refused(path: Path) -> None:
    text = read_utf8(path)
    if text is None:
        pytest.skip("not UTF-8: the caller refuses it before parsing")
    try:
        parsed = CODEC.parse(text, "Europe/Berlin")
    except InvalidCalendarData as exc:
        assert exc.precondition in {
            "valid-calendar-data",
            "valid-calendar-object-resource",
            "supported-calendar-component",
        }
        assert exc.message
        return
    assert parsed.start.tzinfo is not None and parsed.end.tzinfo is not None
    assert parsed.start <= parsed.end
    assert parsed.span.start <= parsed.start
    assert parsed.end <= parsed.span.end
