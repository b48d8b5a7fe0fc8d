"""The fake Google Calendar as a process of its own, loaded with events, for
benchmarks: one JSON line on stdout says where it listens; it stops when its
stdin closes.

    .venv/bin/python -m bench.fake_google --events 10000 --account a@example.com
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from fake_google.calendar import FakeGoogle

BERLIN = ZoneInfo("Europe/Berlin")
SERIES_EVERY = 20  # one event in 20 is a weekly series of 4
SERIES_COUNT = 4


def _event(n: int) -> tuple[dict[str, object], int]:
    """The n-th event (daytime slots from tomorrow on) and its busy blocks."""
    day, slot = divmod(n, 12)
    start = datetime.now(BERLIN).replace(hour=8, minute=0, second=0, microsecond=0)
    start += timedelta(days=1 + day % 300, minutes=slot * 40)
    end = start + timedelta(minutes=30)
    body: dict[str, object] = {
        "summary": f"Event {n}",
        "start": {"dateTime": start.replace(tzinfo=None).isoformat(), "timeZone": "Europe/Berlin"},
        "end": {"dateTime": end.replace(tzinfo=None).isoformat(), "timeZone": "Europe/Berlin"},
    }
    if n % SERIES_EVERY == 0:
        body["recurrence"] = [f"RRULE:FREQ=WEEKLY;COUNT={SERIES_COUNT}"]
        return body, SERIES_COUNT
    return body, 1


async def serve(events: int, account: str) -> None:
    async with FakeGoogle.running() as fake:
        fake.add_account(account, time_zone="Europe/Berlin")
        fake.consent_as(account)
        blocks = series = 0
        for n in range(events):
            body, count = _event(n)
            fake.user_insert(account, body)
            blocks += count
            series += count > 1
        info = {
            "client_id": fake.client_id,
            "client_secret": fake.client_secret,
            "api_endpoint": fake.api_endpoint,
            "auth_uri": fake.auth_uri,
            "token_uri": fake.token_uri,
            "expected_blocks": blocks,
            "series": series,
            "loaded_at": datetime.now(UTC).isoformat(),
        }
        print(json.dumps(info), flush=True)
        # Until the bench closes our stdin.
        await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)


def main() -> None:
    parser = argparse.ArgumentParser(description="the fake Google Calendar, loaded")
    parser.add_argument("--events", type=int, default=10_000)
    parser.add_argument("--account", default="bench.calendar@example.com")
    args = parser.parse_args()
    asyncio.run(serve(args.events, args.account))


if __name__ == "__main__":
    main()
