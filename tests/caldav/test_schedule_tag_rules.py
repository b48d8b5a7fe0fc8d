"""The schedule-tag rules as tables (RFC 6638 3.2.10, 8.3): when a write with
If-Match / If-None-Match / If-Schedule-Tag-Match may go ahead, when it must
keep what the server changed meanwhile, how the header is read, and which
attendee parameters a kept write carries over."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from icalendar import Calendar
from multidict import CIMultiDict, CIMultiDictProxy

from caldav_backend.dav.conditions import precondition_from
from caldav_backend.dav.errors import DavError
from gateway.core.model import (
    ANY_ENTITY,
    Booking,
    CalendarObject,
    Precondition,
    TimeSpan,
    etag_for,
)
from gateway.ical.kept_answers import keep_server_answers

E1, E2 = '"e1"', '"e2"'  # entity tags
S1, S2 = '"s1"', '"s2"'  # schedule tags

# (precondition, current etag, current schedule tag, holds)
HOLDS = [
    (Precondition(), None, None, True),
    (Precondition(), E1, S1, True),
    # If-Schedule-Tag-Match alone
    (Precondition(if_schedule_tag_match=S1), E1, S1, True),
    (Precondition(if_schedule_tag_match=S1), E2, S1, True),  # an answer changed the ETag only
    (Precondition(if_schedule_tag_match=S1), E2, S2, False),  # the organizer wrote since
    (Precondition(if_schedule_tag_match=S1), None, None, False),  # no object, no tag
    (Precondition(if_schedule_tag_match="W/" + S1), E1, S1, False),  # strong comparison
    # with If-Match: both must hold
    (Precondition(if_match=frozenset({E1}), if_schedule_tag_match=S1), E1, S1, True),
    (Precondition(if_match=frozenset({E1}), if_schedule_tag_match=S1), E2, S1, False),
    (Precondition(if_match=frozenset({E1}), if_schedule_tag_match=S2), E1, S1, False),
    # If-Match alone is unchanged by tags: the old ETag after an answer fails
    (Precondition(if_match=frozenset({E1})), E2, S1, False),
    (Precondition(if_match=frozenset({ANY_ENTITY})), E2, S1, True),
    (Precondition(if_none_match=frozenset({ANY_ENTITY})), None, None, True),
    (Precondition(if_none_match=frozenset({ANY_ENTITY})), E1, S1, False),
]


@pytest.mark.parametrize(("condition", "etag", "tag", "expected"), HOLDS)
def test_when_a_write_may_go_ahead(
    condition: Precondition, etag: str | None, tag: str | None, expected: bool
) -> None:
    assert condition.holds(etag, tag) is expected


# (precondition, current etag, current schedule tag, keeps the server's changes)
KEEPS = [
    # the current tag, and an answer came in after the organizer's write
    (Precondition(if_schedule_tag_match=S1), E2, S1, True),
    # the current tag, nothing changed since the organizer's write
    (Precondition(if_schedule_tag_match=E1), E1, E1, False),
    # If-Match: the client saw the answers and writes what it means
    (Precondition(if_match=frozenset({E2})), E2, S1, False),
    (Precondition(), E2, S1, False),
]


@pytest.mark.parametrize(("condition", "etag", "tag", "expected"), KEEPS)
def test_when_a_write_keeps_the_servers_changes(
    condition: Precondition, etag: str, tag: str, expected: bool
) -> None:
    assert condition.keeps_server_changes(etag, tag) is expected


def _headers(*pairs: tuple[str, str]) -> CIMultiDictProxy[str]:
    return CIMultiDictProxy(CIMultiDict(pairs))


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ((), None),
        ((("If-Schedule-Tag-Match", '"abc"'),), '"abc"'),
        ((("if-schedule-tag-match", ' "abc" '),), '"abc"'),
    ],
)
def test_the_header_names_one_tag(headers: tuple[tuple[str, str], ...], expected: str) -> None:
    assert precondition_from(_headers(*headers)).if_schedule_tag_match == expected


@pytest.mark.parametrize(
    "value", ["*", '"a", "b"', "abc", 'W/"abc"', ""], ids=["star", "two", "bare", "weak", "empty"]
)
def test_a_header_that_is_not_one_tag_is_a_400_naming_it(value: str) -> None:
    with pytest.raises(DavError) as caught:
        precondition_from(_headers(("If-Schedule-Tag-Match", value)))
    assert caught.value.status == 400
    assert "If-Schedule-Tag-Match" in str(caught.value.message)


def test_an_object_made_without_a_tag_has_its_etag_as_tag_and_replace_keeps_it() -> None:
    import dataclasses

    start = datetime(2026, 3, 2, 9, tzinfo=UTC)
    booking = Booking(
        id="b",
        resource_id="anna",
        uid="u@x",
        title="t",
        start=start,
        end=start,
        timezone="UTC",
        created=start,
        updated=start,
    )
    obj = CalendarObject(booking=booking, ics="A", span=TimeSpan(start, start))
    assert obj.schedule_tag == etag_for("A")
    answered = dataclasses.replace(obj, ics="B")  # a server-side change
    assert answered.etag == etag_for("B") and answered.schedule_tag == etag_for("A")


# -- what a kept write carries over (RFC 6638 3.2.10) -------------------------------


def _event(
    attendees: dict[str, str],
    *,
    sequence: int = 0,
    recurrence: str = "",
    extra: str = "",
    start: str = "20260302T090000Z",
) -> str:
    lines = [
        "BEGIN:VEVENT",
        "UID:u1@example.com",
        "DTSTAMP:20260101T000000Z",
        f"DTSTART:{start}",
        "DTEND:20260302T100000Z",
        f"SEQUENCE:{sequence}",
        "SUMMARY:Haircut",
        "ORGANIZER:mailto:anna@shop.example",
    ]
    if recurrence:
        lines.append(f"RECURRENCE-ID:{recurrence}")
    lines += [f"ATTENDEE;{params}:mailto:{who}" for who, params in attendees.items()]
    if extra:
        lines.append(extra)
    lines.append("END:VEVENT")
    return "\r\n".join(lines)


def _calendar(*events: str) -> str:
    body = "\r\n".join(events)
    return f"BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//t//t//EN\r\n{body}\r\nEND:VCALENDAR\r\n"


def _params(text: str) -> dict[tuple[str, str], dict[str, str]]:
    """(RECURRENCE-ID or "", address) -> the attendee's PARTSTAT and SCHEDULE-STATUS."""
    found: dict[tuple[str, str], dict[str, str]] = {}
    for event in Calendar.from_ical(text).walk("VEVENT"):
        recurrence = event.get("RECURRENCE-ID")
        key = "" if recurrence is None else recurrence.to_ical().decode()
        attendees = event.get("ATTENDEE", [])
        for attendee in attendees if isinstance(attendees, list) else [attendees]:
            found[(key, str(attendee).removeprefix("mailto:"))] = {
                k: str(v)
                for k, v in attendee.params.items()
                if k in ("PARTSTAT", "SCHEDULE-STATUS")
            }
    return found


