"""Three replicas on one PostgreSQL database answer as one server would.

200 bookings race for 20 slots through three real ``calgateway serve``
processes, half through the JSON API and half as CalDAV PUTs: the database
(the write lock every transaction takes) lets exactly one win each slot, and
every loser gets the 409 a single process gives, naming the winner's span.
Afterwards every replica shows the same calendar (ETag, ctag, sync token,
the ICS feed), also right after a write through another replica: their
caches (the feed's last body, parsed objects) are keyed by the collection
revision or the object's content, and the revision is read from the
database on every request. An idempotency key is one booking whichever
replicas see it, even at the same moment.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from lxml import etree

from tests.conftest import ADMIN_PASSWORD, API_TOKEN, basic, settings_yaml
from tests.pgserver import (  # noqa: F401 - fixtures
    postgres_server,
    postgres_url,
    require_postgres,
)
from tests.replicas.cluster import Cluster, replica_config, running_cluster

require_postgres()

API = {"Authorization": f"Bearer {API_TOKEN}"}
DAV = basic("admin", ADMIN_PASSWORD)
FEED = "/feeds/anna.ics?token=anna-feed-token-0123456789abcdef"
CALENDAR = "/dav/calendars/anna/"
SLOTS = 20
TRIES = 10  # per slot: 200 bookings in all
FIRST_SLOT = datetime(2027, 3, 1, 6, tzinfo=UTC)

PROPFIND = b"""<?xml version="1.0" encoding="utf-8"?>
<D:propfind xmlns:D="DAV:" xmlns:CS="http://calendarserver.org/ns/">
  <D:prop><D:getetag/><CS:getctag/><D:sync-token/></D:prop>
