"""'Add to calendar' links: dates in each service's format, UTF-8 percent
encoding, the 2,000-character limit, and a round trip through urllib."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, time, timedelta
from urllib.parse import parse_qs, unquote, urlsplit
from zoneinfo import ZoneInfo

import pytest

from gateway.core.invitations import CalendarLinks, is_all_day, local_dates
from gateway.core.model import Booking
from gateway.links.add_to_calendar import (
    ELLIPSIS,
    GOOGLE_URL,
    MAX_URL_LENGTH,
    OFFICE365_URL,
    OUTLOOK_URL,
    YAHOO_URL,
    calendar_links,
    truncate_encoded,
)
from tests.mail import make_booking

ICS_URL = "https://gateway.example/api/v1/bookings/b1.ics?token=abc"


def query(url: str) -> dict[str, str]:
    """The URL's parameters, decoded strictly as UTF-8; each must appear once."""
    parsed = parse_qs(
        urlsplit(url).query, keep_blank_values=True, strict_parsing=True, errors="strict"
    )
    assert all(len(v) == 1 for v in parsed.values()), parsed
    return {k: v[0] for k, v in parsed.items()}


def base(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}{parts.path}"


def zoned(zone: str, *args: int) -> datetime:
    return datetime(*args, tzinfo=ZoneInfo(zone))  # type: ignore[misc]


def links_for(booking: Booking) -> CalendarLinks:
    return calendar_links(booking, ICS_URL)


def all_urls(links: CalendarLinks) -> list[str]:
    return [links.google, links.outlook, links.office365, links.yahoo]


# -- timed bookings in several zones ----------------------------------------------------


ZONES = [
    # zone, local start, expected UTC start (basic format)
    ("Europe/Berlin", (2026, 12, 1, 9, 0), "20261201T080000Z"),
    ("Europe/Berlin", (2026, 7, 1, 9, 0), "20260701T070000Z"),  # summer time
    ("America/New_York", (2026, 12, 1, 9, 0), "20261201T140000Z"),
    ("Asia/Kolkata", (2026, 12, 1, 9, 0), "20261201T033000Z"),  # +05:30
    ("Pacific/Chatham", (2026, 12, 1, 9, 0), "20261130T191500Z"),  # +13:45 in summer
    ("Pacific/Chatham", (2026, 6, 1, 9, 0), "20260531T201500Z"),  # +12:45 in winter
]


@pytest.mark.parametrize(("zone", "local", "utc_start"), ZONES)
def test_timed_booking_in_utc_with_its_zone(
    zone: str, local: tuple[int, ...], utc_start: str
) -> None:
    start = zoned(zone, *local)
    booking = make_booking(start=start, end=start + timedelta(minutes=90), timezone=zone)
    links = links_for(booking)
    utc_end = (start + timedelta(minutes=90)).astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")

    google = query(links.google)
    assert base(links.google) == GOOGLE_URL
    assert google["action"] == "TEMPLATE"
    assert google["dates"] == f"{utc_start}/{utc_end}"
    assert google["ctz"] == zone
    assert "stz" not in google and "etz" not in google

    for url, expected_base in ((links.outlook, OUTLOOK_URL), (links.office365, OFFICE365_URL)):
        outlook = query(url)
        assert base(url) == expected_base
        assert outlook["allday"] == "false"
        assert datetime.fromisoformat(outlook["startdt"]) == start
        assert datetime.fromisoformat(outlook["enddt"]) == start + timedelta(minutes=90)
        assert outlook["startdt"].endswith("Z")

    yahoo = query(links.yahoo)
    assert base(links.yahoo) == YAHOO_URL
    assert yahoo["v"] == "60"
    assert (yahoo["st"], yahoo["et"]) == (utc_start, utc_end)
    assert "dur" not in yahoo

    assert links.ics == ICS_URL


