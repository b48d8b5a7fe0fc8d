"""Reading a free-busy request (``gateway.ical.schedule_freebusy``): the
span in UTC whatever form the client sent it in, the ATTENDEEs once each,
and the precondition each malformed request fails."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from gateway.core.errors import InvalidCalendarData
from gateway.ical.schedule_freebusy import parse_freebusy_request

BERLIN = (
    "BEGIN:VTIMEZONE\r\nTZID:Europe/Berlin\r\nBEGIN:STANDARD\r\nDTSTART:19701025T030000\r\n"
    "TZOFFSETFROM:+0200\r\nTZOFFSETTO:+0100\r\nEND:STANDARD\r\nEND:VTIMEZONE\r\n"
)


def request(body: str, *, zones: str = "", method: str = "METHOD:REQUEST\r\n") -> str:
    return (
        f"BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//t//t//EN\r\n{method}{zones}"
        f"BEGIN:VFREEBUSY\r\nDTSTAMP:20261101T000000Z\r\n{body}END:VFREEBUSY\r\nEND:VCALENDAR\r\n"
    )


ASK = "ORGANIZER:mailto:me@example.com\r\nATTENDEE:mailto:anna@example.com\r\n"


@pytest.mark.parametrize(
    ("times", "zones", "start"),
    [
        ("DTSTART:20261201T090000Z\r\nDTEND:20261201T100000Z\r\n", "", 9),
        # python-caldav sends a naive datetime as a floating time: read as UTC.
        ("DTSTART:20261201T090000\r\nDTEND:20261201T100000\r\n", "", 9),
        (
            "DTSTART;TZID=Europe/Berlin:20261201T090000\r\n"
            "DTEND;TZID=Europe/Berlin:20261201T100000\r\n",
            BERLIN,
            8,
        ),
    ],
)
def test_the_span_is_read_in_utc(times: str, zones: str, start: int) -> None:
    asked = parse_freebusy_request(request(times + ASK, zones=zones))
    assert asked.window.start == datetime(2026, 12, 1, start, tzinfo=UTC)
    assert asked.window.end == datetime(2026, 12, 1, start + 1, tzinfo=UTC)


def test_attendees_once_each_in_order_and_a_uid_even_if_none_was_sent() -> None:
    body = (
        "DTSTART:20261201T090000Z\r\nDTEND:20261201T100000Z\r\nORGANIZER:mailto:me@x.org\r\n"
        "ATTENDEE:mailto:room1@example.com\r\nATTENDEE:mailto:anna@example.com\r\n"
        "ATTENDEE:MAILTO:ROOM1@EXAMPLE.COM\r\n"
    )
    asked = parse_freebusy_request(request(body))
    assert asked.attendees == ("mailto:room1@example.com", "mailto:anna@example.com")
    assert asked.organizer == "mailto:me@x.org"
    assert asked.uid.endswith("@freebusy.calgateway")


@pytest.mark.parametrize(
    ("text", "precondition"),
    [
        ("BEGIN:VCALENDAR\r\nnonsense", "valid-calendar-data"),
        (
            request("DTSTART:20261201T090000Z\r\nDTEND:20261201T100000Z\r\n" + ASK, method=""),
            "valid-scheduling-message",
        ),
        (request("DTEND:20261201T100000Z\r\n" + ASK), "valid-scheduling-message"),
        (
            request("DTSTART:20261201T090000Z\r\nDTEND:20261201T090000Z\r\n" + ASK),
            "valid-scheduling-message",
        ),
        (
            request(
                "DTSTART:20261201T090000Z\r\nDTEND:20261201T100000Z\r\nORGANIZER:mailto:a@b\r\n"
            ),
            "recipient-specified",
        ),
    ],
    ids=["garbage", "no-method", "no-dtstart", "empty-span", "no-attendee"],
)
def test_malformed_requests_name_the_precondition(text: str, precondition: str) -> None:
    with pytest.raises(InvalidCalendarData) as caught:
        parse_freebusy_request(text)
    assert caught.value.precondition == precondition
