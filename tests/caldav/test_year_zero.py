"""A calendar object whose DTSTAMP, CREATED and LAST-MODIFIED are in year
0000 (grammatical per RFC 5545 3.3.4/3.3.5, written by some exporters, and
beyond what Python's datetime holds) is stored and served as sent, and
nothing that serves or changes it breaks (issue 13 item 4): the gateway
does not read those properties (``gateway.ical.parse.READ_PROPERTIES``)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from tests.caldav.dav import NS, put, reports, request
from tests.conftest import AppClient
from tests.ical_readers import assert_readable, read_icalendar

ANNA = "/dav/calendars/anna/"
HREF = ANNA + "year-zero.ics"
FIXTURE = (
    Path(__file__).resolve().parents[1]
    / "fixtures"
    / "ical"
    / "accepted-year-0000-created-dtstamp-last-modified.ics"
)
TEXT = FIXTURE.read_bytes().decode("utf-8")
FEED_TOKEN = "anna-feed-token-0123456789abcdef"
C = NS["C"]


def query(inner: str, data: str = "<C:calendar-data/>") -> str:
    return (
        f'<C:calendar-query xmlns:D="DAV:" xmlns:C="{C}"><D:prop><D:getetag/>{data}</D:prop>'
        f'<C:filter><C:comp-filter name="VCALENDAR"><C:comp-filter name="VEVENT">{inner}'
        "</C:comp-filter></C:comp-filter></C:filter></C:calendar-query>"
    )


RANGE = '<C:time-range start="20260301T000000Z" end="20260401T000000Z"/>'
EXPAND = (
    '<C:calendar-data><C:expand start="20260301T000000Z" end="20260401T000000Z"/></C:calendar-data>'
)
FREE_BUSY = (
    f'<C:free-busy-query xmlns:C="{C}">'
    '<C:time-range start="20260301T000000Z" end="20260401T000000Z"/></C:free-busy-query>'
)


async def test_kept_as_sent_and_served_everywhere(client: AppClient) -> None:
    stored = await put(client, HREF, TEXT)
    assert stored.status == 201, stored.body
    got = await request(client, "GET", HREF)
    assert got.body.decode("utf-8") == TEXT
    for name, answer in (await reports(client, ANNA)).items():
        assert answer.status == 207, name
        if name != "propfind":
            assert answer.calendar_data() == {HREF: TEXT}, name
    expanded = await request(client, "REPORT", ANNA, query(RANGE, EXPAND), headers={"Depth": "1"})
    assert expanded.status == 207
    data = expanded.calendar_data()[HREF]
    assert_readable(data, "expanded calendar-data")
    # RFC 4791 9.6.5: expanded, in UTC; the year-0000 values stay as sent.
    assert "DTSTART:20260302T090000Z\r\n" in data
    assert "CREATED:00000101T000000Z\r\n" in data
    busy = await request(client, "REPORT", ANNA, FREE_BUSY, headers={"Depth": "1"})
    assert busy.status == 200
    assert b"20260302T090000Z/" in busy.body.replace(b"\r\n ", b"")
    for view in ("full", "busy"):
        async with client.get(
            "/feeds/anna.ics", params={"token": FEED_TOKEN, "view": view}
        ) as feed:
            assert feed.status == 200
            body = await feed.read()
        assert_readable(body, f"the {view} feed")
        assert b"20260302T100000" in body, view


async def test_a_query_on_the_year_0000_properties_answers(client: AppClient) -> None:
    assert (await put(client, HREF, TEXT)).status == 201
    # RFC 4791 9.7.2: a prop-filter on a property Python cannot hold as a
    # date; the year-0000 instant lies in no range, its text still matches.
    in_range = query(f'<C:prop-filter name="CREATED">{RANGE}</C:prop-filter>')
    text = query(
        '<C:prop-filter name="LAST-MODIFIED"><C:text-match>0000</C:text-match></C:prop-filter>'
    )
    answers = [
        await request(client, "REPORT", ANNA, body, headers={"Depth": "1"})
        for body in (in_range, text)
    ]
    assert [a.status for a in answers] == [207, 207]
    assert answers[0].hrefs() == []
    assert answers[1].hrefs() == [HREF]


async def test_api_reschedule_and_cancel(client: AppClient, api_headers: dict[str, str]) -> None:
    assert (await put(client, HREF, TEXT)).status == 201
    listed = await client.get(
        "/api/v1/bookings",
        params={"resource": "anna", "start": "2026-03-02T00:00:00Z", "end": "2026-03-03T00:00Z"},
        headers=api_headers,
    )
    (booking,) = (await listed.json())["bookings"]
    moved = await client.patch(
        f"/api/v1/bookings/{booking['id']}",
        json={"start": "2026-03-02T12:00:00Z", "end": "2026-03-02T13:00:00Z"},
        headers=api_headers,
    )
    assert moved.status == 200, await moved.text()
    after = (await request(client, "GET", HREF)).body
    assert_readable(after, "the object after the API moved it")
    [calendar] = read_icalendar(after)
    [event] = calendar.walk("VEVENT")
    # The gateway revised the object: RFC 5545 3.8.7.2/3.8.7.3 stamp it now.
    assert event.decoded("DTSTART") == datetime(2026, 3, 2, 12, tzinfo=UTC)
    assert b"DTSTAMP:0000" not in after and b"LAST-MODIFIED:0000" not in after
    cancelled = await client.delete(f"/api/v1/bookings/{booking['id']}", headers=api_headers)
    assert cancelled.status in (200, 204), await cancelled.text()
    assert_readable((await request(client, "GET", HREF)).body, "the cancelled object")
