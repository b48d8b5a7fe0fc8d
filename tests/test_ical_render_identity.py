"""The codec's rendered text is byte for byte what icalendar writes for the
whole calendar (issue 17).

``ICalCodec.render`` takes the text of the VTIMEZONE it adds from a cache
instead of having icalendar write it again for every booking. Each booking of
the table below (zones with and without summer time, DST edges, bookings over
a year's end, attendees and descriptions with characters that are escaped,
quoted or folded, objects written over a client's text) is rendered twice:
as the codec does it, and as icalendar writes the same calendar in one piece.
The two texts must be equal, with a cold cache and with a warm one.

A new booking's VEVENT is written by ``gateway.ical.render_event`` without
icalendar's ``Event``: the table, a Hypothesis property over hostile text,
zones and people, and the edges of folding, quoting and escaping hold it to
the bytes icalendar writes for the same booking.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from icalendar import Event

from gateway.core.model import Attendee, Booking, BookingStatus, PartStat, Resource
from gateway.ical import ICalCodec, render_event, timezones
from gateway.ical import codec as ical_codec
from tests.samples import make_booking

ANNA = Resource(id="anna", name="Anna Schmidt", email="anna@example.com", timezone="Europe/Berlin")
ODD = Resource(
    id="odd", name='Room "A", floor 2; east: wing', email="room+a@example.com", timezone="UTC"
)

CLIENT_TEXT = "\r\n".join(
    [
        "BEGIN:VCALENDAR",
        "VERSION:2.0",
        "PRODID:-//Apple Inc.//macOS 14//EN",
        "METHOD:REQUEST",
        "BEGIN:VTIMEZONE",
        "TZID:Europe/Berlin",
        "BEGIN:STANDARD",
        "DTSTART:19701025T030000",
        "RRULE:FREQ=YEARLY;BYMONTH=10;BYDAY=-1SU",
        "TZOFFSETFROM:+0200",
        "TZOFFSETTO:+0100",
        "TZNAME:CET",
        "END:STANDARD",
        "BEGIN:DAYLIGHT",
        "DTSTART:19700329T020000",
        "RRULE:FREQ=YEARLY;BYMONTH=3;BYDAY=-1SU",
        "TZOFFSETFROM:+0100",
        "TZOFFSETTO:+0200",
        "TZNAME:CEST",
        "END:DAYLIGHT",
        "END:VTIMEZONE",
        "BEGIN:VEVENT",
        "UID:b1@gateway.test",
        "DTSTAMP:20261101T120000Z",
        "DTSTART;TZID=Europe/Berlin:20261201T090000",
        "DURATION:PT1H",
        "RRULE:FREQ=WEEKLY;COUNT=10",
        "SUMMARY:Haircut",
        "DESCRIPTION;LANGUAGE=en:Short back and sides",
        "X-FOO;X-PARAM=1:keep me",
        "ORGANIZER;CN=Anna;SCHEDULE-AGENT=CLIENT:mailto:anna@example.com",
        "ATTENDEE;CN=Zoe;PARTSTAT=ACCEPTED;X-NOTE=kept:mailto:ZOE@example.com",
        "BEGIN:VALARM",
        "ACTION:DISPLAY",
        "DESCRIPTION:Reminder",
        "TRIGGER:-PT15M",
        "END:VALARM",
        "END:VEVENT",
        "BEGIN:VEVENT",
        "UID:b1@gateway.test",
        "DTSTAMP:20261101T120000Z",
        "RECURRENCE-ID;TZID=Europe/Berlin:20261208T090000",
        "DTSTART;TZID=Europe/Berlin:20261208T110000",
        "DURATION:PT1H",
        "SUMMARY:Haircut (moved)",
        "END:VEVENT",
        "END:VCALENDAR",
        "",
    ]
)


def _at(zone: str, start_utc: datetime, hours: float = 1, **changes: object) -> Booking:
    """A booking in ``zone`` from ``start_utc`` (an instant) for ``hours``."""
    tz = ZoneInfo(zone)
    end = start_utc + timedelta(hours=hours)
    return make_booking(
        start=start_utc.astimezone(tz), end=end.astimezone(tz), timezone=zone, **changes
    )


def _utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=UTC)


# (name, booking, resource, the text it is written over or None)
CASES: list[tuple[str, Booking, Resource, str | None]] = [
    ("berlin winter", make_booking(), ANNA, None),
    ("berlin into summer time", _at("Europe/Berlin", _utc(2027, 3, 28, 0, 30), 2), ANNA, None),
    ("berlin the repeated hour", _at("Europe/Berlin", _utc(2027, 10, 31, 0, 30)), ANNA, None),
    ("berlin over new year", _at("Europe/Berlin", _utc(2027, 12, 31, 22, 30), 3), ANNA, None),
    ("new york into summer time", _at("America/New_York", _utc(2027, 3, 14, 6)), ANNA, None),
    ("new york the repeated hour", _at("America/New_York", _utc(2027, 11, 7, 5, 30)), ANNA, None),
    ("lord howe, half an hour", _at("Australia/Lord_Howe", _utc(2027, 4, 3, 14, 45)), ANNA, None),
    ("chatham", _at("Pacific/Chatham", _utc(2027, 9, 25, 13)), ANNA, None),
    ("dublin, negative summer time", _at("Europe/Dublin", _utc(2027, 3, 28, 0, 30)), ANNA, None),
    ("kolkata, no summer time", _at("Asia/Kolkata", _utc(2027, 6, 1, 4, 30)), ANNA, None),
    ("sao paulo, summer time abolished", _at("America/Sao_Paulo", _utc(2027, 1, 5)), ANNA, None),
    ("utc, no vtimezone", _at("UTC", _utc(2027, 6, 1, 9)), ODD, None),
    ("a week long", _at("Europe/Berlin", _utc(2027, 3, 25, 9), 24 * 7), ANNA, None),
    (
        "people and text with special characters",
        make_booking(
            title='Cut, dye; "style": 100% \\ done',
            description="Line one\nLine two, with a comma; a semicolon\\ and a backslash\n"
            + "Zoë Müller 🎉 mag 日本語 " * 8,
            location="Chair 2, Rue de l'Église; 3rd floor",
            attendees=(
                Attendee("zoe@example.com", "Zoë Müller"),
                Attendee("o.brien+cut@example.com", 'Dónal "Danny" O\'Brien, Jr.; Esq:'),
                Attendee("quiet@example.com", "", PartStat.ACCEPTED),
                Attendee("LONG@example.com", "A" * 80, PartStat.TENTATIVE),
            ),
            sequence=3,
        ),
        ODD,
        None,
    ),
    ("no attendees", make_booking(attendees=(), description="", location=""), ANNA, None),
    ("cancelled", make_booking(status=BookingStatus.CANCELLED, sequence=2), ANNA, None),
    (
        "tentative and free",
        make_booking(status=BookingStatus.TENTATIVE, transparent=True),
        ANNA,
        None,
    ),
    ("over a client's series", make_booking(sequence=1, recurring=True), ANNA, CLIENT_TEXT),
    (
        "over a client's series, moved to new york",
        _at("America/New_York", _utc(2026, 12, 1, 14), sequence=1, recurring=True),
        ANNA,
        CLIENT_TEXT,
    ),
    (
        "over a client's series, cancelled",
        make_booking(sequence=2, recurring=True, status=BookingStatus.CANCELLED),
        ANNA,
        CLIENT_TEXT,
    ),
]


def _render(booking: Booking, resource: Resource, previous: str | None) -> str:
    return ICalCodec().render(booking, resource, previous)


def _whole(booking: Booking, resource: Resource, previous: str | None) -> str:
    """How the codec wrote an object before issue 17: the calendar it builds,
    written by icalendar in one piece."""
    calendar, _ = ical_codec._calendar(booking, resource, previous)
    return bytes(calendar.to_ical()).decode("utf-8")


def _forget_zones() -> None:
    for cached in (
        timezones._vtimezone,
        timezones._vtimezone_bytes,
        ical_codec._new_head,
        render_event._zone_form,
        render_event._organizer_line,
    ):
        cached.cache_clear()


@pytest.mark.parametrize("cold", [True, False], ids=["cold", "warm"])
@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_render_is_what_icalendar_writes_in_one_piece(
    case: tuple[str, Booking, Resource, str | None], cold: bool
) -> None:
    _, booking, resource, previous = case
    if cold:
        _forget_zones()
    fast = _render(booking, resource, previous)
    assert fast == _whole(booking, resource, previous)
    # And the zone is in it, once, before the events (RFC 5545 3.6.5).
    if booking.timezone != "UTC":
        assert fast.count(f"TZID:{booking.timezone}\r\n") == 1
        assert fast.index("BEGIN:VTIMEZONE") < fast.index("BEGIN:VEVENT")


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_render_over_its_own_text_is_what_icalendar_writes(
    case: tuple[str, Booking, Resource, str | None],
) -> None:
    """A change over the gateway's own text: the zone stays, or is widened
    when the booking moves years ahead (a generated VTIMEZONE replaced)."""
    _, booking, resource, previous = case
    first = _render(booking, resource, previous)
    for later in (booking.start + timedelta(days=1), booking.start + timedelta(days=6 * 365)):
        moved = replace(
            booking,
            start=later,
            end=later + (booking.end - booking.start),
            sequence=booking.sequence + 1,
        )
        assert _render(moved, resource, first) == _whole(moved, resource, first)


# -- the VEVENT of a new object, written without icalendar's Event ----------------


def _event_by_icalendar(booking: Booking, resource: Resource) -> bytes:
    """The VEVENT as the codec wrote it before: an ``Event`` after ``_apply``."""
    event = Event()
    ical_codec._apply(event, booking, resource)
    return bytes(event.to_ical())


@pytest.mark.parametrize("case", [c for c in CASES if c[3] is None], ids=lambda c: c[0])
def test_new_event_text_is_written_directly_and_is_icalendars(
    case: tuple[str, Booking, Resource, str | None],
) -> None:
    """Each new booking of the table is written by ``render_event`` (not by
    the icalendar fallback), and the bytes are icalendar's."""
    _, booking, resource, _ = case
    written = render_event.new_event(booking, resource)
    assert written is not None
    assert written == _event_by_icalendar(booking, resource)


