"""Heavy requests against a real ``calgateway serve`` (issue 12, item 3).

    .venv/bin/python -m bench.attacks.heavy                      # both scenarios, full size
    .venv/bin/python -m bench.attacks.heavy --clients 300 --events 2000 --duration 20
    .venv/bin/python -m bench.attacks.heavy --scenario propfind --json out.json

A calendar of ``--events`` one-hour bookings is written into a fresh database
before the server starts, then, for ``--duration`` seconds each:

- ``propfind``: ``--clients`` CalDAV clients list the calendar (PROPFIND
  Depth 1, the getetag of every member) over and over;
- ``mixed``: a third of the clients ask for a week of events with their data
  (calendar-query with a time range, as DAVx5 and Thunderbird do), a third
  list bookings through the JSON API, a third poll /healthz.

A client that is answered 503 waits what ``Retry-After`` says (as DAVx5
does), within the run's time. Meanwhile one prober, on a connection pool of
its own, asks /healthz and books a slot through the API (POST) in turn and
records how long each took; the server's ``/metrics`` (public in this
config) gives the gate's counts at the end.

Talks only to 127.0.0.1; every request has a timeout, and the run is bounded
by ``--duration`` plus the time to set up. The server runs with
``max_connections_per_address: 0`` (all clients share one address) and a
``max_connections`` above the client count; the bench raises its own
open-file limit to the hard limit.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import resource
import statistics
import tempfile
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp

from gateway.settings import load_settings
from gateway.web.auth import hash_password
from tests.calendars import FIRST_SLOT, fill_calendar
from tests.serving import serving

USER = "bench"
PASSWORD = "bench-password-0123"
API_TOKEN = "bench-api-token-0123456789abcdef"
REQUEST_TIMEOUT = 60.0
PROBE_INTERVAL = 0.1

PROPFIND = (
    '<?xml version="1.0" encoding="utf-8"?>'
    '<D:propfind xmlns:D="DAV:"><D:prop><D:getetag/></D:prop></D:propfind>'
)


def _stamp(moment: datetime) -> str:
    return moment.strftime("%Y%m%dT%H%M%SZ")


def calendar_query(start: datetime, end: datetime) -> str:
    return (
        '<?xml version="1.0" encoding="utf-8"?>'
        '<C:calendar-query xmlns:D="DAV:" xmlns:C="urn:ietf:params:xml:ns:caldav">'
        "<D:prop><D:getetag/><C:calendar-data/></D:prop>"
        '<C:filter><C:comp-filter name="VCALENDAR"><C:comp-filter name="VEVENT">'
        f'<C:time-range start="{_stamp(start)}" end="{_stamp(end)}"/>'
        "</C:comp-filter></C:comp-filter></C:filter></C:calendar-query>"
    )


def config_yaml(db_path: Path, args: argparse.Namespace) -> str:
    return f"""\
server:
  host: 127.0.0.1
  port: 0
  log_format: json
  heavy_requests: {args.heavy_requests}
  heavy_queue: {args.heavy_queue}
  max_connections: {args.clients * 2 + 100}
  max_connections_per_address: 0
  metrics: public
storage:
  url: sqlite:///{db_path}
users:
  - name: {USER}
    password_hash: "{hash_password(PASSWORD)}"
    access: {{"*": read-write}}
api_tokens:
  - name: bench
    token: {API_TOKEN}
resources:
  - id: anna
    name: Anna
    email: anna@example.com
