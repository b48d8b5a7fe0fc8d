"""Outbox leases and Google sync turns between two stores on one PostgreSQL
database, as two replicas hold them (``gateway.store.postgres_locks``).

A lease holds while its holder lives: another replica neither claims the
item nor voids the lease when it starts (``release_leases``), and takes the
item as soon as the holder's connection is gone, long before the lease
would run out. A calendar's sync turn is one replica's at a time and comes
free when that replica lets go or dies.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime, timedelta

import pytest

from gateway.store.postgres import PostgresRepository, open_postgres_repository
from tests.pgserver import (  # noqa: F401 - fixtures
    postgres_server,
    postgres_url,
    require_postgres,
)
from tests.replicas.cluster import eventually
from tests.store.contract import effect

require_postgres()

LEASE = timedelta(minutes=5)
MOMENT_AGO = datetime.min.replace(tzinfo=UTC)  # next_outbox_due: due now


def dead(repo: PostgresRepository) -> Callable[[], Awaitable[bool]]:
    """Whether ``repo`` sees the closed replica's lease as void: the server
    ends a closed session a moment after the client let go."""

    async def due_now() -> bool:
        return await repo.next_outbox_due() == MOMENT_AGO

    return due_now


@pytest.fixture
async def replicas(postgres_url: str) -> AsyncIterator[list[PostgresRepository]]:  # noqa: F811
    opened = [await open_postgres_repository(postgres_url) for _ in range(2)]
    try:
        yield opened
    finally:
        for repo in opened:
            await repo.close()


async def test_a_live_holders_lease_holds_and_a_dead_ones_ends_at_once(
    replicas: list[PostgresRepository],
) -> None:
    first, second = replicas
    async with first.transaction() as tx:
        await tx.enqueue(effect(1))
    now = datetime.now(UTC)
    [claimed] = await first.claim_outbox(now, 10, LEASE)

    # A replica starting beside a live one leaves its leases alone.
    assert await second.release_leases() == 0
    assert await second.claim_outbox(now, 10, LEASE) == []
    due = await second.next_outbox_due()
    assert due is not None and due > now + LEASE - timedelta(minutes=1)

    await first.close()  # its lock connection ends, as when the process dies
    # The server ends the closed session a moment later (bounded wait).
    await eventually(dead(second), "end of the closed session")
    [taken] = await second.claim_outbox(now, 10, LEASE)
    assert taken.id == claimed.id


async def test_a_dead_holders_leases_are_released_at_start(
    replicas: list[PostgresRepository],
) -> None:
    first, second = replicas
    async with first.transaction() as tx:
        await tx.enqueue(effect(1))
        await tx.enqueue(effect(2))
    await first.claim_outbox(datetime.now(UTC), 10, LEASE)
    await first.close()
    await eventually(dead(second), "end of the closed session")
    assert await second.release_leases() == 2


async def test_one_replica_at_a_time_has_a_calendars_sync_turn(
    replicas: list[PostgresRepository],
) -> None:
    first, second = replicas
    async with first.sync_turn("room") as mine:
        assert mine
        async with second.sync_turn("room") as theirs:
            assert not theirs
        async with first.sync_turn("room") as again:
            assert not again  # not twice in one replica either
        async with second.sync_turn("anna") as other:
            assert other  # another calendar is free
    async with second.sync_turn("room") as now_mine:
        assert now_mine

    async with first.sync_turn("room") as mine:
        assert mine
        await first.close()  # dies mid-sync: the turn goes with it

    async def turn_free() -> bool:
        async with second.sync_turn("room") as taken:
            return taken

    await eventually(turn_free, "free sync turn")


async def test_replicas_claiming_at_once_never_take_the_same_item(
    replicas: list[PostgresRepository],
) -> None:
    """Claims pick their items FOR UPDATE SKIP LOCKED, outside the write
    lock: many claims racing from two replicas hand each item out once."""
    async with replicas[0].transaction() as tx:
        for n in range(60):
            await tx.enqueue(effect(n))
    now = datetime.now(UTC)
    rounds = await asyncio.gather(
        *(repo.claim_outbox(now, 4, LEASE) for _ in range(10) for repo in replicas)
    )
    claimed = [item.id for batch in rounds for item in batch]
    assert len(claimed) == len(set(claimed))  # nothing handed out twice
    # A claim skips what another is leasing right then: the rest is there after.
    while rest := await replicas[0].claim_outbox(now, 60, LEASE):
        claimed += [item.id for item in rest]
    assert len(claimed) == len(set(claimed)) == 60
