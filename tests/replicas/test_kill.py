"""A replica killed in the middle of a burst loses nothing and duplicates nothing.

Three replicas on one PostgreSQL database, with invitations going to a real
SMTP server and one resource mirrored to the fake Google: 300 bookings are
spread over the replicas, and one replica is SIGKILLed in the middle of it,
at a moment it is known to be sending an e-mail (the SMTP server holds its
answer to that message: the message has arrived, the replica never hears
so). The killed replica is not restarted: everything after the kill is done
by the two others, so its outbox leases must end with it (they name their
holder, whose lock died with its connection), not 5 minutes later.

Afterwards every booking that was answered 2xx (and every one committed
whose answer the kill cut off) is stored, mailed and in Google exactly
once: one e-mail per Message-ID, except the e-mails the killed replica may
have sent (marked "sending" in the outbox), which arrive twice with the
same Message-ID; one successful insert per Google event.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import aiohttp
import psycopg
import pytest
from psycopg.rows import dict_row

from fake_google.calendar import FakeGoogle
from google_bridge.tokens import new_key
from tests.conftest import API_TOKEN
from tests.google.harness import at, settings_yaml
from tests.pgserver import (  # noqa: F401 - fixtures
    postgres_server,
    postgres_url,
    require_postgres,
)
from tests.replicas.cluster import Cluster, eventually, replica_config, running_cluster
from tests.smtp import Recorder

require_postgres()

API = {"Authorization": f"Bearer {API_TOKEN}"}
BOOKINGS = 300
CLIENTS = 16
KILL_AFTER = 100  # answers before the kill
HELD = "held@booker.test"
ACCOUNT = "carl@gmail.test"
DRAIN_TIMEOUT = 60.0


@pytest.fixture
async def fake() -> AsyncIterator[FakeGoogle]:
    async with FakeGoogle.running() as google:
        yield google


@pytest.fixture
async def cluster(
    tmp_path: Path,
    postgres_url: str,  # noqa: F811
    fake: FakeGoogle,
    mail: tuple[Recorder, int],
) -> AsyncIterator[Cluster]:
    yaml = settings_yaml(
        tmp_path / "unused.sqlite3",
        0,
        fake,
        mail[1],
        key=new_key(),
        # Every client comes from 127.0.0.1, as from a proxy in front.
        server="  max_connections_per_address: 0\n",
        google="  push_notifications: false\n",
    )
    async with running_cluster(replica_config(tmp_path, yaml, postgres_url), 3) as running:
        yield running


async def db_rows(url: str, sql: str, params: Any = None) -> list[dict[str, Any]]:
    async with await psycopg.AsyncConnection.connect(
        url, autocommit=True, row_factory=dict_row
    ) as conn:
        cursor = await conn.execute(sql, params)
        return await cursor.fetchall()


async def test_a_replica_killed_mid_burst_loses_and_duplicates_nothing(
    cluster: Cluster,
    fake: FakeGoogle,
    mail: tuple[Recorder, int],
    postgres_url: str,  # noqa: F811
) -> None:
    recorder = mail[0]
    await cluster.connect_google(0, "carl", fake, ACCOUNT, API_TOKEN)
    recorder.hold_data_for = HELD

    answered: dict[int, str] = {}  # booking number -> booking id
    enough = asyncio.Event()
    slots = asyncio.Semaphore(CLIENTS)

    async def book(number: int) -> None:
        start = at(1 + number // 10, 7 + number % 10)
        email = HELD if number == 0 else f"booker{number}@booker.test"
        body = {
            "resource": "carl",
            "start": start.isoformat(),
            "end": (start + timedelta(minutes=30)).isoformat(),
            "title": f"Booking {number}",
            "booker": {"name": f"Booker {number}", "email": email},
        }
        async with slots:
            urls = cluster.urls  # the replicas alive now
            try:
                async with cluster.http.post(
                    f"{urls[number % len(urls)]}/api/v1/bookings", json=body, headers=API
                ) as response:
                    assert response.status < 500, await response.text()
                    if response.status == 201:
                        answered[number] = (await response.json())["id"]
            except aiohttp.ClientError:
                pass  # the replica died with the request: no answer
            if len(answered) >= KILL_AFTER:
                enough.set()

    await book(0)  # its e-mail is the one the SMTP server holds
    burst = asyncio.gather(*(book(n) for n in range(1, BOOKINGS)))
    await recorder.wait_held("data", within=30)
    await asyncio.wait_for(enough.wait(), 60)
    # The replica sending the held e-mail, found by its lease.
    held = await db_rows(
        postgres_url,
        "SELECT leased_by FROM outbox WHERE booking_id = %s AND sending_since IS NOT NULL",
        (answered[0],),
    )
    assert len(held) == 1, held
    victim = cluster.replica_of(held[0]["leased_by"])
    await cluster.kill(victim)
    recorder.release()  # the answer goes to a dead socket
    await asyncio.wait_for(burst, 120)

    # Bounded wait until the two survivors have done every outbox item.
    async def drained() -> bool:
        return not await db_rows(postgres_url, "SELECT id FROM outbox WHERE done_at IS NULL")

    await eventually(drained, "empty outbox", DRAIN_TIMEOUT)

    stored = await db_rows(
        postgres_url, "SELECT booking_id FROM objects WHERE resource_id = 'carl'"
    )
    booking_ids = {row["booking_id"] for row in stored}
    assert set(answered.values()) <= booking_ids
    # Committed bookings whose answer the kill cut off exist too (at most
    # the requests in flight to the victim).
    assert len(booking_ids) - len(answered) <= CLIENTS

    # E-mail: every booking's invitation, one per Message-ID...
    invitations = [m for m in recorder.messages() if "@booker.test" in str(m["To"])]
    per_id = Counter(str(m["Message-ID"]) for m in invitations)
    per_booker = Counter(str(m["To"]) for m in invitations)
    assert len(per_booker) == len(booking_ids)
    # ...sent twice only when the killed replica was sending it: the same
    # Message-ID again, from the item a survivor finished.
    twice = {message_id for message_id, n in per_id.items() if n > 1}
    assert max(per_id.values()) <= 2
    resent = await db_rows(
        postgres_url,
        "SELECT booking_id FROM outbox WHERE resends > 0 AND done_at IS NOT NULL "
        "AND failed_at IS NULL",
    )
    assert answered[0] in {row["booking_id"] for row in resent}
    held_mails = [m for m in invitations if HELD in str(m["To"])]
    assert len(held_mails) == 2
    assert held_mails[0]["Message-ID"] == held_mails[1]["Message-ID"]
    assert len(twice) <= len(resent)
    assert sum(per_id.values()) == len(per_id) + len(twice)

    # Google: one event per booking, each inserted once.
    events = fake.events(ACCOUNT)
    assert len(events) == len(booking_ids)
    inserts = Counter({key: n for key, n in fake.inserts.items() if key[0] == ACCOUNT})
    assert len(inserts) == len(booking_ids)
    assert set(inserts.values()) == {1}
    failed = await db_rows(
        postgres_url, "SELECT id, last_error FROM outbox WHERE failed_at IS NOT NULL"
    )
    assert failed == []