def test_round_trip_of_every_field() -> None:
    booking = make_booking(
        title="Kaffee ☕ mit 张伟 & Co = 100% #1 + more/less?",
        location='東京都渋谷区 🗼, Floor 3; Room "B"',
        description="Line one\nLine two: café, naïve, 😀👩\u200d👩\u200d👧\n\ttabbed",
    )
    links = links_for(booking)
    google, outlook, yahoo = query(links.google), query(links.outlook), query(links.yahoo)
    assert (google["text"], google["details"], google["location"]) == (
        booking.title,
        booking.description,
        booking.location,
    )
    assert (outlook["subject"], outlook["body"], outlook["location"]) == (
        booking.title,
        booking.description,
        booking.location,
    )
    assert (yahoo["title"], yahoo["desc"], yahoo["in_loc"]) == (
        booking.title,
        booking.description,
        booking.location,
    )
    assert query(links.office365) == outlook


def test_values_are_percent_encoded_with_nothing_safe() -> None:
    booking = make_booking(title="a&b=c+d/e f", location="x?y#z", description="")
    for url in all_urls(links_for(booking)):
        query_string = urlsplit(url).query
        # Only the separators between parameters are raw.
        for pair in query_string.split("&"):
            name, value = pair.split("=", 1)
            assert re.fullmatch(r"[A-Za-z0-9_.~%-]*", value), (name, value)
        assert "%26" in query_string and "%3D" in query_string and "%2B" in query_string
        assert "%20" in query_string and "+" not in query_string


def test_empty_fields_are_left_out() -> None:
    booking = make_booking(description="", location="")
    links = links_for(booking)
    assert "details" not in query(links.google) and "location" not in query(links.google)
    assert "body" not in query(links.outlook)
    assert "desc" not in query(links.yahoo) and "in_loc" not in query(links.yahoo)


# -- all-day bookings ------------------------------------------------------------------


def all_day(zone: str, first: date, days: int) -> Booking:
    tz = ZoneInfo(zone)
    start = datetime.combine(first, time(), tz)
    end = datetime.combine(first + timedelta(days=days), time(), tz)
    return make_booking(start=start, end=end, timezone=zone)


@pytest.mark.parametrize("zone", ["Europe/Berlin", "Asia/Kolkata", "Pacific/Chatham", "UTC"])
def test_one_all_day(zone: str) -> None:
    booking = all_day(zone, date(2026, 12, 1), 1)
    assert is_all_day(booking)
    links = links_for(booking)
    google = query(links.google)
    # Google: DATE values, the end being the day after (exclusive).
    assert google["dates"] == "20261201/20261202"
    assert google["ctz"] == zone
    outlook = query(links.outlook)
    assert (outlook["startdt"], outlook["enddt"], outlook["allday"]) == (
        "2026-12-01",
        "2026-12-02",
        "true",
    )
    yahoo = query(links.yahoo)
    assert (yahoo["st"], yahoo["et"], yahoo["dur"]) == ("20261201", "20261201", "allday")


def test_several_days_across_new_year() -> None:
    booking = all_day("America/New_York", date(2026, 12, 30), 4)
    links = links_for(booking)
    assert query(links.google)["dates"] == "20261230/20270103"
    assert query(links.outlook)["enddt"] == "2027-01-03"
    assert query(links.yahoo)["et"] == "20270102"


def test_all_day_across_a_dst_change_is_still_all_day() -> None:
    # 2026-03-29 has 23 hours in Berlin.
    booking = all_day("Europe/Berlin", date(2026, 3, 29), 1)
    assert booking.end.astimezone(UTC) - booking.start.astimezone(UTC) == timedelta(hours=23)
    assert is_all_day(booking)
    assert query(links_for(booking).google)["dates"] == "20260329/20260330"


@pytest.mark.parametrize("first_hour", [0, 1])
def test_a_day_whose_midnight_is_skipped(first_hour: int) -> None:
    # Chile moves its clocks at 24:00: 2026-09-06 begins at 01:00, which is
    # the instant a (non-existent) 00:00 stands for.
    santiago = ZoneInfo("America/Santiago")
    start = datetime(2026, 9, 6, first_hour, tzinfo=santiago)
    assert start.astimezone(UTC).astimezone(santiago).hour == 1
    booking = make_booking(
        start=start, end=datetime(2026, 9, 7, tzinfo=santiago), timezone="America/Santiago"
    )
    assert is_all_day(booking)
    assert local_dates(booking) == (date(2026, 9, 6), date(2026, 9, 7))
    assert query(links_for(booking).google)["dates"] == "20260906/20260907"


