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

``SnapshotPool`` steps each statement on a connection's own thread (aiosqlite).
``LoopSnapshots`` steps a listing whose first page is cheap on the event
loop's thread instead, and hands any other to a ``SnapshotPool``.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncGenerator, Awaitable, Callable
from contextlib import aclosing, suppress
from pathlib import Path
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

# SQLite virtual-machine instructions a listing's first page may take on the
# event loop's thread (``LoopSnapshots``). A sorted statement does all its
# reading and sorting before the first row: about 6,000 instructions (0.3 ms)
# for a week of 200 candidates, 19,000 (0.8 ms) for a month of 800 and
# 140,000 (9 ms) for a year of 6,000 (bench data, 10,000 events). Past the
# budget the statement is interrupted and the listing starts again on a
# thread, which wastes at most this much.
FIRST_PAGE_STEPS = 20_000
# Instructions between two calls of the progress handler counting them.
_STEPS_PER_CHECK = 1_000


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


class LoopSnapshots:
    """Listings stepped on the event loop's thread, on read-only stdlib
    connections of their own, when their first page is cheap; any other
    listing goes to ``fallback`` (a ``SnapshotPool``) unchanged.

    With 16 week queries at once, each page's hop to an aiosqlite thread and
    back cost more than the page's SQL: the thread gives up the interpreter
    lock while SQLite steps each row and waits to take it back from the busy
    loop, so the threads' CPU time was about twice the statement's own
    (issue 17). On the loop the statement takes no hop and waits for no one.

    What blocks the loop, and why it is bounded (as ``point_reads``):

    * The first page: SQLite's progress handler interrupts the statement
      after ``first_steps`` instructions (``FIRST_PAGE_STEPS``); the listing
      then starts again on ``fallback``. A sorted statement (the time-range
      query orders by start) reads and sorts every row before the first, so
      this bounds the whole statement's reading.
    * Each later page: ``page_rows`` rows of a result already sorted, or read
      in an index's order; the caller's statements filter nothing out after
      the first row (``iter_candidates``).
    * Never a lock: the connections are read-only in WAL mode with a busy
      timeout of 0. Anything that would wait, and any other error on the
      first page, sends the listing to ``fallback``, which reports what is
      really wrong.
    * Never more than ``size`` connections lent at once; beyond that the
      listing goes to ``fallback`` (which waits for one of its own).

    A statement stays open between pages, as on ``SnapshotPool``: its read
    transaction is the listing's snapshot. Connections are used only on the
    thread that opened them (the loop's; sqlite3 refuses other threads, and
    the refusal sends the listing to ``fallback``)."""

    def __init__(
        self,
        path: Path,
        fallback: SnapshotPool,
        *,
        cache_kib: int,
        size: int = MAX_SNAPSHOT_CONNECTIONS,
        keep: int = IDLE_SNAPSHOT_CONNECTIONS,
        first_steps: int = FIRST_PAGE_STEPS,
    ) -> None:
        self._uri = f"{path.resolve().as_uri()}?mode=ro"
        self._fallback = fallback
        self._cache_kib = cache_kib
        self._size = size
        self._keep = keep
        self._checks = max(1, first_steps // _STEPS_PER_CHECK)
        self._idle: list[sqlite3.Connection] = []
        self._lent = 0
        self._closed = False

    async def pages(
        self, sql: str, params: Params = (), *, page_rows: int = PAGE_ROWS
    ) -> AsyncGenerator[list[Row]]:
        """As ``SnapshotPool.pages``."""
        started = self._first_page(sql, params, page_rows)
        if started is None:
            pages = self._fallback.pages(sql, params, page_rows=page_rows)
            async with aclosing(pages):
                async for rows in pages:
                    yield rows
            return
        conn, cursor, rows = started
        try:
            while True:
                if rows:
                    yield rows
                if len(rows) < page_rows:
                    break  # a short page is the last (as in ``SnapshotPool``)
                try:
                    rows = cursor.fetchmany(page_rows)
                except (sqlite3.Error, OSError) as exc:
                    raise_translated(exc)
        finally:
            cursor.close()  # ends the read transaction
            self._give_back(conn)

    def _first_page(
        self, sql: str, params: Params, page_rows: int
    ) -> tuple[sqlite3.Connection, sqlite3.Cursor, list[Row]] | None:
        """The open cursor and its first page, or None when the listing
        belongs on ``fallback`` (too costly, would wait, any error)."""
        if self._closed or self._lent >= self._size:
            return None
        try:
            conn = self._idle.pop() if self._idle else self._connect()
        except sqlite3.Error:
            return None
        self._lent += 1
        checks = self._checks

        def over_budget() -> int:
            # Non-zero interrupts the statement (SQLITE_INTERRUPT).
            nonlocal checks
            checks -= 1
            return checks < 0

        cursor: sqlite3.Cursor | None = None
        try:
            conn.set_progress_handler(over_budget, _STEPS_PER_CHECK)
            cursor = conn.execute(sql, params)
            rows = cursor.fetchmany(page_rows)
        except sqlite3.Error:
            if cursor is not None:
                with suppress(sqlite3.Error):
                    cursor.close()
            self._give_back(conn)
            return None
        finally:
            with suppress(sqlite3.Error):
                conn.set_progress_handler(None, 0)
        return conn, cursor, rows

    def _connect(self) -> sqlite3.Connection:
        # timeout=0 is the busy timeout: a statement that would wait fails.
        conn = sqlite3.connect(self._uri, uri=True, timeout=0, isolation_level=None)
        try:
            conn.row_factory = sqlite3.Row
            # As on the thread's snapshot connections: a listing reads each
            # page once, so a large page cache would only hold memory.
            conn.execute(f"PRAGMA cache_size = -{self._cache_kib:d}")
        except sqlite3.Error:
            conn.close()
            raise
        return conn

    def _give_back(self, conn: sqlite3.Connection) -> None:
        self._lent -= 1
        if self._closed or len(self._idle) >= self._keep:
            with suppress(sqlite3.Error):
                conn.close()
        else:
            self._idle.append(conn)

    def close(self) -> None:
        """Close the idle connections; one still lent out closes when given
        back. The fallback pool is its owner's to close."""
        self._closed = True
        idle, self._idle = self._idle, []
        for conn in idle:
            with suppress(sqlite3.Error):
                conn.close()


async def _fetch(cursor: aiosqlite.Cursor, rows: int) -> list[Row]:
    try:
        return list(await cursor.fetchmany(rows))
    except (sqlite3.Error, OSError) as exc:
        raise_translated(exc)
