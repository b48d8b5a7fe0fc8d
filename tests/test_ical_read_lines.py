"""``gateway.ical.read_lines``: icalendar reads only the lines of the
properties the gateway reads, and every object parses exactly as when it
reads the whole text (the same ``ParsedObject``, or the same refusal)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from gateway.core.calendar_import import UnsplittableFile
from gateway.core.model import ParsedObject
from gateway.ical.parse import READ_PROPERTIES
from gateway.ical.read_lines import lines_read
from tests.corpus import corpus_files, read_utf8
from tests.parse_outcomes import CODEC, Outcome, outcome_without, parse_outcome

OFFICE_ZONE = [
    "BEGIN:VTIMEZONE",
    "TZID:Office Time",
    "X-LIC-LOCATION:Office",
    "BEGIN:STANDARD",
    "TZOFFSETFROM:+0300",
    "TZOFFSETTO:+0300",
    "TZNAME:OT",
    "DTSTART:19700101T000000",
    "END:STANDARD",
    "END:VTIMEZONE",
]


def _text(*lines: str) -> str:
    return "\r\n".join(lines) + "\r\n"


@pytest.mark.parametrize(
    ("given", "kept"),
    [
        pytest.param(
            ["BEGIN:VCALENDAR", "VERSION:2.0", "PRODID:-//x//y//EN", "END:VCALENDAR"],
            ["BEGIN:VCALENDAR", "END:VCALENDAR"],
            id="unread calendar properties go",
        ),
        pytest.param(
            [
                "BEGIN:VEVENT",
                "DTSTAMP:20260101T000000Z",
                "dtstart;tzid=X:20360101T090000",
                "X-APPLE-TRAVEL-ADVISORY-BEHAVIOR:AUTOMATIC",
                "END:VEVENT",
            ],
            ["BEGIN:VEVENT", "dtstart;tzid=X:20360101T090000", "END:VEVENT"],
            id="names in any case",
        ),
        pytest.param(
            ["BEGIN:VEVENT", "DESCRI", " PTION:folded in its name", "END:VEVENT"],
            ["BEGIN:VEVENT", "DESCRIPTION:folded in its name", "END:VEVENT"],
            id="a name folded across lines is read unfolded",
        ),
        pytest.param(
            [
                "BEGIN:VEVENT",
                "SUMMARY:long",
                "\tsummary",
                "CREATED:2026",
                " 0101T000000Z",
                "END:VEVENT",
            ],
            ["BEGIN:VEVENT", "SUMMARY:longsummary", "END:VEVENT"],
            id="folds of kept and dropped lines",
        ),
        pytest.param(
            ["BEGIN:VEVENT", "DTSTARTX:1", "X-DTSTART:2", "UID:a", "END:VEVENT"],
            ["BEGIN:VEVENT", "UID:a", "END:VEVENT"],
            id="only whole names match",
        ),
        pytest.param(
            ["BEGIN:VCALENDAR", "", "BEGIN:VEVENT", "UID:a", "", "END:VEVENT", "END:VCALENDAR"],
            ["BEGIN:VCALENDAR", "BEGIN:VEVENT", "UID:a", "END:VEVENT", "END:VCALENDAR"],
            id="blank lines go",
        ),
        pytest.param(
            [
                "BEGIN:VCALENDAR",
                *OFFICE_ZONE,
                "BEGIN:VALARM",
                "ACTION:DISPLAY",
                "TRIGGER:-PT5M",
                "END:VALARM",
                "END:VCALENDAR",
            ],
            [
                "BEGIN:VCALENDAR",
                *OFFICE_ZONE,
                "BEGIN:VALARM",
                "TRIGGER:-PT5M",
                "END:VALARM",
                "END:VCALENDAR",
            ],
            id="a VTIMEZONE is kept whole, and only it",
        ),
        pytest.param(
            ["begin:vtimezone", "TZID:x", "TZNAME:kept", "end:vtimezone", "TZNAME:dropped"],
            ["begin:vtimezone", "TZID:x", "TZNAME:kept", "end:vtimezone"],
            id="VTIMEZONE in any case",
        ),
        pytest.param(
            ['BEGIN;X-A="b:c":VTIMEZONE', "TZNAME:kept", 'END;X-A="b:c":VTIMEZONE', "TZNAME:x"],
            ['BEGIN;X-A="b:c":VTIMEZONE', "TZNAME:kept", 'END;X-A="b:c":VTIMEZONE'],
            id="BEGIN and END with a parameter",
        ),
    ],
)
def test_lines_read(given: list[str], kept: list[str]) -> None:
    assert lines_read(_text(*given), READ_PROPERTIES) == _text(*kept)
    assert lines_read("\n".join(given), READ_PROPERTIES) == _text(*kept)  # LF alone


def _whole(text: str, monkeypatch: pytest.MonkeyPatch) -> Outcome:
    """What the parse gives when icalendar reads every line."""
    return outcome_without(text, monkeypatch, "lines_read", lambda text, properties: text)


def _event(*props: str) -> str:
    return _text(
        "BEGIN:VCALENDAR",
        "VERSION:2.0",
        "PRODID:-//test//test//EN",
        "BEGIN:VEVENT",
        "UID:read-lines@test",
        "DTSTAMP:20260101T000000Z",
        "DTSTART:20361201T090000Z",
        "DTEND:20361201T100000Z",
        *props,
        "END:VEVENT",
        "END:VCALENDAR",
    )


CASES = {
    "plain": _event("SUMMARY:Haircut"),
    "series with an exception date": _event("RRULE:FREQ=WEEKLY;COUNT=5", "EXDATE:20361208T090000Z"),
    "a zone of its own": _event()
    .replace("VERSION:2.0", "\r\n".join(OFFICE_ZONE))
    .replace("DTSTART:20361201T090000Z", "DTSTART;TZID=Office Time:20361201T090000"),
    "attendees and alarms": _event(
        "ORGANIZER;CN=Desk:mailto:desk@example.com",
        "ATTENDEE;PARTSTAT=ACCEPTED;CN=Ann;X-NUM-GUESTS=0:mailto:ann@example.com",
        "BEGIN:VALARM",
        "ACTION:DISPLAY",
        "TRIGGER:-PT15M",
        "END:VALARM",
    ),
    "not Gregorian": _event("RRULE:FREQ=DAILY;COUNT=3").replace(
        "VERSION:2.0", "VERSION:2.0\r\nCALSCALE:HEBREW"
    ),
    "a read property icalendar cannot read": _event("SEQUENCE:many"),
    "an unread property icalendar cannot read": _event("X-GUESTS;VALUE=INTEGER:many"),
    "a METHOD": _event().replace("VERSION:2.0", "METHOD:REQUEST"),
}


@pytest.mark.parametrize("text", CASES.values(), ids=CASES.keys())
def test_cases_parse_as_the_whole_text(text: str, monkeypatch: pytest.MonkeyPatch) -> None:
    assert parse_outcome(text) == _whole(text, monkeypatch)


def _corpus_objects() -> Iterator[tuple[str, str]]:
    """Every calendar object of the corpus (one per UID, as an import splits it)."""
    for path in corpus_files():
        text = read_utf8(path)
        if text is None:
            continue
        try:
            pieces = CODEC.split(text).pieces
        except UnsplittableFile:
            continue
        for piece in pieces:
            yield f"{path.name}:{piece.line}", piece.ics


def test_corpus_objects_parse_as_the_whole_text(monkeypatch: pytest.MonkeyPatch) -> None:
    objects = list(_corpus_objects())
    if not objects:
        pytest.skip("no corpus beside the repository")
    differ = [name for name, text in objects if parse_outcome(text) != _whole(text, monkeypatch)]
    assert differ == []
    # The corpus holds objects both accepted and refused.
    outcomes = [isinstance(parse_outcome(text), ParsedObject) for _, text in objects]
    assert any(outcomes) and not all(outcomes)


def test_corpus_files_parse_as_the_whole_text(monkeypatch: pytest.MonkeyPatch) -> None:
    for path in corpus_files():
        text = read_utf8(path)
        if text is not None:
            assert parse_outcome(text) == _whole(text, monkeypatch), path.name
