"""Dates and times as a booker reads them, in English and German
(gateway.look.dates): one row per shape of booking and language."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo, available_timezones

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.core.invitations import spans_whole_days
from gateway.look.dates import format_when
from gateway.look.i18n import LANGUAGES, translations
from gateway.settings import Language

BERLIN = ZoneInfo("Europe/Berlin")


def berlin(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=BERLIN)


# (start, end, zone the reader reads it in, language, long form, short form)
CASES: list[tuple[datetime, datetime, str, Language, str, str]] = [
    # One hour, winter time.
    (
        berlin(2026, 12, 1, 9),
        berlin(2026, 12, 1, 10),
        "Europe/Berlin",
        "en",
        "Tuesday, 1 December 2026, 09:00\u201310:00 (Central European Standard Time)",
        "Tue, 1 Dec 2026, 09:00 (Central European Standard Time)",
    ),
    (
        berlin(2026, 12, 1, 9),
        berlin(2026, 12, 1, 10),
        "Europe/Berlin",
        "de",
        "Dienstag, 1. Dezember 2026, 09:00\u201310:00 Uhr (Mitteleuropäische Normalzeit)",
        "Di., 1. Dez. 2026, 09:00 (Mitteleuropäische Normalzeit)",
    ),
    # Summer time has its own name.
    (
        berlin(2026, 7, 1, 14, 30),
        berlin(2026, 7, 1, 15),
        "Europe/Berlin",
        "de",
        "Mittwoch, 1. Juli 2026, 14:30\u201315:00 Uhr (Mitteleuropäische Sommerzeit)",
        "Mi., 1. Juli 2026, 14:30 (Mitteleuropäische Sommerzeit)",
    ),
    # The same instants read in another zone (the booker's): Tokyo's day and hours.
    (
        berlin(2026, 12, 1, 20),
        berlin(2026, 12, 1, 21),
        "Asia/Tokyo",
        "en",
        "Wednesday, 2 December 2026, 04:00\u201305:00 (Japan Standard Time)",
        "Wed, 2 Dec 2026, 04:00 (Japan Standard Time)",
    ),
    (
        berlin(2026, 12, 1, 20),
        berlin(2026, 12, 1, 21),
        "UTC",
        "de",
        "Dienstag, 1. Dezember 2026, 19:00\u201320:00 Uhr (Koordinierte Weltzeit)",
        "Di., 1. Dez. 2026, 19:00 (Koordinierte Weltzeit)",
    ),
    # Across midnight: both days, both times.
    (
        berlin(2026, 12, 1, 22),
        berlin(2026, 12, 2, 1, 30),
        "Europe/Berlin",
        "en",
        "Tuesday, 1 December 2026, 22:00 \u2013 Wednesday, 2 December 2026, 01:30 "
        "(Central European Standard Time)",
        "Tue, 1 Dec 2026, 22:00 (Central European Standard Time)",
    ),
    (
        berlin(2026, 12, 1, 22),
        berlin(2026, 12, 2, 1, 30),
        "Europe/Berlin",
        "de",
        "Dienstag, 1. Dezember 2026, 22:00 \u2013 Mittwoch, 2. Dezember 2026, 01:30 "
        "(Mitteleuropäische Normalzeit)",
        "Di., 1. Dez. 2026, 22:00 (Mitteleuropäische Normalzeit)",
    ),
    # Across the change to winter time (25 October 2026): neither summer nor
    # winter time, the zone's generic name.
    (
        berlin(2026, 10, 24, 9),
        berlin(2026, 10, 26, 10),
        "Europe/Berlin",
        "de",
        "Samstag, 24. Oktober 2026, 09:00 \u2013 Montag, 26. Oktober 2026, 10:00 "
        "(Mitteleuropäische Zeit)",
        "Sa., 24. Okt. 2026, 09:00 (Mitteleuropäische Zeit)",
    ),
    # All day: the day, no time, no zone.
    (
        berlin(2026, 12, 1),
        berlin(2026, 12, 2),
        "Europe/Berlin",
        "en",
        "Tuesday, 1 December 2026 (all day)",
        "Tue, 1 Dec 2026 (all day)",
    ),
    (
        berlin(2026, 12, 1),
        berlin(2026, 12, 2),
        "Europe/Berlin",
        "de",
        "Dienstag, 1. Dezember 2026 (ganztägig)",
        "Di., 1. Dez. 2026 (ganztägig)",
    ),
    # Several whole days: first and last (the end is exclusive).
    (
        berlin(2026, 12, 30),
        berlin(2027, 1, 2),
        "Europe/Berlin",
        "de",
        "Mittwoch, 30. Dezember 2026 \u2013 Freitag, 1. Januar 2027 (ganztägig)",
        "Mi., 30. Dez. 2026 \u2013 Fr., 1. Jan. 2027 (ganztägig)",
    ),
    (
        berlin(2026, 12, 30),
        berlin(2027, 1, 2),
        "Europe/Berlin",
        "en",
        "Wednesday, 30 December 2026 \u2013 Friday, 1 January 2027 (all day)",
        "Wed, 30 Dec 2026 \u2013 Fri, 1 Jan 2027 (all day)",
    ),
    # Whole days in Berlin are not whole days in New York: times there.
    (
        berlin(2026, 12, 1),
        berlin(2026, 12, 2),
        "America/New_York",
        "en",
        "Monday, 30 November 2026, 18:00 \u2013 Tuesday, 1 December 2026, 18:00 "
        "(Eastern Standard Time)",
        "Mon, 30 Nov 2026, 18:00 (Eastern Standard Time)",
    ),
]


@pytest.mark.parametrize(
    ("start", "end", "zone", "language", "long", "short"),
    CASES,
    ids=[f"{case[3]}-{number}" for number, case in enumerate(CASES)],
)
def test_when(
    start: datetime, end: datetime, zone: str, language: Language, long: str, short: str
) -> None:
    assert format_when(start, end, zone, language) == long
    assert format_when(start, end, ZoneInfo(zone), language, short=True) == short


def test_the_instant_not_the_wall_clock_counts() -> None:
    # UTC datetimes read in Berlin are Berlin's hours.
    start = datetime(2026, 12, 1, 8, tzinfo=UTC)
    end = datetime(2026, 12, 1, 9, tzinfo=UTC)
    assert format_when(start, end, "Europe/Berlin", "de") == (
        "Dienstag, 1. Dezember 2026, 09:00\u201310:00 Uhr (Mitteleuropäische Normalzeit)"
    )


ZONES = sorted(available_timezones() - {"localtime", "Factory"})


@settings(max_examples=300, deadline=None)
@given(
    start=st.datetimes(
        min_value=datetime(1971, 1, 1), max_value=datetime(2099, 12, 31), timezones=st.just(UTC)
    ),
    minutes=st.integers(min_value=1, max_value=60 * 24 * 40),
    zone=st.sampled_from(ZONES),
    language=st.sampled_from(LANGUAGES),
)
def test_any_span_in_any_zone_names_its_local_start(
    start: datetime, minutes: int, zone: str, language: Language
) -> None:
    # Whatever the zone (odd offsets, clocks that skip midnight), the text
    # names the start's local year and, unless whole days, its local time.
    end = start + timedelta(minutes=minutes)
    text = format_when(start, end, zone, language)
    local = start.astimezone(ZoneInfo(zone))
    assert str(local.year) in text
    if spans_whole_days(start, end, ZoneInfo(zone)):
        assert text.endswith(f"({translations(language).gettext('all day')})")
    else:
        assert f"{local:%H:%M}" in text
