"""One replica at a time syncs a Google calendar; a notification reaching
any replica still gets the change in promptly.

Two replicas on one PostgreSQL database, a resource connected to a fake
Google calendar (``from_google``: Google's events become busy blocks).
While the calendar's sync turn is held elsewhere (the test holds the very
advisory lock a syncing replica holds), a notification sent to a replica
does not start a second sync: the fake sees no list call. Once the turn is
free, that replica syncs and the busy block appears (bounded wait). And
with notifications reaching both replicas at the same moment and Google
slow, both sync, one after the other: the fake never has two list calls
of the calendar open at once.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import psycopg
import pytest

from fake_google.calendar import FakeGoogle
from gateway.store.postgres_locks import sync_lock_key
from gateway.store.postgres_schema import SYNC_NAMESPACE
from google_bridge.tokens import new_key
from tests.conftest import API_TOKEN
from tests.google.harness import at, gtime, settings_yaml
from tests.pgserver import (  # noqa: F401 - fixtures
    postgres_server,
    postgres_url,
    require_postgres,
)
from tests.replicas.cluster import Cluster, eventually, replica_config, running_cluster
from tests.smtp import Recorder

require_postgres()

API = {"Authorization": f"Bearer {API_TOKEN}"}
ACCOUNT = "room@gmail.test"
WAIT = 20.0


@pytest.fixture
async def fake() -> AsyncIterator[FakeGoogle]:
    # Loopback http:// addresses get channels (Google would want https).
    async with FakeGoogle.running(allow_http_webhooks=True) as google:
        yield google


@pytest.fixture
async def cluster(
    tmp_path: Path,
    postgres_url: str,  # noqa: F811
    fake: FakeGoogle,
    mail: tuple[Recorder, int],
) -> AsyncIterator[Cluster]:
    yaml = settings_yaml(tmp_path / "unused.sqlite3", 0, fake, mail[1], key=new_key())
    async with running_cluster(replica_config(tmp_path, yaml, postgres_url), 2) as running:
        yield running


async def notify(cluster: Cluster, index: int, fake: FakeGoogle, number: int) -> None:
    """Google's "the calendar changed" notification, delivered to replica ``index``."""
    [channel] = [c for c in fake.channels.values() if c.calendar_id == ACCOUNT]
    async with cluster.http.post(
        f"{cluster.url(index)}/google/notify", headers=channel.headers("exists", number)
    ) as response:
        assert response.status == 200


async def busy(cluster: Cluster, index: int, start: str, end: str) -> list[dict[str, str]]:
    async with cluster.http.get(
        f"{cluster.url(index)}/api/v1/resources/room/availability",
        params={"start": start, "end": end},
        headers=API,
    ) as response:
        assert response.status == 200, await response.text()
        spans: list[dict[str, str]] = (await response.json())["busy"]
        return spans


async def test_one_replica_syncs_a_calendar_and_a_notification_anywhere_is_heard(
    cluster: Cluster,
    fake: FakeGoogle,
    postgres_url: str,  # noqa: F811
) -> None:
    await cluster.connect_google(0, "room", fake, ACCOUNT, API_TOKEN)
    # Deliveries are the test's to make, to the replica it chooses.
    fake.drop_notifications = True
    await eventually(
        lambda: _true(any(c.calendar_id == ACCOUNT for c in fake.channels.values())),
        "watch channel",
        WAIT,
    )

    start, end = at(3, 10), at(3, 11)
    window = (start.isoformat(), end.isoformat())
    async with await psycopg.AsyncConnection.connect(postgres_url, autocommit=True) as other:
        # "Replica X is syncing room" (waits for any sync under way to end).
        await other.execute(
            "SELECT pg_advisory_lock(%s, %s)", (SYNC_NAMESPACE, sync_lock_key("room"))
        )
        lists_before = fake.lists[ACCOUNT]
        fake.user_insert(ACCOUNT, {"summary": "Dentist", **gtime(start, end)})
        await notify(cluster, 1, fake, 1)
        await cluster.served(1).wait_for_log(
            lambda e: (
                e.get("msg") == "google sync held up: another replica is syncing this calendar"
            ),
            within=WAIT,
        )
        assert fake.lists[ACCOUNT] == lists_before  # no second sync meanwhile
        assert await busy(cluster, 1, *window) == []
        await other.execute(
            "SELECT pg_advisory_unlock(%s, %s)", (SYNC_NAMESPACE, sync_lock_key("room"))
        )

    # The notified replica syncs as soon as the turn is free.
    async def blocked() -> bool:
        return len(await busy(cluster, 0, *window)) == 1

    await eventually(blocked, "busy block", WAIT)
    assert fake.lists[ACCOUNT] > lists_before

    # Both replicas told at once, Google slow: they sync one after the other.
    fake.latency = 0.2
    lists_before = fake.lists[ACCOUNT]
    opened_before = fake.most_lists_open[ACCOUNT]
    assert opened_before == 1
    for number in range(2, 5):
        await asyncio.gather(notify(cluster, 0, fake, number), notify(cluster, 1, fake, number))
        target = lists_before + 2 * (number - 1)
        await eventually(lambda t=target: _true(fake.lists[ACCOUNT] >= t), "second sync", WAIT)
    assert fake.most_lists_open[ACCOUNT] == 1


async def _true(value: bool) -> bool:
    return value
