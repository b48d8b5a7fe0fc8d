"""Duplicate and lost invitations under mail faults (issue 12, item 10),
against a real ``calgateway serve`` and a real SMTP server (aiosmtpd) on
127.0.0.1.

    .venv/bin/python -m bench.attacks.mail_faults                   # both, full size
    .venv/bin/python -m bench.attacks.mail_faults --scenario kill --bookings 100
    .venv/bin/python -m bench.attacks.mail_faults --scenario slow --json out.json

- ``kill``: ``--bookings`` bookings (each with its own booker, so each must
  give exactly one invitation) are posted while the server is killed with
  SIGKILL at random moments (every ``--kill-min``..``--kill-max`` seconds)
  and started again on the same database; a booking whose POST was cut off
  is posted again with the same Idempotency-Key. After the last booking is
  acknowledged a final server runs until the outbox is empty.
- ``slow``: ``--slow-bookings`` bookings while the SMTP server acknowledges
  the end of every message after ``--ack-delay`` seconds (7), with
  ``mail.timeout`` 5 s and ``mail.data_timeout`` at its default (60 s).

Per booker it counts the messages received, the distinct Message-IDs and
the distinct contents (subject and the calendar's UID, SEQUENCE and METHOD:
a message sent again has a new Date and DTSTAMP but says the same). The
duplicate rate is (messages - bookers) / bookers; by Message-ID it counts
copies that a mail store can NOT recognise as the same message. A booker
with no message is lost. Every wait is bounded.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import random
import re
import signal
import tempfile
import time
from collections import Counter
from dataclasses import asdict, dataclass
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import aiohttp

from tests.conftest import API_TOKEN, settings_yaml
from tests.serving import Served, serving
from tests.smtp import Recorder, smtp_server

DRAIN_TIMEOUT = 300.0
REQUEST_TIMEOUT = 10.0


@dataclass
class Figures:
    scenario: str
    bookings: int
    messages: int
    duplicates_by_message_id: int  # copies beyond the first of one Message-ID
    duplicates_by_content: int  # copies beyond the first of one content
    unrecognisable_duplicates: int  # same content under another Message-ID
    lost: int
    kills: int
    resent_after_restart: int  # "sending again ... may have gone out" log lines
    seconds: float

    @property
    def duplicate_rate(self) -> float:
        return self.duplicates_by_content / self.bookings if self.bookings else 0.0


def _config(folder: Path, smtp_port: int, smtp_timeout: float) -> Path:
    extra = f"""\
outbox: {{initial_retry_delay: 0.2, max_retry_delay: 2.0, poll_interval: 0.2}}
mail:
  smtp_host: 127.0.0.1
  smtp_port: {smtp_port}
  security: none
  from_address: bookings@gateway.test
  timeout: {smtp_timeout}
"""
    path = folder / "gateway.yaml"
    path.write_text(settings_yaml(folder / "gateway.sqlite3", mail=False, extra=extra), "utf-8")
    return path


def _booker(n: int) -> str:
    return f"booker-{n}@example.com"


def _body(n: int) -> dict[str, Any]:
    # One-hour slots, one per hour from 2027 on: no two bookings overlap.
    day, hour = divmod(n, 10)
    month, day = divmod(day, 28)
    return {
        "resource": "anna",
        "start": f"{2027 + month // 12}-{1 + month % 12:02d}-{1 + day:02d}T{8 + hour:02d}:00:00Z",
        "end": f"{2027 + month // 12}-{1 + month % 12:02d}-{1 + day:02d}T{9 + hour:02d}:00:00Z",
        "title": f"Booking {n}",
        "booker": {"name": f"Booker {n}", "email": _booker(n)},
    }


async def _post(http: aiohttp.ClientSession, url: str, n: int) -> bool:
    try:
        async with http.post(
            f"{url}/api/v1/bookings",
            json=_body(n),
            headers={"Authorization": f"Bearer {API_TOKEN}", "Idempotency-Key": f"bench-{n}"},
        ) as resp:
            await resp.read()
            return resp.status in (200, 201)
    except (aiohttp.ClientError, TimeoutError):
        return False  # the server died under it: post again in its next life


async def _post_until(
    http: aiohttp.ClientSession, url: str, queue: list[int], done: set[int], deadline: float
) -> None:
    """One client: post the queue's bookings until it is empty or the
    server's life ends."""
    while queue and time.monotonic() < deadline:
        n = queue.pop(0)
        if await _post(http, url, n):
            done.add(n)


async def _outbox_empty(http: aiohttp.ClientSession, url: str) -> bool:
    try:
        async with http.get(f"{url}/healthz") as resp:
            data = await resp.json()
            return resp.status == 200 and data.get("outbox_pending") == 0
    except (aiohttp.ClientError, TimeoutError, ValueError):
        return False


def _resent(server: Served) -> int:
    return sum(
        1
        for e in server.entries
        if str(e.get("msg", "")).startswith("sending again a message that may have")
    )


async def _drain(server: Served) -> None:
    timeout = aiohttp.ClientTimeout(total=REQUEST_TIMEOUT)
    async with aiohttp.ClientSession(timeout=timeout) as http:

        async def wait() -> None:
            # Another process's state: polled, there is no event to wait on.
            while not await _outbox_empty(http, server.url):  # noqa: ASYNC110
                await asyncio.sleep(0.2)

        await asyncio.wait_for(wait(), DRAIN_TIMEOUT)


