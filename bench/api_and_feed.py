"""Booking API write rate and ICS feed latency of the gateway on loopback.

    .venv/bin/python -m bench.api_and_feed --bookings 1000

Starts the real app (``create_app`` over a temporary YAML and SQLite file) on a
free loopback port, books N non-overlapping one-hour slots through the JSON
API with a real HTTP client, then fetches the feed: the first GET renders it,
later GETs with the same revision are served from the render cache, and a GET
with If-None-Match answers 304. Prints medians; absolute numbers depend on the
machine, so compare runs on one machine only. (The CalDAV benchmark against
Radicale arrives with the CalDAV server.)
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import aiohttp
from aiohttp import web

from gateway.app import create_app
from gateway.settings import parse_settings

TOKEN = "bench-api-token-0123456789abcdef"
FEED = "bench-feed-token-0123456789abcdef"


def _config(db: Path) -> str:
    return f"""
server: {{host: 127.0.0.1, port: 0}}
storage: {{url: "sqlite:///{db}"}}
api_tokens: [{{name: bench, token: {TOKEN}}}]
resources:
  - {{id: anna, name: Anna, email: anna@example.com, timezone: Europe/Berlin,
     feed_tokens: [{FEED}]}}
"""


async def _timed(http: aiohttp.ClientSession, url: str, **kwargs: object) -> tuple[float, int]:
    started = time.perf_counter()
    async with http.get(url, **kwargs) as resp:  # type: ignore[arg-type]
        await resp.read()
        return time.perf_counter() - started, resp.status


async def run(bookings: int, concurrency: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        settings = parse_settings(_config(Path(tmp) / "bench.sqlite3"), base_dir=Path(tmp))
        runner = web.AppRunner(create_app(settings), access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = runner.addresses[0][1]
        base = f"http://127.0.0.1:{port}"
        headers = {"Authorization": f"Bearer {TOKEN}"}
        first = datetime(2027, 1, 4, 8, tzinfo=UTC)
        try:
            async with aiohttp.ClientSession(headers=headers) as http:
                queue = iter(range(bookings))

                async def worker() -> None:
                    for n in queue:
                        start = first + timedelta(hours=n)
                        body = {
                            "resource": "anna",
                            "start": start.isoformat(),
                            "end": (start + timedelta(hours=1)).isoformat(),
                            "title": f"Booking {n}",
                            "booker": {"name": f"Booker {n}", "email": f"b{n}@example.com"},
                        }
                        async with http.post(f"{base}/api/v1/bookings", json=body) as resp:
                            assert resp.status == 201, await resp.text()

                started = time.perf_counter()
                await asyncio.gather(*(worker() for _ in range(concurrency)))
                create_s = time.perf_counter() - started

                feed = f"{base}/feeds/anna.ics?token={FEED}"
                cold, _ = await _timed(http, feed)
                warm = [(await _timed(http, feed))[0] for _ in range(20)]
                async with http.get(feed) as resp:
                    etag = resp.headers["ETag"]
                not_modified = [
                    (await _timed(http, feed, headers={"If-None-Match": etag}))[0]
                    for _ in range(20)
                ]
                busy_cold, _ = await _timed(http, feed + "&view=busy")
                week = (
                    f"{base}/api/v1/resources/anna/availability?"
                    f"start={(first + timedelta(days=7)).isoformat().replace('+', '%2B')}&"
                    f"end={(first + timedelta(days=14)).isoformat().replace('+', '%2B')}"
                )
                avail = [(await _timed(http, week))[0] for _ in range(20)]
        finally:
            await runner.cleanup()
    ms = 1000
    print(
        f"bookings created         {bookings} in {create_s:.2f} s "
        f"= {bookings / create_s:.0f}/s ({concurrency} concurrent clients)"
    )
    print(f"feed full, first GET     {cold * ms:.1f} ms (renders)")
    print(f"feed full, same revision {statistics.median(warm) * ms:.1f} ms median (cached)")
    print(f"feed If-None-Match       {statistics.median(not_modified) * ms:.1f} ms median (304)")
    print(f"feed busy, first GET     {busy_cold * ms:.1f} ms (renders)")
    print(f"availability, one week   {statistics.median(avail) * ms:.1f} ms median")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--bookings", type=int, default=1000)
    parser.add_argument("--concurrency", type=int, default=8)
    args = parser.parse_args()
    asyncio.run(run(args.bookings, args.concurrency))


if __name__ == "__main__":
    main()