RSQUO = "\u2019"  # icalendar quotes a parameter value holding it
_TEXT = st.lists(
    st.sampled_from([*"aZ ,;:\\\"'^\n\r\tNé日🎉", RSQUO, "\\N", "\r\n", "x" * 30]), max_size=40
).map("".join)
_ZONES = st.sampled_from(
    ["Europe/Berlin", "UTC", "Etc/UTC", "America/New_York", "Asia/Kolkata", "Etc/GMT+5"]
)
_INSTANTS = st.datetimes(
    min_value=datetime(1971, 1, 1), max_value=datetime(2090, 1, 1), timezones=st.just(UTC)
)
_ATTENDEES = st.lists(
    st.builds(
        Attendee,
        email=st.sampled_from(["a@example.com", "O.Brien+x@example.com", "x" * 70 + "@e.com"]),
        name=_TEXT,
        partstat=st.sampled_from(list(PartStat)),
    ),
    max_size=3,
)


@settings(max_examples=300, deadline=None)
@given(
    title=_TEXT,
    description=_TEXT,
    location=_TEXT,
    uid=_TEXT.filter(lambda u: "\n" not in u and "\r" not in u),
    zone=_ZONES,
    start=_INSTANTS,
    minutes=st.integers(1, 60 * 24 * 40),
    attendees=_ATTENDEES,
    status=st.sampled_from(list(BookingStatus)),
    transparent=st.booleans(),
    sequence=st.integers(0, 10**6),
    organizer=_TEXT,
)
def test_new_event_text_is_icalendars_for_any_text(
    title: str,
    description: str,
    location: str,
    uid: str,
    zone: str,
    start: datetime,
    minutes: int,
    attendees: list[Attendee],
    status: BookingStatus,
    transparent: bool,
    sequence: int,
    organizer: str,
) -> None:
    tz = ZoneInfo(zone)
    booking = make_booking(
        uid=uid,
        title=title,
        description=description,
        location=location,
        timezone=zone,
        start=start.astimezone(tz),
        end=(start + timedelta(minutes=minutes)).astimezone(tz),
        created=start - timedelta(days=3, microseconds=7),
        updated=start - timedelta(seconds=1),
        attendees=tuple(attendees),
        status=status,
        transparent=transparent,
        sequence=sequence,
    )
    resource = replace(ANNA, name=organizer, timezone=zone)
    written = render_event.new_event(booking, resource)
    assert written is not None
    assert written == _event_by_icalendar(booking, resource)
    assert ICalCodec().render(booking, resource, None) == _whole(booking, resource, None)


