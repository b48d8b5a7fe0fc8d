"""Password guessing against a real ``calgateway serve`` (issue 12, item 5).

    .venv/bin/python -m bench.attacks.passwords                  # both scenarios, full size
    .venv/bin/python -m bench.attacks.passwords --guesses 500 --scenario one
    .venv/bin/python -m bench.attacks.passwords --duration 10    # keep guessing for 10 s

Scenarios (``--guesses`` parallel wrong passwords for the user ``admin``,
sent through the JSON API with HTTP Basic):

- ``one``: every guess from 127.0.0.1;
- ``spread``: the guesses spread over ``--addresses`` source addresses
  127.1.0.1, 127.1.0.2, ... (the client socket is bound to each).

With ``--duration 0`` (the default) every guess is one request, all sent at
once; with ``--duration D`` each of the ``--guesses`` attackers sends guess
after guess for D seconds, ignoring ``Retry-After``, as a hostile client would.

Meanwhile, from 127.0.0.2 (a connection pool of its own), real users sign in
for the first time (users ``real-1`` ... ``real-5``: their passwords are not
yet verified, so each needs a password check), the first as soon as the
attack's first answer is in, then one a second while the attack lasts; and a
prober on 127.0.0.3 asks /healthz every 0.1 s. Prints the counts of answers
by status, each real sign-in's latency and status, and /healthz latencies,
as the clients saw them and as the server's access log timed them (from the
moment the server read the request: the difference is time spent waiting for
the server's event loop to read it).

Talks only to 127.0.0.0/8; every request has a timeout, and the run is
bounded (``--duration`` plus the time the guesses already sent take). The
server runs with the default ``auth`` settings, ``max_connections`` above the
guess count and ``max_connections_per_address`` from ``--per-address-cap``
(default 0, none: every guess reaches the password checks; give the server's
default, 64, to see the deployment's figures); the bench raises its own
open-file limit to the hard limit.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import resource
import statistics
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp

from gateway.web.auth import hash_password
from tests.net import from_address
from tests.serving import serving

REAL_USERS = 5
REAL_PASSWORD = "real-user-password-0123"
REQUEST_TIMEOUT = 120.0  # for the observers' thread to finish
PROBE_INTERVAL = 0.1
URL_PATH = "/api/v1/resources"


def config_yaml(db_path: Path, guesses: int, per_address_cap: int) -> str:
    real_hash = hash_password(REAL_PASSWORD)
    users = "".join(
        f'  - name: real-{n}\n    password_hash: "{real_hash}"\n    access: {{"*": read}}\n'
        for n in range(1, REAL_USERS + 1)
    )
    return f"""\
server:
  host: 127.0.0.1
  port: 0
  log_format: json
  max_connections_per_address: {per_address_cap}
  max_connections: {guesses + 200}
storage:
  url: sqlite:///{db_path}
users:
  - name: admin
    password_hash: "{hash_password("admin-password-never-guessed")}"
    access: {{"*": read-write}}
{users}resources:
  - id: anna
    name: Anna
    email: anna@example.com
