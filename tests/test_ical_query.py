"""``ICalQueryEngine``: CalDAV filters (RFC 4791 9.7, time ranges 9.9),
calendar-data (9.6.5 expand, 9.6.6 limit-recurrence-set), free-busy (7.10)
and the calendar-timezone VCALENDAR, on objects built as the store holds them.

Every calendar the engine writes is parsed back with icalendar and vobject.
"""

from __future__ import annotations

import itertools
import warnings
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import icalendar
import pytest
import vobject

from gateway.core.errors import ExpansionLimit, InvalidCalendarData
from gateway.core.model import (
    FAR_FUTURE,
    Booking,
    CalendarObject,
    TimeSpan,
)
from gateway.core.query import (
    Collation,
    CompFilter,
    DataRequest,
    MatchType,
    ParamFilter,
    PropFilter,
    QueriedObject,
    TextMatch,
    TimeRange,
)
from gateway.ical import PRODID, ICalCodec, ICalQueryEngine
from gateway.ical import query as ical_query
from gateway.ical.filters import comp_matches
from gateway.ical.limits import RecurrenceLimits
from tests.corpus import corpus_files, read_utf8
from tests.recurrence import legacy_object

BERLIN = ZoneInfo("Europe/Berlin")
NOW = datetime(2026, 6, 1, 12, 0, 0, tzinfo=UTC)
CODEC = ICalCodec()


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)  # type: ignore[misc]


def engine() -> ICalQueryEngine:
    return ICalQueryEngine(clock=lambda: NOW)


# -- building stored objects ---------------------------------------------------------


def calendar(*components: str) -> str:
    lines = ["BEGIN:VCALENDAR", "VERSION:2.0", "PRODID:-//test//test//EN"]
    for component in components:
        lines.extend(component.strip().splitlines())
    lines.append("END:VCALENDAR")
    return "\r\n".join(lines) + "\r\n"


def event(*props: str, uid: str = "e1@test", name: str = "VEVENT") -> str:
    lines = [f"BEGIN:{name}", f"UID:{uid}", "DTSTAMP:20260101T000000Z", *props, f"END:{name}"]
    return "\n".join(lines)


def stored(ics: str, timezone: str = "Europe/Berlin") -> CalendarObject:
    """An object as the store keeps a client's PUT: the text plus the fields
    and index span ``ICalCodec.parse`` read from it."""
    parsed = CODEC.parse(ics, timezone)
    created = utc(2026, 1, 1)
    booking = parsed.booking(
        id=f"id-{parsed.uid}", resource_id="anna", created=created, updated=created
    )
    return CalendarObject(booking=booking, ics=ics, span=parsed.span)


def unvalidated(
    ics: str, timezone: str = "Europe/Berlin", recurring: bool = False
) -> CalendarObject:
    """An object the CalDAV PUT path would refuse (VTODO, VJOURNAL...), to
    test the filter rules that are defined for them."""
    booking = Booking(
        id="id-x",
        resource_id="anna",
        uid="x@test",
        title="",
        start=utc(2026, 1, 1),
        end=utc(2026, 1, 1),
        timezone=timezone,
        created=utc(2026, 1, 1),
        updated=utc(2026, 1, 1),
        recurring=recurring,
    )
    return CalendarObject(booking=booking, ics=ics, span=TimeSpan(utc(2026, 1, 1), FAR_FUTURE))


def vcal(*children: CompFilter, **kwargs: Any) -> CompFilter:
    return CompFilter("VCALENDAR", comp_filters=children, **kwargs)


def in_range(start: datetime | None, end: datetime | None, name: str = "VEVENT") -> CompFilter:
    """The filter nearly every client sends: VCALENDAR > VEVENT > time-range."""
    return vcal(CompFilter(name, time_range=TimeRange(start, end)))


def in_range_slow(start: datetime | None, end: datetime | None) -> CompFilter:
    """The same question, asked so that the engine has to parse: UID is
    always defined, but the filter is no longer the plain one."""
    return vcal(
        CompFilter("VEVENT", time_range=TimeRange(start, end), prop_filters=(PropFilter("UID"),))
    )


def with_props(*props: PropFilter, name: str = "VEVENT") -> CompFilter:
    return vcal(CompFilter(name, prop_filters=props))


def parse(data: str) -> icalendar.Calendar:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        result = icalendar.Calendar.from_ical(data)
    assert isinstance(result, icalendar.Calendar)
    return result


def parse_vobject(data: str) -> Any:
    # vobject remembers VTIMEZONEs per TZID process-wide; read each calendar's own.
    getattr(vobject.icalendar, "__tzidMap").clear()
    return vobject.readOne(data)


def assert_wire_format(data: str) -> None:
    """CRLF line ends and lines of at most 75 octets (RFC 5545 3.1)."""
    raw = data.encode("utf-8")
    assert raw.endswith(b"\r\n")
    assert b"\n" not in raw.replace(b"\r\n", b"")
    for line in raw.split(b"\r\n"):
        assert len(line) <= 75, line


