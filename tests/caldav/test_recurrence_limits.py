"""One calendar object must not stall everyone (issue 12 item 1, and item
11's expand over COUNT=10^9): what a booking calendar never needs is refused
at PUT with 403 and the RFC 4791 5.3.2.1 precondition, and objects stored
before the limits (written straight into the database here) get a bounded
answer of their own -- a 507 for that object, a 409 for a booking that
meets them -- while the rest of the calendar answers and /healthz goes on
answering (against a real ``calgateway serve``)."""

from __future__ import annotations

import asyncio
import logging
import time
from datetime import UTC, datetime
from pathlib import Path

import aiohttp
import pytest

from gateway.web.keys import REPOSITORY
from tests.backends import Store
from tests.caldav.dav import ADMIN, NS, Answer, C, event, put, request, time_range_query
from tests.conftest import AppClient, settings_yaml
from tests.recurrence import (
    legacy_object,
    minutely_since_2000,
    overridden,
    secondly,
    secondly_2090,
    secondly_zone,
    series,
    store_legacy,
)
from tests.serving import serving

ANNA = "/dav/calendars/anna/"
# Every answer here comes within this many seconds (the expansion budget is
# 2 s per object; the rest is parsing and the test machine's load).
BOUND = 20.0


async def bounded_request(
    client: AppClient, method: str, path: str, body: str, headers: dict[str, str]
) -> tuple[Answer, float]:
    """The answer, and how long it took; never longer than ``BOUND``."""
    started = time.monotonic()
    answer = await asyncio.wait_for(request(client, method, path, body, headers=headers), BOUND)
    return answer, time.monotonic() - started


def expand_query(start: str, end: str) -> str:
    """A calendar-query for every VEVENT in the range, expanded (RFC 4791 9.6.5)."""
    return (
        f'<C:calendar-query xmlns:D="DAV:" xmlns:C="{C}"><D:prop><D:getetag/>'
        f'<C:calendar-data><C:expand start="{start}" end="{end}"/></C:calendar-data>'
        '</D:prop><C:filter><C:comp-filter name="VCALENDAR"><C:comp-filter name="VEVENT">'
        f'<C:time-range start="{start}" end="{end}"/>'
        "</C:comp-filter></C:comp-filter></C:filter></C:calendar-query>"
    )


def free_busy(start: str, end: str) -> str:
    return (
        f'<C:free-busy-query xmlns:C="{C}">'
        f'<C:time-range start="{start}" end="{end}"/></C:free-busy-query>'
    )


def too_large(answer: Answer, href: str) -> str:
    """The 507 of one object in a multistatus, its message: the whole
    response's (the object could not be matched) or its calendar-data
    propstat's (matched, but its expanded data could not be given)."""
    for response in answer.xml().findall("D:response", NS):
        if response.findtext("D:href", namespaces=NS) != href:
            continue
        held = response.findall("D:propstat", NS) if response.find("D:status", NS) is None else []
        where = next(
            (p for p in held if p.find("D:prop/C:calendar-data", NS) is not None), response
        )
        assert where.findtext("D:status", namespaces=NS) == "HTTP/1.1 507 Insufficient Storage"
        assert where.find("D:error/C:max-instances", NS) is not None
        return where.findtext("D:responsedescription", namespaces=NS) or ""
    raise AssertionError(f"no response for {href}: {answer.body!r}")


