"""REPORTs: calendar-query, calendar-multiget, free-busy-query (RFC 4791 7),
through the real app."""

from __future__ import annotations

from typing import Any

import pytest
from icalendar import Calendar

from caldav_backend.caldav import calendar_query
from tests.caldav.dav import Answer, C, event, put, request, time_range_query
from tests.conftest import AppClient

ANNA = "/dav/calendars/anna/"


async def report(client: AppClient, body: str, path: str = ANNA, depth: str = "1") -> Answer:
    return await request(client, "REPORT", path, body, headers={"Depth": depth})


async def fill(client: AppClient) -> None:
    """Three single events, a weekly series and an all-day event in Berlin."""
    for uid, start, end in (
        ("mon", "20261130T090000Z", "20261130T100000Z"),
        ("tue", "20261201T090000Z", "20261201T100000Z"),
        ("next-week", "20261208T120000Z", "20261208T130000Z"),
    ):
        assert (await put(client, f"{ANNA}{uid}.ics", event(uid, start, end))).status == 201
    weekly = event(
        "weekly",
        "20261102T150000Z",
        "20261102T160000Z",
        extra="RRULE:FREQ=WEEKLY;UNTIL=20261231T000000Z\r\nEXDATE:20261130T150000Z\r\n",
        summary="Team meeting",
    )
    assert (await put(client, f"{ANNA}weekly.ics", weekly)).status == 201
    all_day = (
        "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//t//t//EN\r\nBEGIN:VEVENT\r\nUID:holiday\r\n"
        "DTSTAMP:20261101T000000Z\r\nDTSTART;VALUE=DATE:20261202\r\n"
        "DTEND;VALUE=DATE:20261203\r\nSUMMARY:Holiday\r\nTRANSP:TRANSPARENT\r\n"
        "END:VEVENT\r\nEND:VCALENDAR\r\n"
    )
    assert (await put(client, f"{ANNA}holiday.ics", all_day)).status == 201


def names(answer: Answer) -> set[str]:
    return {h.removeprefix(ANNA) for h in answer.hrefs()}


async def test_time_range_query_expands_recurrences(client: AppClient) -> None:
    await fill(client)
    # Mon 30 Nov .. Wed 2 Dec 12:00 UTC: the series' Monday is excluded by EXDATE.
    answer = await report(client, time_range_query("20261130T000000Z", "20261202T120000Z"))
    assert answer.status == 207
    assert names(answer) == {"mon.ics", "tue.ics", "holiday.ics"}
    # The holiday is a Berlin day: 1 Dec 23:00 UTC .. 2 Dec 23:00 UTC.
    late = await report(client, time_range_query("20261201T225900Z", "20261201T230100Z"))
    assert names(late) == {"holiday.ics"}
    # A later occurrence of the series is found though its first start is weeks before.
    series = await report(client, time_range_query("20261207T000000Z", "20261208T000000Z"))
    assert names(series) == {"weekly.ics"}
    # Ending exactly at the range start is not overlapping.
    edge = await report(client, time_range_query("20261201T100000Z", "20261201T110000Z"))
    assert names(edge) == set()


async def test_query_returns_calendar_data_as_stored(client: AppClient) -> None:
    await fill(client)
    answer = await report(
        client,
        time_range_query("20261201T000000Z", "20261201T235959Z", extra_props="<C:calendar-data/>"),
    )
    data = answer.props(ANNA + "tue.ics")["C:calendar-data"].text
    assert data == event("tue", "20261201T090000Z", "20261201T100000Z")
    etag = answer.props(ANNA + "tue.ics")["D:getetag"].text
    assert etag == (await request(client, "GET", ANNA + "tue.ics")).headers["ETag"]


async def test_query_with_expand_returns_instances_in_utc(client: AppClient) -> None:
    await fill(client)
    body = time_range_query(
        "20261201T000000Z",
        "20261222T000000Z",
        extra_props=(
            '<C:calendar-data><C:expand start="20261201T000000Z" end="20261222T000000Z"/>'
            "</C:calendar-data>"
        ),
    )
    answer = await report(client, body)
    data = answer.props(ANNA + "weekly.ics")["C:calendar-data"].text
    instances = Calendar.from_ical(data).walk("VEVENT")
    assert [e["RECURRENCE-ID"].to_ical().decode() for e in instances] == [
        "20261207T150000Z",
        "20261214T150000Z",
        "20261221T150000Z",
    ]
    assert all("RRULE" not in e for e in instances)


async def test_text_match_and_negation(client: AppClient) -> None:
    await fill(client)

    def query(match: str, negate: str = "no") -> str:
        return (
            f'<C:calendar-query xmlns:D="DAV:" xmlns:C="{C}"><D:prop><D:getetag/></D:prop>'
            '<C:filter><C:comp-filter name="VCALENDAR"><C:comp-filter name="VEVENT">'
            '<C:prop-filter name="SUMMARY">'
            f'<C:text-match collation="i;ascii-casemap" negate-condition="{negate}">{match}'
            "</C:text-match></C:prop-filter></C:comp-filter></C:comp-filter></C:filter>"
            "</C:calendar-query>"
        )

    assert names(await report(client, query("TEAM"))) == {"weekly.ics"}
    assert names(await report(client, query("team", "yes"))) == {
        "mon.ics",
        "tue.ics",
        "next-week.ics",
        "holiday.ics",
    }


