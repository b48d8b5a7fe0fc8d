"""Calendars bigger than one page of the store: PROPFIND Depth 1,
calendar-query (with or without a time range) and an initial sync-collection
are sent a page at a time (chunked), the feed is built a page at a time, and
every object still comes exactly once."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from icalendar import Calendar

from tests.caldav.dav import (
    C,
    event,
    propfind,
    put,
    request,
    sync,
    time_range_query,
    token_of,
)
from tests.conftest import AppClient

ANNA_FEED_TOKEN = "anna-feed-token-0123456789abcdef"  # tests/conftest.py
BERLIN = ZoneInfo("Europe/Berlin")

ANNA = "/dav/calendars/anna/"
COUNT = 1100  # more than two pages (gateway.store.snapshots.PAGE_ROWS)
FIRST = datetime(2027, 1, 4, 8, tzinfo=UTC)


def _stamp(moment: datetime) -> str:
    return moment.strftime("%Y%m%dT%H%M%SZ")


def _booking(n: int) -> str:
    """Hour n after FIRST; every third in Berlin time (same instant)."""
    start = FIRST + timedelta(hours=n)
    end = start + timedelta(hours=1)
    summary = "Even" if n % 2 == 0 else "Odd"
    if n % 3:
        return event(f"b{n:04d}", _stamp(start), _stamp(end), summary=summary)
    local = [t.astimezone(BERLIN).strftime("%Y%m%dT%H%M%S") for t in (start, end)]
    ics = event(f"b{n:04d}", *local, summary=summary)
    return ics.replace("DTSTART:", "DTSTART;TZID=Europe/Berlin:").replace(
        "DTEND:", "DTEND;TZID=Europe/Berlin:"
    )


async def fill(client: AppClient) -> dict[str, str]:
    """COUNT one-hour bookings, none overlapping; their ETags by href."""
    etags: dict[str, str] = {}
    slots = iter(range(COUNT))

    async def worker() -> None:
        for n in slots:
            answer = await put(client, f"{ANNA}b{n:04d}.ics", _booking(n))
            assert answer.status == 201, answer.body
            etags[f"{ANNA}b{n:04d}.ics"] = answer.headers["ETag"]

    await asyncio.gather(*(worker() for _ in range(8)))
    return etags


async def test_propfind_depth_1_lists_a_big_calendar_once_each(client: AppClient) -> None:
    etags = await fill(client)
    answer = await propfind(client, ANNA, "D:getetag", "D:resourcetype", depth="1")
    assert answer.status == 207
    assert answer.headers.get("Transfer-Encoding") == "chunked"  # sent as it is read
    hrefs = answer.hrefs()
    assert hrefs[0] == ANNA
    assert sorted(hrefs[1:]) == sorted(etags) and len(hrefs) == COUNT + 1
    for href in (f"{ANNA}b0000.ics", f"{ANNA}b0600.ics", f"{ANNA}b{COUNT - 1:04d}.ics"):
        assert answer.props(href)["D:getetag"].text == etags[href]


async def test_unbounded_calendar_query_finds_matches_on_every_page(client: AppClient) -> None:
    etags = await fill(client)
    body = (
        f'<C:calendar-query xmlns:D="DAV:" xmlns:C="{C}"><D:prop><D:getetag/></D:prop>'
        '<C:filter><C:comp-filter name="VCALENDAR"><C:comp-filter name="VEVENT">'
        '<C:prop-filter name="SUMMARY"><C:text-match>odd</C:text-match></C:prop-filter>'
        "</C:comp-filter></C:comp-filter></C:filter></C:calendar-query>"
    )
    answer = await request(client, "REPORT", ANNA, body, headers={"Depth": "1"})
    assert answer.status == 207
    odd = sorted(f"{ANNA}b{n:04d}.ics" for n in range(1, COUNT, 2))
    assert sorted(answer.hrefs()) == odd
    assert answer.props(odd[-1])["D:getetag"].text == etags[odd[-1]]


async def test_a_query_for_years_streams_the_whole_calendar(client: AppClient) -> None:
    etags = await fill(client)
    body = time_range_query("20260101T000000Z", "20300101T000000Z")
    answer = await request(client, "REPORT", ANNA, body, headers={"Depth": "1"})
    assert answer.status == 207
    assert answer.headers.get("Transfer-Encoding") == "chunked"
    assert sorted(answer.hrefs()) == sorted(etags)


async def test_a_listing_that_finds_nothing_is_still_a_multistatus(client: AppClient) -> None:
    body = (
        f'<C:calendar-query xmlns:D="DAV:" xmlns:C="{C}"><D:prop><D:getetag/></D:prop>'
        '<C:filter><C:comp-filter name="VCALENDAR"><C:comp-filter name="VEVENT"/>'
        "</C:comp-filter></C:filter></C:calendar-query>"
    )
    answer = await request(client, "REPORT", ANNA, body, headers={"Depth": "1"})
    assert answer.status == 207
    assert answer.hrefs() == []


async def test_the_feed_of_a_big_calendar_has_every_event_once(client: AppClient) -> None:
    await fill(client)
    reply = await client.get("/feeds/anna.ics", params={"token": ANNA_FEED_TOKEN})
    assert reply.status == 200
    feed = Calendar.from_ical(await reply.read())
    uids = [str(event["UID"]) for event in feed.walk("VEVENT")]
    assert sorted(uids) == [f"b{n:04d}" for n in range(COUNT)]
    # One VTIMEZONE per zone for the whole feed, not one per page.
    zones = [str(zone["TZID"]) for zone in feed.walk("VTIMEZONE")]
    assert zones == ["Europe/Berlin"]


async def test_an_initial_sync_of_a_big_calendar_lists_everything_then_nothing(
    client: AppClient,
) -> None:
    etags = await fill(client)
    first = await sync(client, data=True)
    assert first.status == 207
    assert first.headers.get("Transfer-Encoding") == "chunked"
    assert sorted(first.hrefs()) == sorted(etags)
    last = f"{ANNA}b{COUNT - 1:04d}.ics"
    assert first.props(last)["D:getetag"].text == etags[last]
    assert f"UID:b{COUNT - 1:04d}" in first.props(last)["C:calendar-data"].text
    # The token after the streamed listing covers all of it.
    again = await sync(client, token_of(first))
    assert again.status == 207 and again.hrefs() == []