# -- refused at PUT ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("ics", "precondition", "words"),
    [
        (secondly(), "max-instances", "RRULE:FREQ=SECONDLY repeats more often than daily"),
        (minutely_since_2000(), "max-instances", "RRULE:FREQ=MINUTELY"),
        (secondly_zone(), "valid-calendar-data", "VTIMEZONE STANDARD RRULE:FREQ=SECONDLY"),
        (overridden(5000), "max-instances", "5000 overridden instances"),
        (series("count", "FREQ=DAILY;COUNT=1000000000"), "max-instances", "COUNT=1000000000"),
        (series("hourly", "FREQ=HOURLY;COUNT=5000"), "max-instances", "5000 occurrences"),
        (
            series("until", "FREQ=MINUTELY;UNTIL=20260112T090000Z"),
            "max-instances",
            "limits.max_sub_daily_occurrences",
        ),
        (series("daily", "FREQ=DAILY;UNTIL=20600101T000000Z"), "max-instances", "10000"),
    ],
    ids=[
        "secondly",
        "minutely-2000",
        "secondly-zone",
        "5000-overrides",
        "count-1e9",
        "hourly",
        "minutely-week",
        "daily-34-years",
    ],
)
async def test_put_beyond_the_limits_is_refused_fast(
    client: AppClient, ics: str, precondition: str, words: str
) -> None:
    answer, took = await bounded_request(
        client,
        "PUT",
        f"{ANNA}attack.ics",
        ics,
        headers={"Content-Type": "text/calendar; charset=utf-8"},
    )
    assert answer.status == 403, answer.body
    assert answer.error()[0] == precondition
    assert words in answer.message()
    assert took < 5.0
    # Nothing was stored, and the calendar still answers.
    assert (await request(client, "GET", f"{ANNA}attack.ics")).status == 404


async def test_what_booking_calendars_hold_is_still_accepted(client: AppClient) -> None:
    for name, rule, start in [
        ("weekly", "FREQ=WEEKLY;BYDAY=MO,TH", "20260105T090000Z"),
        ("hourly", "FREQ=HOURLY;COUNT=8", "20260106T100000Z"),
        ("quarter", "FREQ=MINUTELY;INTERVAL=30;UNTIL=20260107T170000Z", "20260107T090000Z"),
        ("yearly", "FREQ=YEARLY;COUNT=100", "20260110T200000Z"),
    ]:
        answer = await put(client, f"{ANNA}{name}.ics", series(name, rule, start, minutes=20))
        assert answer.status == 201, (name, answer.body)


# -- stored before the limits --------------------------------------------------------


async def test_stored_secondly_series_in_2090_gets_answers_of_its_own(
    client: AppClient, api_headers: dict[str, str]
) -> None:
    await store_legacy(client.app[REPOSITORY], secondly_2090())
    meeting = event("meeting", "20900102T080000Z", "20900102T083000Z")
    # The check of the PUT looks two years ahead: the meeting is stored.
    assert (
        await put(
            client, f"{ANNA}normal.ics", event("normal", "20260105T090000Z", "20260105T100000Z")
        )
    ).status == 201

    # calendar-query over 100 years, expanded: the series answers 507, the
    # rest of the calendar as usual.
    answer, _ = await bounded_request(
        client,
        "REPORT",
        ANNA,
        expand_query("20000101T000000Z", "21000101T000000Z"),
        headers={"Depth": "1"},
    )
    assert answer.status == 207
    reason = too_large(answer, f"{ANNA}secondly-2090@attack.ics")
    assert "secondly-2090@attack" in reason and "limits." in reason
    assert "BEGIN:VEVENT" in answer.props(f"{ANNA}normal.ics")["C:calendar-data"].text

    # The plain time-range query needs one instance: it is found.
    answer, _ = await bounded_request(
        client,
        "REPORT",
        ANNA,
        time_range_query("20000101T000000Z", "21000101T000000Z"),
        headers={"Depth": "1"},
    )
    assert answer.status == 207
    assert set(answer.hrefs()) == {f"{ANNA}secondly-2090@attack.ics", f"{ANNA}normal.ics"}

    # free-busy in 2090: 507, not a VFREEBUSY that says the time is free.
    answer, _ = await bounded_request(
        client,
        "REPORT",
        ANNA,
        free_busy("20900101T000000Z", "20901231T000000Z"),
        headers={"Depth": "1"},
    )
    assert answer.status == 507
    assert answer.error()[0] == "max-instances"

    # calendar-multiget with expand: 507 for that object only.
    multiget = (
        f'<C:calendar-multiget xmlns:D="DAV:" xmlns:C="{C}"><D:prop><D:getetag/>'
        '<C:calendar-data><C:expand start="20900101T000000Z" end="20910101T000000Z"/>'
        f"</C:calendar-data></D:prop><D:href>{ANNA}secondly-2090@attack.ics</D:href>"
        f"<D:href>{ANNA}normal.ics</D:href></C:calendar-multiget>"
    )
    answer, _ = await bounded_request(client, "REPORT", ANNA, multiget, headers={"Depth": "1"})
    assert answer.status == 207
    too_large(answer, f"{ANNA}secondly-2090@attack.ics")

    # A booking in 2090 meets the series: refused as a conflict, at once.
    body = {
        "resource": "anna",
        "title": "In 2090",
        "start": "2090-06-01T10:00:00Z",
        "end": "2090-06-01T11:00:00Z",
    }
    started = time.monotonic()
    async with client.post("/api/v1/bookings", json=body, headers=api_headers) as response:
        assert response.status == 409, await response.text()
    assert time.monotonic() - started < BOUND
    # The same booking over CalDAV, too.
    answer, _ = await bounded_request(
        client,
        "PUT",
        f"{ANNA}meeting.ics",
        meeting,
        headers={"Content-Type": "text/calendar; charset=utf-8"},
    )
    assert answer.status == 409
    # Before the series starts the time is free.
    body.update(start="2089-06-01T10:00:00Z", end="2089-06-01T11:00:00Z")
    async with client.post("/api/v1/bookings", json=body, headers=api_headers) as response:
        assert response.status == 201, await response.text()