</D:propfind>"""
NS = {"D": "DAV:", "CS": "http://calendarserver.org/ns/"}


@pytest.fixture
async def cluster(tmp_path: Path, postgres_url: str) -> AsyncIterator[Cluster]:  # noqa: F811
    # All 200 clients come from 127.0.0.1, as they would from a reverse
    # proxy in front of the replicas: no cap per address (cap at the proxy).
    yaml = settings_yaml(tmp_path / "unused.sqlite3", server="  max_connections_per_address: 0\n")
    config = replica_config(tmp_path, yaml, postgres_url)
    async with running_cluster(config, 3) as running:
        yield running


@dataclass(frozen=True)
class Attempt:
    slot: int
    try_: int
    replica: int
    start: datetime
    end: datetime

    @property
    def caldav(self) -> bool:
        return self.try_ % 2 == 1

    @property
    def uid(self) -> str:
        return f"contested-{self.slot}-{self.try_}"


@dataclass(frozen=True)
class Answer:
    status: int
    body: bytes


def attempts() -> list[Attempt]:
    """Slot k is two hours after slot k-1; its tries start 3 minutes apart
    and last an hour, so the tries of a slot all overlap each other and
    nothing of another slot."""
    made = []
    for slot in range(SLOTS):
        base = FIRST_SLOT + timedelta(hours=2 * slot)
        for try_ in range(TRIES):
            start = base + timedelta(minutes=3 * try_)
            made.append(Attempt(slot, try_, (slot + try_) % 3, start, start + timedelta(hours=1)))
    return made


def ics(attempt: Attempt) -> str:
    return (
        "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//test//replicas//EN\r\n"
        f"BEGIN:VEVENT\r\nUID:{attempt.uid}\r\nDTSTAMP:20270101T000000Z\r\n"
        f"DTSTART:{attempt.start:%Y%m%dT%H%M%SZ}\r\nDTEND:{attempt.end:%Y%m%dT%H%M%SZ}\r\n"
        f"SUMMARY:Slot {attempt.slot} try {attempt.try_}\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n"
    )


async def send(http: aiohttp.ClientSession, url: str, attempt: Attempt) -> Answer:
    if attempt.caldav:
        request = http.put(
            f"{url}{CALENDAR}{attempt.uid}.ics",
            data=ics(attempt).encode(),
            headers={**DAV, "Content-Type": "text/calendar; charset=utf-8"},
        )
    else:
        body = {
            "resource": "anna",
            "start": attempt.start.isoformat(),
            "end": attempt.end.isoformat(),
            "title": f"Slot {attempt.slot} try {attempt.try_}",
        }
        request = http.post(f"{url}/api/v1/bookings", json=body, headers=API)
    async with request as response:
        return Answer(response.status, await response.read())


async def calendar_state(http: aiohttp.ClientSession, url: str) -> dict[str, Any]:
    """What a client sees of the calendar on one replica."""
    async with http.request(
        "PROPFIND", f"{url}{CALENDAR}", data=PROPFIND, headers={**DAV, "Depth": "0"}
    ) as response:
        assert response.status == 207, await response.text()
        prop = etree.fromstring(await response.read()).find(".//D:prop", NS)
    async with http.get(f"{url}{FEED}") as feed:
        assert feed.status == 200, await feed.text()
        body = await feed.read()
    return {
        "etag": prop.findtext("D:getetag", namespaces=NS),
        "ctag": prop.findtext("CS:getctag", namespaces=NS),
        "sync-token": prop.findtext("D:sync-token", namespaces=NS),
        "feed-etag": feed.headers["ETag"],
        "feed": body,
    }


def uids_in(feed: bytes) -> set[str]:
    return {line.split(":", 1)[1] for line in feed.decode().splitlines() if line.startswith("UID:")}


async def test_contested_slots_have_one_winner_and_replicas_agree(cluster: Cluster) -> None:
    http = cluster.http
    # Every replica has rendered (and cached) the empty calendar first.
    before = [await calendar_state(http, url) for url in cluster.urls]
    assert all(b["feed"] == before[0]["feed"] for b in before)

    tries = attempts()
    answers = await asyncio.gather(*(send(http, cluster.url(t.replica), t) for t in tries))

    statuses = Counter(a.status for a in answers)
    assert set(statuses) <= {201, 409}, (
        statuses,
        [a for a in answers if a.status not in (201, 409)][:3],
    )  # no 5xx, nothing else
    winners: dict[int, Attempt] = {}
    for attempt, answer in zip(tries, answers, strict=True):
        if answer.status == 201:
            assert attempt.slot not in winners, f"slot {attempt.slot} won twice"
            winners[attempt.slot] = attempt
    assert sorted(winners) == list(range(SLOTS))

    # Every loser names its slot's winner, exactly as one process answers:
    # the same request sent again (the winner now long committed) to one
    # replica gets the same 409, byte for byte.
    for attempt, answer in zip(tries, answers, strict=True):
        if answer.status != 409:
            continue
        winner = winners[attempt.slot]
        if attempt.caldav:
            assert b"no-double-booking" in answer.body, answer.body
        else:
            problem = json.loads(answer.body)
            spans = [(c["start"], c["end"]) for c in problem["conflicts"]]
            assert spans == [(_z(winner.start), _z(winner.end))], problem
        again = await send(http, cluster.url(0), attempt)
        assert again == answer, (attempt, again, answer)

    # The same calendar on every replica, caches and all.
    after = [await calendar_state(http, url) for url in cluster.urls]
    assert all(a == after[0] for a in after), [
        {k: v for k, v in a.items() if k != "feed"} for a in after
    ]
    assert after[0]["ctag"] != before[0]["ctag"]
    shown = uids_in(after[0]["feed"])
    assert len(shown) == SLOTS
    assert {w.uid for w in winners.values() if w.caldav} <= shown

    # A write through replica 0 is seen at once by the others.
    gone = winners[0]
    async with http.get(
        f"{cluster.url(0)}/api/v1/bookings",
        params={"resource": "anna", "start": _z(gone.start), "end": _z(gone.end)},
        headers=API,
    ) as listed:
        found = (await listed.json())["bookings"]
    assert len(found) == 1
    async with http.delete(
        f"{cluster.url(0)}/api/v1/bookings/{found[0]['id']}", headers=API
    ) as deleted:
        assert deleted.status in (200, 204), await deleted.text()
    latest = [await calendar_state(http, url) for url in cluster.urls]
    assert all(s == latest[0] for s in latest)
    assert latest[0]["ctag"] != after[0]["ctag"]
    assert len(uids_in(latest[0]["feed"])) == SLOTS - 1


async def test_an_idempotency_key_is_one_booking_across_replicas(cluster: Cluster) -> None:
    http = cluster.http
    start = datetime(2027, 4, 1, 9, tzinfo=UTC)
    body = {
        "resource": "room",
        "start": start.isoformat(),
        "end": (start + timedelta(hours=1)).isoformat(),
        "title": "Workshop",
    }
    key = f"order-{uuid.uuid4()}"

    async def post(url: str) -> tuple[int, Any]:
        async with http.post(
            f"{url}/api/v1/bookings", json=body, headers={**API, "Idempotency-Key": key}
        ) as response:
            return response.status, await response.json()

    # The same key at the same moment on every replica, then replayed on each.
    first = await asyncio.gather(*(post(url) for url in cluster.urls))
    again = [await post(url) for url in reversed(cluster.urls)]
    ids = {answer["id"] for _, answer in first + again}
    assert len(ids) == 1, first + again
    assert {status for status, _ in first + again} <= {200, 201}, first + again
    async with http.get(
        f"{cluster.url(2)}/api/v1/bookings",
        params={"resource": "room", "start": _z(start), "end": _z(start + timedelta(hours=1))},
        headers=API,
    ) as listed:
        assert [b["id"] for b in (await listed.json())["bookings"]] == list(ids)


def _z(moment: datetime) -> str:
    """A UTC time as the API writes it."""
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")