"""


@dataclass
class Tally:
    """Answers of one kind of request."""

    statuses: Counter[str] = field(default_factory=Counter)
    seconds: list[float] = field(default_factory=list)  # of 2xx answers

    def add(self, outcome: str, elapsed: float) -> None:
        self.statuses[outcome] += 1
        if outcome.startswith("2"):
            self.seconds.append(elapsed)

    def summary(self, duration: float) -> dict[str, Any]:
        ok = sorted(self.seconds)
        return {
            "answers": dict(self.statuses),
            "ok_per_s": round(len(ok) / duration, 1),
            "p50_s": _quantile(ok, 0.5),
            "p99_s": _quantile(ok, 0.99),
            "max_s": round(ok[-1], 3) if ok else None,
        }


def _quantile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    if len(values) == 1:
        return round(values[0], 3)
    return round(statistics.quantiles(values, n=100, method="inclusive")[int(q * 100) - 1], 3)


Send = Callable[[aiohttp.ClientSession], Awaitable[aiohttp.ClientResponse]]


async def _client(http: aiohttp.ClientSession, send: Send, tally: Tally, deadline: float) -> None:
    """Send, read, repeat until the deadline; honour Retry-After on 503."""
    while time.monotonic() < deadline:
        started = time.monotonic()
        wait = 0.0
        try:
            async with await send(http) as response:
                await response.read()
                outcome = str(response.status)
                if response.status == 503:
                    wait = float(response.headers.get("Retry-After", "1"))
        except TimeoutError:
            outcome = "timeout"
        except aiohttp.ClientError as error:
            outcome = type(error).__name__
            wait = 0.5  # do not spin on a refused connection
        tally.add(outcome, time.monotonic() - started)
        if wait:
            await asyncio.sleep(min(wait, max(0.0, deadline - time.monotonic())))


async def _probe(base: str, tallies: dict[str, Tally], deadline: float, slot: datetime) -> None:
    """/healthz and a booking POST in turn, on connections of their own."""
    timeout = aiohttp.ClientTimeout(total=REQUEST_TIMEOUT)
    headers = {"Authorization": f"Bearer {API_TOKEN}"}
    async with aiohttp.ClientSession(timeout=timeout) as http:
        n = 0
        while time.monotonic() < deadline:
            for kind in ("healthz", "booking"):
                started = time.monotonic()
                try:
                    if kind == "healthz":
                        request = http.get(f"{base}/healthz")
                    else:
                        start = slot + timedelta(hours=n)
                        n += 1
                        body = {
                            "resource": "anna",
                            "start": start.isoformat(),
                            "end": (start + timedelta(minutes=30)).isoformat(),
                            "title": f"Probe {n}",
                        }
                        request = http.post(f"{base}/api/v1/bookings", json=body, headers=headers)
                    async with request as response:
                        await response.read()
                        outcome = str(response.status)
                except TimeoutError:
                    outcome = "timeout"
                except aiohttp.ClientError as error:
                    outcome = type(error).__name__
                tallies[f"probe {kind}"].add(outcome, time.monotonic() - started)
            await asyncio.sleep(PROBE_INTERVAL)


async def _gate_counts(base: str) -> dict[str, float]:
    """The admission counters from /metrics, on a connection of its own."""
    timeout = aiohttp.ClientTimeout(total=REQUEST_TIMEOUT)
    async with (
        aiohttp.ClientSession(timeout=timeout) as http,
        http.get(f"{base}/metrics") as response,
    ):
        response.raise_for_status()
        text = await response.text()
    return {
        line.split('"')[1]: float(line.rsplit(" ", 1)[1])
        for line in text.splitlines()
        if line.startswith("calgateway_heavy_requests_total{")
    }


def _senders(base: str, scenario: str, clients: int, events: int) -> list[tuple[str, Send]]:
    auth = {"Authorization": aiohttp.encode_basic_auth(USER, PASSWORD)}
    listing = f"{base}/dav/calendars/anna/"
    api = {"Authorization": f"Bearer {API_TOKEN}"}
    week_start = FIRST_SLOT + timedelta(hours=events // 2)

    def propfind(http: aiohttp.ClientSession) -> Awaitable[aiohttp.ClientResponse]:
        headers = {"Depth": "1", "Content-Type": "application/xml", **auth}
        return http.request("PROPFIND", listing, data=PROPFIND, headers=headers)

    def query(http: aiohttp.ClientSession) -> Awaitable[aiohttp.ClientResponse]:
        body = calendar_query(week_start, week_start + timedelta(days=7))
        headers = {"Depth": "1", "Content-Type": "application/xml", **auth}
        return http.request("REPORT", listing, data=body, headers=headers)

    def bookings(http: aiohttp.ClientSession) -> Awaitable[aiohttp.ClientResponse]:
        end = week_start + timedelta(days=7)
        params = {"resource": "anna", "start": week_start.isoformat(), "end": end.isoformat()}
        return http.get(f"{base}/api/v1/bookings", params=params, headers=api)

    def healthz(http: aiohttp.ClientSession) -> Awaitable[aiohttp.ClientResponse]:
        return http.get(f"{base}/healthz")

    if scenario == "propfind":
        return [("PROPFIND Depth 1", propfind)] * clients
    kinds: list[tuple[str, Send]] = [
        ("calendar-query", query),
        ("API GET bookings", bookings),
        ("/healthz", healthz),
    ]
    return [kinds[i % 3] for i in range(clients)]


async def run_scenario(
    base: str, scenario: str, args: argparse.Namespace, probe_slot: datetime
) -> dict[str, Any]:
    tallies: dict[str, Tally] = {}
    for name in ("probe healthz", "probe booking"):
        tallies[name] = Tally()
    senders = _senders(base, scenario, args.clients, args.events)
    for name, _ in senders:
        tallies.setdefault(name, Tally())
    before = await _gate_counts(base)
    deadline = time.monotonic() + args.duration
    connector = aiohttp.TCPConnector(limit=0)
    timeout = aiohttp.ClientTimeout(total=REQUEST_TIMEOUT)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as http:
        tasks = [
            asyncio.create_task(_client(http, send, tallies[name], deadline))
            for name, send in senders
        ]
        tasks.append(asyncio.create_task(_probe(base, tallies, deadline, probe_slot)))
        # Each client finishes its request in flight: at most one timeout more.
        await asyncio.wait_for(asyncio.gather(*tasks), args.duration + REQUEST_TIMEOUT + 30)
    after = await _gate_counts(base)
    gate = {outcome: after[outcome] - before.get(outcome, 0.0) for outcome in after}
    return {
        "scenario": scenario,
        "clients": args.clients,
        "events": args.events,
        "duration_s": args.duration,
        "requests": {name: tally.summary(args.duration) for name, tally in tallies.items()},
        "gate": gate,
    }


def _table(result: dict[str, Any]) -> str:
    lines = [
        f"### {result['scenario']}: {result['clients']} clients, {result['events']} events,"
        f" {result['duration_s']} s",
        "",
        "| requests | answers | 2xx/s | p50 s | p99 s | max s |",
        "| --- | --- | ---: | ---: | ---: | ---: |",
    ]
    for name, row in result["requests"].items():
        answers = ", ".join(f"{k}: {v}" for k, v in sorted(row["answers"].items()))
        lines.append(
            f"| {name} | {answers} | {row['ok_per_s']} | {row['p50_s']} | {row['p99_s']} |"
            f" {row['max_s']} |"
        )
    lines.append("")
    lines.append("gate: " + ", ".join(f"{k} {v:.0f}" for k, v in sorted(result["gate"].items())))
    return "\n".join(lines)


def _raise_file_limit() -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or hard > soft:
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


async def main_async(args: argparse.Namespace) -> list[dict[str, Any]]:
    _raise_file_limit()
    results = []
    with tempfile.TemporaryDirectory(prefix="calgateway-heavy-") as tmp:
        config = Path(tmp) / "gateway.yaml"
        config.write_text(config_yaml(Path(tmp) / "db.sqlite3", args), encoding="utf-8")
        started = time.monotonic()
        await fill_calendar(load_settings(config), "anna", args.events)
        print(f"{args.events} events written in {time.monotonic() - started:.1f} s", flush=True)
        scenarios = ["propfind", "mixed"] if args.scenario == "both" else [args.scenario]
        async with serving(config) as server:
            for i, scenario in enumerate(scenarios):
                # Probe bookings go after the loaded ones, a year apart per scenario.
                slot = datetime(2040 + i, 1, 1, 8, tzinfo=UTC)
                result = await run_scenario(server.url, scenario, args, slot)
                print(_table(result), flush=True)
                results.append(result)
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--scenario", choices=["propfind", "mixed", "both"], default="both")
    parser.add_argument("--clients", type=int, default=1000)
    parser.add_argument("--events", type=int, default=5000)
    parser.add_argument("--duration", type=float, default=60.0, help="seconds per scenario")
    parser.add_argument("--heavy-requests", type=int, default=4)
    parser.add_argument("--heavy-queue", type=int, default=64)
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args()
    results = asyncio.run(main_async(args))
    if args.json is not None:
        args.json.write_text(json.dumps(results, indent=2), encoding="utf-8")


if __name__ == "__main__":
    main()