def test_an_address_with_a_line_break_is_left_to_icalendar() -> None:
    """What ``render_event`` does not vouch for is left to icalendar, and the
    codec's answer is still icalendar's (here its refusal)."""
    booking = make_booking(attendees=(Attendee("odd\r@example.com", "Odd"),))
    assert render_event.new_event(booking, ANNA) is None
    with pytest.raises(ValueError, match="CAL-ADDRESS") as fast:
        _render(booking, ANNA, None)
    with pytest.raises(ValueError, match="CAL-ADDRESS") as whole:
        _whole(booking, ANNA, None)
    assert str(fast.value) == str(whole.value)


def test_the_organizer_line_follows_a_renamed_resource() -> None:
    """The cached ORGANIZER line is keyed by the resource's name and e-mail."""
    first = _render(make_booking(), ANNA, None)
    renamed = replace(ANNA, name="Anna Schmidt-Weber", email="anna.sw@example.com")
    second = _render(make_booking(), renamed, None)
    assert 'ORGANIZER;CN="Anna Schmidt-Weber":mailto:anna.sw@example.com' in second
    assert "anna@example.com" not in second and "anna@example.com" in first
    assert second == _whole(make_booking(), renamed, None)


@pytest.mark.parametrize("length", range(64, 72))
def test_a_line_around_the_fold_is_folded_as_icalendar_folds_it(length: int) -> None:
    """SUMMARY lines of 72 to 79 octets: icalendar folds before the 75th."""
    booking = make_booking(title="T" * length, location="é" * (length // 2))
    assert render_event.new_event(booking, ANNA) == _event_by_icalendar(booking, ANNA)


@pytest.mark.parametrize("offset", range(6))
@pytest.mark.parametrize("escaped", [",", ";", "\\", "\n"])
def test_a_fold_does_not_split_an_escape(offset: int, escaped: str) -> None:
    """TEXT escapes (backslash) and RFC 6868 escapes (caret) at every place
    around a fold, in ASCII and not: placed as icalendar places them."""
    booking = make_booking(
        title="x" * offset + escaped * 90,
        description="é" * offset + escaped * 90,
        attendees=(Attendee("zoe@example.com", "y" * offset + "^" * 90),),
    )
    resource = replace(ANNA, name="z" * offset + '"^' * 50)
    assert render_event.new_event(booking, resource) == _event_by_icalendar(booking, resource)


@pytest.mark.parametrize(
    "name",
    ["Zoë", f"O{RSQUO}Brien", "a:b", "a b", "a'b", "a,b", "a;b", "a^b", 'a"b', "a\nb", "", "日本"],
)
def test_an_attendee_name_is_quoted_and_escaped_as_icalendar_does(name: str) -> None:
    """CN quoting (RFC 5545 3.2: a value with ",", ";" or ":" is quoted;
    icalendar also quotes space, "'" and RSQUO) and RFC 6868 escapes."""
    booking = make_booking(attendees=(Attendee("zoe@example.com", name),))
    assert render_event.new_event(booking, ANNA) == _event_by_icalendar(booking, ANNA)