async def test_expand_over_a_billion_instances_is_507_not_5xx(client: AppClient) -> None:
    """Item 11: expand over a COUNT=10^9 series (stored before the limits)."""
    uid = "billion@attack"
    start = datetime(2026, 1, 5, 9, tzinfo=UTC)
    obj = legacy_object(
        series(uid, "FREQ=DAILY;COUNT=1000000000"),
        uid=uid,
        start=start,
        end=start.replace(minute=30),
    )
    await store_legacy(client.app[REPOSITORY], obj)
    answer, _ = await bounded_request(
        client,
        "REPORT",
        ANNA,
        expand_query("20260101T000000Z", "21260101T000000Z"),
        headers={"Depth": "1"},
    )
    assert answer.status == 207
    # Past limits.max_instances, or its seconds first on a busy machine.
    message = too_large(answer, f"{ANNA}{uid}.ics")
    assert "limits.max_instances" in message or "seconds" in message
    # A year of it expands as usual.
    answer, _ = await bounded_request(
        client,
        "REPORT",
        ANNA,
        expand_query("20260101T000000Z", "20270101T000000Z"),
        headers={"Depth": "1"},
    )
    assert answer.status == 207
    data = answer.props(f"{ANNA}{uid}.ics")["C:calendar-data"].text or ""
    assert data.count("BEGIN:VEVENT") == 361


async def test_sync_collection_with_expand_answers_507_for_that_object_only(
    client: AppClient,
) -> None:
    """A sync-collection may ask for expanded calendar-data too (RFC 6578 3.2,
    RFC 4791 9.6.5): a stored series beyond the limits gets a 507 propstat
    for its calendar-data, the other objects their data, never a 500."""
    await store_legacy(client.app[REPOSITORY], secondly_2090())
    assert (await put(client, f"{ANNA}plain.ics", event("plain"))).status == 201
    body = (
        f'<D:sync-collection xmlns:D="DAV:" xmlns:C="{C}"><D:sync-token/>'
        "<D:sync-level>1</D:sync-level><D:prop><D:getetag/><C:calendar-data>"
        '<C:expand start="20900101T000000Z" end="21900101T000000Z"/>'
        "</C:calendar-data></D:prop></D:sync-collection>"
    )
    answer, _ = await bounded_request(client, "REPORT", ANNA, body, headers={})
    assert answer.status == 207
    responses = {
        r.findtext("D:href", namespaces=NS): r for r in answer.xml().findall("D:response", NS)
    }
    legacy = responses[f"{ANNA}secondly-2090@attack.ics"]
    statuses = [p.findtext("D:status", namespaces=NS) for p in legacy.findall("D:propstat", NS)]
    assert statuses == ["HTTP/1.1 200 OK", "HTTP/1.1 507 Insufficient Storage"]
    assert legacy.find("D:propstat/D:prop/D:getetag", NS) is not None
    assert "limits" in too_large(answer, f"{ANNA}secondly-2090@attack.ics")
    plain = responses[f"{ANNA}plain.ics"]  # its one instance is outside the window
    assert [p.findtext("D:status", namespaces=NS) for p in plain.findall("D:propstat", NS)] == [
        "HTTP/1.1 200 OK"
    ]
    data = plain.findtext("D:propstat/D:prop/C:calendar-data", namespaces=NS) or ""
    assert data.startswith("BEGIN:VCALENDAR")


