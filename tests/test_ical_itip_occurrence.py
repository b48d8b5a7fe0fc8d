"""A CANCEL for one occurrence of a series (RFC 5546 3.2.5 with
RECURRENCE-ID), as ``gateway.ical.render_itip`` writes it from the stored
object, read back the way attendees' calendar stacks read it: icalendar and
vobject."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from gateway.core.invitations import InvitationKind
from gateway.core.model import Attendee, CalendarObject, Resource
from gateway.ical import ICalCodec, render_itip
from gateway.ical.itip import occurrence_times
from tests.ical_readers import read_icalendar, read_vobject

ANNA = Resource(id="anna", name="Anna Schmidt", email="anna@example.com", timezone="Europe/Berlin")
NOW = datetime(2030, 11, 1, 12, 0, tzinfo=UTC)
ZOE = "zoe@example.com"

# Weekly on Tuesdays at 09:00 Berlin time; the second Tuesday (10 December,
# 08:00 UTC) is excluded, the third (17 December) was moved to 14:00 and is
# cancelled too.
SERIES = (
    "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//test//occurrences//EN\r\n"
    "BEGIN:VEVENT\r\nUID:weekly@app.example\r\nDTSTAMP:20301101T000000Z\r\n"
    "DTSTART;TZID=Europe/Berlin:20301203T090000\r\n"
    "DTEND;TZID=Europe/Berlin:20301203T100000\r\n"
    "RRULE:FREQ=WEEKLY;COUNT=6\r\n"
    "EXDATE;TZID=Europe/Berlin:20301210T090000\r\n"
    "SUMMARY:Weekly haircut\r\nLOCATION:Salon\r\nSEQUENCE:3\r\n"
    "ORGANIZER:mailto:anna@example.com\r\n"
    f"ATTENDEE;CN=Zoë;PARTSTAT=ACCEPTED;SCHEDULE-STATUS=1.2:mailto:{ZOE}\r\n"
    "BEGIN:VALARM\r\nACTION:DISPLAY\r\nDESCRIPTION:x\r\nTRIGGER:-PT10M\r\nEND:VALARM\r\n"
    "END:VEVENT\r\n"
    "BEGIN:VEVENT\r\nUID:weekly@app.example\r\nDTSTAMP:20301101T000000Z\r\n"
    "RECURRENCE-ID;TZID=Europe/Berlin:20301217T090000\r\n"
    "DTSTART;TZID=Europe/Berlin:20301217T140000\r\n"
    "DTEND;TZID=Europe/Berlin:20301217T150000\r\n"
    "SUMMARY:Weekly haircut (late)\r\nSEQUENCE:5\r\nSTATUS:CANCELLED\r\n"
    "ORGANIZER:mailto:anna@example.com\r\n"
    f"ATTENDEE;CN=Zoë:mailto:{ZOE}\r\n"
    "END:VEVENT\r\nEND:VCALENDAR\r\n"
)


def _stored() -> CalendarObject:
    parsed = ICalCodec().parse(SERIES, ANNA.timezone)
    booking = parsed.booking(id="b1", resource_id="anna", created=NOW, updated=NOW)
    return CalendarObject(booking=booking, ics=SERIES, span=parsed.span)


def _cancel(recurrence_id: str) -> str:
    return render_itip(
        _stored(), ANNA, InvitationKind.CANCEL, "bookings@example.com", NOW, recurrence_id
    )


def test_an_excluded_occurrence_is_cancelled_as_the_masters_copy_at_that_time() -> None:
    text = _cancel("2030-12-10T08:00:00+00:00")
    (calendar,) = read_icalendar(text)
    assert str(calendar["METHOD"]) == "CANCEL"
    (event,) = calendar.walk("VEVENT")  # that occurrence alone
    berlin = event.decoded("DTSTART").tzinfo
    assert event.decoded("RECURRENCE-ID") == datetime(2030, 12, 10, 9, 0, tzinfo=berlin)
    assert event.decoded("DTSTART") == datetime(2030, 12, 10, 9, 0, tzinfo=berlin)
    assert event.decoded("DTEND") - event.decoded("DTSTART") == timedelta(hours=1)
    assert str(event["RECURRENCE-ID"].params["TZID"]) == "Europe/Berlin"
    assert str(event["STATUS"]) == "CANCELLED"
    assert int(str(event["SEQUENCE"])) == 3
    assert str(event["SUMMARY"]) == "Weekly haircut"
    for series_only in ("RRULE", "EXDATE", "RDATE"):
        assert series_only not in event
    assert event.walk("VALARM") == []
    assert str(event["ORGANIZER"]) == "mailto:bookings@example.com"
    assert "SCHEDULE-STATUS" not in str(event["ATTENDEE"].params)
    assert [c.name for c in calendar.subcomponents] == ["VTIMEZONE", "VEVENT"]

    (read,) = read_vobject(text)
    assert read.method.value == "CANCEL"
    (vevent,) = read.vevent_list
    assert vevent.recurrence_id.value.astimezone(UTC) == datetime(2030, 12, 10, 8, 0, tzinfo=UTC)
    assert vevent.dtstart.value.astimezone(UTC) == datetime(2030, 12, 10, 8, 0, tzinfo=UTC)
    assert vevent.status.value == "CANCELLED"
    assert not hasattr(vevent, "rrule")


def test_an_overridden_occurrence_is_cancelled_as_its_override() -> None:
    text = _cancel("2030-12-17T08:00:00+00:00")
    (calendar,) = read_icalendar(text)
    (event,) = calendar.walk("VEVENT")
    assert event.decoded("RECURRENCE-ID").astimezone(UTC) == datetime(2030, 12, 17, 8, tzinfo=UTC)
    assert event.decoded("DTSTART").astimezone(UTC) == datetime(2030, 12, 17, 13, tzinfo=UTC)
    assert str(event["SUMMARY"]) == "Weekly haircut (late)"
    assert int(str(event["SEQUENCE"])) == 5  # the override's own, never lower
    assert str(event["STATUS"]) == "CANCELLED"

    (read,) = read_vobject(text)
    (vevent,) = read.vevent_list
    assert vevent.dtstart.value.astimezone(UTC) == datetime(2030, 12, 17, 13, tzinfo=UTC)


def test_when_the_occurrence_is() -> None:
    assert occurrence_times(_stored(), "2030-12-10T08:00:00+00:00", ANNA.timezone) == (
        datetime(2030, 12, 10, 8, tzinfo=UTC),
        datetime(2030, 12, 10, 9, tzinfo=UTC),
    )
    start, end = occurrence_times(_stored(), "2030-12-17T08:00:00+00:00", ANNA.timezone)
    assert (start, end) == (
        datetime(2030, 12, 17, 13, tzinfo=UTC),
        datetime(2030, 12, 17, 14, tzinfo=UTC),
    )


def test_only_a_cancel_names_one_occurrence() -> None:
    with pytest.raises(ValueError, match="only a CANCEL"):
        render_itip(
            _stored(),
            ANNA,
            InvitationKind.REQUEST,
            "bookings@example.com",
            NOW,
            "2030-12-10T08:00:00+00:00",
        )


def test_a_whole_series_cancel_is_unchanged() -> None:
    (calendar,) = read_icalendar(
        render_itip(_stored(), ANNA, InvitationKind.CANCEL, "bookings@example.com", NOW)
    )
    (event,) = calendar.walk("VEVENT")
    assert "RECURRENCE-ID" not in event
    assert "RRULE" in event
    assert [Attendee(ZOE).email] == [str(event["ATTENDEE"]).removeprefix("mailto:")]
