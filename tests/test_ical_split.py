"""Cutting a calendar export into calendar objects (gateway.ical.split): one
per UID, each with the file's own lines, byte for byte."""

from __future__ import annotations

import pytest

from gateway.core.calendar_import import UnsplittableFile
from gateway.ical.split import split_calendar

BERLIN_ZONE = (
    "BEGIN:VTIMEZONE\r\nTZID:Europe/Berlin\r\nBEGIN:STANDARD\r\nDTSTART:19701025T030000\r\n"
    "TZOFFSETFROM:+0200\r\nTZOFFSETTO:+0100\r\nEND:STANDARD\r\nEND:VTIMEZONE\r\n"
)
TOKYO_ZONE = (
    "BEGIN:VTIMEZONE\r\nTZID:Tokyo Standard Time\r\nBEGIN:STANDARD\r\n"
    "DTSTART:16010101T000000\r\nTZOFFSETFROM:+0900\r\nTZOFFSETTO:+0900\r\n"
    "END:STANDARD\r\nEND:VTIMEZONE\r\n"
)


def calendar(*parts: str, method: bool = True) -> str:
    head = "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//Old//EN\r\n"
    if method:
        head += "METHOD:PUBLISH\r\n"
    return head + BERLIN_ZONE + TOKYO_ZONE + "".join(parts) + "END:VCALENDAR\r\n"


def vevent(uid: str, *lines: str, start: str = "DTSTART:20260101T090000Z") -> str:
    body = "".join(line + "\r\n" for line in lines)
    return f"BEGIN:VEVENT\r\nUID:{uid}\r\n{start}\r\n{body}END:VEVENT\r\n"


def test_each_uid_becomes_one_object_with_its_overrides_and_the_zones_it_names() -> None:
    series = vevent(
        "s", "RRULE:FREQ=DAILY;COUNT=3", start="DTSTART;TZID=Europe/Berlin:20260101T090000"
    )
    override = vevent(
        "s",
        "RECURRENCE-ID;TZID=Europe/Berlin:20260102T090000",
        start="DTSTART;TZID=Europe/Berlin:20260102T100000",
    )
    single = vevent("one", start='DTSTART;TZID="Tokyo Standard Time":20260105T090000')
    utc = vevent("two")
    split = split_calendar(calendar(series, single, override, utc))

    assert [p.uid for p in split.pieces] == ["s", "one", "two"]
    by_uid = {p.uid: p.ics for p in split.pieces}
    # The series keeps its override, and only the zone it uses.
    assert by_uid["s"].count("BEGIN:VEVENT") == 2
    assert "TZID:Europe/Berlin" in by_uid["s"]
    assert "Tokyo" not in by_uid["s"]
    assert "TZID:Tokyo Standard Time" in by_uid["one"]
    assert "BEGIN:VTIMEZONE" not in by_uid["two"]
    # RFC 4791 4.1: a stored object has no METHOD; the other properties stay.
    for ics in by_uid.values():
        assert "METHOD" not in ics
        assert ics.startswith("BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//Old//EN\r\n")
        assert ics.endswith("END:VCALENDAR\r\n")
    # Lines 1-4 the header, 5-20 the two zones.
    assert [p.line for p in split.pieces] == [21, 26, 35]
    assert split.unplaced == ()


def test_lines_are_kept_as_the_file_wrote_them() -> None:
    folded = "DESCRIPTION:a long text that the exporter folded\r\n  here\\, and here"
    event = vevent(
        "f",
        folded,
        'X-CUSTOM;X-PARAM="a:b;c":keep me',
        "BEGIN:VALARM",
        "ACTION:DISPLAY",
        "DESCRIPTION:x",
        "TRIGGER:-PT5M",
        "UID:not-the-event-uid",
        "END:VALARM",
    )
    [piece] = split_calendar(calendar(event)).pieces
    assert piece.uid == "f"  # the VALARM's UID (RFC 9074) is not the object's
    assert event in piece.ics


def test_bare_line_feeds_and_a_byte_order_mark_are_read() -> None:
    text = "\ufeff" + calendar(vevent("a"), vevent("b")).replace("\r\n", "\n")
    split = split_calendar(text)
    assert [p.uid for p in split.pieces] == ["a", "b"]
    assert split.pieces[0].ics.endswith("END:VEVENT\r\nEND:VCALENDAR\r\n")


def test_several_calendars_in_one_file_are_all_split() -> None:
    text = calendar(vevent("a")) + calendar(vevent("b"), method=False)
    assert [p.uid for p in split_calendar(text).pieces] == ["a", "b"]


def test_components_without_uid_are_listed_with_their_line() -> None:
    text = calendar(vevent("a"), "BEGIN:VEVENT\r\nDTSTART:20260101T090000Z\r\nEND:VEVENT\r\n")
    split = split_calendar(text)
    assert [p.uid for p in split.pieces] == ["a"]
    [unplaced] = split.unplaced
    assert unplaced.line == 25
    assert "VEVENT at line 25 has no UID" in unplaced.message


def test_other_components_are_pieces_too_for_the_put_rules_to_judge() -> None:
    todo = "BEGIN:VTODO\r\nUID:t\r\nSUMMARY:x\r\nEND:VTODO\r\n"
    [piece] = split_calendar(calendar(todo)).pieces
    assert piece.uid == "t"
    assert "BEGIN:VTODO" in piece.ics


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("", "holds no BEGIN:VCALENDAR"),
        ("just some text\r\n", "line 1: 'just some text' is outside"),
        ("BEGIN:VEVENT\r\nUID:a\r\nEND:VEVENT\r\n", "line 1: expected BEGIN:VCALENDAR"),
        ("BEGIN:VCALENDAR\r\nBEGIN:VEVENT\r\nUID:a\r\nEND:VCALENDAR\r\n", "line 4: END:VCALENDAR"),
        ("BEGIN:VCALENDAR\r\nBEGIN:VEVENT\r\nUID:a\r\n", "ends inside BEGIN:VEVENT"),
        ("BEGIN:VCALENDAR\r\nEND:VCALENDARD\r\n", "END:VCALENDARD but BEGIN:VCALENDAR is open"),
    ],
)
def test_a_file_without_calendar_structure_is_refused_whole(text: str, words: str) -> None:
    with pytest.raises(UnsplittableFile) as refused:
        split_calendar(text)
    assert words in refused.value.message
