"""Google bridge throughput against the fake Google Calendar on loopback.

    .venv/bin/python -m bench.google_import                     # 10000 Google events
    .venv/bin/python -m bench.google_import --events 1000 --bookings 500

The fake Google (``tests/fakes``) runs in a subprocess of its own, loaded with
N events in the connected calendar (about 5% weekly series of 4, the rest
single events over the next months). The gateway runs here, from
``create_app`` over a temporary YAML and SQLite file, with the real
google-api-python-client. The bench goes through the real connect flow
(invitation link, consent, calendar choice) and measures:

* the initial import: from choosing the calendar until the first full sync
  has committed every event as a busy block (events/s, with series expanded);
* the export of B bookings made afterwards through the API: from the first
  booking until the outbox is empty and Google holds every event (events/s).

Both are checked: the gateway's busy blocks and Google's events are counted
against what was generated. Absolute numbers depend on the machine.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web

from gateway.app import create_app
from gateway.core.model import Origin
from gateway.settings import parse_settings
from gateway.web.keys import MIRROR_ADMIN, OUTBOX, REPOSITORY
from google_bridge import GOOGLE_BRIDGE
from google_bridge.tokens import new_key
from tests.net import free_port

ACCOUNT = "bench.calendar@example.com"
TOKEN = "bench-api-token-0123456789abcdef"


def _config(db: Path, port: int, fake: dict[str, Any]) -> str:
    return f"""
server: {{host: 127.0.0.1, port: {port}, base_url: "http://127.0.0.1:{port}"}}
storage: {{url: "sqlite:///{db}"}}
api_tokens: [{{name: bench, token: {TOKEN}}}]
outbox: {{batch_size: 200}}
google:
  client_id: {fake["client_id"]}
  client_secret: {fake["client_secret"]}
  token_keys: [{new_key()}]
  api_endpoint: {fake["api_endpoint"]}
  auth_uri: {fake["auth_uri"]}
  token_uri: {fake["token_uri"]}
  poll_interval: 3600
  push_notifications: false
  import_horizon_days: 365
resources:
  - {{id: anna, name: Anna, email: anna@example.com, timezone: Europe/Berlin}}
"""


def _start_fake(events: int) -> tuple[subprocess.Popen[str], dict[str, Any]]:
    process = subprocess.Popen(
        [sys.executable, "-m", "bench.fake_google", "--events", str(events), "--account", ACCOUNT],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None
    line = process.stdout.readline()
    if not line:
        raise RuntimeError("the fake Google did not start")
    return process, json.loads(line)


async def _connect(http: aiohttp.ClientSession, base: str, app: web.Application) -> float:
    """Invitation, consent, calendar choice; returns the seconds until the
    first full sync committed (the choose POST starts the import)."""
    invite = await app[MIRROR_ADMIN].invite("anna")
    async with http.get(invite.url) as page:
        text = await page.text()
        assert page.status == 200, text
    state = re.search(r'name="state" value="([^"]+)"', text)
    assert state is not None
    started = time.perf_counter()
    async with http.post(
        f"{base}/google/choose", data={"state": state[1], "calendar_id": ACCOUNT}
    ) as reply:
        assert reply.status == 200, await reply.text()
    # The choose handler asked the sync worker for an import; this waits for
    # it (the per-resource lock) and then runs one, empty, incremental sync.
    await app[GOOGLE_BRIDGE].worker.sync_now("anna")
    return time.perf_counter() - started


async def run(events: int, bookings: int) -> int:
    process, fake = _start_fake(events)
    try:
        with tempfile.TemporaryDirectory() as tmp:
            port = free_port()
            settings = parse_settings(_config(Path(tmp) / "bench.sqlite3", port, fake))
            runner = web.AppRunner(create_app(settings), access_log=None)
            await runner.setup()
            await web.TCPSite(runner, "127.0.0.1", port).start()
            app = runner.app
            base = f"http://127.0.0.1:{port}"
            jar = aiohttp.CookieJar(unsafe=True)
            async with aiohttp.ClientSession(cookie_jar=jar) as http:
                seconds = await _connect(http, base, app)
                objects = await app[REPOSITORY].list_objects("anna")
                blocks = sum(1 for o in objects if o.booking.origin is Origin.GOOGLE)
                print(
                    f"initial import: {events} Google events ({fake['series']} weekly series) "
                    f"-> {blocks} busy blocks in {seconds:.2f} s: "
                    f"{events / seconds:.0f} events/s, {blocks / seconds:.0f} blocks/s"
                )
                if blocks != fake["expected_blocks"]:
                    print(f"MISMATCH: expected {fake['expected_blocks']} busy blocks")
                    return 1
                started = time.perf_counter()
                for n in range(bookings):
                    await _book(http, base, n)
                await app[OUTBOX].settle()
                seconds = time.perf_counter() - started
                pending = await app[REPOSITORY].pending_outbox()
                calls = app[GOOGLE_BRIDGE].google.calls
                print(
                    f"export: {bookings} bookings through the API -> Google in {seconds:.2f} s: "
                    f"{bookings / seconds:.0f} events/s ({calls} Google calls in all, "
                    f"{pending} left in the outbox)"
                )
            await runner.cleanup()
            return 0 if pending == 0 else 1
    finally:
        assert process.stdin is not None
        process.stdin.close()
        process.wait(timeout=30)


async def _book(http: aiohttp.ClientSession, base: str, n: int) -> None:
    # Night slots years ahead: they never meet the imported daytime events.
    day, slot = divmod(n, 4)
    body = {
        "resource": "anna",
        "start": _at(day, slot),
        "end": _at(day, slot, 30),
        "title": f"Bench {n}",
    }
    async with http.post(
        f"{base}/api/v1/bookings", json=body, headers={"Authorization": f"Bearer {TOKEN}"}
    ) as reply:
        assert reply.status == 201, await reply.text()


def _at(day: int, slot: int, minutes: int = 0) -> str:
    start = datetime(2031, 1, 1, 1, tzinfo=UTC) + timedelta(days=day, hours=slot, minutes=minutes)
    return start.isoformat()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=10_000)
    parser.add_argument("--bookings", type=int, default=1000)
    args = parser.parse_args()
    sys.exit(asyncio.run(run(args.events, args.bookings)))


if __name__ == "__main__":
    main()
