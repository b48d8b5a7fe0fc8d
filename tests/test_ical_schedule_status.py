"""The server's SCHEDULE-STATUS and SEQUENCE written into a client's text
(``gateway.ical.schedule_status``): only the lines concerned change, every
other octet stays as the client wrote it."""

from __future__ import annotations

import icalendar
import pytest

from gateway.ical.schedule_status import schedule_statuses, with_schedule_status, with_sequence

HEAD = "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//app//EN\r\n"
ZONE = (
    "BEGIN:VTIMEZONE\r\nTZID:Europe/Berlin\r\nBEGIN:STANDARD\r\nDTSTART:19701025T030000\r\n"
    "RRULE:FREQ=YEARLY;BYMONTH=10;BYDAY=-1SU\r\nTZOFFSETFROM:+0200\r\nTZOFFSETTO:+0100\r\n"
    "END:STANDARD\r\nEND:VTIMEZONE\r\n"
)


def event(attendees: str, *, sequence: str = "SEQUENCE:2\r\n", extra: str = "") -> str:
    return (
        f"{HEAD}{ZONE}BEGIN:VEVENT\r\nUID:u1\r\nDTSTAMP:20301101T000000Z\r\n"
        f"DTSTART;TZID=Europe/Berlin:20301203T090000\r\n{sequence}SUMMARY:Haircut\r\n"
        f"ORGANIZER:mailto:anna@example.com\r\n{attendees}{extra}"
        "BEGIN:VALARM\r\nACTION:EMAIL\r\nTRIGGER:-PT1H\r\nSUMMARY:x\r\nDESCRIPTION:x\r\n"
        "ATTENDEE:mailto:zoe@example.com\r\nEND:VALARM\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n"
    )


ZOE = "ATTENDEE;CN=Zoë;PARTSTAT=NEEDS-ACTION:mailto:zoe@example.com\r\n"
LONG = (
    'ATTENDEE;CN="Maximilian von Musterhausen-Beispielstadt";ROLE=REQ-PARTICIPANT;PARTSTAT=ACC\r\n'
    " EPTED:mailto:max@example.com\r\n"
)

# 75 octets ("ë" is two), then the rest (RFC 5545 3.1).
ZOE_PENDING = (
    "ATTENDEE;CN=Zoë;PARTSTAT=NEEDS-ACTION;SCHEDULE-STATUS=1.0:mailto:zoe@examp\r\n le.com\r\n"
)

# name: (attendee lines, codes, attendee lines afterwards)
STATUS_CASES: dict[str, tuple[str, dict[str, str | None], str]] = {
    "set, folded at 75 octets": (ZOE, {"zoe@example.com": "1.0"}, ZOE_PENDING),
    "replaced, wherever it stood": (
        "ATTENDEE;SCHEDULE-STATUS=2.0;CN=Zoë:mailto:zoe@example.com\r\n",
        {"zoe@example.com": "1.1"},
        "ATTENDEE;CN=Zoë;SCHEDULE-STATUS=1.1:mailto:zoe@example.com\r\n",
    ),
    "a quoted list replaced": (
        'ATTENDEE;SCHEDULE-STATUS="3.7,3.8";CN=Zoë:mailto:zoe@example.com\r\n',
        {"zoe@example.com": "5.1"},
        "ATTENDEE;CN=Zoë;SCHEDULE-STATUS=5.1:mailto:zoe@example.com\r\n",
    ),
    "removed (a client's status)": (
        "ATTENDEE;schedule-status=2.0;CN=Zoë:mailto:zoe@example.com\r\n",
        {"zoe@example.com": None},
        "ATTENDEE;CN=Zoë:mailto:zoe@example.com\r\n",
    ),
    "any spelling of the address": (
        "ATTENDEE:MAILTO:Zoe@Example.COM\r\n",
        {"zoe@example.com": "1.0"},
        "ATTENDEE;SCHEDULE-STATUS=1.0:MAILTO:Zoe@Example.COM\r\n",
    ),
    "another attendee untouched": (
        f"{ZOE}ATTENDEE;SCHEDULE-STATUS=2.0:mailto:max@example.com\r\n",
        {"zoe@example.com": "1.0"},
        ZOE_PENDING + "ATTENDEE;SCHEDULE-STATUS=2.0:mailto:max@example.com\r\n",
    ),
    "a folded line refolded": (
        LONG,
        {"max@example.com": "1.1"},
        'ATTENDEE;CN="Maximilian von Musterhausen-Beispielstadt";ROLE=REQ-PARTICIPAN\r\n'
        " T;PARTSTAT=ACCEPTED;SCHEDULE-STATUS=1.1:mailto:max@example.com\r\n",
    ),
    "a quoted colon in a parameter": (
        'ATTENDEE;DELEGATED-FROM="mailto:boss@example.com":mailto:zoe@example.com\r\n',
        {"zoe@example.com": "1.0"},
        'ATTENDEE;DELEGATED-FROM="mailto:boss@example.com";SCHEDULE-STATUS=1.0:mailt\r\n'
        " o:zoe@example.com\r\n",
    ),
    "nobody named": (ZOE, {"max@example.com": "1.0"}, ZOE),
}


