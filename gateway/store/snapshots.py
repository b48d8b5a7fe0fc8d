"""Listings read in pages from one consistent snapshot.

A PROPFIND Depth 1, an initial sync-collection, a calendar-query over a long
time range and the ICS feed read every object of a calendar. Reading them in
one query keeps all rows (and everything built from them) in memory at once,
so the server's memory would grow with the calendar. Here the rows come page
by page from a single SELECT on a connection of their own: while the
statement is open SQLite keeps it in one read transaction, so the pages form
one snapshot even when writes land in between (WAL mode: the writer is never
blocked). The shared reader connection cannot be used for this: every other
read queued on it would see the same old snapshot until the listing ends.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncGenerator, Awaitable, Callable
from sqlite3 import Row

import aiosqlite

from .full import raise_translated
from .rows import Params

# Rows per page. Each page is turned into answer text on the event loop in
# one go, and every other request waits meanwhile: 100 rows keep one step
# to a few tens of milliseconds (500 held /healthz up to ~0.8 s while heavy
# listings ran; issue 12, item 3), at the cost of a few more thread hops.
PAGE_ROWS = 100

# Each connection is one thread. Listings beyond this many at once wait for a
# free one; a slow client can hold one for a while (each page waits until the
# previous one is sent), so there are more than the few kept open when idle.
MAX_SNAPSHOT_CONNECTIONS = 16
IDLE_SNAPSHOT_CONNECTIONS = 4


class SnapshotPool:
    """Read-only connections, opened when needed and lent out one listing at
    a time; up to ``keep`` stay open between listings."""

    def __init__(
        self,
        connect: Callable[[], Awaitable[aiosqlite.Connection]],
        *,
        size: int = MAX_SNAPSHOT_CONNECTIONS,
        keep: int = IDLE_SNAPSHOT_CONNECTIONS,
    ) -> None:
        self._connect = connect
        self._free = asyncio.Semaphore(size)
        self._keep = keep
        self._idle: list[aiosqlite.Connection] = []
        self._closed = False

    async def pages(
        self, sql: str, params: Params = (), *, page_rows: int = PAGE_ROWS
    ) -> AsyncGenerator[list[Row]]:
        """The rows of one SELECT, ``page_rows`` at a time, all from one
        snapshot. Close the iterator (``contextlib.aclosing``) when stopping
        early: until then it holds a connection and its snapshot."""
        async with self._free:
            conn = await self._take()
            try:
                try:
                    cursor = await conn.execute(sql, params)
                except (sqlite3.Error, OSError) as exc:
                    # A sort too big for memory spills to a temporary file,
                    # which a full disk refuses as it refuses writes.
                    raise_translated(exc)
                try:
                    while True:
                        rows = await _fetch(cursor, page_rows)
                        if rows:
                            yield rows
                        if len(rows) < page_rows:
                            # A short page is the last (fetchmany fills a
                            # page while rows remain): no hop for an empty one.
                            break
                finally:
                    # Ends the statement and with it the read transaction. If
                    # this await is cancelled the close still runs first on
                    # the connection's thread, before any later use of it.
                    await cursor.close()
            finally:
                await self._give_back(conn)

    async def _take(self) -> aiosqlite.Connection:
        if self._closed:
            raise RuntimeError("the repository is closed")
        if self._idle:
            return self._idle.pop()
        return await self._connect()

    async def _give_back(self, conn: aiosqlite.Connection) -> None:
        if self._closed or len(self._idle) >= self._keep:
            await conn.close()
        else:
            self._idle.append(conn)

    async def close(self) -> None:
        """Close every connection; one still lent out closes when given back."""
        self._closed = True
        idle, self._idle = self._idle, []
        for conn in idle:
            await conn.close()


async def _fetch(cursor: aiosqlite.Cursor, rows: int) -> list[Row]:
    try:
        return list(await cursor.fetchmany(rows))
    except (sqlite3.Error, OSError) as exc:
        raise_translated(exc)