@pytest.mark.parametrize(
    ("start", "end"),
    [
        # midnight to noon
        (datetime(2026, 12, 1, tzinfo=ZoneInfo("Europe/Berlin")),
         datetime(2026, 12, 1, 12, tzinfo=ZoneInfo("Europe/Berlin"))),
        # midnight to midnight in UTC, not in the booking's zone
        (datetime(2026, 12, 1, tzinfo=UTC), datetime(2026, 12, 2, tzinfo=UTC)),
        # empty
        (datetime(2026, 12, 1, tzinfo=ZoneInfo("Europe/Berlin")),
         datetime(2026, 12, 1, tzinfo=ZoneInfo("Europe/Berlin"))),
    ],
)  # fmt: skip
def test_not_all_day(start: datetime, end: datetime) -> None:
    booking = make_booking(start=start, end=end, timezone="Europe/Berlin")
    assert not is_all_day(booking)
    assert "T" in query(links_for(booking).google)["dates"]
    assert query(links_for(booking).outlook)["allday"] == "false"


# -- length -----------------------------------------------------------------------------


def assert_well_encoded(url: str) -> None:
    assert len(url) < MAX_URL_LENGTH
    # No percent-escape is cut: each "%" starts a full one, and the whole
    # query decodes as UTF-8.
    assert re.fullmatch(r"([^%]|%[0-9A-F]{2})*", url)
    unquote(url, errors="strict")


def test_long_description_is_cut_under_2000_characters() -> None:
    description = "".join(f"{i % 10}é😀漢 " for i in range(1000))  # 5,000 characters
    assert len(description) == 5000
    booking = make_booking(
        title="Beratung 💬 相談", location="Hauptstraße 1, 10115 Berlin", description=description
    )
    links = links_for(booking)
    for url, name in zip(all_urls(links), ("details", "body", "body", "desc"), strict=True):
        assert_well_encoded(url)
        text = query(url)[name]
        assert text.endswith(ELLIPSIS)
        assert description.startswith(text[: -len(ELLIPSIS)])
        # Cut close to the limit, not far below it.
        assert len(url) > MAX_URL_LENGTH - 30
    # The other fields are whole.
    assert query(links.google)["text"] == booking.title
    assert query(links.yahoo)["in_loc"] == booking.location


def test_huge_title_and_location_are_cut_too() -> None:
    booking = make_booking(title="T" * 3000, location="L" * 3000, description="D" * 3000)
    for url in all_urls(links_for(booking)):
        assert_well_encoded(url)
    google = query(links_for(booking).google)
    assert "details" not in google or google["details"] in ("", ELLIPSIS)
    assert google["text"].endswith(ELLIPSIS)


def test_short_text_is_not_touched() -> None:
    assert truncate_encoded("Kurz", 100) == "Kurz"


def test_truncation_keeps_emoji_sequences_whole() -> None:
    family = "👩\u200d👩\u200d👧"
    text = family * 20
    for budget in range(10, 400, 7):
        cut = truncate_encoded(text, budget)
        kept = cut.removesuffix(ELLIPSIS)
        assert len(kept) % len(family) == 0, (budget, kept)


def test_truncation_keeps_combining_marks_with_their_letter() -> None:
    text = "e\u0301" * 100  # é as e + combining acute
    for budget in range(12, 200, 5):
        kept = truncate_encoded(text, budget).removesuffix(ELLIPSIS)
        assert not kept.endswith("e") or kept == ""


def test_no_room_even_for_the_ellipsis() -> None:
    assert truncate_encoded("abcdef", 3) == ""


def test_links_as_dict_for_the_api() -> None:
    links = links_for(make_booking())
    assert links.as_dict() == {
        "google": links.google,
        "outlook": links.outlook,
        "office365": links.office365,
        "yahoo": links.yahoo,
        "ics": ICS_URL,
    }
