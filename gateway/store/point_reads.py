"""Point reads answered on the event loop's own thread, without a thread hop.

A GET of one calendar object, its conditional GET answered 304, and a feed
request answered 304 each need one indexed row (an object by href, a
collection's revision); so do a CalDAV PUT's and DELETE's look before their
transaction (the object by href, its Google link by primary key). Through
aiosqlite that row costs a hop to the reader's thread and back, which is
most of such a request's time (issue 17).
``PointReader`` reads those rows with the standard library's ``sqlite3`` on
a connection of its own, called directly from the event loop's thread.

What blocks the loop, and why it is bounded:

* The statement itself: one lookup in a unique index and the one row it
  names (a few B-tree pages, plus the overflow pages of a long calendar
  text), decoded by the caller. Microseconds when the pages are in SQLite's
  page cache or the OS's; at worst a handful of page reads from the disk,
  as many as the index is deep.
* Never a lock: the connection is read-only (``mode=ro``) in WAL mode, where
  readers take no lock a writer holds, and its busy timeout is 0. Anything
  that would make it wait (SQLITE_BUSY or SQLITE_LOCKED, e.g. while another
  process recovers the write-ahead log) or any other SQLite error returns at
  once, and the caller then asks the aiosqlite reader instead, which may wait
  on its own thread (``read`` returns None).
* Never a long snapshot: every statement is stepped to its end
  (``fetchall``), so no read transaction stays open between calls to hold
  back checkpoints or hide later commits.

Its page cache and memory mapping are SQLite's defaults, as on the
aiosqlite reader (``sqlite._connect`` sets neither); a point read touches
only a few pages, so the cache stays small.

Only point reads belong here. Listings stay on aiosqlite and the snapshot
pool, where their time does not stop the loop; a query's candidates are read
on the loop only within a budget of SQLite steps (``snapshots.LoopSnapshots``).
"""

from __future__ import annotations

import sqlite3
from contextlib import suppress
from pathlib import Path

from .rows import Params


class PointReader:
    """A read-only stdlib connection used only from the thread that opened it
    (the event loop's). After ``close`` every read misses."""

    def __init__(self, path: Path) -> None:
        # timeout=0 is the busy timeout: a read that would wait fails at once.
        # check_same_thread (the default) turns a call from another thread into
        # an error, and so into a miss, instead of sharing the connection.
        self._conn: sqlite3.Connection | None = sqlite3.connect(
            f"{path.resolve().as_uri()}?mode=ro", uri=True, timeout=0, isolation_level=None
        )
        self._conn.row_factory = sqlite3.Row

    def read(self, sql: str, params: Params = ()) -> list[sqlite3.Row] | None:
        """All rows of ``sql``, or None when they could not be read at
        once without waiting (the caller then reads them through aiosqlite)."""
        conn = self._conn
        if conn is None:
            return None
        try:
            return conn.execute(sql, params).fetchall()
        except sqlite3.Error:
            # Busy, locked, an I/O error, another thread: the aiosqlite reader
            # answers instead, and reports whatever is really wrong.
            return None

    def close(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            # Closed from another thread it refuses; the collector closes it then.
            with suppress(sqlite3.Error):
                conn.close()