@pytest.fixture
def parses(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every text the query engine parses, in order."""
    seen: list[str] = []
    original = ical_query._parse_calendar

    def counting(text: str) -> icalendar.Calendar:
        seen.append(text)
        return original(text)

    monkeypatch.setattr(ical_query, "_parse_calendar", counting)
    return seen


BERLIN_HOUR = event(
    "DTSTART;TZID=Europe/Berlin:20261201T090000",
    "DTEND;TZID=Europe/Berlin:20261201T100000",
    "SUMMARY:Haircut\\, short",
    "DESCRIPTION:Ask for Änne",
    "LOCATION:Salon",
    "CATEGORIES:Work,Hair",
    "CATEGORIES:Blue",
    "ORGANIZER;CN=Anna:mailto:anna@example.com",
    "ATTENDEE;CN=Carla;PARTSTAT=ACCEPTED;ROLE=REQ-PARTICIPANT:mailto:carla@example.com",
    "ATTENDEE;CN=Dan;PARTSTAT=DECLINED:mailto:dan@example.com",
    "LAST-MODIFIED:20261101T120000Z",
    "STATUS:CONFIRMED",
)


# -- comp-filter (RFC 4791 9.7.1) ----------------------------------------------------


def test_comp_filter_presence_and_absence() -> None:
    obj = stored(calendar(BERLIN_HOUR))
    queries = engine()
    assert queries.matches(obj, vcal())
    assert queries.matches(obj, vcal(CompFilter("VEVENT")))
    assert not queries.matches(obj, vcal(CompFilter("VTODO")))
    assert queries.matches(obj, vcal(CompFilter("VTODO", is_not_defined=True)))
    assert not queries.matches(obj, vcal(CompFilter("VEVENT", is_not_defined=True)))
    # The outermost filter has to name the calendar itself.
    assert not queries.matches(obj, CompFilter("VEVENT"))
    assert queries.matches(obj, CompFilter("VEVENT", is_not_defined=True))
    assert not queries.matches(obj, CompFilter("VCALENDAR", is_not_defined=True))


def test_component_questions_are_answered_without_parsing(parses: list[str]) -> None:
    obj = stored(calendar(BERLIN_HOUR))
    queries = engine()
    assert queries.matches(obj, vcal())
    assert queries.matches(obj, vcal(CompFilter("vevent")))
    assert not queries.matches(obj, vcal(CompFilter("VTODO")))
    assert queries.matches(obj, vcal(CompFilter("VTODO", is_not_defined=True)))
    assert not queries.matches(obj, vcal(CompFilter("VEVENT", is_not_defined=True)))
    # A filter that needs a component the object lacks fails, whatever else it asks.
    tasks = vcal(CompFilter("VTODO", time_range=TimeRange(utc(2026, 1, 1), None)))
    assert not queries.matches(obj, tasks)
    alarms = vcal(
        CompFilter(
            "VEVENT", comp_filters=(CompFilter("VALARM", prop_filters=(PropFilter("ACTION"),)),)
        )
    )
    assert not queries.matches(obj, alarms)
    assert parses == []
    # Whatever looks like a BEGIN line inside a value is none.
    tricky = stored(
        calendar(
            event(
                "DTSTART:20261201T090000Z",
                "DESCRIPTION:first\\nBEGIN:VTODO",
                "COMMENT:a line folded where it hurts: xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx",
                " BEGIN:VJOURNAL",
            )
        )
    )
    assert not queries.matches(tricky, vcal(CompFilter("VTODO")))
    assert not queries.matches(tricky, vcal(CompFilter("VJOURNAL")))
    assert queries.matches(tricky, vcal(CompFilter("VJOURNAL", is_not_defined=True)))
    assert queries.matches(
        tricky,
        with_props(
            PropFilter(
                "COMMENT",
                text_match=TextMatch("xxxBEGIN:VJOURNAL", match_type=MatchType.ENDS_WITH),
            )
        ),
    )


def test_names_are_case_insensitive() -> None:
    obj = stored(calendar(BERLIN_HOUR))
    queries = engine()
    assert queries.matches(obj, CompFilter("vcalendar", comp_filters=(CompFilter("vEvent"),)))
    assert queries.matches(obj, with_props(PropFilter("summary"), name="vevent"))
    assert queries.matches(
        obj,
        with_props(PropFilter("attendee", param_filters=(ParamFilter("partstat"),))),
    )


def test_nested_comp_filters_and() -> None:
    alarm = "BEGIN:VALARM\nACTION:DISPLAY\nDESCRIPTION:x\nTRIGGER:-PT15M\nEND:VALARM"
    with_alarm = stored(calendar(event("DTSTART:20261201T090000Z", alarm)))
    without = stored(calendar(event("DTSTART:20261201T090000Z")))
    queries = engine()
    has_alarm = vcal(CompFilter("VEVENT", comp_filters=(CompFilter("VALARM"),)))
    no_alarm = vcal(CompFilter("VEVENT", comp_filters=(CompFilter("VALARM", is_not_defined=True),)))
    assert queries.matches(with_alarm, has_alarm)
    assert not queries.matches(without, has_alarm)
    assert queries.matches(without, no_alarm)
    assert not queries.matches(with_alarm, no_alarm)
    # Nested filters AND: the alarm exists, the property does not.
    both = vcal(
        CompFilter(
            "VEVENT",
            comp_filters=(CompFilter("VALARM"),),
            prop_filters=(PropFilter("LOCATION"),),
        )
    )
    assert not queries.matches(with_alarm, both)


def test_vtimezone_comp_filter() -> None:
    obj = stored(calendar(BERLIN_HOUR))
    assert engine().matches(obj, vcal(CompFilter("VTIMEZONE", is_not_defined=True)))
    rendered = stored(
        calendar(
            "BEGIN:VTIMEZONE\nTZID:Europe/Berlin\nBEGIN:STANDARD\nDTSTART:19701025T030000\n"
            "TZOFFSETFROM:+0200\nTZOFFSETTO:+0100\nRRULE:FREQ=YEARLY;BYMONTH=10;BYDAY=-1SU\n"
            "END:STANDARD\nEND:VTIMEZONE",
            BERLIN_HOUR,
        )
    )
    assert engine().matches(rendered, vcal(CompFilter("VTIMEZONE")))
    assert engine().matches(
        rendered,
        vcal(
            CompFilter(
                "VTIMEZONE",
                prop_filters=(PropFilter("TZID", text_match=TextMatch("Europe/Berlin")),),
            )
        ),
    )


# -- prop-filter, param-filter, text-match (RFC 4791 9.7.2, 9.7.3, 9.7.5) ------------


def test_prop_filter_defined_and_not_defined() -> None:
    obj = stored(calendar(BERLIN_HOUR))
    queries = engine()
    assert queries.matches(obj, with_props(PropFilter("LOCATION")))
    assert not queries.matches(obj, with_props(PropFilter("LOCATION", is_not_defined=True)))
    assert queries.matches(obj, with_props(PropFilter("X-NOTHING", is_not_defined=True)))
    assert not queries.matches(obj, with_props(PropFilter("X-NOTHING")))
    # A text-match on a missing property does not match, negated or not.
    for negate in (False, True):
        missing = PropFilter("X-NOTHING", text_match=TextMatch("a", negate=negate))
        assert not queries.matches(obj, with_props(missing))


@pytest.mark.parametrize(
    ("text", "match_type", "collation", "negate", "expected"),
    [
        ("haircut", MatchType.CONTAINS, Collation.ASCII_CASEMAP, False, True),
        ("HAIRCUT, SHORT", MatchType.EQUALS, Collation.ASCII_CASEMAP, False, True),
        ("haircut", MatchType.EQUALS, Collation.ASCII_CASEMAP, False, False),
        ("hair", MatchType.STARTS_WITH, Collation.ASCII_CASEMAP, False, True),
        ("short", MatchType.STARTS_WITH, Collation.ASCII_CASEMAP, False, False),
        ("SHORT", MatchType.ENDS_WITH, Collation.ASCII_CASEMAP, False, True),
        ("hair", MatchType.ENDS_WITH, Collation.ASCII_CASEMAP, False, False),
        # TEXT is compared unescaped (RFC 5545 3.3.11): "\\," is a comma.
        ("cut, sh", MatchType.CONTAINS, Collation.ASCII_CASEMAP, False, True),
        ("cut\\, sh", MatchType.CONTAINS, Collation.ASCII_CASEMAP, False, False),
        ("haircut", MatchType.CONTAINS, Collation.OCTET, False, False),
        ("Haircut", MatchType.CONTAINS, Collation.OCTET, False, True),
        ("HAIRCUT", MatchType.CONTAINS, Collation.UNICODE_CASEMAP, False, True),
        ("haircut", MatchType.CONTAINS, Collation.ASCII_CASEMAP, True, False),
        ("perm", MatchType.CONTAINS, Collation.ASCII_CASEMAP, True, True),
        ("Haircut", MatchType.EQUALS, Collation.OCTET, True, True),
    ],
)
def test_text_match(
    text: str, match_type: MatchType, collation: Collation, negate: bool, expected: bool
) -> None:
    obj = stored(calendar(BERLIN_HOUR))
    match = TextMatch(text, collation=collation, negate=negate, match_type=match_type)
    assert engine().matches(obj, with_props(PropFilter("SUMMARY", text_match=match))) is expected


def test_collations_fold_differently() -> None:
    obj = stored(calendar(BERLIN_HOUR))  # DESCRIPTION:Ask for Änne
    queries = engine()

    def finds(text: str, collation: Collation) -> bool:
        match = TextMatch(text, collation=collation)
        return queries.matches(obj, with_props(PropFilter("DESCRIPTION", text_match=match)))

    # i;ascii-casemap folds A-Z only (RFC 4790 9.2): "Ä" and "ä" differ.
    assert finds("ASK FOR Ä", Collation.ASCII_CASEMAP)
    assert not finds("ask for änne", Collation.ASCII_CASEMAP)
    # i;unicode-casemap folds every letter (RFC 5051)...
    assert finds("ask for änne", Collation.UNICODE_CASEMAP)
    assert finds("ÄNNE", Collation.UNICODE_CASEMAP)
    # ...and compares decomposed: "A" + combining diaeresis is "Ä".
    assert finds("a\u0308nne", Collation.UNICODE_CASEMAP)
    # i;octet folds nothing.
    assert finds("Änne", Collation.OCTET)
    assert not finds("änne", Collation.OCTET)
    assert not finds("a\u0308nne", Collation.OCTET)


def test_multi_valued_properties_match_any_value() -> None:
    obj = stored(calendar(BERLIN_HOUR))  # CATEGORIES:Work,Hair + CATEGORIES:Blue
    queries = engine()

    def categories(text: str, **kwargs: Any) -> bool:
        match = TextMatch(text, match_type=MatchType.EQUALS, **kwargs)
        return queries.matches(obj, with_props(PropFilter("CATEGORIES", text_match=match)))

    assert categories("work")
    assert categories("HAIR")
    assert categories("blue")
    assert not categories("Work,Hair")  # values, not the line
    assert not categories("green")
    # Negated: the line "Work,Hair" has no "green", the line "Blue" has one "blue".
    assert categories("green", negate=True)
    assert categories("blue", negate=True)  # the other CATEGORIES line passes
    resources = stored(calendar(event("DTSTART:20261201T090000Z", "RESOURCES:Chair 2,Mirror")))
    match = TextMatch("mirror", match_type=MatchType.EQUALS)
    assert queries.matches(resources, with_props(PropFilter("RESOURCES", text_match=match)))


def test_cal_address_matches_the_raw_value() -> None:
    obj = stored(calendar(BERLIN_HOUR))
    queries = engine()

    def attendee(text: str, match_type: MatchType = MatchType.EQUALS) -> bool:
        match = TextMatch(text, match_type=match_type)
        return queries.matches(obj, with_props(PropFilter("ATTENDEE", text_match=match)))

    assert attendee("mailto:carla@example.com")
    assert attendee("MAILTO:DAN@EXAMPLE.COM")
    assert not attendee("carla@example.com")
    assert attendee("carla@example.com", MatchType.ENDS_WITH)
    organizer = PropFilter(
        "ORGANIZER", text_match=TextMatch("mailto:anna@", match_type=MatchType.STARTS_WITH)
    )
    assert queries.matches(obj, with_props(organizer))


def test_param_filters() -> None:
    obj = stored(calendar(BERLIN_HOUR))
    queries = engine()

    def attendee(*params: ParamFilter, text: str | None = None) -> bool:
        match = TextMatch(text) if text is not None else None
        flt = PropFilter("ATTENDEE", text_match=match, param_filters=params)
        return queries.matches(obj, with_props(flt))

    assert attendee(ParamFilter("CN"))
    assert attendee(ParamFilter("ROLE"))  # Carla has one
    assert attendee(ParamFilter("ROLE", is_not_defined=True))  # Dan has none
    assert not attendee(ParamFilter("RSVP"))
    assert attendee(ParamFilter("RSVP", is_not_defined=True))
    accepted = ParamFilter(
        "PARTSTAT", text_match=TextMatch("accepted", match_type=MatchType.EQUALS)
    )
    assert attendee(accepted)
    # Parameters and value must hold for the same attendee.
    assert attendee(accepted, text="carla")
    assert not attendee(accepted, text="dan")
    declined_not = ParamFilter("PARTSTAT", text_match=TextMatch("DECLINED", negate=True))
    assert attendee(declined_not, text="carla")
    assert not attendee(declined_not, text="dan")
    # A param text-match on a missing parameter does not match.
    assert not attendee(ParamFilter("RSVP", text_match=TextMatch("x", negate=True)))
    # DTSTART's TZID is a parameter like any other.
    tzid = PropFilter(
        "DTSTART", param_filters=(ParamFilter("TZID", text_match=TextMatch("europe/berlin")),)
    )
    assert queries.matches(obj, with_props(tzid))


SEARCHED = calendar(
    event(
        "DTSTART:20261201T090000Z",
        "SUMMARY:Kaffee\\, Kuchen\\; und Tee",
        "DESCRIPTION:Zeile eins\\nZeile zwei mit einem sehr langen Text der gefaltet wi",
        " rd, damit die Suche ueber die Faltung hinweg geht",
        "LOCATION:Café Ünter den Linden",
        "CATEGORIES:Essen,Trinken",
        'ATTENDEE;CN="Müller, Zoë":mailto:zoe@example.com',
        "X-NOTE:Kuchen",
    )
)
SEARCHES = [
    ("SUMMARY", "kaffee, kuchen; und"),
    ("SUMMARY", "Kaffee\\, Kuchen"),
    ("SUMMARY", "KUCHEN"),
    ("SUMMARY", "Tee"),
    ("SUMMARY", "Kaffee Kuchen"),
    ("DESCRIPTION", "eins\nZeile"),
    ("DESCRIPTION", "gefaltet wird, damit"),
    ("DESCRIPTION", "gefaltet wi rd"),
    ("DESCRIPTION", "Kuchen"),
    ("LOCATION", "café ünter"),
    ("LOCATION", "CAFÉ"),
    ("LOCATION", "cafe"),
    ("CATEGORIES", "trinken"),
    ("CATEGORIES", "Essen,Trinken"),
    ("ATTENDEE", "mailto:zoe@"),
    ("ATTENDEE", "Müller"),
    ("UID", "e1@test"),
    ("X-NOTE", "kuchen"),
]


@pytest.mark.parametrize("collation", list(Collation))
@pytest.mark.parametrize("match_type", list(MatchType))
@pytest.mark.parametrize("negate", [False, True])
def test_text_screen_never_changes_an_answer(
    collation: Collation, match_type: MatchType, negate: bool
) -> None:
    """The screen that answers text searches without parsing agrees with the
    filter evaluated on the parsed object, for tricky text: escapes, folds,
    non-ASCII, list values, parameters that hold the searched text."""
    from gateway.ical.expand import Loaded
    from gateway.ical.filters import comp_matches

    obj = stored(SEARCHED)
    loaded = Loaded(icalendar.Calendar.from_ical(obj.ics), BERLIN)
    queries = engine()
    for name, text in SEARCHES:
        for needle in (text, text.upper(), text[1:], text[:-1]):
            match = TextMatch(needle, collation=collation, negate=negate, match_type=match_type)
            flt = with_props(PropFilter(name, text_match=match))
            assert queries.matches(obj, flt) == comp_matches(loaded, flt), (name, match)


def test_text_search_parses_only_candidates(parses: list[str]) -> None:
    objects = [
        stored(calendar(event("DTSTART:20261201T090000Z", f"SUMMARY:Termin {n}", uid=f"t{n}@test")))
        for n in range(20)
    ]
    queries = engine()

    def search(text: str, **kwargs: Any) -> list[str]:
        flt = with_props(PropFilter("SUMMARY", text_match=TextMatch(text, **kwargs)))
        return [o.uid for o in objects if queries.matches(o, flt)]

    assert search("termin 7") == ["t7@test"]
    assert parses == [objects[7].ics]
    assert search("TERMIN 1", match_type=MatchType.EQUALS) == ["t1@test"]
    assert len(parses) == 1 + 11  # "termin 1" occurs in 1 and 10 to 19
    assert search("Zahnarzt") == []
    assert len(parses) == 12
    # Negated, or folded by i;unicode-casemap: every object has to be read.
    assert len(search("Zahnarzt", negate=True)) == 20
    assert search("TERMIN 5", collation=Collation.UNICODE_CASEMAP) == ["t5@test"]


def test_screened_properties_are_read_as_text() -> None:
    from gateway.ical.filters import SCREENED

    lines = [f"{name}:x" for name in sorted(SCREENED) if name not in ("UID",)]
    parsed = parse(calendar(event(*lines)))
    [vevent] = parsed.walk("VEVENT")
    for name in SCREENED:
        value = vevent[name]
        assert isinstance(value, (str, icalendar.vCategory)), (name, type(value))


def test_prop_filter_time_range() -> None:
    obj = stored(
        calendar(
            event(
                "DTSTART;VALUE=DATE:20261201",
                "LAST-MODIFIED:20261101T120000Z",
                "EXDATE:20261101T090000Z,20261103T090000Z",
            )
        )
    )
    queries = engine()

    def prop_in(name: str, start: datetime | None, end: datetime | None) -> bool:
        flt = PropFilter(name, time_range=TimeRange(start, end))
        return queries.matches(obj, with_props(flt))

    # A DATE-TIME value: start <= value < end.
    assert prop_in("DTSTAMP", utc(2026, 1, 1), utc(2026, 1, 2))
    assert not prop_in("DTSTAMP", utc(2025, 12, 31), utc(2026, 1, 1))
    assert prop_in("LAST-MODIFIED", utc(2026, 11, 1, 12), None)
    assert not prop_in("LAST-MODIFIED", None, utc(2026, 11, 1, 12))
    # A DATE value is its whole day, in the booking's zone (Berlin: 23:00Z before).
    assert prop_in("DTSTART", utc(2026, 11, 30, 23), utc(2026, 11, 30, 23, 30))
    assert not prop_in("DTSTART", utc(2026, 11, 30, 22), utc(2026, 11, 30, 23))
    assert prop_in("DTSTART", utc(2026, 12, 1, 22, 30), utc(2026, 12, 2))
    assert not prop_in("DTSTART", utc(2026, 12, 1, 23), utc(2026, 12, 2))
    # A list value matches if one of its values does.
    assert prop_in("EXDATE", utc(2026, 11, 3), utc(2026, 11, 4))
    assert not prop_in("EXDATE", utc(2026, 11, 2), utc(2026, 11, 3))
    # A missing property never is in a range.
    assert not prop_in("COMPLETED", None, utc(2030, 1, 1))


# -- time ranges on VEVENT (RFC 4791 9.9) ---------------------------------------------


def both_paths(obj: CalendarObject, start: datetime | None, end: datetime | None) -> bool:
    """The plain filter's answer, checked against the parsing path."""
    queries = engine()
    fast = queries.matches(obj, in_range(start, end))
    slow = queries.matches(obj, in_range_slow(start, end))
    assert fast == slow, (obj.ics, start, end)
    return fast


def test_event_with_dtend() -> None:
    # (start < DTEND AND end > DTSTART)
    obj = stored(calendar(event("DTSTART:20261201T090000Z", "DTEND:20261201T100000Z")))
    assert both_paths(obj, utc(2026, 12, 1, 9, 59), utc(2026, 12, 1, 11))
    assert not both_paths(obj, utc(2026, 12, 1, 10), utc(2026, 12, 1, 11))
    assert both_paths(obj, utc(2026, 12, 1, 8), utc(2026, 12, 1, 9, 0, 1))
    assert not both_paths(obj, utc(2026, 12, 1, 8), utc(2026, 12, 1, 9))
    assert both_paths(obj, utc(2026, 12, 1, 9, 15), utc(2026, 12, 1, 9, 30))  # inside
    assert both_paths(obj, None, utc(2026, 12, 1, 9, 30))
    assert both_paths(obj, utc(2026, 12, 1, 9, 30), None)
    assert not both_paths(obj, utc(2026, 12, 1, 10), None)
    assert not both_paths(obj, None, utc(2026, 12, 1, 9))
    # DTEND equal to DTSTART (RFC 5545 3.6.1 wants it later): the 9.9 formula
    # would never match; it counts as an instant, as the store indexes it.
    zero = stored(calendar(event("DTSTART:20261201T090000Z", "DTEND:20261201T090000Z")))
    assert both_paths(zero, utc(2026, 12, 1, 9), utc(2026, 12, 1, 10))
    assert not both_paths(zero, utc(2026, 12, 1, 8), utc(2026, 12, 1, 9))


def test_event_with_duration() -> None:
    # (start < DTSTART+DURATION AND end > DTSTART)
    obj = stored(calendar(event("DTSTART:20261201T090000Z", "DURATION:PT90M")))
    assert both_paths(obj, utc(2026, 12, 1, 10, 29), utc(2026, 12, 1, 11))
    assert not both_paths(obj, utc(2026, 12, 1, 10, 30), utc(2026, 12, 1, 11))
    # A zero DURATION is an instant: (start <= DTSTART AND end > DTSTART).
    instant = stored(calendar(event("DTSTART:20261201T090000Z", "DURATION:PT0S")))
    assert both_paths(instant, utc(2026, 12, 1, 9), utc(2026, 12, 1, 9, 1))
    assert not both_paths(instant, utc(2026, 12, 1, 8), utc(2026, 12, 1, 9))
    assert not both_paths(instant, utc(2026, 12, 1, 9, 0, 1), utc(2026, 12, 1, 10))


def test_event_without_end() -> None:
    # A DATE-TIME DTSTART alone is an instant: (start <= DTSTART AND end > DTSTART).
    instant = stored(calendar(event("DTSTART:20261201T090000Z")))
    assert both_paths(instant, utc(2026, 12, 1, 9), utc(2026, 12, 1, 9, 0, 1))
    assert both_paths(instant, utc(2026, 12, 1, 8), utc(2026, 12, 1, 9, 0, 1))
    assert not both_paths(instant, utc(2026, 12, 1, 8), utc(2026, 12, 1, 9))
    assert not both_paths(instant, utc(2026, 12, 1, 9, 0, 1), utc(2026, 12, 1, 10))
    assert both_paths(instant, utc(2026, 12, 1, 9), None)
    # A DATE DTSTART alone lasts the day: (start < DTSTART+P1D AND end > DTSTART),
    # midnight to midnight in the booking's zone (UTC here).
    day = stored(calendar(event("DTSTART;VALUE=DATE:20261201")), "UTC")
    assert both_paths(day, utc(2026, 12, 1, 23, 59), utc(2026, 12, 2, 1))
    assert not both_paths(day, utc(2026, 12, 2), utc(2026, 12, 3))
    assert both_paths(day, utc(2026, 11, 30), utc(2026, 12, 1, 0, 0, 1))
    assert not both_paths(day, utc(2026, 11, 30), utc(2026, 12, 1))


def test_all_day_event_in_a_zone_west_of_utc() -> None:
    # New York is UTC-5 in December: the day is 05:00Z to 05:00Z.
    obj = stored(
        calendar(event("DTSTART;VALUE=DATE:20261201", "DTEND;VALUE=DATE:20261203")),
        "America/New_York",
    )
    assert obj.span == TimeSpan(utc(2026, 12, 1, 5), utc(2026, 12, 3, 5))
    assert not both_paths(obj, utc(2026, 12, 1), utc(2026, 12, 1, 5))
    assert both_paths(obj, utc(2026, 12, 1), utc(2026, 12, 1, 5, 0, 1))
    assert both_paths(obj, utc(2026, 12, 3, 4, 59), utc(2026, 12, 4))
    assert not both_paths(obj, utc(2026, 12, 3, 5), utc(2026, 12, 4))


def test_floating_times_are_read_in_the_booking_zone() -> None:
    obj = stored(calendar(event("DTSTART:20260701T090000", "DTEND:20260701T100000")))
    # Berlin in summer is UTC+2: 07:00Z to 08:00Z.
    assert both_paths(obj, utc(2026, 7, 1, 7, 59), utc(2026, 7, 1, 9))
    assert not both_paths(obj, utc(2026, 7, 1, 8), utc(2026, 7, 1, 9))
    assert not both_paths(obj, utc(2026, 7, 1, 6), utc(2026, 7, 1, 7))


SHAPES = [
    ("DTSTART:20261201T090000Z", "DTEND:20261201T100000Z"),
    ("DTSTART;TZID=Europe/Berlin:20261201T090000", "DTEND;TZID=Europe/Berlin:20261201T100000"),
    ("DTSTART;TZID=America/New_York:20261201T233000", "DURATION:PT2H"),
    ("DTSTART:20261201T090000", "DTEND:20261201T100000"),  # floating
    ("DTSTART:20261201T090000Z",),  # instant
    ("DTSTART:20261201T090000Z", "DTEND:20261201T090000Z"),  # DTEND = DTSTART
    ("DTSTART:20261201T090000Z", "DURATION:PT0S"),
    ("DTSTART;VALUE=DATE:20261201",),
    ("DTSTART;VALUE=DATE:20261201", "DTEND;VALUE=DATE:20261204"),
    ("DTSTART;VALUE=DATE:20261201", "DURATION:P2D"),
    # Across the end of summer time in Berlin (25 October 2026).
    ("DTSTART;TZID=Europe/Berlin:20261024T220000", "DTEND;TZID=Europe/Berlin:20261025T040000"),
    ("DTSTART;VALUE=DATE:20261025", "DTEND;VALUE=DATE:20261026"),
    ("DTSTART;TZID=Europe/Berlin:20261024T120000", "DURATION:P1D"),
]


def _probe_times(obj: CalendarObject) -> list[datetime | None]:
    """Times around the object's span edges, to build ranges from."""
    points: set[datetime] = set()
    for edge in (obj.span.start, obj.span.end):
        for delta in (-3600, -1, 0, 1, 3600):
            points.add(edge + timedelta(seconds=delta))
    return [None, *sorted(points)]


@pytest.mark.parametrize("zone", ["Europe/Berlin", "America/New_York", "Asia/Kolkata", "UTC"])
@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: " ".join(s))
def test_fast_path_agrees_with_parsing(
    shape: tuple[str, ...], zone: str, parses: list[str]
) -> None:
    obj = stored(calendar(event(*shape)), zone)
    assert not obj.booking.recurring
    fast, slow = engine(), engine()
    checked = 0
    points = _probe_times(obj)
    for start, end in itertools.product(points, points):
        if start is not None and end is not None and end <= start:
            continue
        if start is None and end is None:
            continue
        before = len(parses)
        answer = fast.matches(obj, in_range(start, end))
        assert len(parses) == before, "the plain filter must not parse a single event"
        assert answer == slow.matches(obj, in_range_slow(start, end)), (shape, zone, start, end)
        checked += 1
    assert checked >= 20
    assert len(parses) == 1  # the slow engine parsed once and kept it