def _query(filter_xml: str) -> str:
    return (
        f'<C:calendar-query xmlns:D="DAV:" xmlns:C="{C}"><D:prop><D:getetag/></D:prop>'
        f"<C:filter>{filter_xml}</C:filter></C:calendar-query>"
    )


async def test_query_for_todos_finds_nothing(client: AppClient) -> None:
    await fill(client)
    calendar = '<C:comp-filter name="VCALENDAR"><C:comp-filter name="{}"/></C:comp-filter>'
    assert names(await report(client, _query(calendar.format("VTODO")))) == set()
    assert len(names(await report(client, _query(calendar.format("VEVENT"))))) == 5


async def test_bad_filters_are_refused_with_the_precondition(client: AppClient) -> None:
    cases = {
        _query('<C:comp-filter name="VEVENT"/>'): "valid-filter",
        time_range_query("2026-12-01", "20261202T000000Z"): "valid-filter",
        time_range_query("20261202T000000Z", "20261201T000000Z"): "valid-filter",
        _query(
            '<C:comp-filter name="VCALENDAR"><C:prop-filter name="X">'
            '<C:text-match collation="i;klingon">x</C:text-match></C:prop-filter>'
            "</C:comp-filter>"
        ): "supported-collation",
        f'<C:calendar-query xmlns:C="{C}"/>': "valid-filter",
    }
    for body, condition in cases.items():
        answer = await report(client, body)
        assert answer.status == 403, (body, answer.body)
        assert condition in answer.error()
        assert answer.message()


async def test_multiget_answers_each_href(client: AppClient) -> None:
    await fill(client)
    body = (
        f'<C:calendar-multiget xmlns:D="DAV:" xmlns:C="{C}">'
        "<D:prop><D:getetag/><C:calendar-data/></D:prop>"
        f"<D:href>{ANNA}tue.ics</D:href>"
        f"<D:href>http://gateway.test{ANNA}mon.ics</D:href>"
        f"<D:href>{ANNA}missing.ics</D:href>"
        "<D:href>/dav/calendars/bob/tue.ics</D:href>"
        "</C:calendar-multiget>"
    )
    answer = await report(client, body)
    assert answer.status == 207
    assert "UID:tue" in answer.props(ANNA + "tue.ics")["C:calendar-data"].text
    # An absolute URL is answered with the object's path.
    assert "UID:mon" in answer.props(f"{ANNA}mon.ics")["C:calendar-data"].text
    assert answer.statuses() == {
        f"{ANNA}missing.ics": "HTTP/1.1 404 Not Found",
        "/dav/calendars/bob/tue.ics": "HTTP/1.1 404 Not Found",
    }


def _periods(body: bytes) -> list[str]:
    unfolded = body.decode().replace("\r\n ", "")
    return sorted(
        period
        for line in unfolded.splitlines()
        if line.startswith("FREEBUSY")
        for period in line.split(":", 1)[1].split(",")
    )


async def test_free_busy_query(client: AppClient) -> None:
    await fill(client)
    body = (
        f'<C:free-busy-query xmlns:C="{C}">'
        '<C:time-range start="20261130T000000Z" end="20261209T000000Z"/></C:free-busy-query>'
    )
    answer = await report(client, body)
    assert answer.status == 200
    assert answer.headers["Content-Type"].startswith("text/calendar")
    assert len(Calendar.from_ical(answer.body).walk("VFREEBUSY")) == 1
    # Busy: the Monday and Tuesday mornings, the series on 7 Dec, next week's
    # event; not the Monday the series excludes, not the transparent holiday.
    assert _periods(answer.body) == [
        "20261130T090000Z/20261130T100000Z",
        "20261201T090000Z/20261201T100000Z",
        "20261207T150000Z/20261207T160000Z",
        "20261208T120000Z/20261208T130000Z",
    ]


async def test_unknown_report_is_refused(client: AppClient) -> None:
    answer = await report(client, '<D:expand-property xmlns:D="DAV:"/>')
    assert answer.status == 403
    assert "supported-report" in answer.error()
    home = await report(client, time_range_query("20261201T000000Z", "20261202T000000Z"), "/dav/")
    assert home.status == 403


async def test_a_page_whose_series_answer_is_known_is_answered_without_a_worker(
    client: AppClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A page holding a recurring object goes to a worker thread until the
    engine knows that object's answer to the filter; then the same query is
    answered on the loop, with the same bytes. Data with a limited
    recurrence set (RFC 4791 9.6.6) parses the series, so it always goes."""
    await fill(client)
    hops: list[object] = []
    real = calendar_query.off_loop

    async def counted(work: Any) -> Any:
        hops.append(work)
        return await real(work)

    monkeypatch.setattr(calendar_query, "off_loop", counted)
    week = time_range_query(
        "20261207T000000Z", "20261214T000000Z", extra_props="<C:calendar-data/>"
    )
    first = await report(client, week)
    assert names(first) == {"weekly.ics", "next-week.ics"}
    assert len(hops) == 1
    again = await report(client, week)
    assert again.body == first.body
    assert len(hops) == 1  # no hop the second time
    limited = week.replace(
        "<C:calendar-data/>",
        '<C:calendar-data><C:limit-recurrence-set start="20261207T000000Z" '
        'end="20261214T000000Z"/></C:calendar-data>',
    )
    for expected in (2, 3):
        assert names(await report(client, limited)) == {"weekly.ics", "next-week.ics"}
        assert len(hops) == expected