@pytest.mark.parametrize("name", STATUS_CASES)
def test_schedule_status_written(name: str) -> None:
    attendees, codes, expected = STATUS_CASES[name]
    written = with_schedule_status(event(attendees), codes)
    # Only the ATTENDEE lines of the VEVENT change: the VALARM's stays.
    assert written == event(expected)
    icalendar.Calendar.from_ical(written)


def test_every_occurrence_carries_it_and_lf_endings_stay() -> None:
    override = (
        "END:VEVENT\r\nBEGIN:VEVENT\r\nUID:u1\r\nRECURRENCE-ID:20301210T080000Z\r\n"
        "DTSTART:20301210T100000Z\r\nATTENDEE:mailto:zoe@example.com\r\n"
    )
    text = event(ZOE, extra=override)
    written = with_schedule_status(text, {"zoe@example.com": "1.1"})
    assert written.count("SCHEDULE-STATUS=1.1") == 2
    unix = event(ZOE).replace("\r\n", "\n")
    assert with_schedule_status(unix, {"zoe@example.com": "1.0"}) == event(ZOE_PENDING).replace(
        "\r\n", "\n"
    )


def test_the_statuses_read_back() -> None:
    text = event(
        'ATTENDEE;SCHEDULE-STATUS="1.1";CN=Zoë:mailto:Zoe@example.com\r\n'
        f"{LONG}ATTENDEE;SCHEDULE-STATUS=5.1:mailto:max2@example.com\r\n"
    )
    assert schedule_statuses(text) == {"zoe@example.com": "1.1", "max2@example.com": "5.1"}
    assert schedule_statuses(event(ZOE)) == {}


@pytest.mark.parametrize(
    ("line", "sequence", "expected"),
    [
        ("SEQUENCE:2\r\n", 3, "SEQUENCE:3\r\n"),
        ("SEQUENCE:2\r\n", 2, "SEQUENCE:2\r\n"),
        ("SEQUENCE:5\r\n", 3, "SEQUENCE:5\r\n"),  # never lowered
        ("", 1, "SEQUENCE:1\r\n"),  # none is 0: added after the UID
        ("SEQUENCE;X-A=b:0\r\n", 1, "SEQUENCE;X-A=b:1\r\n"),
    ],
)
def test_sequence_raised(line: str, sequence: int, expected: str) -> None:
    text = event(ZOE, sequence=line)
    written = with_sequence(text, sequence)
    if line:
        assert written == event(ZOE, sequence=expected)
    else:
        assert written == event(ZOE, sequence="").replace("UID:u1\r\n", f"UID:u1\r\n{expected}")
    assert "RRULE:FREQ=YEARLY;BYMONTH=10;BYDAY=-1SU\r\n" in written  # the zone's
    (vevent,) = icalendar.Calendar.from_ical(written).walk("VEVENT")
    assert int(vevent["SEQUENCE"]) == max(sequence, int(line.rpartition(":")[2] or 0))