_CALENDAR_LINE = re.compile(r"^(UID|SEQUENCE|METHOD):(.*)$", re.MULTILINE)


def _content(message: EmailMessage) -> tuple[str, ...]:
    calendar = ""
    for part in message.walk():
        if part.get_content_type() == "text/calendar":
            payload = part.get_payload(decode=True)
            calendar = payload.decode("utf-8") if isinstance(payload, bytes) else ""
    unfolded = calendar.replace("\r\n ", "").replace("\r\n", "\n")
    return (str(message["To"]), str(message["Subject"]), *sorted(_CALENDAR_LINE.findall(unfolded)))


def _count(
    recorder: Recorder, bookings: int, scenario: str, kills: int, resent: int, seconds: float
) -> Figures:
    messages = recorder.messages()
    by_id: Counter[str] = Counter(str(m["Message-ID"]) for m in messages)
    by_content: Counter[tuple[str, ...]] = Counter(_content(m) for m in messages)
    ids_per_content: dict[tuple[str, ...], set[str]] = {}
    for m in messages:
        ids_per_content.setdefault(_content(m), set()).add(str(m["Message-ID"]))
    received = {str(r) for m in messages for r in [m["To"]]}
    lost = sum(1 for n in range(bookings) if not any(_booker(n) in r for r in received))
    return Figures(
        scenario=scenario,
        bookings=bookings,
        messages=len(messages),
        duplicates_by_message_id=sum(c - 1 for c in by_id.values()),
        duplicates_by_content=sum(c - 1 for c in by_content.values()),
        unrecognisable_duplicates=sum(len(ids) - 1 for ids in ids_per_content.values()),
        lost=lost,
        kills=kills,
        resent_after_restart=resent,
        seconds=round(seconds, 1),
    )


async def run_kill(bookings: int, kill_min: float, kill_max: float, seed: int) -> Figures:
    rng = random.Random(seed)
    began = time.monotonic()
    kills = resent = 0
    with tempfile.TemporaryDirectory() as tmp, smtp_server() as (recorder, port):
        config = _config(Path(tmp), port, smtp_timeout=5.0)
        pending = list(range(bookings))
        while pending:
            async with serving(config) as server:
                deadline = time.monotonic() + rng.uniform(kill_min, kill_max)
                timeout = aiohttp.ClientTimeout(total=REQUEST_TIMEOUT)
                async with aiohttp.ClientSession(timeout=timeout) as http:
                    queue = list(pending)
                    done: set[int] = set()
                    killer = asyncio.create_task(asyncio.sleep(deadline - time.monotonic()))
                    await asyncio.gather(
                        *(_post_until(http, server.url, queue, done, deadline) for _ in range(8))
                    )
                    await killer  # the rest of this life: mail still going out
                    server.signal(signal.SIGKILL)
                    await server.process.wait()
                    kills += 1
                    pending = [n for n in pending if n not in done]
                resent += _resent(server)
        async with serving(config) as server:
            await _drain(server)
            resent += _resent(server)
        return _count(recorder, bookings, "kill", kills, resent, time.monotonic() - began)


async def run_slow(bookings: int, ack_delay: float) -> Figures:
    began = time.monotonic()
    with tempfile.TemporaryDirectory() as tmp, smtp_server() as (recorder, port):
        recorder.data_delay = ack_delay
        config = _config(Path(tmp), port, smtp_timeout=5.0)
        async with serving(config) as server:
            timeout = aiohttp.ClientTimeout(total=REQUEST_TIMEOUT)
            async with aiohttp.ClientSession(timeout=timeout) as http:
                for n in range(bookings):
                    assert await _post(http, server.url, n), f"booking {n} refused"
            await _drain(server)
            resent = _resent(server)
        return _count(recorder, bookings, "slow", 0, resent, time.monotonic() - began)


def _print(figures: Figures) -> None:
    print(
        f"{figures.scenario:5}  bookings {figures.bookings:4}  messages {figures.messages:4}  "
        f"duplicates: by content {figures.duplicates_by_content} "
        f"({figures.duplicate_rate:.1%}), by Message-ID {figures.duplicates_by_message_id}, "
        f"unrecognisable {figures.unrecognisable_duplicates}  lost {figures.lost}  "
        f"kills {figures.kills}  resent after restart {figures.resent_after_restart}  "
        f"{figures.seconds} s"
    )


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--scenario", choices=["kill", "slow", "both"], default="both")
    parser.add_argument("--bookings", type=int, default=500)
    parser.add_argument("--kill-min", type=float, default=0.5)
    parser.add_argument("--kill-max", type=float, default=3.0)
    parser.add_argument("--seed", type=int, default=12)
    parser.add_argument("--slow-bookings", type=int, default=20)
    parser.add_argument("--ack-delay", type=float, default=7.0)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    results = []
    if args.scenario in ("kill", "both"):
        results.append(await run_kill(args.bookings, args.kill_min, args.kill_max, args.seed))
        _print(results[-1])
    if args.scenario in ("slow", "both"):
        results.append(await run_slow(args.slow_bookings, args.ack_delay))
        _print(results[-1])
    if args.json:
        args.json.write_text(json.dumps([asdict(r) for r in results], indent=2), "utf-8")


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(main())
