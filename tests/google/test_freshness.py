"""A fresh look at Google before a booking is accepted (issue 18, "Beyond
the peers"; ``gateway.core.freshness``, ``google_bridge.freshness``).

Push notifications are dropped in these tests (``fake.drop_notifications``)
and the poll interval is an hour, so only the fresh look can bring an event
made in Google into the gateway before the booking is decided. The age of
the last sync is set back in the database instead of waiting for it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from fake_google.calendar import FakeGoogle
from gateway.core.mirror import LogKind
from tests.backends import Store
from tests.caldav.dav import put
from tests.conftest import API_TOKEN
from tests.dbcheck import row_counts
from tests.google.harness import Gateway, at, gtime, running_gateway
from tests.smtp import Recorder

ROOM = "room1.google@example.com"  # from_google
ANNA = "anna.google@example.com"  # two_way
CARL = "carl.google@example.com"  # to_google

RESOURCES = """\
  - id: anna
    name: Anna Schmidt
    email: anna@example.com
  - id: room
    name: Room 1
    email: room1@example.com
    google: {direction: from_google, when_stale: refuse}
  - id: carl
    name: Carl Berg
    email: carl@example.com
    google: {direction: to_google}
  - id: dora
    name: Dora Lind
    email: dora@example.com
    google: {direction: from_google}
"""


@pytest.fixture
async def gw(
    tmp_path: Path, store: Store, fake: FakeGoogle, mail: tuple[Recorder, int]
) -> AsyncIterator[Gateway]:
    """anna (two_way) accepts at risk, room (from_google) refuses; a deadline
    no sync of the fake misses, however loaded the machine, so the look
    always ends in time (``hurried`` is for the tests of a late Google)."""
    async with _gateway(tmp_path, store, fake, mail, deadline=30) as gateway:
        yield gateway


@pytest.fixture
async def hurried(
    tmp_path: Path, store: Store, fake: FakeGoogle, mail: tuple[Recorder, int]
) -> AsyncIterator[Gateway]:
    """As ``gw``, with a deadline short enough for the fake's latency to pass it."""
    async with _gateway(tmp_path, store, fake, mail, deadline=0.3) as gateway:
        yield gateway


@contextlib.asynccontextmanager
async def _gateway(
    tmp_path: Path, store: Store, fake: FakeGoogle, mail: tuple[Recorder, int], deadline: float
) -> AsyncIterator[Gateway]:
    async with running_gateway(
        tmp_path,
        store,
        fake,
        mail,
        resources=RESOURCES,
        google=f"  freshness_deadline: {deadline}\n",
        server="  metrics: public\n",
    ) as gateway:
        yield gateway


async def age_last_sync(gateway: Gateway, resource: str, seconds: float = 120) -> None:
    """Make the last successful sync ``seconds`` old (as if no sync had run since)."""
    connection = await gateway.repo.get_connection(resource)
    assert connection is not None and connection.last_sync_at is not None
    earlier = datetime.now(UTC) - timedelta(seconds=seconds)
    async with gateway.repo.transaction() as tx:
        await tx.save_connection(replace(connection, last_sync_at=earlier))


def lists(fake: FakeGoogle, calendar: str | None = None) -> int:
    """events.list calls on a calendar, or on any (a sync is one per page)."""
    return sum(
        1
        for r in fake.requests
        if r.method == "GET"
        and r.path.startswith("/calendar/v3/calendars/")
        and r.path.endswith("/events")
        and (calendar is None or r.path == f"/calendar/v3/calendars/{calendar}/events")
    )


def booking_body(resource: str, start: datetime, end: datetime, title: str = "B") -> dict[str, str]:
    return {
        "resource": resource,
        "start": start.isoformat(),
        "end": end.isoformat(),
        "title": title,
    }


def vevent(uid: str, start: datetime, end: datetime) -> str:
    utc = "%Y%m%dT%H%M%SZ"
    return (
        "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//test//fresh//EN\r\n"
        f"BEGIN:VEVENT\r\nUID:{uid}\r\nDTSTAMP:20260101T000000Z\r\n"
        f"DTSTART:{start.astimezone(UTC):{utc}}\r\nDTEND:{end.astimezone(UTC):{utc}}\r\n"
        "SUMMARY:Walk-in\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n"
    )


async def dav_put(gateway: Gateway, resource: str, uid: str, ics: str) -> object:
    return await put(gateway.http, f"{gateway.url}/dav/calendars/{resource}/{uid}.ics", ics)  # type: ignore[arg-type]


# -- the look finds what Google has -------------------------------------------------