async def test_healthz_answers_while_a_stored_series_is_expanded(
    tmp_path: Path, store: Store
) -> None:
    """A real server: a 100-year expand of a SECONDLY series stored in 2090
    answers 507 for it within its budget, and /healthz never waits on it."""
    config = tmp_path / "gateway.yaml"
    config.write_text(settings_yaml(store.url, mail=False), encoding="utf-8")
    repository = await store.open()
    try:
        await store_legacy(repository, secondly_2090())
    finally:
        await repository.close()
    async with serving(config) as server, aiohttp.ClientSession() as http:
        gaps: list[float] = []
        done = asyncio.Event()

        async def poll() -> None:
            while not done.is_set():
                started = time.monotonic()
                async with http.get(f"{server.url}/healthz") as response:
                    assert response.status == 200
                gaps.append(time.monotonic() - started)
                await asyncio.sleep(0.02)

        poller = asyncio.create_task(poll())
        try:
            started = time.monotonic()
            async with http.request(
                "REPORT",
                f"{server.url}{ANNA}",
                data=expand_query("20000101T000000Z", "21000101T000000Z"),
                headers={**ADMIN, "Depth": "1", "Content-Type": "application/xml"},
                timeout=aiohttp.ClientTimeout(total=BOUND),
            ) as response:
                body = await response.read()
                status = response.status
            took = time.monotonic() - started
        finally:
            done.set()
            await asyncio.wait_for(poller, BOUND)
    assert status == 207
    too_large(Answer(status, response.headers, body), f"{ANNA}secondly-2090@attack.ics")
    assert took < BOUND
    assert len(gaps) >= 3
    assert max(gaps) < 1.0, gaps


async def test_a_stored_rule_with_a_misspelt_part_logs_one_line_not_a_traceback(
    client: AppClient, caplog: pytest.LogCaptureFixture
) -> None:
    """Issue 13 item 2: an object stored before RRULE parts were checked (UNTL=
    for UNTIL) must not log a traceback on every query that meets it: one
    line naming the object, and the rest of the calendar answers."""
    uid = "typo@legacy"
    start = datetime(2026, 12, 1, 14, tzinfo=UTC)
    obj = legacy_object(
        series(uid, "FREQ=DAILY;UNTL=20261210T000000Z", start="20261201T140000Z"),
        uid=uid,
        start=start,
        end=start.replace(minute=30),
    )
    await store_legacy(client.app[REPOSITORY], obj)
    assert (await put(client, f"{ANNA}plain.ics", event("plain"))).status == 201
    with caplog.at_level(logging.WARNING):
        for _ in range(2):
            answer, _ = await bounded_request(
                client,
                "REPORT",
                ANNA,
                expand_query("20261201T000000Z", "20261231T000000Z"),
                headers={"Depth": "1"},
            )
            assert answer.status == 207
            assert f"{ANNA}plain.ics" in answer.body.decode()
    assert not [r for r in caplog.records if r.exc_info], "a traceback was logged"
    named = [r for r in caplog.records if uid in r.getMessage()]
    assert named, [r.getMessage() for r in caplog.records]