def test_repeated_queries_parse_once(parses: list[str]) -> None:
    obj = stored(calendar(BERLIN_HOUR))
    queries = engine()
    flt = with_props(PropFilter("SUMMARY", text_match=TextMatch("hair")))
    for _ in range(3):
        assert queries.matches(obj, flt)
    assert queries.calendar_data(
        obj, DataRequest(expand=TimeRange(utc(2026, 1, 1), utc(2027, 1, 1)))
    )
    assert parses == [obj.ics]
    # A changed object is a new ETag, parsed again.
    changed = replace(obj, ics=obj.ics.replace("Salon", "Studio"))
    assert queries.matches(changed, flt)
    assert len(parses) == 2


def test_open_start_time_range_for_dates_in_the_past() -> None:
    obj = stored(calendar(event("DTSTART:00010103T090000Z", "DTEND:00010103T100000Z")), "UTC")
    assert both_paths(obj, None, utc(2026, 1, 1))
    assert not both_paths(obj, utc(2026, 1, 1), None)


# -- recurrences ---------------------------------------------------------------------

DAILY = calendar(
    event(
        "DTSTART;TZID=Europe/Berlin:20261201T090000",
        "DTEND;TZID=Europe/Berlin:20261201T100000",
        "RRULE:FREQ=DAILY;COUNT=10",
        "EXDATE;TZID=Europe/Berlin:20261203T090000",
        "SUMMARY:Daily",
        "STATUS:CONFIRMED",
        uid="daily@test",
    ),
    # The 5th moves out of its day, to 20 December.
    event(
        "RECURRENCE-ID;TZID=Europe/Berlin:20261205T090000",
        "DTSTART;TZID=Europe/Berlin:20261220T140000",
        "DTEND;TZID=Europe/Berlin:20261220T150000",
        "SUMMARY:Moved",
        "STATUS:TENTATIVE",
        uid="daily@test",
    ),
    # The 7th keeps its time but is cancelled.
    event(
        "RECURRENCE-ID;TZID=Europe/Berlin:20261207T090000",
        "DTSTART;TZID=Europe/Berlin:20261207T090000",
        "DTEND;TZID=Europe/Berlin:20261207T100000",
        "SUMMARY:Cancelled one",
        "STATUS:CANCELLED",
        uid="daily@test",
    ),
)


