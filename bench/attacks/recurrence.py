"""Issue 12 item 1 at full size: recurrence objects that stalled the server,
against a real ``calgateway serve`` on loopback.

    .venv/bin/python -m bench.attacks.recurrence

For each attack: the answer's status, its seconds, and the longest gap
between two answers of /healthz polled every 20 ms meanwhile (before the
fix: a PUT of FREQ=MINUTELY from 2000 took 143 s with /healthz dead,
FREQ=SECONDLY and a SECONDLY VTIMEZONE never answered, a SECONDLY series in
2090 stalled every 100-year query, 5,000 overrides stalled 3-7.5 s, expand
over COUNT=10^9 gave a 5xx). Objects an older version could store without
the limits are written straight into the database before the server starts.
Every request is bounded (``--timeout``); nothing leaves 127.0.0.1.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import itertools
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import aiohttp

from gateway.store import open_sqlite_repository
from tests.conftest import ADMIN_PASSWORD, API_TOKEN, settings_yaml
from tests.recurrence import (
    legacy_object,
    minutely_since_2000,
    overridden,
    secondly,
    secondly_2090,
    secondly_zone,
    series,
    store_legacy,
)
from tests.serving import serving

ANNA = "/dav/calendars/anna/"
C = "urn:ietf:params:xml:ns:caldav"
ADMIN = {"Authorization": "Basic " + base64.b64encode(f"admin:{ADMIN_PASSWORD}".encode()).decode()}
POLL_EVERY = 0.02


def expand_query(start: str, end: str) -> str:
    return (
        f'<C:calendar-query xmlns:D="DAV:" xmlns:C="{C}"><D:prop><D:getetag/>'
        f'<C:calendar-data><C:expand start="{start}" end="{end}"/></C:calendar-data>'
        '</D:prop><C:filter><C:comp-filter name="VCALENDAR"><C:comp-filter name="VEVENT">'
        f'<C:time-range start="{start}" end="{end}"/>'
        "</C:comp-filter></C:comp-filter></C:filter></C:calendar-query>"
    )


def time_range_query(start: str, end: str) -> str:
    return expand_query(start, end).replace(
        f'<C:calendar-data><C:expand start="{start}" end="{end}"/></C:calendar-data>', ""
    )


def free_busy(start: str, end: str) -> str:
    return (
        f'<C:free-busy-query xmlns:C="{C}">'
        f'<C:time-range start="{start}" end="{end}"/></C:free-busy-query>'
    )


@dataclass
class Outcome:
    name: str
    status: str
    seconds: float
    healthz_gap: float
    healthz_answers: int
    note: str = ""


Attack = Callable[[aiohttp.ClientSession, str], Awaitable[tuple[str, str]]]


async def _answer(response: aiohttp.ClientResponse) -> tuple[str, str]:
    body = (await response.read()).decode("utf-8", "replace")
    note = ""
    if "507 Insufficient Storage" in body:
        note = f"{body.count('507 Insufficient Storage')} object(s) answered 507"
    elif "<G:message>" in body:
        note = body.split("<G:message>", 1)[1].split("</G:message>", 1)[0][:140]
    return str(response.status), note


def put(ics: str, name: str = "attack.ics") -> Attack:
    async def run(http: aiohttp.ClientSession, url: str) -> tuple[str, str]:
        async with http.put(
            f"{url}{ANNA}{name}",
            data=ics.encode("utf-8"),
            headers={**ADMIN, "Content-Type": "text/calendar; charset=utf-8"},
        ) as response:
            return await _answer(response)

    return run


def report(body: str) -> Attack:
    async def run(http: aiohttp.ClientSession, url: str) -> tuple[str, str]:
        async with http.request(
            "REPORT",
            f"{url}{ANNA}",
            data=body,
            headers={**ADMIN, "Depth": "1", "Content-Type": "application/xml"},
        ) as response:
            return await _answer(response)

    return run


def booking(start: str, end: str) -> Attack:
    async def run(http: aiohttp.ClientSession, url: str) -> tuple[str, str]:
        body = {"resource": "anna", "title": "attack", "start": start, "end": end}
        async with http.post(
            f"{url}/api/v1/bookings",
            json=body,
            headers={"Authorization": f"Bearer {API_TOKEN}"},
        ) as response:
            text = await response.text()
            return str(response.status), text[:140] if response.status >= 400 else ""

    return run


async def measure(
    http: aiohttp.ClientSession, url: str, name: str, attack: Attack, bound: float
) -> Outcome:
    """Run ``attack`` while /healthz is polled; the longest gap between two
    /healthz answers (or from the last answer to the end) is reported."""
    done = asyncio.Event()
    answers: list[float] = []

    async def poll() -> None:
        while not done.is_set():
            with contextlib.suppress(aiohttp.ClientError, TimeoutError):
                async with http.get(
                    f"{url}/healthz", timeout=aiohttp.ClientTimeout(total=bound)
                ) as response:
                    await response.read()
                    if response.status == 200:
                        answers.append(time.monotonic())
            await asyncio.sleep(POLL_EVERY)

    start = time.monotonic()
    answers.append(start)
    poller = asyncio.create_task(poll())
    try:
        status, note = await asyncio.wait_for(attack(http, url), bound)
    except TimeoutError:
        status, note = "no answer", f"within {bound:g} s"
    seconds = time.monotonic() - start
    done.set()
    await asyncio.wait_for(poller, bound)
    end = time.monotonic()
    marks = [*answers, end]
    gap = max(b - a for a, b in itertools.pairwise(marks))
    return Outcome(name, status, seconds, gap, len(answers) - 1, note)


async def main(bound: float) -> list[Outcome]:
    with tempfile.TemporaryDirectory() as tmp:
        db_path = Path(tmp) / "gateway.sqlite3"
        config = Path(tmp) / "gateway.yaml"
        config.write_text(
            settings_yaml(db_path, mail=False, server="  log_format: json\n"), encoding="utf-8"
        )
        # What an older version stored without the limits.
        repository = await open_sqlite_repository(db_path)
        try:
            await store_legacy(repository, secondly_2090())
            first = datetime(2026, 1, 5, 9, tzinfo=UTC)
            for uid, ics in [
                ("billion@attack", series("billion@attack", "FREQ=DAILY;COUNT=1000000000")),
                ("overrides-5000@attack", overridden(5000, "overrides-5000@attack")),
                ("minutely-2000@attack", minutely_since_2000("minutely-2000@attack")),
            ]:
                start = first if "minutely" not in uid else datetime(2000, 1, 1, tzinfo=UTC)
                obj = legacy_object(ics, uid=uid, start=start, end=start + timedelta(minutes=30))
                await store_legacy(repository, obj)
        finally:
            await repository.close()
        attacks: list[tuple[str, Attack]] = [
            ("PUT RRULE FREQ=MINUTELY from 2000", put(minutely_since_2000())),
            ("PUT RRULE FREQ=SECONDLY", put(secondly())),
            ("PUT VTIMEZONE with SECONDLY rules", put(secondly_zone())),
            ("PUT 5,000 overrides of one series", put(overridden(5000))),
            ("PUT COUNT=10^9", put(series("count", "FREQ=DAILY;COUNT=1000000000"))),
            (
                "stored: 100-year calendar-query, expand",
                report(expand_query("20000101T000000Z", "21000101T000000Z")),
            ),
            (
                "stored: 100-year calendar-query, time-range only",
                report(time_range_query("20000101T000000Z", "21000101T000000Z")),
            ),
            (
                "stored: free-busy-query in 2090",
                report(free_busy("20900101T000000Z", "20901231T000000Z")),
            ),
            (
                "stored: API booking in 2090 (overlaps)",
                booking("2090-06-01T10:00:00Z", "2090-06-01T11:00:00Z"),
            ),
            (
                "stored: API booking in 1999 (free)",
                booking("1999-06-01T10:00:00Z", "1999-06-01T11:00:00Z"),
            ),
        ]
        outcomes = []
        async with serving(config) as server, aiohttp.ClientSession() as http:
            for name, attack in attacks:
                outcomes.append(await measure(http, server.url, name, attack, bound))
        return outcomes


def run() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--timeout", type=float, default=120.0, help="seconds per attack")
    args = parser.parse_args()
    outcomes = asyncio.run(main(args.timeout))
    print(f"{'attack':52} {'status':>9} {'seconds':>8} {'healthz gap':>12} {'answers':>8}")
    for o in outcomes:
        print(
            f"{o.name:52} {o.status:>9} {o.seconds:8.2f} {o.healthz_gap:11.3f}s "
            f"{o.healthz_answers:8d}  {o.note}"
        )


if __name__ == "__main__":
    run()
