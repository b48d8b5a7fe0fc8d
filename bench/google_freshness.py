"""What the fresh look at Google adds to a booking's latency.

    .venv/bin/python -m bench.google_freshness                  # 200 bookings per row
    .venv/bin/python -m bench.google_freshness --bookings 100

A booking of a resource that imports from Google waits for a sync of its
calendar when the last sync is older than ``google.freshness_seconds``
(``gateway.core.freshness``). This bench books a ``from_google`` resource
through the API (``POST /api/v1/bookings``, one client, then 16 clients at
once) and reports p50/p99 of each booking's round trip, with the fake
Google (``fake_google``) answering every call after 50 ms and after 500 ms
(``fake.latency``), for three settings:

* ``off``: ``freshness_seconds: 0``, never looks (the baseline);
* ``30 s``: the default; a booking looks when the last sync is older than
  30 s. Each row starts with a sync a minute old, so the first booking (or
  the first 16 together) waits for Google and the rest find it fresh;
* ``always``: ``freshness_seconds: 0.001``, the worst case: every booking
  finds the busy time stale (bookings arriving together share one sync).

The fake runs in this process (its latency is an ``asyncio.sleep``, so it
costs no CPU); the gateway is ``create_app`` over a temporary YAML and
SQLite file with the real google-api-python-client, connected through the
real consent flow. Absolute numbers depend on the machine.
"""

from __future__ import annotations

import argparse
import asyncio
import re
import statistics
import sys
import tempfile
import time
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import aiohttp
from aiohttp import web

from fake_google.calendar import FakeGoogle
from gateway.app import create_app
from gateway.settings import parse_settings
from gateway.web.keys import MIRROR_ADMIN, REPOSITORY
from google_bridge import GOOGLE_BRIDGE
from google_bridge.tokens import new_key
from tests.net import free_port

ACCOUNT = "bench.room@example.com"
TOKEN = "bench-api-token-0123456789abcdef"
SETTINGS = {"off": 0.0, "30 s": 30.0, "always": 0.001}
LATENCIES = (0.05, 0.5)
CLIENTS = (1, 16)


def _config(db: Path, port: int, fake: FakeGoogle, freshness: float) -> str:
    return f"""
server: {{host: 127.0.0.1, port: {port}, base_url: "http://127.0.0.1:{port}"}}
storage: {{url: "sqlite:///{db}"}}
api_tokens: [{{name: bench, token: {TOKEN}}}]
google:
  client_id: {fake.client_id}
  client_secret: {fake.client_secret}
  token_keys: [{new_key()}]
  api_endpoint: {fake.api_endpoint}
  auth_uri: {fake.auth_uri}
  token_uri: {fake.token_uri}
  poll_interval: 3600
  push_notifications: false
  direction: from_google
  freshness_seconds: {freshness}
resources:
  - {{id: room, name: Room, email: room@example.com, timezone: Europe/Berlin}}
"""


async def _connect(http: aiohttp.ClientSession, base: str, app: web.Application) -> None:
    invite = await app[MIRROR_ADMIN].invite("room")
    async with http.get(invite.url) as page:
        text = await page.text()
        assert page.status == 200, text
    state = re.search(r'name="state" value="([^"]+)"', text)
    assert state is not None
    async with http.post(
        f"{base}/google/choose", data={"state": state[1], "calendar_id": ACCOUNT}
    ) as reply:
        assert reply.status == 200, await reply.text()
    await app[GOOGLE_BRIDGE].worker.sync_now("room")  # the first import, finished
    # As if the last sync were a minute old (the poll is minutes apart), so
    # the first booking of every row finds the busy time stale.
    repository = app[REPOSITORY]
    connection = await repository.get_connection("room")
    assert connection is not None and connection.last_sync_at is not None
    async with repository.transaction() as tx:
        await tx.save_connection(
            replace(connection, last_sync_at=connection.last_sync_at - timedelta(minutes=1))
        )


async def _book(http: aiohttp.ClientSession, base: str, n: int) -> float:
    # Night slots years ahead, one per booking: no booking meets another.
    start = datetime(2031, 1, 1, 1, tzinfo=UTC) + timedelta(hours=n)
    body = {
        "resource": "room",
        "start": start.isoformat(),
        "end": (start + timedelta(minutes=30)).isoformat(),
        "title": f"Bench {n}",
    }
    started = time.perf_counter()
    async with http.post(
        f"{base}/api/v1/bookings", json=body, headers={"Authorization": f"Bearer {TOKEN}"}
    ) as reply:
        assert reply.status == 201, await reply.text()
    return time.perf_counter() - started


async def _row(freshness: float, latency: float, clients: int, bookings: int) -> list[float]:
    """Seconds of each booking's round trip, for one setting."""
    async with FakeGoogle.running() as fake:
        fake.add_account(ACCOUNT, time_zone="Europe/Berlin")
        fake.consent_as(ACCOUNT)
        with tempfile.TemporaryDirectory() as tmp:
            port = free_port()
            config = _config(Path(tmp) / "bench.sqlite3", port, fake, freshness)
            runner = web.AppRunner(create_app(parse_settings(config)), access_log=None)
            await runner.setup()
            await web.TCPSite(runner, "127.0.0.1", port).start()
            base = f"http://127.0.0.1:{port}"
            try:
                jar = aiohttp.CookieJar(unsafe=True)
                connector = aiohttp.TCPConnector(limit=clients)
                async with aiohttp.ClientSession(cookie_jar=jar, connector=connector) as http:
                    await _connect(http, base, runner.app)
                    fake.latency = latency
                    queue = iter(range(bookings))
                    seconds: list[float] = []

                    async def client() -> None:
                        for n in queue:
                            seconds.append(await _book(http, base, n))

                    await asyncio.gather(*(client() for _ in range(clients)))
                    fake.latency = 0.0
                    return seconds
            finally:
                await runner.cleanup()


def _ms(values: list[float], q: int) -> str:
    cuts = statistics.quantiles(values, n=100, method="inclusive")
    return f"{cuts[q - 1] * 1000:.0f}"


async def run(bookings: int) -> int:
    print(f"Booking latency, {bookings} API bookings per row (ms)\n")
    print("| Google answers in | freshness check | clients | p50 | p99 | max |")
    print("| --- | --- | --- | ---: | ---: | ---: |")
    for latency in LATENCIES:
        for label, freshness in SETTINGS.items():
            for clients in CLIENTS:
                seconds = await _row(freshness, latency, clients, bookings)
                print(
                    f"| {latency * 1000:.0f} ms | {label} | {clients} | {_ms(seconds, 50)} | "
                    f"{_ms(seconds, 99)} | {max(seconds) * 1000:.0f} |",
                    flush=True,
                )
    return 0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bookings", type=int, default=200)
    args = parser.parse_args()
    sys.exit(asyncio.run(run(args.bookings)))


if __name__ == "__main__":
    main()
