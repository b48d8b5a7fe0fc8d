"""Disk full, as an operator meets it (issue 12, item 8): the booking API
answers 503 with Retry-After and CalDAV 507 (RFC 4918 11.5), both saying
storage is full; /healthz turns 503 "storage full" because it tests a
write; one log line, no traceback per request; once space is freed
everything works again and no acknowledged booking is missing.

The full disk is SQLite's own SQLITE_FULL on the app's real database file
(``tests.storage``)."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from aiohttp import web

from gateway.core.errors import StorageFull
from gateway.web.health import storage_full_middleware
from gateway.web.keys import REPOSITORY
from tests.caldav.dav import event, put
from tests.conftest import AppClient
from tests.samples import SLOT
from tests.storage import fill_disk, free_disk, fresh_full_log

# Each booking needs a few pages of its own: the free pages left in the file
# are used up within a few bookings.
BIG = "x" * 9000


def slot(n: int) -> dict[str, Any]:
    day = 1 + n % 28
    month = 1 + n // 28
    return {
        **SLOT,
        "start": f"2027-{month:02d}-{day:02d}T09:00:00+01:00",
        "end": f"2027-{month:02d}-{day:02d}T10:00:00+01:00",
        "description": BIG,
    }


async def test_disk_full_is_named_and_nothing_acknowledged_is_lost(
    client: AppClient,
    api_headers: dict[str, str],
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    fresh_full_log(monkeypatch)
    repo = client.app[REPOSITORY]
    first = await client.post("/api/v1/bookings", json=slot(0), headers=api_headers)
    assert first.status == 201
    acknowledged = [(await first.json())["id"]]
    assert (await client.get("/healthz")).status == 200

    await fill_disk(repo)  # type: ignore[arg-type]
    caplog.clear()
    with caplog.at_level(logging.INFO):
        refused = None
        for n in range(1, 40):
            resp = await client.post("/api/v1/bookings", json=slot(n), headers=api_headers)
            if resp.status != 201:
                refused = resp
                break
            acknowledged.append((await resp.json())["id"])
        assert refused is not None, "the booking API never noticed the full disk"
        assert refused.status == 503
        assert refused.content_type == "application/problem+json"
        assert refused.headers["Retry-After"].isdigit()
        problem = await refused.json()
        assert problem["title"] == "Storage full"
        assert "storage is full" in problem["detail"]

        # More refused bookings: still 503, still no traceback.
        for n in range(40, 45):
            again = await client.post("/api/v1/bookings", json=slot(n), headers=api_headers)
            assert again.status == 503

        dav = await put(
            client, "/dav/calendars/anna/full.ics", event("full-1", extra=f"DESCRIPTION:{BIG}\r\n")
        )
        assert dav.status == 507
        assert b"sufficient-disk-space" in dav.body
        assert b"storage is full" in dav.body

        health = await client.get("/healthz")
        assert health.status == 503
        assert (await health.json())["storage"] == "full"

        # Reads still answer while full.
        for booking_id in acknowledged:
            got = await client.get(f"/api/v1/bookings/{booking_id}", headers=api_headers)
            assert got.status == 200

    storage_lines = [r for r in caplog.records if r.name == "calgateway.storage"]
    said = [r.getMessage() for r in storage_lines]
    # One line; small writes (outbox bookkeeping) may still squeeze through,
    # which may add one "writable again", never a line per refused request.
    assert said[0] == "storage full: changes are refused until disk space is freed"
    assert said.count(said[0]) == 1
    assert len(said) <= 2
    assert not [r for r in caplog.records if r.exc_info], "a traceback was logged"
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR and r not in storage_lines]

    await free_disk(repo)  # type: ignore[arg-type]
    health = await client.get("/healthz")
    assert health.status == 200
    assert (await health.json())["storage"] == "ok"
    again = await client.post("/api/v1/bookings", json=slot(50), headers=api_headers)
    assert again.status == 201
    acknowledged.append((await again.json())["id"])
    dav = await put(
        client, "/dav/calendars/anna/full.ics", event("full-1", extra=f"DESCRIPTION:{BIG}\r\n")
    )
    assert dav.status == 201
    for booking_id in acknowledged:
        got = await client.get(f"/api/v1/bookings/{booking_id}", headers=api_headers)
        assert got.status == 200, booking_id


async def test_any_other_page_that_meets_a_full_disk_answers_503(
    aiohttp_client: Callable[[web.Application], Awaitable[AppClient]],
) -> None:
    """Pages outside the API and CalDAV (RSVP answers, the Google webhook)
    write too: the root middleware answers 503 naming storage, not 500."""

    async def writes(request: web.Request) -> web.Response:
        raise StorageFull("SQLite: database or disk is full")

    app = web.Application(middlewares=[storage_full_middleware])
    app.router.add_post("/rsvp/x", writes)
    client = await aiohttp_client(app)
    resp = await client.post("/rsvp/x")
    assert resp.status == 503
    assert resp.headers["Retry-After"].isdigit()
    assert "storage is full" in await resp.text()
