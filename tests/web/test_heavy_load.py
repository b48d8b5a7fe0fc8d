"""A real ``calgateway serve`` saturated with whole-calendar listings keeps
answering /healthz and the booking API (issue 12, item 3).

30 clients list a calendar of 2,000 events (PROPFIND Depth 1) over and over
against one heavy slot and a queue of two: the overflow is told to come back
later (503 + Retry-After) instead of piling up on the event loop, and a
prober measures /healthz and a booking POST meanwhile. The bound asserted is
loose on purpose (a loaded two-core CI machine); the measured figures are
printed (``pytest -s``) and the full-size run is ``bench.attacks.heavy``.
"""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import aiohttp

from gateway.settings import load_settings
from tests.caldav.dav import ADMIN, propfind_body
from tests.calendars import fill_calendar
from tests.conftest import API_TOKEN, settings_yaml
from tests.serving import serving

EVENTS = 2000
CLIENTS = 30
PROBES = 15
# Far above the 100 ms the issue asks for, so that a busy CI machine does
# not flake; the figures measured are printed.
LATENCY_BOUND = 1.0
BOUND = 120.0


async def test_healthz_and_the_booking_api_answer_while_caldav_is_saturated(
    tmp_path: Path,
) -> None:
    config = tmp_path / "gateway.yaml"
    server = "  heavy_requests: 1\n  heavy_queue: 2\n  max_connections_per_address: 0\n"
    config.write_text(settings_yaml(tmp_path / "db.sqlite3", server=server), encoding="utf-8")
    await fill_calendar(load_settings(config), "anna", EVENTS)

    async with serving(config) as served, aiohttp.ClientSession() as http:
        listing = f"{served.url}/dav/calendars/anna/"
        headers = {**ADMIN, "Depth": "1", "Content-Type": "application/xml"}
        body = propfind_body("D:getetag")
        statuses: list[int] = []
        retry_afters: list[str | None] = []
        done = asyncio.Event()
        answered = asyncio.Event()

        async def lister() -> None:
            while not done.is_set():
                async with http.request("PROPFIND", listing, data=body, headers=headers) as r:
                    await r.read()
                    statuses.append(r.status)
                    answered.set()
                    if r.status == 503:
                        retry_afters.append(r.headers.get("Retry-After"))

        healthz: list[float] = []
        bookings: list[float] = []

        async def timed(method: str, url: str, **kwargs: object) -> tuple[int, float]:
            started = time.perf_counter()
            async with http.request(method, url, **kwargs) as r:  # type: ignore[arg-type]
                await r.read()
                return r.status, time.perf_counter() - started

        async def prober() -> None:
            await answered.wait()  # the listers are at work
            start = datetime(2027, 3, 1, 9, tzinfo=UTC)
            for n in range(PROBES):
                status, seconds = await timed("GET", f"{served.url}/healthz")
                assert status == 200
                healthz.append(seconds)
                slot = start + timedelta(hours=n)
                status, seconds = await timed(
                    "POST",
                    f"{served.url}/api/v1/bookings",
                    json={
                        "resource": "anna",
                        "start": slot.isoformat(),
                        "end": (slot + timedelta(minutes=30)).isoformat(),
                        "title": f"Probe {n}",
                    },
                    headers={"Authorization": f"Bearer {API_TOKEN}"},
                )
                assert status == 201
                bookings.append(seconds)
            done.set()

        listers = [asyncio.create_task(lister()) for _ in range(CLIENTS)]
        try:
            await asyncio.wait_for(prober(), BOUND)
            await asyncio.wait_for(asyncio.gather(*listers), BOUND)
        finally:
            done.set()
            for task in listers:
                task.cancel()

    print(
        f"\n{len(statuses)} listings: {statuses.count(207)} x 207, {statuses.count(503)} x 503;"
        f" /healthz max {max(healthz) * 1000:.0f} ms, median"
        f" {sorted(healthz)[len(healthz) // 2] * 1000:.0f} ms; booking POST max"
        f" {max(bookings) * 1000:.0f} ms"
    )
    assert set(statuses) <= {207, 503}
    assert statuses.count(207) >= 1
    assert statuses.count(503) >= CLIENTS  # the overflow was turned away at once
    assert all(value is not None and value.isdigit() for value in retry_afters)
    assert max(healthz) < LATENCY_BOUND
    assert max(bookings) < LATENCY_BOUND