def day_range(day: int, month: int = 12) -> CompFilter:
    return in_range(utc(2026, month, day), utc(2026, month, day + 1))


def test_recurring_any_instance_matches() -> None:
    obj = stored(DAILY)
    assert obj.booking.recurring
    queries = engine()
    assert queries.matches(obj, day_range(1))
    assert queries.matches(obj, day_range(2))
    assert not queries.matches(obj, day_range(3))  # EXDATE
    assert queries.matches(obj, day_range(4))
    assert not queries.matches(obj, day_range(5))  # moved away
    assert queries.matches(obj, day_range(20))  # moved here
    assert queries.matches(obj, day_range(7))  # cancelled instances still exist
    assert queries.matches(obj, day_range(10))
    assert not queries.matches(obj, day_range(11))  # COUNT=10 ended
    # The first instance is 09:00 in Berlin, 08:00Z.
    assert not queries.matches(obj, in_range(utc(2026, 12, 1, 7), utc(2026, 12, 1, 8)))
    assert queries.matches(obj, in_range(utc(2026, 12, 1, 7), utc(2026, 12, 1, 8, 0, 1)))
    assert not queries.matches(obj, in_range(None, utc(2026, 12, 1, 8)))
    assert queries.matches(obj, in_range(utc(2026, 12, 15), None))  # the moved one
    assert not queries.matches(obj, in_range(utc(2026, 12, 21), None))