@pytest.mark.parametrize("resource", ["room", "anna"])
async def test_an_event_made_in_google_a_moment_before_refuses_the_booking(
    gw: Gateway, resource: str
) -> None:
    account = ROOM if resource == "room" else ANNA
    await gw.connect(resource, account)
    await age_last_sync(gw, resource)
    gw.fake.drop_notifications = True
    gw.fake.user_insert(account, gtime(at(3, 10), at(3, 11)))

    refused = await gw.api("POST", "/bookings", booking_body(resource, at(3, 10), at(3, 11)))
    assert refused["status"] == 409, refused
    assert refused["title"] == "Booking conflict"
    # The same through CalDAV, and a reschedule into the slot.
    answer = await dav_put(gw, resource, "walk-in", vevent("walk-in@x", at(3, 10), at(3, 11)))
    assert answer.status == 409, answer.body  # type: ignore[attr-defined]
    gw.fake.user_insert(account, gtime(at(4, 10), at(4, 11)))
    await age_last_sync(gw, resource)
    booked = await gw.book(resource, at(4, 8), at(4, 9), "Early")
    await age_last_sync(gw, resource)
    moved = await gw.api(
        "PATCH",
        f"/bookings/{booked['id']}",
        {"start": at(4, 10).isoformat(), "end": at(4, 11).isoformat()},
    )
    assert moved["status"] == 409, moved


async def test_a_fresh_last_sync_costs_no_google_call(gw: Gateway) -> None:
    await gw.connect("room", ROOM)
    calls = len(gw.fake.requests)
    await gw.book("room", at(2, 9), at(2, 10), "Fresh")
    answer = await dav_put(gw, "room", "fresh", vevent("fresh@x", at(2, 11), at(2, 12)))
    assert answer.status == 201  # type: ignore[attr-defined]
    assert len(gw.fake.requests) == calls


async def test_sixteen_concurrent_bookings_share_one_sync(gw: Gateway) -> None:
    await gw.connect("room", ROOM)
    await age_last_sync(gw, "room")
    gw.fake.latency = 0.05  # the bookings arrive while the sync is under way
    before = lists(gw.fake, ROOM)
    booked = await asyncio.gather(
        *(gw.book("room", at(5, 6 + n), at(5, 6 + n, 30), f"C{n}") for n in range(16))
    )
    assert len({b["id"] for b in booked}) == 16
    assert lists(gw.fake, ROOM) - before == 1
    # And the sync just made counts as fresh for the next booking.
    await gw.book("room", at(6, 9), at(6, 10), "After")
    assert lists(gw.fake, ROOM) - before == 1


# -- Google slower than the deadline ------------------------------------------------


async def test_accept_policy_books_and_logs_the_risk(
    hurried: Gateway, caplog: pytest.LogCaptureFixture
) -> None:
    await hurried.connect("anna", ANNA)
    await age_last_sync(hurried, "anna", 95)
    hurried.fake.latency = 2.0  # far beyond freshness_deadline (0.3 s)
    caplog.set_level(logging.WARNING, logger="calgateway.google")

    booked = await hurried.book("anna", at(2, 9), at(2, 10), "At risk")
    answer = await dav_put(hurried, "anna", "risky", vevent("risky@x", at(2, 11), at(2, 12)))
    assert answer.status == 201  # type: ignore[attr-defined]

    stored = await hurried.repo.get_by_uid("anna", "risky@x")
    entries = [e for e in await hurried.admin.log("anna") if e.kind is LogKind.WARNING]
    by_booking = {e.booking_id: e.message for e in entries}
    assert set(by_booking) >= {booked["id"], stored.booking.id}
    assert "95 s old" in by_booking[booked["id"]]
    assert "did not answer within 0.3 s" in by_booking[booked["id"]]
    warnings = [r for r in caplog.records if "stale Google busy time" in r.getMessage()]
    assert [r.booking for r in warnings] == [booked["id"], stored.booking.id]  # type: ignore[attr-defined]
    assert all(r.levelno == logging.WARNING for r in warnings)


