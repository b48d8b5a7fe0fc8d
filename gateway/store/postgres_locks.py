"""Session advisory locks a PostgreSQL replica holds on a connection of its own.

Two jobs need a lock that outlives a transaction and ends with the process:

* the replica's identity as an outbox lease holder: a random key in
  ``WORKER_NAMESPACE``, taken at open and held for the replica's life. A
  lease names its holder (``outbox.leased_by``); a lease whose holder's lock
  is gone is void, so another replica takes a dead replica's items at once
  instead of when ``leased_until`` runs out (``LIVE_WORKERS``).
* the Google sync of one calendar (``SYNC_NAMESPACE``, ``sync_lock_key``):
  taken with ``pg_try_advisory_lock`` for one sync and released after it,
  so exactly one replica syncs a calendar at a time.

Why session locks on a connection of their own, not a lease row with an
expiry: PostgreSQL releases a session's advisory locks the moment its
connection ends, and the kernel closes a killed process's sockets, so a
replica killed with SIGKILL loses its locks within moments, while a live
replica never loses them to a slow step (a row lease would have to be
renewed, and a sync or an e-mail that outlasts it would run twice). The
pooled connections cannot hold them: a session lock stays with the
connection, and the pool lends that to someone else.

If the connection breaks while the process lives (the server restarted, a
network cut), the locks are gone: the next use reconnects and takes the
identity again, and meanwhile another replica may run an item this one is
running (the same Message-ID and Google event id make the repeat
recognisable and harmless, as after a crash).
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import secrets
from collections.abc import Awaitable, Callable
from typing import TypeVar

import psycopg
from psycopg import AsyncConnection
from psycopg.rows import DictRow, dict_row

from .postgres_schema import SYNC_NAMESPACE, WORKER_NAMESPACE

log = logging.getLogger("calgateway.store")

_T = TypeVar("_T")
_KEY_TRIES = 16

# The holders alive now: one row per replica holding its identity lock in
# this database. The namespace is a constant of ours, not a parameter.
LIVE_WORKERS = (
    "SELECT l.objid::bigint AS owner FROM pg_locks AS l "  # noqa: S608
    "WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 2 "
    f"AND l.classid = {WORKER_NAMESPACE:d}::oid "
    "AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())"
)


def sync_lock_key(resource_id: str) -> int:
    """The advisory lock key of a resource's Google sync (a positive int4,
    the same in every replica)."""
    digest = hashlib.sha256(resource_id.encode("utf-8")).digest()
    return int.from_bytes(digest[:4], "big") & 0x7FFFFFFF


class ReplicaLocks:
    """The identity lock (held for life) and the sync locks of one replica,
    on one connection. Use ``open_replica_locks``."""

    def __init__(self, url: str, connect_timeout: int) -> None:
        self._url = url
        self._timeout = connect_timeout
        self._conn: AsyncConnection[DictRow] | None = None
        self._use = asyncio.Lock()
        self._syncing: set[int] = set()
        self._closed = False
        self.owner = 0

    async def _connect(self) -> AsyncConnection[DictRow]:
        conn = await AsyncConnection.connect(
            self._url, autocommit=True, row_factory=dict_row, connect_timeout=self._timeout
        )
        # The same identity after a reconnect when nobody took it meanwhile
        # (leases keep naming it); else a fresh one.
        keys = [self.owner] if self.owner else []
        keys += [secrets.randbelow(0x7FFFFFFF) + 1 for _ in range(_KEY_TRIES)]
        for key in keys:
            if await _try_lock(conn, WORKER_NAMESPACE, key):
                self.owner = key
                self._syncing.clear()  # the sync locks went with the old session
                return conn
        await conn.close()
        raise RuntimeError("no free replica identity lock (16 random keys taken)")

    async def _run(self, step: Callable[[AsyncConnection[DictRow]], Awaitable[_T]]) -> _T:
        async with self._use:
            if self._closed:
                raise RuntimeError("the replica's locks are closed")
            for attempt in range(2):
                if self._conn is None or self._conn.closed or self._conn.broken:
                    self._conn = await self._connect()
                    if attempt:
                        log.warning(
                            "the replica's lock connection to PostgreSQL was lost; reconnected",
                            extra={"owner": self.owner},
                        )
                try:
                    return await step(self._conn)
                except psycopg.OperationalError:
                    if attempt:
                        raise
                    # The connection broke under us: once more on a new one.
                    await self._conn.close()
            raise AssertionError("unreachable")  # pragma: no cover

    async def identity(self) -> int:
        """The key this replica's leases carry (checking the lock is held)."""
        await self._run(_ping)
        return self.owner

    async def try_sync(self, resource_id: str) -> bool:
        """Take the resource's sync lock if no replica holds it."""
        key = sync_lock_key(resource_id)

        async def take(conn: AsyncConnection[DictRow]) -> bool:
            if key in self._syncing:
                return False  # session locks nest: never take ours twice
            taken = await _try_lock(conn, SYNC_NAMESPACE, key)
            if taken:
                self._syncing.add(key)
            return taken

        return await self._run(take)

    async def end_sync(self, resource_id: str) -> None:
        key = sync_lock_key(resource_id)

        async def release(conn: AsyncConnection[DictRow]) -> None:
            if key in self._syncing:
                self._syncing.discard(key)
                await conn.execute("SELECT pg_advisory_unlock(%s, %s)", (SYNC_NAMESPACE, key))

        if self._closed:
            return  # closed mid-sync: the lock went with the connection
        try:
            await self._run(release)
        except psycopg.Error:
            # Lost with the connection anyway.
            log.warning("could not release a Google sync lock", extra={"resource": resource_id})

    async def close(self) -> None:
        async with self._use:
            self._closed = True
            if self._conn is not None:
                await self._conn.close()  # every lock of the session goes with it
                self._conn = None


async def _try_lock(conn: AsyncConnection[DictRow], namespace: int, key: int) -> bool:
    cursor = await conn.execute("SELECT pg_try_advisory_lock(%s, %s) AS taken", (namespace, key))
    row = await cursor.fetchone()
    return bool(row and row["taken"])


async def _ping(conn: AsyncConnection[DictRow]) -> None:
    await conn.execute("SELECT 1")


async def open_replica_locks(url: str, connect_timeout: int) -> ReplicaLocks:
    """Connect and take this replica's identity lock."""
    locks = ReplicaLocks(url, connect_timeout)
    await locks.identity()
    return locks
