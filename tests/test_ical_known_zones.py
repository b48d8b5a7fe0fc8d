"""``gateway.ical.known_zones``: a PUT's VTIMEZONEs of tz-database zones are
read once per distinct block, and the object parses exactly as when icalendar
reads the whole text (the same ``ParsedObject``, or the same refusal)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from gateway.ical.known_zones import _known_zone, split_known_zones
from tests.corpus import corpus_files, read_utf8
from tests.parse_outcomes import Outcome, outcome_without, parse_outcome

BERLIN = """BEGIN:VTIMEZONE
TZID:Europe/Berlin
BEGIN:DAYLIGHT
TZOFFSETFROM:+0100
TZOFFSETTO:+0200
TZNAME:CEST
DTSTART:19700329T020000
RRULE:FREQ=YEARLY;BYMONTH=3;BYDAY=-1SU
END:DAYLIGHT
BEGIN:STANDARD
TZOFFSETFROM:+0200
TZOFFSETTO:+0100
TZNAME:CET
DTSTART:19701025T030000
RRULE:FREQ=YEARLY;BYMONTH=10;BYDAY=-1SU
END:STANDARD
END:VTIMEZONE"""

NEW_YORK = """BEGIN:VTIMEZONE
TZID:America/New_York
BEGIN:STANDARD
TZOFFSETFROM:-0400
TZOFFSETTO:-0500
DTSTART:19701101T020000
RRULE:FREQ=YEARLY;BYMONTH=11;BYDAY=1SU
END:STANDARD
END:VTIMEZONE"""

# A name the tz database does not know: icalendar builds the zone from the block.
OFFICE = """BEGIN:VTIMEZONE
TZID:Office Time
BEGIN:STANDARD
TZOFFSETFROM:+0300
TZOFFSETTO:+0300
DTSTART:19700101T000000
END:STANDARD
END:VTIMEZONE"""

BROKEN_OFFSET = BERLIN.replace("TZOFFSETTO:+0200", "TZOFFSETTO:+99x")
NO_END_STANDARD = BERLIN.replace("END:STANDARD\n", "")


def event(*props: str, tzid: str = "Europe/Berlin") -> str:
    return "\n".join(
        [
            "BEGIN:VEVENT",
            "UID:zones@test",
            "DTSTAMP:20260101T000000Z",
            f"DTSTART;TZID={tzid}:20361201T090000",
            f"DTEND;TZID={tzid}:20361201T100000",
            "SUMMARY:Haircut",
            *props,
            "END:VEVENT",
        ]
    )


def calendar(*parts: str, head: tuple[str, ...] = (), newline: str = "\r\n") -> str:
    lines = ["BEGIN:VCALENDAR", "VERSION:2.0", "PRODID:-//test//test//EN", *head]
    for part in parts:
        lines.extend(part.splitlines())
    lines.append("END:VCALENDAR")
    return newline.join(lines) + newline


RECURRING = event(
    "RRULE:FREQ=WEEKLY;COUNT=5",
    "EXDATE;TZID=Europe/Berlin:20361208T090000",
)

# (name, text, TZIDs read apart).
CASES: list[tuple[str, str, tuple[str, ...]]] = [
    ("berlin", calendar(BERLIN, event()), ("Europe/Berlin",)),
    ("berlin, LF only", calendar(BERLIN, event(), newline="\n"), ("Europe/Berlin",)),
    (
        "two zones",
        calendar(BERLIN, NEW_YORK, event("RDATE;TZID=America/New_York:20361203T090000")),
        ("Europe/Berlin", "America/New_York"),
    ),
    ("recurring", calendar(BERLIN, RECURRING), ("Europe/Berlin",)),
    (
        "overrides",
        calendar(
            BERLIN,
            RECURRING,
            event("RECURRENCE-ID;TZID=Europe/Berlin:20361215T090000", "STATUS:CANCELLED"),
        ),
        ("Europe/Berlin",),
    ),
    ("an undefined TZID", calendar(BERLIN, event(tzid="Mars/Olympus")), ("Europe/Berlin",)),
    ("a zone block of its own", calendar(OFFICE, event(tzid="Office Time")), ()),
    ("a known zone before an own one", calendar(BERLIN, OFFICE, event()), ("Europe/Berlin",)),
    ("an own zone first", calendar(OFFICE, BERLIN, event()), ()),
    ("the zone after the event", calendar(event(), BERLIN), ()),
    ("a zone in the event", calendar(event(BERLIN)), ()),
    ("an unreadable offset", calendar(BROKEN_OFFSET, event()), ()),
    ("a part not ended", calendar(NO_END_STANDARD, event()), ()),
    ("lower case", calendar(BERLIN.replace("BEGIN:VTIMEZONE", "begin:vtimezone"), event()), ()),
    ("a folded head", calendar(BERLIN, event(), head=("X-NAME:long\r\n  name",)), ()),
    (
        "a blank line after",
        calendar(BERLIN, event()).replace("END:VTIMEZONE\r\n", "END:VTIMEZONE\r\n\r\n"),
        (),
    ),
    (
        "a fold after the END line",
        calendar(BERLIN, event()).replace("END:VTIMEZONE\r\n", "END:VTIMEZONE\r\n X\r\n"),
        (),
    ),
    (
        "X-WR-TIMEZONE",
        calendar(BERLIN, RECURRING, head=("X-WR-TIMEZONE:America/New_York",)),
        (),
    ),
    ("a component before", calendar("BEGIN:X-THING\nEND:X-THING", BERLIN, event()), ()),
    (
        "an unreadable X- value",
        calendar(BERLIN.replace("TZNAME:CET\n", "TZNAME:CET\nX-WHEN;VALUE=DATE:soon\n"), event()),
        (),
    ),
    (
        "a TZID inside the block",
        calendar(
            BERLIN.replace("DTSTART:19701025T030000", "DTSTART;TZID=Europe/Paris:19701025T030000"),
            event(),
        ),
        (),
    ),
    (
        "the same TZID defined again later",
        calendar(BERLIN, event(), OFFICE.replace("Office Time", "Europe/Berlin")),
        ("Europe/Berlin",),
    ),
    ("a METHOD", calendar(BERLIN, event(), head=("METHOD:REQUEST",)), ("Europe/Berlin",)),
    ("no event", calendar(BERLIN), ("Europe/Berlin",)),
    (
        "no END:VCALENDAR",
        calendar(BERLIN, event()).replace("END:VCALENDAR\r\n", ""),
        ("Europe/Berlin",),
    ),
]


def _whole(text: str, monkeypatch: pytest.MonkeyPatch) -> Outcome:
    """What the parse gives when icalendar reads the whole text."""
    return outcome_without(text, monkeypatch, "split_known_zones", lambda text: (text, ()))


@pytest.mark.parametrize(("name", "text", "apart"), CASES, ids=[c[0] for c in CASES])
def test_zones_read_apart_parse_as_the_whole_text(
    name: str, text: str, apart: tuple[str, ...], monkeypatch: pytest.MonkeyPatch
) -> None:
    assert split_known_zones(text)[1] == apart
    whole = _whole(text, monkeypatch)
    assert parse_outcome(text) == whole
    assert parse_outcome(text) == whole  # and again, from the cache


def test_a_zone_block_is_read_once() -> None:
    text = calendar(BERLIN.replace("TZNAME:CET", "TZNAME:CET-once"), event())
    parse_outcome(text)
    before = _known_zone.cache_info()
    rest, apart = split_known_zones(text)
    parse_outcome(text)
    after = _known_zone.cache_info()
    assert apart == ("Europe/Berlin",)
    assert "VTIMEZONE" not in rest
    assert after.hits == before.hits + 2 and after.misses == before.misses


def test_a_long_block_is_read_in_place() -> None:
    padded = BERLIN.replace("TZNAME:CET\n", "TZNAME:CET\n" + "X-PAD:" + "x" * 9000 + "\n")
    assert split_known_zones(calendar(padded, event()))[1] == ()


def _corpus_zones() -> Iterator[tuple[str, str]]:
    """Each distinct VTIMEZONE block of the corpus, with its TZID."""
    seen: set[str] = set()
    block = re.compile(r"^BEGIN:VTIMEZONE\r?\n.*?^END:VTIMEZONE\r?\n", re.DOTALL | re.MULTILINE)
    tzid = re.compile(r"^TZID:(.*?)\r?$", re.MULTILINE)
    for path in corpus_files():
        text = read_utf8(path)
        for found in block.finditer(text or ""):
            name = tzid.search(found.group())
            if name is not None and found.group() not in seen:
                seen.add(found.group())
                yield found.group().rstrip("\r\n"), name.group(1)


@pytest.mark.parametrize(
    ("block", "tzid"), list(_corpus_zones()), ids=lambda v: v if len(v) < 40 else None
)
def test_corpus_zones_parse_as_the_whole_text(
    block: str, tzid: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    text = calendar(block, event(tzid=tzid))
    assert parse_outcome(text) == _whole(text, monkeypatch)


@pytest.mark.parametrize("path", corpus_files(), ids=lambda p: p.name)
def test_corpus_files_parse_as_the_whole_text(path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    text = read_utf8(path)
    if text is None:
        pytest.skip("not UTF-8: the caller refuses it before parsing")
    assert parse_outcome(text) == _whole(text, monkeypatch)