"""


def basic(user: str, password: str) -> dict[str, str]:
    token = base64.b64encode(f"{user}:{password}".encode()).decode()
    return {"Authorization": f"Basic {token}"}


@dataclass
class Run:
    scenario: str
    statuses: Counter[str] = field(default_factory=Counter)
    without_retry_after: int = 0
    sign_ins: list[tuple[float, int | str]] = field(default_factory=list)
    healthz: list[float] = field(default_factory=list)
    healthz_failed: int = 0
    attack_seconds: float = 0.0
    server_ms: dict[str, list[float]] = field(default_factory=dict)


def attacker_addresses(scenario: str, addresses: int) -> Iterator[str]:
    if scenario == "one":
        while True:
            yield "127.0.0.1"
    n = 0
    while True:
        yield f"127.1.{n // 250}.{n % 250 + 1}"
        n = (n + 1) % addresses


async def attack(args: argparse.Namespace, scenario: str, base: str) -> Run:
    run = Run(scenario)
    sources = attacker_addresses(scenario, args.addresses)
    assignment = [next(sources) for _ in range(args.guesses)]
    sessions = {address: from_address(address) for address in set(assignment)}
    # The real users and the prober run in a thread with an event loop of
    # their own: the attackers' loop, busy with thousands of requests, must
    # not delay their requests or their clocks.
    first_answer = threading.Event()
    attack_over = threading.Event()
    started = time.monotonic()
    deadline = started + args.duration

    async def guesser(n: int, http: aiohttp.ClientSession) -> None:
        attempt = 0
        while True:
            try:
                async with http.get(
                    base + URL_PATH, headers=basic("admin", f"guess-{n}-{attempt}")
                ) as answer:
                    await answer.read()
                    run.statuses[str(answer.status)] += 1
                    if answer.status in (429, 503) and "Retry-After" not in answer.headers:
                        run.without_retry_after += 1
            except (aiohttp.ClientError, TimeoutError) as error:
                run.statuses[type(error).__name__] += 1
            first_answer.set()
            attempt += 1
            if time.monotonic() >= deadline:
                return

    async def over_within(seconds: float) -> bool:
        return await asyncio.to_thread(attack_over.wait, seconds)

    async def real_users() -> None:
        await asyncio.to_thread(first_answer.wait, REQUEST_TIMEOUT)
        async with from_address("127.0.0.2") as http:
            for n in range(1, REAL_USERS + 1):
                began = time.monotonic()
                try:
                    async with http.get(
                        base + URL_PATH, headers=basic(f"real-{n}", REAL_PASSWORD)
                    ) as answer:
                        await answer.read()
                        outcome: int | str = answer.status
                except (aiohttp.ClientError, TimeoutError) as error:
                    outcome = type(error).__name__
                run.sign_ins.append((time.monotonic() - began, outcome))
                if attack_over.is_set() or await over_within(1.0):
                    return

    async def prober() -> None:
        async with from_address("127.0.0.3") as http:
            while not attack_over.is_set():
                began = time.monotonic()
                try:
                    async with http.get(base + "/healthz") as answer:
                        await answer.read()
                    run.healthz.append(time.monotonic() - began)
                except (aiohttp.ClientError, TimeoutError):
                    run.healthz_failed += 1
                await over_within(PROBE_INTERVAL)

    async def observers() -> None:
        await asyncio.gather(real_users(), prober())

    side = asyncio.ensure_future(asyncio.to_thread(asyncio.run, observers()))
    try:
        await asyncio.gather(
            *(guesser(n, sessions[address]) for n, address in enumerate(assignment))
        )
        run.attack_seconds = time.monotonic() - started
    finally:
        first_answer.set()
        attack_over.set()
        await asyncio.wait_for(side, REQUEST_TIMEOUT)
        for http in sessions.values():
            await http.close()
    return run


def server_side(entries: list[dict[str, Any]]) -> dict[str, list[float]]:
    durations: dict[str, list[float]] = {"sign_ins": [], "healthz": []}
    for entry in entries:
        if entry.get("msg") != "request":
            continue
        if entry.get("remote") == "127.0.0.2" and entry.get("path") == URL_PATH:
            durations["sign_ins"].append(float(entry["duration_ms"]))
        elif entry.get("remote") == "127.0.0.3" and entry.get("path") == "/healthz":
            durations["healthz"].append(float(entry["duration_ms"]))
    return durations


def report(run: Run, args: argparse.Namespace) -> dict[str, Any]:
    healthz = sorted(run.healthz)
    summary = {
        "scenario": run.scenario,
        "guesses": args.guesses,
        "addresses": 1 if run.scenario == "one" else args.addresses,
        "duration": args.duration,
        "attack_seconds": round(run.attack_seconds, 2),
        "answers": dict(sorted(run.statuses.items())),
        "refusals_without_retry_after": run.without_retry_after,
        "real_sign_ins": [
            {"seconds": round(seconds, 3), "status": status} for seconds, status in run.sign_ins
        ],
        # What the server's access log says the same requests took from the
        # moment it read them (the rest of the latency: waiting to be read).
        "server_side_ms": {
            "real_sign_ins": run.server_ms.get("sign_ins", []),
            "healthz_max": max(run.server_ms.get("healthz", [0.0])),
        },
        "healthz": {
            "probes": len(healthz),
            "failed": run.healthz_failed,
            "p50_ms": round(statistics.median(healthz) * 1000, 1) if healthz else None,
            "max_ms": round(healthz[-1] * 1000, 1) if healthz else None,
        },
    }
    print(json.dumps(summary, indent=2))
    return summary


async def main(args: argparse.Namespace) -> list[dict[str, Any]]:
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    results = []
    for scenario in args.scenario:
        with tempfile.TemporaryDirectory() as tmp:
            config = Path(tmp) / "gateway.yaml"
            config.write_text(
                config_yaml(Path(tmp) / "db.sqlite3", args.guesses, args.per_address_cap), "utf-8"
            )
            async with serving(config) as server:
                run = await attack(args, scenario, server.url)
                await server.stop()
                run.server_ms = server_side(server.entries)
                results.append(report(run, args))
                locked = [e for e in server.entries if e.get("msg") == "sign-in locked out"]
                print(f"{scenario}: {len(locked)} 'sign-in locked out' log lines")
    return results


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--guesses", type=int, default=2000)
    parser.add_argument("--addresses", type=int, default=200)
    parser.add_argument("--duration", type=float, default=0.0)
    parser.add_argument(
        "--scenario", choices=["one", "spread"], nargs="+", default=["one", "spread"]
    )
    parser.add_argument(
        "--per-address-cap",
        type=int,
        default=0,
        help="server.max_connections_per_address (0: none, so every guess reaches auth)",
    )
    parser.add_argument("--json")
    options = parser.parse_args()
    summaries = asyncio.run(main(options))
    if options.json:
        Path(options.json).write_text(json.dumps(summaries, indent=2), "utf-8")