def test_a_recurring_object_is_expanded_once_per_filter(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Every client polls the same weeks: an object's answer to a filter is
    kept (by its text, zone and the filter), and an edited object, another
    zone or another filter is answered afresh."""
    expansions: list[CompFilter] = []

    def counting(loaded: Any, query: CompFilter) -> bool:
        expansions.append(query)
        return comp_matches(loaded, query)

    monkeypatch.setattr(ical_query, "comp_matches", counting)
    queries = engine()
    obj = stored(DAILY)
    shorter = stored(DAILY.replace("COUNT=10", "COUNT=2"))
    for _ in range(3):
        assert queries.matches(obj, day_range(4))
        assert not queries.matches(obj, day_range(3))  # EXDATE
        assert not queries.matches(shorter, day_range(4))  # the edited series ended
    assert expansions == [day_range(4), day_range(3), day_range(4)]
    # 09:00 floating is 08:00Z in Berlin and 09:00Z in UTC.
    floating = calendar(
        event("DTSTART:20261201T090000", "DTEND:20261201T093000", "RRULE:FREQ=DAILY;COUNT=3")
    )
    at_eight = in_range(utc(2026, 12, 2, 8), utc(2026, 12, 2, 8, 30))
    for _ in range(2):
        assert queries.matches(stored(floating, "Europe/Berlin"), at_eight)
        assert not queries.matches(stored(floating, "UTC"), at_eight)
    # So for the objects a calendar-query reads (``QueriedObject``).
    match = engine().matcher(at_eight)
    for _ in range(2):
        assert match(QueriedObject.of(stored(floating, "Europe/Berlin")))
        assert not match(QueriedObject.of(stored(floating, "UTC")))


def test_filters_apply_to_the_instance_they_come_from() -> None:
    obj = stored(DAILY)
    queries = engine()

    def summary_in(text: str, day: int) -> bool:
        flt = vcal(
            CompFilter(
                "VEVENT",
                time_range=TimeRange(utc(2026, 12, day), utc(2026, 12, day + 1)),
                prop_filters=(
                    PropFilter("SUMMARY", text_match=TextMatch(text, match_type=MatchType.EQUALS)),
                ),
            )
        )
        return queries.matches(obj, flt)

    assert summary_in("Moved", 20)
    assert not summary_in("Daily", 20)
    assert summary_in("Daily", 4)
    assert not summary_in("Moved", 4)
    assert summary_in("Cancelled one", 7)
    assert not summary_in("Daily", 7)
    # Without a time range, any component of the set counts.
    assert queries.matches(obj, with_props(PropFilter("STATUS", text_match=TextMatch("CANCELLED"))))
    assert queries.matches(obj, with_props(PropFilter("RRULE")))
    assert queries.matches(obj, with_props(PropFilter("RECURRENCE-ID", is_not_defined=True)))


def test_unbounded_rrule_does_not_hang() -> None:
    weekly = stored(
        calendar(
            event(
                "DTSTART;TZID=Europe/Berlin:20260105T090000",
                "DTEND;TZID=Europe/Berlin:20260105T100000",
                "RRULE:FREQ=WEEKLY;BYDAY=MO,TH",
                uid="weekly@test",
            )
        )
    )
    assert weekly.span.end == FAR_FUTURE
    queries = engine()
    assert queries.matches(weekly, in_range(utc(2300, 5, 1), None))
    # 4 May 2300 is a Friday, the 7th a Monday (Berlin summer time: 07:00Z).
    assert not queries.matches(weekly, in_range(utc(2300, 5, 4), utc(2300, 5, 7)))
    assert queries.matches(weekly, in_range(utc(2300, 5, 7, 7, 59), utc(2300, 5, 7, 8)))
    assert queries.matches(weekly, in_range(None, utc(2026, 1, 5, 8, 0, 1)))
    assert not queries.matches(weekly, in_range(None, utc(2026, 1, 5, 8)))
    # An open-ended expansion past the instance cap is refused, not cut short
    # (a shortened answer would tell the client the series ends there).
    capped = ICalQueryEngine(clock=lambda: NOW, limits=RecurrenceLimits(max_instances=50))
    open_ended = DataRequest(expand=TimeRange(utc(2026, 1, 1), None))
    with pytest.raises(ExpansionLimit, match="more than 50 instances"):
        capped.calendar_data(weekly, open_ended)
    half_year = DataRequest(expand=TimeRange(utc(2026, 1, 1), utc(2026, 6, 26)))
    found = instances_of(capped.calendar_data(weekly, half_year))
    assert len(found) == 50
    assert found[-1].decoded("DTSTART") == utc(2026, 6, 25, 7)


def test_far_windows_of_frequent_rules_are_expanded_from_near_the_window() -> None:
    """dateutil walks a rule from its start: a minutely rule asked about the
    year 2900 would take hours. The rule is restarted near the window
    (``gateway.ical.walk.near``), so the answer is exact and quick."""
    # Refused at PUT now (limits.max_sub_daily_occurrences): stored by an
    # older version.
    minutely = legacy_object(
        calendar(
            event(
                "DTSTART:20260105T090000Z",
                "DURATION:PT10M",
                "RRULE:FREQ=MINUTELY;INTERVAL=30",
                uid="minutely@test",
            )
        ),
        uid="minutely@test",
        start=utc(2026, 1, 5, 9),
        end=utc(2026, 1, 5, 9, 10),
    )
    queries = engine()
    assert queries.matches(minutely, in_range(utc(2900, 5, 1), None))
    assert queries.matches(minutely, in_range(utc(2900, 5, 1, 10, 5), utc(2900, 5, 1, 10, 6)))
    assert not queries.matches(minutely, in_range(utc(2900, 5, 1, 10, 10), utc(2900, 5, 1, 10, 30)))
    # Near its start it is expanded as usual.
    assert queries.matches(minutely, in_range(utc(2026, 2, 1, 10, 35), utc(2026, 2, 1, 10, 45)))
    assert not queries.matches(minutely, in_range(utc(2026, 2, 1, 10, 10), utc(2026, 2, 1, 10, 30)))


def test_recurring_all_day_in_a_zone() -> None:
    obj = stored(
        calendar(
            event(
                "DTSTART;VALUE=DATE:20261201",
                "DTEND;VALUE=DATE:20261202",
                "RRULE:FREQ=WEEKLY",
                uid="weekly-day@test",
            )
        ),
        "America/New_York",
    )
    queries = engine()
    # 8 December, New York day: 05:00Z to 05:00Z the next day.
    assert queries.matches(obj, in_range(utc(2026, 12, 8, 5), utc(2026, 12, 8, 5, 1)))
    assert queries.matches(obj, in_range(utc(2026, 12, 9, 4, 59), utc(2026, 12, 9, 5)))
    assert not queries.matches(obj, in_range(utc(2026, 12, 8), utc(2026, 12, 8, 5)))
    assert not queries.matches(obj, in_range(utc(2026, 12, 9, 5), utc(2026, 12, 10)))


def test_rdate_adds_instances() -> None:
    obj = stored(
        calendar(
            event(
                "DTSTART:20261201T090000Z",
                "DTEND:20261201T100000Z",
                "RDATE:20270301T090000Z",
            )
        )
    )
    assert obj.booking.recurring
    queries = engine()
    assert queries.matches(obj, in_range(utc(2027, 3, 1), utc(2027, 3, 2)))
    assert not queries.matches(obj, in_range(utc(2027, 1, 1), utc(2027, 3, 1)))


# -- time ranges on other components (RFC 4791 9.9) ------------------------------------


@pytest.mark.parametrize(
    ("props", "start", "end", "expected"),
    [
        # DTSTART + DURATION: (start <= DTSTART+DURATION) AND
        # ((end > DTSTART) OR (end >= DTSTART+DURATION))
        (("DTSTART:20261201T090000Z", "DURATION:PT1H"), utc(2026, 12, 1, 10), None, True),
        (("DTSTART:20261201T090000Z", "DURATION:PT1H"), utc(2026, 12, 1, 10, 0, 1), None, False),
        (("DTSTART:20261201T090000Z", "DURATION:PT1H"), None, utc(2026, 12, 1, 9), False),
        # DTSTART + DUE: ((start < DUE) OR (start <= DTSTART)) AND
        # ((end > DTSTART) OR (end >= DUE))
        (("DTSTART:20261201T090000Z", "DUE:20261201T100000Z"), utc(2026, 12, 1, 9, 59), None, True),
        (("DTSTART:20261201T090000Z", "DUE:20261201T100000Z"), utc(2026, 12, 1, 10), None, False),
        (
            ("DTSTART:20261201T090000Z", "DUE:20261201T100000Z"),
            None,
            utc(2026, 12, 1, 9, 0, 1),
            True,
        ),
        # DTSTART only: (start <= DTSTART) AND (end > DTSTART)
        (("DTSTART:20261201T090000Z",), utc(2026, 12, 1, 9), utc(2026, 12, 1, 10), True),
        (("DTSTART:20261201T090000Z",), utc(2026, 12, 1, 8), utc(2026, 12, 1, 9), False),
        # DUE only: (start < DUE) AND (end >= DUE)
        (("DUE:20261201T100000Z",), utc(2026, 12, 1, 9), utc(2026, 12, 1, 10), True),
        (("DUE:20261201T100000Z",), utc(2026, 12, 1, 10), utc(2026, 12, 1, 11), False),
        # COMPLETED and CREATED
        (
            ("CREATED:20261101T000000Z", "COMPLETED:20261201T000000Z"),
            utc(2026, 10, 1),
            utc(2026, 10, 2),
            False,
        ),
        (
            ("CREATED:20261101T000000Z", "COMPLETED:20261201T000000Z"),
            utc(2026, 11, 15),
            utc(2026, 11, 16),
            True,
        ),
        # COMPLETED only: (start <= COMPLETED) AND (end >= COMPLETED)
        (("COMPLETED:20261201T000000Z",), utc(2026, 11, 1), utc(2026, 12, 1), True),
        (("COMPLETED:20261201T000000Z",), utc(2026, 12, 2), None, False),
        # CREATED only: (end > CREATED)
        (("CREATED:20261101T000000Z",), utc(2030, 1, 1), None, True),
        (("CREATED:20261101T000000Z",), None, utc(2026, 11, 1), False),
        # Nothing: always
        ((), utc(2030, 1, 1), utc(2030, 1, 2), True),
    ],
)
def test_vtodo_time_ranges(
    props: tuple[str, ...], start: datetime | None, end: datetime | None, expected: bool
) -> None:
    obj = unvalidated(calendar(event(*props, name="VTODO")))
    assert engine().matches(obj, in_range(start, end, "VTODO")) is expected


def test_vjournal_time_ranges() -> None:
    timed = unvalidated(calendar(event("DTSTART:20261201T090000Z", name="VJOURNAL")))
    day = unvalidated(calendar(event("DTSTART;VALUE=DATE:20261201", name="VJOURNAL")), "UTC")
    undated = unvalidated(calendar(event("SUMMARY:x", name="VJOURNAL")))
    queries = engine()
    assert queries.matches(timed, in_range(utc(2026, 12, 1, 9), utc(2026, 12, 1, 10), "VJOURNAL"))
    assert not queries.matches(
        timed, in_range(utc(2026, 12, 1, 8), utc(2026, 12, 1, 9), "VJOURNAL")
    )
    assert queries.matches(day, in_range(utc(2026, 12, 1, 23), utc(2026, 12, 2), "VJOURNAL"))
    assert not queries.matches(day, in_range(utc(2026, 12, 2), utc(2026, 12, 3), "VJOURNAL"))
    assert not queries.matches(undated, in_range(None, utc(2100, 1, 1), "VJOURNAL"))


def test_recurring_vtodo() -> None:
    obj = unvalidated(
        calendar(
            event(
                "DTSTART:20261201T090000Z",
                "DUE:20261201T100000Z",
                "RRULE:FREQ=WEEKLY;COUNT=3",
                name="VTODO",
            )
        ),
        recurring=True,
    )
    queries = engine()
    assert queries.matches(
        obj, in_range(utc(2026, 12, 15, 9, 30), utc(2026, 12, 15, 9, 31), "VTODO")
    )
    assert not queries.matches(obj, in_range(utc(2026, 12, 22), utc(2026, 12, 23), "VTODO"))


def alarm_filter(start: datetime | None, end: datetime | None) -> CompFilter:
    return vcal(
        CompFilter("VEVENT", comp_filters=(CompFilter("VALARM", time_range=TimeRange(start, end)),))
    )


def with_alarm(*alarm_props: str, rrule: str | None = None) -> CalendarObject:
    alarm = "\n".join(
        ["BEGIN:VALARM", "ACTION:DISPLAY", "DESCRIPTION:x", *alarm_props, "END:VALARM"]
    )
    props = ["DTSTART:20261201T090000Z", "DTEND:20261201T100000Z"]
    if rrule:
        props.append(rrule)
    return stored(calendar(event(*props, alarm)))


def test_valarm_time_range() -> None:
    queries = engine()
    before = with_alarm("TRIGGER:-PT15M")  # 08:45Z
    assert queries.matches(before, alarm_filter(utc(2026, 12, 1, 8, 45), utc(2026, 12, 1, 8, 46)))
    assert not queries.matches(before, alarm_filter(utc(2026, 12, 1, 8, 46), utc(2026, 12, 1, 9)))
    assert not queries.matches(before, alarm_filter(utc(2026, 12, 1, 8), utc(2026, 12, 1, 8, 45)))
    after_end = with_alarm("TRIGGER;RELATED=END:PT5M")  # 10:05Z
    assert queries.matches(
        after_end, alarm_filter(utc(2026, 12, 1, 10, 5), utc(2026, 12, 1, 10, 6))
    )
    assert not queries.matches(
        after_end, alarm_filter(utc(2026, 12, 1, 9), utc(2026, 12, 1, 10, 5))
    )
    absolute = with_alarm("TRIGGER;VALUE=DATE-TIME:20261130T180000Z")
    assert queries.matches(absolute, alarm_filter(utc(2026, 11, 30, 18), utc(2026, 11, 30, 19)))
    assert not queries.matches(absolute, alarm_filter(utc(2026, 12, 1), None))
    # REPEAT: 08:45, 08:50, 08:55.
    repeated = with_alarm("TRIGGER:-PT15M", "REPEAT:2", "DURATION:PT5M")
    assert queries.matches(repeated, alarm_filter(utc(2026, 12, 1, 8, 55), utc(2026, 12, 1, 8, 56)))
    assert not queries.matches(repeated, alarm_filter(utc(2026, 12, 1, 8, 56), utc(2026, 12, 1, 9)))
    # A recurring event's alarm fires before every instance.
    daily = with_alarm("TRIGGER:-PT15M", rrule="RRULE:FREQ=DAILY")
    assert queries.matches(daily, alarm_filter(utc(2027, 6, 3, 8, 45), utc(2027, 6, 3, 8, 46)))
    assert not queries.matches(daily, alarm_filter(utc(2027, 6, 3, 8, 46), utc(2027, 6, 3, 9)))


# -- calendar-data (RFC 4791 9.6) ------------------------------------------------------


def test_empty_request_returns_the_stored_text() -> None:
    obj = stored(DAILY)
    assert engine().calendar_data(obj, DataRequest()) is obj.ics


def instances_of(text: str) -> list[icalendar.Event]:
    return [e for e in parse(text).walk("VEVENT") if isinstance(e, icalendar.Event)]


def assert_expanded_form(text: str) -> None:
    """RFC 4791 9.6.5: no recurrence properties, no VTIMEZONE, no TZID."""
    assert_wire_format(text)
    for name in ("RRULE", "RDATE", "EXDATE", "EXRULE", "VTIMEZONE", "TZID="):
        assert name not in text, name
    calendar = parse(text)
    assert str(calendar["VERSION"]) == "2.0"
    assert str(calendar["PRODID"]) == "-//test//test//EN"
    for component in calendar.walk("VEVENT"):
        for name in ("DTSTART", "DTEND", "RECURRENCE-ID"):
            if name in component:
                value = component.decoded(name)
                if isinstance(value, datetime):
                    assert value.utcoffset() == timedelta(0), (name, value)
    parse_vobject(text)  # and vobject reads it


def test_expand_recurring() -> None:
    obj = stored(DAILY)
    text = engine().calendar_data(
        obj, DataRequest(expand=TimeRange(utc(2026, 12, 2), utc(2026, 12, 21)))
    )
    assert_expanded_form(text)
    found = instances_of(text)
    starts = [e.decoded("DTSTART") for e in found]
    # Berlin is UTC+1 in December: 09:00 local is 08:00Z. The 3rd is excluded,
    # the 5th moved to the 20th (14:00 local), the 7th is there, cancelled.
    expected = [utc(2026, 12, d, 8) for d in (2, 4, 6, 7, 8, 9, 10)] + [utc(2026, 12, 20, 13)]
    assert starts == expected
    assert [e.decoded("RECURRENCE-ID") for e in found] == [
        utc(2026, 12, d, 8) for d in (2, 4, 6, 7, 8, 9, 10, 5)
    ]
    assert [e.decoded("DTEND") - e.decoded("DTSTART") for e in found] == [timedelta(hours=1)] * 8
    moved = found[-1]
    assert str(moved["SUMMARY"]) == "Moved"
    assert str(moved["STATUS"]) == "TENTATIVE"
    assert str(found[3]["STATUS"]) == "CANCELLED"
    assert {str(e["UID"]) for e in found} == {"daily@test"}
    assert "DTEND:20261202T090000Z" in text
    assert "RECURRENCE-ID:20261202T080000Z" in text
    other = parse_vobject(text)
    assert len(other.vevent_list) == 8
    assert other.vevent_list[0].dtstart.value == utc(2026, 12, 2, 8)


def test_expand_unbounded_series_in_a_window() -> None:
    obj = stored(
        calendar(
            event(
                "DTSTART;TZID=America/New_York:20260301T090000",
                "DURATION:PT30M",
                "RRULE:FREQ=WEEKLY;BYDAY=MO,WE",
                uid="open@test",
            )
        ),
        "America/New_York",
    )
    text = engine().calendar_data(
        obj, DataRequest(expand=TimeRange(utc(2031, 3, 1), utc(2031, 3, 15)))
    )
    assert_expanded_form(text)
    starts = [e.decoded("DTSTART") for e in instances_of(text)]
    # Mondays and Wednesdays; New York switches to summer time on 9 March 2031.
    assert starts == [
        utc(2031, 3, 3, 14),
        utc(2031, 3, 5, 14),
        utc(2031, 3, 10, 13),
        utc(2031, 3, 12, 13),
    ]


def test_expand_single_event() -> None:
    obj = stored(calendar(BERLIN_HOUR))
    queries = engine()
    text = queries.calendar_data(obj, DataRequest(expand=TimeRange(utc(2026, 12, 1), None)))
    assert_expanded_form(text)
    [single] = instances_of(text)
    assert single.decoded("DTSTART") == utc(2026, 12, 1, 8)
    assert single.decoded("DTEND") == utc(2026, 12, 1, 9)
    assert "RECURRENCE-ID" not in single  # not a recurrence instance
    assert str(single["SUMMARY"]) == "Haircut, short"
    assert len(single["ATTENDEE"]) == 2
    # Outside the range: only instances in the range come back (9.6.5).
    outside = queries.calendar_data(obj, DataRequest(expand=TimeRange(utc(2027, 1, 1), None)))
    assert_expanded_form(outside)
    assert instances_of(outside) == []


def test_expand_keeps_dates_and_converts_floating_times() -> None:
    days = stored(
        calendar(
            event(
                "DTSTART;VALUE=DATE:20261201",
                "DTEND;VALUE=DATE:20261202",
                "RRULE:FREQ=DAILY;COUNT=5",
                uid="days@test",
            )
        )
    )
    text = engine().calendar_data(
        days, DataRequest(expand=TimeRange(utc(2026, 12, 2), utc(2026, 12, 4)))
    )
    assert_expanded_form(text)
    found = instances_of(text)
    # The Berlin days of the 2nd and 3rd, and the 4th (it starts 23:00Z on the 3rd).
    assert [e.decoded("DTSTART") for e in found] == [date(2026, 12, d) for d in (2, 3, 4)]
    assert [e.decoded("RECURRENCE-ID") for e in found] == [date(2026, 12, d) for d in (2, 3, 4)]
    assert "DTSTART;VALUE=DATE:20261202" in text
    floating = stored(
        calendar(event("DTSTART:20260701T090000", "DTEND:20260701T100000", "RRULE:FREQ=DAILY"))
    )
    text = engine().calendar_data(
        floating, DataRequest(expand=TimeRange(utc(2026, 7, 2), utc(2026, 7, 3)))
    )
    assert_expanded_form(text)
    [instance] = instances_of(text)
    assert instance.decoded("DTSTART") == utc(2026, 7, 2, 7)
    assert "DTSTART:20260702T070000Z" in text


def test_limit_recurrence_set() -> None:
    obj = stored(
        calendar(
            "BEGIN:VTIMEZONE\nTZID:Europe/Berlin\nBEGIN:STANDARD\nDTSTART:19701025T030000\n"
            "TZOFFSETFROM:+0200\nTZOFFSETTO:+0100\nRRULE:FREQ=YEARLY;BYMONTH=10;BYDAY=-1SU\n"
            "END:STANDARD\nBEGIN:DAYLIGHT\nDTSTART:19700329T020000\nTZOFFSETFROM:+0100\n"
            "TZOFFSETTO:+0200\nRRULE:FREQ=YEARLY;BYMONTH=3;BYDAY=-1SU\nEND:DAYLIGHT\n"
            "END:VTIMEZONE",
            *DAILY.split("\r\n")[3:-2],
        )
    )
    queries = engine()

    def kept(start: datetime, end: datetime) -> list[str]:
        text = queries.calendar_data(obj, DataRequest(limit_recurrence_set=TimeRange(start, end)))
        assert_wire_format(text)
        parse_vobject(text)
        calendar_ = parse(text)
        assert [str(tz["TZID"]) for tz in calendar_.walk("VTIMEZONE")] == ["Europe/Berlin"]
        assert "RRULE:FREQ=DAILY;COUNT=10" in text
        assert "EXDATE;TZID=Europe/Berlin:20261203T090000" in text
        return [str(e["SUMMARY"]) for e in instances_of(text)]

    # The master always; the override only where it or the instance it replaces is.
    assert kept(utc(2026, 12, 1), utc(2026, 12, 3)) == ["Daily"]
    assert kept(utc(2026, 12, 20), utc(2026, 12, 21)) == ["Daily", "Moved"]
    assert kept(utc(2026, 12, 5), utc(2026, 12, 6)) == ["Daily", "Moved"]
    assert kept(utc(2026, 12, 7), utc(2026, 12, 8)) == ["Daily", "Cancelled one"]
    assert kept(utc(2026, 12, 1), utc(2026, 12, 31)) == ["Daily", "Moved", "Cancelled one"]
    # A single event is returned as stored.
    single = stored(calendar(BERLIN_HOUR))
    request = DataRequest(limit_recurrence_set=TimeRange(utc(2030, 1, 1), None))
    assert queries.calendar_data(single, request) is single.ics


# -- free-busy (RFC 4791 7.10) --------------------------------------------------------


def fb_object(start: str, end: str, *extra: str, uid: str) -> CalendarObject:
    return stored(calendar(event(f"DTSTART:{start}", f"DTEND:{end}", *extra, uid=uid)))


def busy_lines(text: str) -> list[tuple[str, datetime, datetime]]:
    calendar_ = parse(text)
    [freebusy] = calendar_.walk("VFREEBUSY")
    found = []
    lines = freebusy.get("FREEBUSY", [])
    for prop in lines if isinstance(lines, list) else [lines]:
        start, end = prop.dt
        found.append((str(prop.params["FBTYPE"]), start, end))
    return found


def test_freebusy_merges_clips_and_types() -> None:
    objects = [
        # 09:00-10:00 and 09:30-11:00 merge; 11:00-11:30 touches and joins.
        fb_object("20261201T090000Z", "20261201T100000Z", uid="a"),
        fb_object("20261201T093000Z", "20261201T110000Z", uid="b"),
        fb_object("20261201T110000Z", "20261201T113000Z", uid="c"),
        # Tentative 13:00-15:00, partly under a confirmed 14:00-14:30.
        fb_object("20261201T130000Z", "20261201T150000Z", "STATUS:TENTATIVE", uid="d"),
        fb_object("20261201T140000Z", "20261201T143000Z", uid="e"),
        # Cancelled and transparent ones are free time.
        fb_object("20261201T160000Z", "20261201T170000Z", "STATUS:CANCELLED", uid="f"),
        fb_object("20261201T170000Z", "20261201T180000Z", "TRANSP:TRANSPARENT", uid="g"),
        # Sticks out of the window at both ends.
        fb_object("20261130T200000Z", "20261201T080000Z", uid="h"),
        fb_object("20261201T230000Z", "20261202T090000Z", uid="i"),
        # Instants block nothing.
        stored(calendar(event("DTSTART:20261201T200000Z", uid="j"))),
    ]
    window = TimeSpan(utc(2026, 12, 1), utc(2026, 12, 2))
    text = engine().freebusy(objects, window)
    assert_wire_format(text)
    assert busy_lines(text) == [
        ("BUSY", utc(2026, 12, 1), utc(2026, 12, 1, 8)),
        ("BUSY", utc(2026, 12, 1, 9), utc(2026, 12, 1, 11, 30)),
        ("BUSY-TENTATIVE", utc(2026, 12, 1, 13), utc(2026, 12, 1, 14)),
        ("BUSY", utc(2026, 12, 1, 14), utc(2026, 12, 1, 14, 30)),
        ("BUSY-TENTATIVE", utc(2026, 12, 1, 14, 30), utc(2026, 12, 1, 15)),
        ("BUSY", utc(2026, 12, 1, 23), utc(2026, 12, 2)),
    ]
    calendar_ = parse(text)
    assert str(calendar_["PRODID"]) == PRODID
    assert str(calendar_["VERSION"]) == "2.0"
    [freebusy] = calendar_.walk("VFREEBUSY")
    assert freebusy.decoded("DTSTART") == utc(2026, 12, 1)
    assert freebusy.decoded("DTEND") == utc(2026, 12, 2)
    assert freebusy.decoded("DTSTAMP") == NOW
    assert "UID" in freebusy
    assert "FREEBUSY;FBTYPE=BUSY:20261201T090000Z/20261201T113000Z" in text
    other = parse_vobject(text)
    assert len(other.vfreebusy.contents["freebusy"]) == 6


def test_freebusy_of_a_recurring_event() -> None:
    obj = stored(DAILY)
    text = engine().freebusy([obj], TimeSpan(utc(2026, 12, 4), utc(2026, 12, 21)))
    parse_vobject(text)
    # The 5th moved away, the 7th is cancelled; the moved one is tentative.
    assert busy_lines(text) == [
        ("BUSY", utc(2026, 12, d, 8), utc(2026, 12, d, 9)) for d in (4, 6, 8, 9, 10)
    ] + [("BUSY-TENTATIVE", utc(2026, 12, 20, 13), utc(2026, 12, 20, 14))]


def test_freebusy_of_an_unbounded_series_with_a_transparent_instance() -> None:
    obj = stored(
        calendar(
            event(
                "DTSTART:20260105T090000Z", "DTEND:20260105T100000Z", "RRULE:FREQ=DAILY", uid="u"
            ),
            event(
                "RECURRENCE-ID:20300102T090000Z",
                "DTSTART:20300102T090000Z",
                "DTEND:20300102T100000Z",
                "TRANSP:TRANSPARENT",
                uid="u",
            ),
        )
    )
    text = engine().freebusy([obj], TimeSpan(utc(2030, 1, 1, 9, 30), utc(2030, 1, 3, 9, 30)))
    assert busy_lines(text) == [
        ("BUSY", utc(2030, 1, 1, 9, 30), utc(2030, 1, 1, 10)),
        ("BUSY", utc(2030, 1, 3, 9), utc(2030, 1, 3, 9, 30)),
    ]


def test_freebusy_takes_single_events_from_the_index(parses: list[str]) -> None:
    objects = [
        fb_object(f"202612{d:02}T090000Z", f"202612{d:02}T100000Z", uid=f"s{d}")
        for d in range(1, 9)
    ]
    text = engine().freebusy(objects, TimeSpan(utc(2026, 12, 1), utc(2026, 12, 5)))
    assert len(busy_lines(text)) == 4
    assert parses == []


def test_empty_freebusy() -> None:
    text = engine().freebusy([], TimeSpan(utc(2026, 12, 1), utc(2026, 12, 2)))
    assert busy_lines(text) == []
    assert parse_vobject(text).vfreebusy.dtstart.value == utc(2026, 12, 1)


# -- calendar-timezone (RFC 4791 5.2.2) -----------------------------------------------


def test_timezone_calendar() -> None:
    text = engine().timezone_calendar("Europe/Berlin")
    assert_wire_format(text)
    calendar_ = parse(text)
    assert str(calendar_["PRODID"]) == PRODID
    [vtimezone] = calendar_.walk("VTIMEZONE")
    assert str(vtimezone["TZID"]) == "Europe/Berlin"
    assert [c.name for c in calendar_.subcomponents] == ["VTIMEZONE"]
    zone = vtimezone.to_tz()
    assert datetime(2030, 7, 1, 12, tzinfo=zone).utcoffset() == timedelta(hours=2)
    assert datetime(2030, 1, 1, 12, tzinfo=zone).utcoffset() == timedelta(hours=1)
    other = parse_vobject(text)
    tz = other.vtimezone.gettzinfo()
    assert datetime(2050, 7, 1, 12, tzinfo=tz).utcoffset() == timedelta(hours=2)
    assert datetime(2050, 12, 1, 12, tzinfo=tz).utcoffset() == timedelta(hours=1)
    utc_text = engine().timezone_calendar("UTC")
    assert "TZOFFSETTO:+0000" in utc_text
    parse_vobject(utc_text)
    with pytest.raises(ValueError):
        engine().timezone_calendar("Mars/Olympus_Mons")


def test_engine_satisfies_the_port() -> None:
    from gateway.core.ports import CalendarQuerying

    port: CalendarQuerying = engine()
    assert isinstance(port, ICalQueryEngine)


def test_unreadable_object_does_not_match() -> None:
    obj = stored(calendar(BERLIN_HOUR))
    broken = replace(obj, ics="BEGIN:VCALENDAR\r\nBEGIN:VEVENT\r\nUID:x\r\n")
    assert not engine().matches(broken, with_props(PropFilter("UID")))
    assert not engine().matches(broken, in_range_slow(None, utc(2100, 1, 1)))


# -- real-world calendars ----------------------------------------------------------------


@pytest.mark.parametrize("path", corpus_files(), ids=lambda p: p.name)
def test_corpus_objects(path: Path) -> None:
    """Every corpus calendar the CalDAV PUT path accepts answers queries, and
    what the engine writes about it parses back with icalendar and vobject."""
    from gateway.ical.expand import Loaded
    from gateway.ical.filters import comp_matches

    text = read_utf8(path)
    if text is None:
        pytest.skip("not UTF-8: refused at PUT")
    try:
        obj = stored(text)
    except InvalidCalendarData:
        pytest.skip("refused at PUT")
    queries = engine()
    first = obj.span.start
    # The first occurrence is found, whichever path answers.
    around = (first - timedelta(hours=1), first + timedelta(hours=1))
    assert queries.matches(obj, in_range(*around)) or obj.span.start == obj.span.end
    for start, end in [around, (None, first), (first, None), (first - timedelta(days=400), first)]:
        assert queries.matches(obj, in_range(start, end)) == queries.matches(
            obj, in_range_slow(start, end)
        ), (start, end)
    loaded = Loaded(parse(text), ZoneInfo(obj.booking.timezone))
    for name in ("SUMMARY", "LOCATION", "DESCRIPTION"):
        for needle in ("e", "the", "Meeting", "zz"):
            flt = with_props(PropFilter(name, text_match=TextMatch(needle)))
            assert queries.matches(obj, flt) == comp_matches(loaded, flt)
    window = TimeRange(first - timedelta(days=1), first + timedelta(days=60))
    expanded = queries.calendar_data(obj, DataRequest(expand=window))
    assert_wire_format(expanded)
    assert "VTIMEZONE" not in expanded
    assert "RRULE" not in expanded
    assert instances_of(expanded)
    limited = queries.calendar_data(obj, DataRequest(limit_recurrence_set=window))
    busy = queries.freebusy([obj], TimeSpan(window.start or first, window.end or first))
    # A calendar-query reads the object as a ``QueriedObject``: the same
    # answers, from an engine that has seen neither (nothing cached).
    light, fresh = QueriedObject.of(obj), engine()
    for flt in [
        in_range(*around),
        in_range(None, first),
        in_range(first, None),
        in_range_slow(*around),
        with_props(PropFilter("SUMMARY", text_match=TextMatch("e"))),
    ]:
        assert fresh.matcher(flt)(light) == queries.matches(obj, flt), flt
    assert fresh.calendar_data(light, DataRequest(expand=window)) == expanded
    assert fresh.calendar_data(light, DataRequest(limit_recurrence_set=window)) == limited
    for data in (expanded, limited, busy):
        parse(data)
        try:
            vobject.readOne(text)
        except Exception:
            continue  # vobject cannot read the source either
        parse_vobject(data)


@pytest.mark.parametrize("path", corpus_files(), ids=lambda p: p.name)
def test_corpus_calendars_of_any_kind_do_not_break_the_engine(
    path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Whatever icalendar reads (to-dos, journals, odd zones, several UIDs)
    gets an answer; an object that cannot be expanded is read as written."""
    text = read_utf8(path)
    if text is None:
        pytest.skip("not UTF-8")
    try:
        parse(text)
    except Exception:
        pytest.skip("icalendar cannot read it")
    obj = unvalidated(text, recurring=True)
    queries = engine()
    start, end = utc(2020, 1, 1), utc(2027, 1, 1)
    for name in ("VEVENT", "VTODO", "VJOURNAL", "VFREEBUSY"):
        queries.matches(obj, in_range(start, end, name))
        queries.matches(obj, in_range(None, end, name))
    queries.matches(obj, alarm_filter(start, None))
    queries.matches(obj, with_props(PropFilter("SUMMARY", text_match=TextMatch("a"))))
    window = TimeRange(utc(2021, 1, 1), utc(2022, 1, 1))
    for request in (DataRequest(expand=window), DataRequest(limit_recurrence_set=window)):
        assert parse(queries.calendar_data(obj, request))
    assert parse(queries.freebusy([obj], window.as_span()))
    assert not [r for r in caplog.records if "cannot shape" in r.getMessage()]


def test_an_object_that_cannot_be_expanded_is_read_as_written() -> None:
    # recurring_ical_events (dateutil) fails on an RDATE with VALUE=TIME, and
    # leaves the rule in a state where asking again would never return.
    obj = unvalidated(
        calendar(event("DTSTART:20210302T000000Z", "RDATE;VALUE=TIME:133000Z")), recurring=True
    )
    queries = engine()
    for _ in range(3):
        assert queries.matches(obj, in_range(utc(2021, 3, 2), utc(2021, 3, 3)))
        assert queries.matches(obj, in_range(None, utc(2021, 3, 3)))
        assert not queries.matches(obj, in_range(utc(2021, 3, 3), None))


def test_known_matcher_answers_only_what_needs_no_parsing() -> None:
    """What a calendar-query may answer on the event loop: a single event
    under a plain time range by its span, a recurring one only once its
    answer to this filter is kept, and nothing for another text or filter."""
    queries = engine()
    week = in_range(utc(2026, 12, 7), utc(2026, 12, 14))
    single_text = calendar(event("DTSTART:20261208T090000Z", "DURATION:PT1H", "SUMMARY:Meet"))
    single = QueriedObject.of(stored(single_text))
    series = QueriedObject.of(stored(DAILY))
    known = queries.known_matcher(week)
    assert known(single) is True
    assert known(QueriedObject.of(stored(calendar(event("DTSTART:20270101T090000Z"))))) is False
    assert known(series) is None  # it would need expanding
    answer = queries.matcher(week)(series)
    assert known(series) is answer
    assert queries.known_matcher(week)(series) is answer  # kept for the filter, not the call
    other_week = in_range(utc(2026, 12, 14), utc(2026, 12, 21))
    assert queries.known_matcher(other_week)(series) is None
    changed = series._replace(etag='"changed"')
    assert known(changed) is None
    # A filter that is not a plain time range parses even single events.
    summary = with_props(PropFilter("SUMMARY", text_match=TextMatch("e")))
    assert queries.known_matcher(summary)(single) is None
    assert queries.known_matcher(summary)(single) is None
    answer = queries.matcher(summary)(single)
    assert queries.known_matcher(summary)(single) is answer