ZOE, MAX = "zoe@example.com", "max@example.com"
ACCEPTED = "PARTSTAT=ACCEPTED;SCHEDULE-STATUS=2.0"
ASKED = "PARTSTAT=NEEDS-ACTION"

# (case, stored text, written text, expected (recurrence, attendee) -> params)
KEPT = [
    (
        "an answer that came in is kept, the new title too",
        _calendar(_event({ZOE: ACCEPTED})),
        _calendar(_event({ZOE: ASKED}, extra="LOCATION:Room 2")),
        {("", ZOE): {"PARTSTAT": "ACCEPTED", "SCHEDULE-STATUS": "2.0"}},
    ),
    (
        "a raised SEQUENCE alone asks nothing new (python-caldav raises it on every save)",
        _calendar(_event({ZOE: ACCEPTED})),
        _calendar(_event({ZOE: ASKED}, sequence=1)),
        {("", ZOE): {"PARTSTAT": "ACCEPTED", "SCHEDULE-STATUS": "2.0"}},
    ),
    (
        "a new time asks again: the client's NEEDS-ACTION counts",
        _calendar(_event({ZOE: ACCEPTED})),
        _calendar(_event({ZOE: ASKED}, sequence=1, start="20260302T100000Z")),
        {("", ZOE): {"PARTSTAT": "NEEDS-ACTION"}},
    ),
    (
        "a new recurrence asks again",
        _calendar(_event({ZOE: ACCEPTED}, extra="RRULE:FREQ=DAILY;COUNT=3")),
        _calendar(_event({ZOE: ASKED}, extra="RRULE:FREQ=DAILY;COUNT=4")),
        {("", ZOE): {"PARTSTAT": "NEEDS-ACTION"}},
    ),
    (
        "a new attendee keeps what the client wrote; a removed one stays removed",
        _calendar(_event({ZOE: ACCEPTED})),
        _calendar(_event({MAX: ASKED})),
        {("", MAX): {"PARTSTAT": "NEEDS-ACTION"}},
    ),
    (
        "addresses compare without case",
        _calendar(_event({ZOE: "PARTSTAT=DECLINED"})),
        _calendar(_event({ZOE.upper(): ASKED})),
        {("", ZOE.upper()): {"PARTSTAT": "DECLINED"}},
    ),
    (
        "each occurrence keeps its own answer",
        _calendar(
            _event({ZOE: "PARTSTAT=ACCEPTED"}, extra="RRULE:FREQ=DAILY;COUNT=3"),
            _event({ZOE: "PARTSTAT=DECLINED"}, recurrence="20260303T090000Z"),
        ),
        _calendar(
            _event({ZOE: ASKED}, extra="RRULE:FREQ=DAILY;COUNT=3"),
            _event({ZOE: ASKED}, recurrence="20260303T090000Z"),
        ),
        {
            ("", ZOE): {"PARTSTAT": "ACCEPTED"},
            ("20260303T090000Z", ZOE): {"PARTSTAT": "DECLINED"},
        },
    ),
    (
        "an occurrence the stored text does not have keeps the client's values",
        _calendar(_event({ZOE: "PARTSTAT=ACCEPTED"})),
        _calendar(
            _event({ZOE: ASKED}),
            _event({ZOE: ASKED}, recurrence="20260303T090000Z"),
        ),
        {
            ("", ZOE): {"PARTSTAT": "ACCEPTED"},
            ("20260303T090000Z", ZOE): {"PARTSTAT": "NEEDS-ACTION"},
        },
    ),
]


@pytest.mark.parametrize(
    ("stored", "written", "expected"), [case[1:] for case in KEPT], ids=[c[0] for c in KEPT]
)
def test_what_a_kept_write_carries_over(
    stored: str, written: str, expected: dict[tuple[str, str], dict[str, str]]
) -> None:
    assert _params(keep_server_answers(stored, written)) == expected


def test_nothing_to_keep_returns_the_text_as_sent() -> None:
    written = _calendar(_event({ZOE: "PARTSTAT=ACCEPTED"}, extra="X-APP:kept as sent"))
    stored = _calendar(_event({ZOE: "PARTSTAT=ACCEPTED"}))
    assert keep_server_answers(stored, written) is written