async def test_refuse_policy_answers_503_and_writes_nothing(hurried: Gateway) -> None:
    await hurried.connect("room", ROOM)
    await age_last_sync(hurried, "room")
    hurried.fake.latency = 2.0
    before = row_counts(hurried.store)

    async with hurried.http.post(
        f"{hurried.url}/api/v1/bookings",
        json=booking_body("room", at(2, 9), at(2, 10)),
        headers={"Authorization": f"Bearer {API_TOKEN}"},
    ) as response:
        problem = await response.json(content_type=None)
        assert response.status == 503, problem
        assert response.content_type == "application/problem+json"
        assert response.headers["Retry-After"] == "2"  # ceil(0.3 s) + 1
    assert "120 s old" in problem["detail"] and "nothing was saved" in problem["detail"]

    answer = await dav_put(hurried, "room", "walk-in", vevent("walk-in@x", at(2, 11), at(2, 12)))
    assert answer.status == 503  # type: ignore[attr-defined]
    assert answer.headers["Retry-After"] == "2"  # type: ignore[attr-defined]
    assert "busy-time-current" in answer.error()  # type: ignore[attr-defined]
    assert "could not be asked" in answer.message()  # type: ignore[attr-defined]
    assert row_counts(hurried.store) == before


async def test_a_retry_with_its_idempotency_key_gets_the_first_answer_not_a_503(
    hurried: Gateway,
) -> None:
    """A booking already made needs no fresh look: its retry (the same
    Idempotency-Key) answers as the first time, even when Google is late."""
    await hurried.connect("room", ROOM)
    headers = {"Authorization": f"Bearer {API_TOKEN}", "Idempotency-Key": "retry-7"}
    body = booking_body("room", at(2, 9), at(2, 10))
    async with hurried.http.post(
        f"{hurried.url}/api/v1/bookings", json=body, headers=headers
    ) as made:
        assert made.status == 201
        first = await made.json()
    await age_last_sync(hurried, "room")
    hurried.fake.latency = 2.0
    async with hurried.http.post(
        f"{hurried.url}/api/v1/bookings", json=body, headers=headers
    ) as again:
        assert again.status == 201, await again.text()
        assert (await again.json())["id"] == first["id"]


async def test_refuse_policy_refuses_while_google_needs_a_reconnect(gw: Gateway) -> None:
    await gw.connect("room", ROOM)
    await age_last_sync(gw, "room")
    gw.fake.revoke(ROOM)
    gw.fake.expire_access_tokens()
    problem = await gw.api("POST", "/bookings", booking_body("room", at(2, 9), at(2, 10)))
    assert problem["status"] == 503, problem
    assert "reconnect needed" in problem["detail"]


# -- which resources look ------------------------------------------------------------


async def test_no_look_for_to_google_off_or_unconnected_resources(gw: Gateway) -> None:
    await gw.connect("carl", CARL)  # to_google: imports nothing, so nothing to look at
    await age_last_sync(gw, "carl")
    gw.fake.drop_notifications = True
    gw.fake.user_insert(CARL, gtime(at(2, 9), at(2, 10)))  # not busy time for carl
    before = lists(gw.fake, CARL)
    await gw.book("carl", at(2, 9), at(2, 10), "Carl")
    assert lists(gw.fake, CARL) == before
    # dora imports from Google but is not connected: nothing to look at.
    calls = lists(gw.fake)
    await gw.book("dora", at(2, 9), at(2, 10), "Dora")
    assert lists(gw.fake) == calls


async def test_freshness_zero_never_looks(
    tmp_path: Path, store: Store, fake: FakeGoogle, mail: tuple[Recorder, int]
) -> None:
    async with running_gateway(
        tmp_path, store, fake, mail, resources=RESOURCES, google="  freshness_seconds: 0\n"
    ) as gateway:
        await gateway.connect("room", ROOM)
        await age_last_sync(gateway, "room")
        fake.drop_notifications = True
        fake.user_insert(ROOM, gtime(at(3, 10), at(3, 11)))
        before = lists(fake, ROOM)
        await gateway.book("room", at(3, 10), at(3, 11), "Blind")  # the risk the operator chose
        assert lists(fake, ROOM) == before


# -- the age is visible -------------------------------------------------------------


async def test_sync_age_in_the_status_and_the_metrics(gw: Gateway) -> None:
    await gw.connect("room", ROOM)
    await age_last_sync(gw, "room", 600)
    status = await gw.api("GET", "/sync/status", expect=200)
    ages = {s["resource"]: s["last_sync_age_seconds"] for s in status["resources"]}
    assert 600 <= ages["room"] < 660
    assert ages["dora"] is None  # never synced
    async with gw.http.get(f"{gw.url}/metrics") as response:
        text = await response.text()
    (line,) = [
        line
        for line in text.splitlines()
        if line.startswith('calgateway_google_sync_age_seconds{resource="room"}')
    ]
    assert 600 <= float(line.split()[-1]) < 660
    assert 'calgateway_google_sync_age_seconds{resource="dora"}' not in text
