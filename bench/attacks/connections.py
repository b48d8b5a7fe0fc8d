"""Connection attacks against a real ``calgateway serve`` (issue 12, item 4).

    .venv/bin/python -m bench.attacks.connections                 # every scenario, full size
    .venv/bin/python -m bench.attacks.connections --scenario idle --json out.json

Each scenario starts a fresh server with the default deadlines and caps
(``server.head_timeout`` 10 s, ``body_timeout`` 60 s, ``keepalive_timeout``
60 s, ``max_connections`` 1000, ``max_connections_per_address`` 64), opens its
attack, and meanwhile a prober (in a thread with an event loop of its own, on
a fresh connection from an address of its own each time) asks ``/healthz``
every 50 ms and records how long each answer took and the longest time
without an answer.

- ``slowloris``: 500 connections from 20 addresses, each sending a request
  line and then one header line a second, never the end of the head;
- ``slowloris-one-address``: the same 500 from 127.0.0.1 alone;
- ``idle``: 1,100 connections that send nothing, from 20 addresses, with the
  server's open-file limit at 1024 (as in the issue);
- ``bodies``: 50 requests with a lying ``Content-Length`` (20 of 1,000 bytes
  sent) and 50 chunked bodies that never end, through the booking API;
- ``oversized``: 50 requests declaring a 2 GB body, without sending it.

For every attacking connection the bench records how it ended: answered
(status) and closed, closed silently, refused at once (503), or still open
when the scenario's time ran out; and when. Talks only to 127.0.0.x; every
wait is bounded. The bench raises its own open-file limit to the hard limit.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import json
import resource
import statistics
import tempfile
import threading
import time
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import aiohttp

from tests.conftest import API_TOKEN, settings_yaml
from tests.serving import serving

PROBE_INTERVAL = 0.05
PROBE_TIMEOUT = 10.0
ADDRESSES = 20
SCENARIOS = ("slowloris", "slowloris-one-address", "idle", "bodies", "oversized")
API = f"Authorization: Bearer {API_TOKEN}\r\nContent-Type: application/json\r\n"


@dataclass
class Ending:
    """How one attacking connection ended, ``after`` seconds from its start."""

    outcome: str  # "408", "413", "503", "closed", "reset", "open", "connect failed"
    after: float


@dataclass
class Result:
    scenario: str
    connections: int
    seconds: float
    outcomes: dict[str, int] = field(default_factory=dict)
    ended_after: dict[str, dict[str, float]] = field(default_factory=dict)
    healthz_answers: int = 0
    healthz_failures: int = 0
    healthz_p50_ms: float = 0.0
    healthz_max_ms: float = 0.0
    healthz_longest_gap_s: float = 0.0
    server_log: dict[str, int] = field(default_factory=dict)


class Prober:
    """/healthz every PROBE_INTERVAL on a fresh connection, in its own thread."""

    def __init__(self, url: str, source: str) -> None:
        self.url, self.source = url, source
        self.latencies: list[float] = []
        self.answered_at: list[float] = []
        self.failures = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=lambda: asyncio.run(self._run()), daemon=True)

    def __enter__(self) -> Prober:
        self.started = time.monotonic()
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join(PROBE_TIMEOUT + 5)
        self.ended = time.monotonic()

    async def _run(self) -> None:
        connector = aiohttp.TCPConnector(local_addr=(self.source, 0), force_close=True)
        timeout = aiohttp.ClientTimeout(total=PROBE_TIMEOUT)
        async with aiohttp.ClientSession(connector=connector, timeout=timeout) as http:
            while not self._stop.is_set():
                began = time.monotonic()
                try:
                    async with http.get(self.url) as answer:
                        await answer.read()
                        ok = answer.status == 200
                except (aiohttp.ClientError, TimeoutError):
                    ok = False
                if ok:
                    self.latencies.append(time.monotonic() - began)
                    self.answered_at.append(time.monotonic())
                else:
                    self.failures += 1
                await asyncio.to_thread(self._stop.wait, PROBE_INTERVAL)

    def longest_gap(self) -> float:
        marks = [self.started, *self.answered_at, self.ended]
        return max(b - a for a, b in itertools.pairwise(marks))


async def attacker(
    port: int, source: str, opening: bytes, trickle: bytes | None, within: float
) -> Ending:
    """One connection: send ``opening``, then ``trickle`` once a second if
    given; read until the server closes or ``within`` runs out."""
    started = time.monotonic()
    try:
        reader, writer = await asyncio.wait_for(
            asyncio.open_connection("127.0.0.1", port, local_addr=(source, 0)), 10
        )
    except (OSError, TimeoutError):
        return Ending("connect failed", time.monotonic() - started)

    async def keep_sending() -> None:
        with contextlib.suppress(OSError):
            if opening:
                writer.write(opening)
                await writer.drain()
            while trickle is not None:
                await asyncio.sleep(1.0)
                writer.write(trickle)
                await writer.drain()

    sender = asyncio.create_task(keep_sending())
    first = b""
    outcome = "open"
    try:
        async with asyncio.timeout(within):
            while True:
                chunk = await reader.read(65536)
                if not chunk:
                    outcome = "closed"
                    break
                first = first or chunk
    except TimeoutError:
        pass
    except OSError:
        outcome = "reset"
    finally:
        sender.cancel()
        writer.close()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(writer.wait_closed(), 1)
    if first.startswith(b"HTTP/1.1 "):
        outcome = first[9:12].decode()  # the status the server answered before closing
    return Ending(outcome, time.monotonic() - started)


def plan(scenario: str) -> tuple[list[bytes], list[str], bytes | None, float]:
    """(what each connection opens with, source addresses, trickle, within)."""
    many = [f"127.0.1.{n + 1}" for n in range(ADDRESSES)]
    slow_head = b"GET /healthz HTTP/1.1\r\nHost: gateway.test\r\n"
    if scenario == "slowloris":
        return [slow_head] * 500, many, b"X-Slow: 1\r\n", 30.0
    if scenario == "slowloris-one-address":
        return [slow_head] * 500, ["127.0.0.1"], b"X-Slow: 1\r\n", 30.0
    if scenario == "idle":
        return [b""] * 1100, many, None, 30.0
    if scenario == "bodies":
        lying = (
            f"POST /api/v1/bookings HTTP/1.1\r\nHost: gateway.test\r\n{API}"
            'Content-Length: 1000\r\n\r\n{"resource": "anna",'
        ).encode()
        chunked = (
            f"POST /api/v1/bookings HTTP/1.1\r\nHost: gateway.test\r\n{API}"
            'Transfer-Encoding: chunked\r\n\r\n14\r\n{"resource": "anna",\r\n'
        ).encode()
        return [lying, chunked] * 50, many, None, 90.0
    if scenario == "oversized":
        head = (
            f"POST /api/v1/bookings HTTP/1.1\r\nHost: gateway.test\r\n{API}"
            "Content-Length: 2000000000\r\n\r\n"
        ).encode()
        return [head] * 50, many, None, 30.0
    raise ValueError(scenario)


def _file_limit(limit: int) -> Any:
    def set_limit() -> None:  # in the server's process, before exec
        resource.setrlimit(resource.RLIMIT_NOFILE, (limit, limit))

    return set_limit


async def run_scenario(scenario: str, workdir: Path) -> Result:
    openings, sources, trickle, within = plan(scenario)
    count = len(openings)
    config = workdir / f"{scenario}.yaml"
    config.write_text(settings_yaml(workdir / f"{scenario}.sqlite3", mail=False), encoding="utf-8")
    preexec = _file_limit(1024) if scenario == "idle" else None
    async with serving(config, preexec=preexec) as server:
        with Prober(f"{server.url}/healthz", "127.0.0.250") as prober:
            started = time.monotonic()
            endings = await asyncio.gather(
                *(
                    attacker(server.port, sources[n % len(sources)], openings[n], trickle, within)
                    for n in range(count)
                )
            )
            seconds = time.monotonic() - started
        logged = Counter(str(e.get("msg")) for e in server.entries)
    result = Result(scenario, count, round(seconds, 2))
    result.outcomes = dict(Counter(e.outcome for e in endings))
    for outcome in result.outcomes:
        times = sorted(e.after for e in endings if e.outcome == outcome)
        result.ended_after[outcome] = {
            "min_s": round(times[0], 2),
            "median_s": round(statistics.median(times), 2),
            "max_s": round(times[-1], 2),
        }
    if prober.latencies:
        result.healthz_answers = len(prober.latencies)
        result.healthz_p50_ms = round(statistics.median(prober.latencies) * 1000, 1)
        result.healthz_max_ms = round(max(prober.latencies) * 1000, 1)
    result.healthz_failures = prober.failures
    result.healthz_longest_gap_s = round(prober.longest_gap(), 3)
    result.server_log = {
        k: v for k, v in logged.items() if k.startswith(("max_connections", "connections refused"))
    }
    return result


def raise_own_file_limit() -> int:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def report(result: Result) -> str:
    lines = [
        f"== {result.scenario}: {result.connections} connections, {result.seconds} s",
        "   outcome     count   ended after (min / median / max s)",
    ]
    for outcome, n in sorted(result.outcomes.items()):
        t = result.ended_after[outcome]
        lines.append(f"   {outcome:<10} {n:>6}   {t['min_s']} / {t['median_s']} / {t['max_s']}")
    lines.append(
        f"   /healthz: {result.healthz_answers} answers, {result.healthz_failures} failures, "
        f"p50 {result.healthz_p50_ms} ms, max {result.healthz_max_ms} ms, "
        f"longest without an answer {result.healthz_longest_gap_s} s"
    )
    if result.server_log:
        lines.append(f"   server log: {result.server_log}")
    return "\n".join(lines)


async def main(args: argparse.Namespace) -> list[Result]:
    limit = raise_own_file_limit()
    print(f"bench open-file limit: {limit}")
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        for scenario in args.scenario or SCENARIOS:
            result = await run_scenario(scenario, Path(tmp))
            print(report(result), flush=True)
            results.append(result)
    return results


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--scenario", action="append", choices=SCENARIOS)
    parser.add_argument("--json", type=Path, help="write the results here as JSON")
    arguments = parser.parse_args()
    outcome = asyncio.run(main(arguments))
    if arguments.json:
        arguments.json.write_text(json.dumps([asdict(r) for r in outcome], indent=2))
