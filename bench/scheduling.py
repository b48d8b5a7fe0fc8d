"""What scheduling costs a CalDAV write, on loopback.

    .venv/bin/python -m bench.scheduling --events 200

Starts the real app (``create_app`` over a temporary YAML and SQLite file)
with a real SMTP server (aiosmtpd) on loopback, then PUTs, one at a time,
the same number of events of each kind into one calendar:

- plain: no ORGANIZER, no attendees (nothing to schedule);
- scheduled: ORGANIZER the resource, two attendees (implicit scheduling:
  two invitations queued, SCHEDULE-STATUS 1.0 written into the stored text);
- moved: each scheduled event moved without raising SEQUENCE (the server
  raises it, two updates queued);
- room: an event inviting a room that accepts invitations (the room's own
  booking made and the answer written, in the same transaction).

Prints the median and 95th percentile of each kind's PUT, then how long
the outbox took to deliver every message and write each SCHEDULE-STATUS
back, and checks that each attendee reads 1.1 afterwards. Absolute numbers
depend on the machine: compare kinds within one run.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import statistics
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web
from aiosmtpd.controller import Controller

from bench.caldav_vs_radicale import free_port
from gateway.app import create_app
from gateway.settings import parse_settings
from gateway.web.auth import hash_password
from gateway.web.keys import OUTBOX

PASSWORD = "bench-password-0123"
FIRST = datetime(2030, 1, 7, 8, tzinfo=UTC)


class Counting:
    """An SMTP server that takes every message and counts them."""

    def __init__(self) -> None:
        self.messages = 0

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.messages += 1
        return "250 OK"


def _config(db: Path, smtp_port: int) -> str:
    return f"""
server: {{host: 127.0.0.1, port: 0}}
storage: {{url: "sqlite:///{db}"}}
outbox: {{poll_interval: 5}}
mail: {{smtp_host: 127.0.0.1, smtp_port: {smtp_port}, security: none,
        from_address: bookings@shop.example}}
resources:
  - {{id: anna, name: Anna, email: anna@shop.example, timezone: UTC}}
  - {{id: room, name: Room, email: room@shop.example, timezone: UTC,
     accept_invitations: true}}
users:
  - name: staff
    password_hash: "{hash_password(PASSWORD)}"
    access: {{anna: read-write, room: read-write}}
"""


def _event(kind: str, n: int, hours: int = 0) -> str:
    # Each kind in weeks of its own: nothing is a double booking.
    offset = {"plain": 0, "scheduled": 60, "room": 120}[kind]
    start = FIRST + timedelta(days=offset, hours=2 * n + hours)
    lines = [
        "BEGIN:VCALENDAR",
        "VERSION:2.0",
        "PRODID:-//bench//scheduling//EN",
        "BEGIN:VEVENT",
        f"UID:{kind}-{n}@bench.example",
        "DTSTAMP:20291201T080000Z",
        f"DTSTART:{start:%Y%m%dT%H%M%SZ}",
        f"DTEND:{start + timedelta(hours=1):%Y%m%dT%H%M%SZ}",
        f"SUMMARY:{kind} {n}",
    ]
    if kind == "scheduled":
        lines += [
            "ORGANIZER:mailto:anna@shop.example",
            f"ATTENDEE;CN=Zoe:mailto:zoe{n}@example.com",
            f"ATTENDEE;CN=Max:mailto:max{n}@example.com",
        ]
    if kind == "room":
        lines += [
            "ORGANIZER:mailto:anna@shop.example",
            "ATTENDEE;CUTYPE=ROOM:mailto:room@shop.example",
        ]
    lines += ["END:VEVENT", "END:VCALENDAR", ""]
    return "\r\n".join(lines)


async def _put_each(
    http: aiohttp.ClientSession, base: str, kind: str, events: int, body: Callable[[int], str]
) -> list[float]:
    calendar = "anna"
    timings = []
    for n in range(events):
        started = time.perf_counter()
        async with http.put(
            f"{base}/dav/calendars/{calendar}/{kind}-{n % events}.ics",
            data=body(n).encode(),
            headers={"Content-Type": "text/calendar"},
        ) as resp:
            await resp.read()
            assert resp.status in (201, 204), (kind, resp.status, await resp.text())
        timings.append(time.perf_counter() - started)
    return timings


def _ms(values: list[float], q: int) -> str:
    ordered = sorted(values)
    value = statistics.median(ordered) if q == 50 else ordered[int(len(ordered) * q / 100) - 1]
    return f"{value * 1000:.2f}"


async def run(events: int) -> None:
    counting = Counting()
    smtp_port = free_port()
    smtp = Controller(counting, hostname="127.0.0.1", port=smtp_port)
    smtp.start()
    try:
        with tempfile.TemporaryDirectory() as tmp:
            settings = parse_settings(
                _config(Path(tmp) / "bench.sqlite3", smtp_port),
                base_dir=Path(tmp),
            )
            app = create_app(settings)
            runner = web.AppRunner(app, access_log=None)
            await runner.setup()
            site = web.TCPSite(runner, "127.0.0.1", 0)
            await site.start()
            base = f"http://127.0.0.1:{runner.addresses[0][1]}"
            auth = base64.b64encode(f"staff:{PASSWORD}".encode()).decode()
            try:
                async with aiohttp.ClientSession(
                    headers={"Authorization": f"Basic {auth}"}
                ) as http:
                    rows = {
                        "plain (nothing to schedule)": await _put_each(
                            http, base, "plain", events, lambda n: _event("plain", n)
                        ),
                        "scheduled, 2 attendees": await _put_each(
                            http, base, "scheduled", events, lambda n: _event("scheduled", n)
                        ),
                    }
                    started = time.perf_counter()
                    async with asyncio.timeout(600):
                        await app[OUTBOX].settle()
                    delivered = time.perf_counter() - started
                    sent = counting.messages
                    rows["moved, SEQUENCE raised by the server"] = await _put_each(
                        http,
                        base,
                        "scheduled",
                        events,
                        lambda n: _event("scheduled", n, hours=1),
                    )
                    rows["inviting a room (booked inside)"] = await _put_each(
                        http, base, "room", events, lambda n: _event("room", n)
                    )
                    async with asyncio.timeout(600):
                        await app[OUTBOX].settle()
                    async with http.get(f"{base}/dav/calendars/anna/scheduled-0.ics") as resp:
                        text = (await resp.text()).replace("\r\n ", "")
                    assert text.count("SCHEDULE-STATUS=1.1") == 2, text
            finally:
                await runner.cleanup()
    finally:
        smtp.stop()
    print(f"| PUT, {events} each, one at a time | median ms | p95 ms |")
    print("| --- | ---: | ---: |")
    for name, timings in rows.items():
        print(f"| {name} | {_ms(timings, 50)} | {_ms(timings, 95)} |")
    print(
        f"\n{sent} invitations delivered and their SCHEDULE-STATUS written back in "
        f"{delivered:.2f} s ({sent / delivered:.0f} messages/s); "
        f"{counting.messages} messages in all."
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--events", type=int, default=200)
    args = parser.parse_args()
    asyncio.run(run(args.events))


if __name__ == "__main__":
    main()
