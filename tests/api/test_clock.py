"""The server runs at the date its clock says (``create_app(settings,
clock=...)``, ``gateway.core.clock``), not at the day the tests run: every
part that reads the time asks the one clock it was given."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient

from gateway.app import create_app
from gateway.settings import Settings
from tests.caldav.dav import event, put

Client = TestClient[Any, Any]
# Far enough ahead that no window around the wall clock reaches it (the
# API lists 30 days from now, recurring objects are checked two years ahead).
AHEAD = timedelta(days=6 * 365)


def six_years_on() -> datetime:
    """A clock that runs with real time, six years later."""
    return datetime.now(UTC) + AHEAD


def day_there(days: int, hour: int) -> datetime:
    moment = six_years_on() + timedelta(days=days)
    return moment.replace(hour=hour, minute=0, second=0, microsecond=0)


async def book(client: Client, headers: dict[str, str], start: datetime) -> Any:
    made = await client.post(
        "/api/v1/bookings",
        json={
            "resource": "anna",
            "start": start.isoformat(),
            "end": (start + timedelta(hours=1)).isoformat(),
            "title": "Check-up",
            "booker": {"email": "zoe@example.com", "name": "Zoë"},
        },
        headers=headers,
    )
    assert made.status == 201, await made.text()
    return await made.json()


@pytest.fixture
async def later(
    settings: Settings, aiohttp_client: Callable[[web.Application], Awaitable[Client]]
) -> Client:
    return await aiohttp_client(create_app(settings, clock=six_years_on))


async def test_the_api_stamps_and_lists_at_the_servers_date(
    later: Client, api_headers: dict[str, str]
) -> None:
    booking = await book(later, api_headers, day_there(3, 9))
    assert datetime.fromisoformat(booking["created"]).year == six_years_on().year
    # No window given: the next 30 days from the server's now.
    listed = await later.get("/api/v1/bookings", params={"resource": "anna"}, headers=api_headers)
    assert [b["id"] for b in (await listed.json())["bookings"]] == [booking["id"]]


async def test_a_series_is_checked_for_double_bookings_around_the_servers_now(
    later: Client, api_headers: dict[str, str]
) -> None:
    """A recurring object is checked within a window around now (it may
    never end): around the server's now, so a daily series over a booking
    six years from today is refused when the server lives then."""
    await book(later, api_headers, day_there(10, 10))
    first = day_there(1, 10).strftime("%Y%m%dT%H%M%SZ")
    until = day_there(1, 11).strftime("%Y%m%dT%H%M%SZ")
    series = event("daily-standup", first, until, extra="RRULE:FREQ=DAILY\r\n")
    answer = await put(later, "/dav/calendars/anna/daily.ics", series)
    assert answer.status == 409, answer.body
