"""aiosqlite implementation of ``gateway.core.ports.Repository``.

Two connections per repository (DESIGN.md, data flow), and a few more lent
out for listings read in pages (``snapshots``):

* the *writer* runs every transaction. aiosqlite gives a connection one thread
  and one statement queue, so two coroutines interleaving statements on it would
  share a single SQLite transaction; an ``asyncio.Lock`` therefore serialises
  transactions in this process, and ``BEGIN IMMEDIATE`` takes SQLite's write
  lock up front so they serialise against other processes too (instead of
  failing with SQLITE_BUSY half-way when a read lock cannot be upgraded).
* the *reader* serves reads outside transactions. In WAL mode readers never
  block the writer nor wait for it, and they see only committed data.
* ``iter_entries`` / ``iter_objects`` read whole calendars page by page, each
  from one snapshot on a connection of its own (see ``snapshots``), so memory
  does not grow with the calendar.
* ``get_by_href``, ``revision`` and ``get_link`` (GET, 304s, feed
  If-None-Match, the look before a PUT or DELETE) are one indexed row each:
  a read-only stdlib connection answers them on the event loop's thread
  without the hop to the reader's, never waiting for a lock, and the reader
  answers when it cannot (see ``point_reads``: what blocks the loop there,
  and why it is bounded).

Reads made through a transaction object use the writer, so they see the
transaction's own uncommitted writes.

A transaction's ``BEGIN IMMEDIATE`` is tried on the event loop's thread
with a busy timeout of 0, and goes to the writer's thread (waiting up to the
busy timeout) only when another process holds the write lock
(``_begin_here``). Once it has the lock, the statements run on the event
loop's thread on the same connection, without a hop each
(``SqliteTransaction``: why that never waits for a lock, and how big
transactions stay on the thread); ``COMMIT`` and ``ROLLBACK`` go to the
thread.
"""

from __future__ import annotations

import asyncio
import secrets
import sqlite3
from collections.abc import (
    AsyncGenerator,
    AsyncIterator,
    Callable,
    Collection,
    Mapping,
    Sequence,
)
from contextlib import AbstractAsyncContextManager, aclosing, asynccontextmanager
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any

import aiosqlite

from gateway.core.model import (
    Booking,
    CalendarObject,
    Change,
    ChangeKind,
    FailedOutboxItem,
    ObjectEntry,
    OutboxEffect,
    OutboxItem,
    StoredText,
    TimeSpan,
)
from gateway.core.ports import (
    IdempotencyRecord,
    MirrorRepository,
    MirrorTransaction,
    OutboxRecord,
    Repository,
    WriteTransaction,
)
from gateway.core.query import QueriedObject

from .full import note_written, raise_translated
from .mirror import MirrorReadsMixin, MirrorWritesMixin
from .point_reads import PointReader
from .rows import (
    ENTRY_COLUMNS,
    HAS_ATTENDEES,
    OBJECT_COLUMNS,
    QUERIED_COLUMNS,
    STORED_TEXT_COLUMNS,
    STORED_TEXT_COLUMNS_WITH_TEXT,
    Params,
    decode_change,
    decode_entry,
    decode_failed_outbox_item,
    decode_listed_object,
    decode_object,
    decode_outbox_item,
    decode_outbox_record,
    decode_queried_values,
    decode_stored_text,
    encode_attendees,
    encode_object,
    encode_payload,
    epoch_ceil,
    epoch_floor,
    from_utc_text,
    utc_text,
)
from .schema import SchemaError, migrate
from .snapshots import LoopSnapshots, SnapshotPool
from .uids import holding_this, refuse_foreign_uid, warn_shared_uids

BUSY_TIMEOUT_MS = 5000
# The room the write check of /healthz asks for: more than a booking takes
# (its calendar text twice over, index rows, change log and outbox rows),
# so that "healthy" means "a booking fits".
PROBE_BYTES = 64 * 1024
SNAPSHOT_CACHE_KIB = 256
_BATCH = 500
# How many statements of one transaction run on the event loop's thread
# before the rest go to the writer's thread (``SqliteTransaction``). An
# interactive write takes about ten (a CalDAV PUT eleven, a DELETE six);
# imports, copies and Google syncs write far more, and stay on the thread.
LOOP_STATEMENTS = 32

# RETURNING (used for revision bumps and deletes) arrived in SQLite 3.35.
_MIN_SQLITE = (3, 35, 0)

# Built from the constant column list (no outside input), hence the noqa.
_UPSERT_OBJECT = (
    f"INSERT INTO objects ({', '.join(OBJECT_COLUMNS)}) "  # noqa: S608
    f"VALUES ({', '.join(':' + c for c in OBJECT_COLUMNS)}) "
    "ON CONFLICT (resource_id, uid) DO UPDATE SET "
    + ", ".join(f"{c} = excluded.{c}" for c in OBJECT_COLUMNS if c not in ("resource_id", "uid"))
)

# The outbox runs the effects of one kind for one booking in the order they
# were queued: an item waits while an older undone item of the same kind and
# booking exists (a failed invitation must not be overtaken by the
# cancellation queued after it). Kinds do not wait for each other (a mail
# server outage must not hold up Google), nor do items without a booking.
_HEAD_OF_BOOKING = (
    "o.done_at IS NULL AND (o.booking_id = '' OR NOT EXISTS ("
    "SELECT 1 FROM outbox AS e WHERE e.done_at IS NULL AND e.resource_id = o.resource_id "
    "AND e.booking_id = o.booking_id AND e.kind = o.kind AND e.id < o.id))"
)

# Due: its retry time (if any) has come and no worker holds a lease on it.
_DUE = (
    "(o.next_attempt_at IS NULL OR o.next_attempt_at <= :now) "
    "AND (o.leased_until IS NULL OR o.leased_until <= :now)"
)

# What a calendar-query reads of each candidate (``rows.QUERIED_COLUMNS``).
_QUERIED = ", ".join(f"o.{column}" for column in QUERIED_COLUMNS)

_BUMP_REVISION = (
    "INSERT INTO collections (resource_id, revision) VALUES (?, 1) "
    "ON CONFLICT (resource_id) DO UPDATE SET revision = revision + 1 "
    "RETURNING revision"
)


def in_span_statement(
    resource_id: str, window: TimeSpan, *, blocking_only: bool = False, columns: str = "o.*"
) -> tuple[str, dict[str, Any]]:
    """SQL and parameters of the time-range query (public so tests can EXPLAIN it),
    reading ``columns`` of each object.

    The R*Tree boxes are float32 rounded outward, so its inclusive test yields a
    superset; the exact test then runs on the integer columns. CROSS JOIN pins
    the join order (SQLite never reorders it), so the planner cannot trade the
    R*Tree for a scan of the resource's objects as a collection grows.

    Overlap is half-open, except that an instantaneous object (start == end)
    matches when it starts inside the window (RFC 4791 9.9, ``TimeSpan.meets``).
    A recurring object's span runs from its first start to its last end, and
    its last instance may be an instant at that end: it is a candidate for a
    window starting there too (callers expand recurring objects and test each
    instance exactly). The window is widened to whole seconds (floor / ceil);
    it may only add candidates.
    """
    # ``columns`` is a caller's constant, never input.
    sql = f"""
        SELECT {columns} FROM time_index AS t CROSS JOIN objects AS o ON o.id = t.id
        WHERE t.span_start <= :w_end AND t.span_end >= :w_start
          AND o.resource_id = :resource_id
          AND o.span_start < :w_end
          AND (o.span_end > :w_start
               OR (o.span_end = :w_start AND (o.span_start = o.span_end OR o.recurring = 1)))
          AND (NOT :blocking_only OR (o.status <> 'cancelled' AND o.transparent = 0))
        ORDER BY o.span_start, o.uid
    """  # noqa: S608
    params = {
        "resource_id": resource_id,
        "w_start": epoch_floor(window.start),
        "w_end": epoch_ceil(window.end),
        "blocking_only": int(blocking_only),
    }
    return sql, params


async def _run(conn: aiosqlite.Connection, sql: str, params: Params = ()) -> list[sqlite3.Row]:
    # execute_fetchall steps the statement to completion in one hop to the
    # connection's thread, so no half-read cursor keeps a read snapshot open.
    try:
        return list(await conn.execute_fetchall(sql, params))
    except (sqlite3.Error, OSError) as exc:
        # Every statement passes here: the one place a full disk becomes the
        # core's StorageFull (see ``full``).
        raise_translated(exc)


def _listed(rows: Sequence[sqlite3.Row]) -> list[CalendarObject]:
    """Whole objects read several at a time (pages, a multiget's names)."""
    # A sqlite3.Row finds a column by name by comparing it with each column's
    # name, and the decoder reads twenty: a dict per row is quicker.
    names = rows[0].keys() if rows else []
    return [decode_listed_object(dict(zip(names, row, strict=True))) for row in rows]


def _run_here(conn: sqlite3.Connection, sql: str, params: Params = ()) -> list[sqlite3.Row]:
    """``_run`` on the calling thread (see ``SqliteTransaction``): stepped to
    its end, and its errors translated the same way."""
    try:
        return conn.execute(sql, params).fetchall()
    except (sqlite3.Error, OSError) as exc:
        raise_translated(exc)


class _Reads(MirrorReadsMixin):
    """The ReadPort, over whichever connection the subclass says reads go to."""

    def _read_connection(self) -> aiosqlite.Connection:
        raise NotImplementedError

    async def _query(self, sql: str, params: Params = ()) -> list[sqlite3.Row]:
        return await _run(self._read_connection(), sql, params)

    async def _point_query(self, sql: str, params: Params) -> list[sqlite3.Row]:
        """A read of one indexed row (``SqliteRepository`` answers it without
        leaving the event loop's thread when it can)."""
        return await self._query(sql, params)

    async def get_by_id(self, booking_id: str) -> CalendarObject | None:
        rows = await self._query("SELECT * FROM objects WHERE booking_id = ?", (booking_id,))
        return decode_object(rows[0]) if rows else None

    async def get_by_uid(self, resource_id: str, uid: str) -> CalendarObject | None:
        rows = await self._query(
            "SELECT * FROM objects WHERE resource_id = ? AND uid = ?", (resource_id, uid)
        )
        return decode_object(rows[0]) if rows else None

    async def with_uid(self, uid: str) -> list[CalendarObject]:
        rows = await self._query("SELECT * FROM objects WHERE uid = ? ORDER BY id", (uid,))
        return [decode_object(row) for row in rows]

    async def get_by_href(self, resource_id: str, href: str) -> CalendarObject | None:
        rows = await self._point_query(
            "SELECT * FROM objects WHERE resource_id = ? AND href = ?", (resource_id, href)
        )
        return decode_object(rows[0]) if rows else None

    async def stored_text(
        self, resource_id: str, href: str, *, with_text: bool = True
    ) -> StoredText | None:
        columns = STORED_TEXT_COLUMNS_WITH_TEXT if with_text else STORED_TEXT_COLUMNS
        rows = await self._point_query(
            f"SELECT {columns} FROM objects WHERE resource_id = ? AND href = ?",  # noqa: S608
            (resource_id, href),
        )
        return decode_stored_text(rows[0], with_text=with_text) if rows else None

    async def text_with_attendees(self, resource_id: str, href: str) -> str | None:
        rows = await self._point_query(
            f"SELECT ics FROM objects WHERE resource_id = ? AND href = ? AND {HAS_ATTENDEES}",  # noqa: S608
            (resource_id, href),
        )
        return str(rows[0][0]) if rows else None

    async def in_span(
        self, resource_id: str, window: TimeSpan, *, blocking_only: bool = False
    ) -> list[CalendarObject]:
        sql, params = in_span_statement(resource_id, window, blocking_only=blocking_only)
        return [decode_object(row) for row in await self._query(sql, params)]


class SqliteTransaction(_Reads, MirrorWritesMixin):
    """One ``BEGIN IMMEDIATE`` … ``COMMIT`` on the writer connection.

    Its statements run on the event loop's thread, on the writer's sqlite3
    connection (``here``), without the hop to the writer's thread and back
    that each would cost through aiosqlite (issue 17: most of a PUT's time
    was those hops). Why that blocks the loop only for the statement's own
    work, and briefly:

    * Never a lock: ``BEGIN IMMEDIATE`` took the write lock (at once on this
      thread, or waiting for it, up to the busy timeout, on the writer's
      thread: ``_begin_here``, ``_begin_waiting``). With it held, in WAL
      mode, no statement of the transaction waits: readers never block the
      writer, and the one lock a writer needs is held.
    * Never a sync or a checkpoint: those come with ``COMMIT`` (the append
      to the write-ahead log, its fsync at checkpoints, an autocheckpoint),
      which runs on the writer's thread, as ``ROLLBACK`` does.
    * Nobody else on the connection: the repository's asyncio lock is held
      for the whole transaction, the writer's thread is idle (a ``BEGIN``
      on it was awaited and is the last thing queued on it; the lock is
      released only once the thread has run the previous transaction's
      ``COMMIT``/``ROLLBACK``, even for a cancelled request; and these
      are queued only after the last statement here has returned), and the
      writer connection serves nothing but transactions once the repository
      is open (migrations run before; ``close`` takes the lock). Copies and
      backups read the file through connections of their own.
    * Small: an interactive write is about ten indexed statements on a few
      pages. A transaction's first ``LOOP_STATEMENTS`` statements run here,
      the rest on the writer's thread, so imports (200 objects per
      transaction), copies and Google's full syncs do most of their work
      there, and their dirty pages, which could outgrow the page cache and
      spill to the log mid-transaction, are written off the loop.

    Every statement still passes through ``raise_translated`` (a full disk
    is ``StorageFull`` wherever it ran), and an error or a cancellation ends
    the transaction with ``ROLLBACK`` on the thread, as before.
    """

    def __init__(
        self,
        conn: aiosqlite.Connection,
        here: sqlite3.Connection | None = None,
        *,
        budget: int | None = None,
    ) -> None:
        self._conn = conn
        self._here = here
        self._budget = LOOP_STATEMENTS if budget is None else budget
        self._open = True

    async def _query(self, sql: str, params: Params = ()) -> list[sqlite3.Row]:
        conn = self._read_connection()
        if self._here is not None and self._budget > 0:
            self._budget -= 1
            return _run_here(self._here, sql, params)
        return await _run(conn, sql, params)

    def _finish(self) -> None:
        self._open = False

    def _read_connection(self) -> aiosqlite.Connection:
        # A transaction object kept past its `async with` would otherwise write
        # into whatever transaction the next caller has opened.
        if not self._open:
            raise RuntimeError("this transaction has already ended")
        return self._conn

    async def _revision(self, resource_id: str) -> int:
        rows = await self._query(
            "SELECT revision FROM collections WHERE resource_id = ?", (resource_id,)
        )
        return int(rows[0][0]) if rows else 0

    async def _bump(self, resource_id: str) -> int:
        rows = await self._query(_BUMP_REVISION, (resource_id,))
        return int(rows[0][0])

    async def _log(
        self, resource_id: str, revision: int, uid: str, href: str, kind: ChangeKind
    ) -> None:
        await self._query(
            "INSERT INTO changes (resource_id, revision, uid, href, kind) VALUES (?, ?, ?, ?, ?)",
            (resource_id, revision, uid, href, kind.value),
        )

    async def save(self, obj: CalendarObject) -> int:
        booking = obj.booking
        key = (booking.resource_id, booking.uid, booking.id)
        # One statement for both checks: the object that holds the booking id
        # or the UID in this collection, and those holding the UID elsewhere.
        holders = await self._query(
            "SELECT id, resource_id, uid, booking_id, href FROM objects "
            "WHERE booking_id = ? OR uid = ?",
            (booking.id, booking.uid),
        )
        rows = holding_this(holders, booking.resource_id, booking.uid, booking.id)
        moved_from = [row["href"] for row in rows if row["href"] != obj.href]
        for row in rows:
            # A booking id names one object for life: links in mails, outbox rows
            # and Google event ids are derived from it.
            if (row["resource_id"], row["uid"], row["booking_id"]) != key:
                raise ValueError(
                    f"booking {booking.id!r} (resource {booking.resource_id!r}, uid "
                    f"{booking.uid!r}) clashes with stored booking {row['booking_id']!r} "
                    f"(resource {row['resource_id']!r}, uid {row['uid']!r})"
                )
        if not any(row["resource_id"] == booking.resource_id for row in rows):
            refuse_foreign_uid(holders, booking.resource_id, booking.uid)
        for old_href in moved_from:
            # The object's old name is gone: sync clients must hear so (RFC 6578
            # 3.5.2), which takes a change (and so a revision) of its own.
            gone = await self._bump(booking.resource_id)
            await self._log(booking.resource_id, gone, booking.uid, old_href, ChangeKind.DELETE)
        revision = await self._bump(booking.resource_id)
        await self._query(_UPSERT_OBJECT, encode_object(obj, revision))
        await self._query(
            "DELETE FROM tombstones WHERE resource_id = ? AND uid = ?",
            (booking.resource_id, booking.uid),
        )
        await self._log(booking.resource_id, revision, booking.uid, obj.href, ChangeKind.PUT)
        return revision

    async def keep_answer_times(self, booking: Booking) -> None:
        await self._query(
            "UPDATE objects SET attendees = ? WHERE booking_id = ?",
            (encode_attendees(booking.attendees), booking.id),
        )

    async def delete(self, resource_id: str, uid: str) -> int:
        """Deleting an object that is not there changes nothing and returns the
        current revision: retried deletes (CalDAV, Google) stay harmless and do
        not grow the change log."""
        gone = await self._query(
            "DELETE FROM objects WHERE resource_id = ? AND uid = ? RETURNING href",
            (resource_id, uid),
        )
        if not gone:
            return await self._revision(resource_id)
        href = gone[0]["href"]
        revision = await self._bump(resource_id)
        await self._query(
            "INSERT INTO tombstones (resource_id, uid, href, revision, deleted_at) "
            "VALUES (?, ?, ?, ?, ?) "
            "ON CONFLICT (resource_id, uid) DO UPDATE SET href = excluded.href, "
            "revision = excluded.revision, deleted_at = excluded.deleted_at",
            (resource_id, uid, href, revision, utc_text(datetime.now(UTC))),
        )
        await self._log(resource_id, revision, uid, href, ChangeKind.DELETE)
        return revision

    async def enqueue(self, effect: OutboxEffect) -> None:
        await self._query(
            "INSERT INTO outbox (kind, resource_id, booking_id, payload, created_at) "
            "VALUES (?, ?, ?, ?, ?)",
            (
                effect.kind,
                effect.resource_id,
                effect.booking_id,
                encode_payload(effect),
                utc_text(datetime.now(UTC)),
            ),
        )

    async def idempotency(self, key: str) -> IdempotencyRecord | None:
        rows = await self._query(
            "SELECT fingerprint, booking_id FROM idempotency_keys WHERE key = ?", (key,)
        )
        return IdempotencyRecord(rows[0]["fingerprint"], rows[0]["booking_id"]) if rows else None

    async def remember_idempotency(self, key: str, record: IdempotencyRecord) -> None:
        # A plain INSERT: overwriting a key would let a second request hijack the
        # first one's answer, so a duplicate fails (and rolls back) instead.
        await self._query(
            "INSERT INTO idempotency_keys (key, fingerprint, booking_id, created_at) "
            "VALUES (?, ?, ?, ?)",
            (key, record.fingerprint, record.booking_id, utc_text(datetime.now(UTC))),
        )


class _TransactionScope(AbstractAsyncContextManager[SqliteTransaction]):
    """Lock, BEGIN IMMEDIATE, hand out the transaction; COMMIT or ROLLBACK."""

    def __init__(self, repo: SqliteRepository) -> None:
        self._repo = repo
        self._tx: SqliteTransaction | None = None

    async def __aenter__(self) -> SqliteTransaction:
        repo = self._repo
        await repo._lock.acquire()
        # The sqlite3 connection under aiosqlite's (opened with
        # check_same_thread=False), for the statements run on this thread.
        here = repo._writer._conn
        try:
            begun = _begin_here(here)
        except BaseException:
            repo._lock.release()
            raise
        if not begun:
            # Another process holds the write lock (or BEGIN failed for any
            # other reason): wait for it, up to the busy timeout, on the
            # writer's thread.
            try:
                await _on_thread(repo._writer, partial(_begin_waiting, here, repo._busy_timeout_ms))
            except BaseException:
                # If cancelled while BEGIN was queued it may still run; the
                # ROLLBACK is queued behind it on the same thread, and the lock
                # is released only once that has run (even if cancelled again
                # meanwhile): the next BEGIN, tried on this thread, must not
                # overtake them.
                ending = asyncio.ensure_future(_rollback(repo._writer))
                ending.add_done_callback(lambda done: _release_after(done, repo._lock))
                await asyncio.shield(ending)
                raise
        self._tx = SqliteTransaction(repo._writer, here)
        return self._tx

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        repo = self._repo
        assert self._tx is not None
        self._tx._finish()
        # The lock is released once the thread has run the COMMIT/ROLLBACK,
        # even if this request is cancelled meanwhile: the next transaction
        # may BEGIN on this thread (``_begin_here``) and must not be
        # overtaken by them.
        ending = asyncio.ensure_future(_end(repo._writer, commit=exc_type is None))
        ending.add_done_callback(lambda done: _release_after(done, repo._lock))
        await asyncio.shield(ending)


async def _end(conn: aiosqlite.Connection, *, commit: bool) -> None:
    """COMMIT (ROLLBACK if that fails) or ROLLBACK, on the writer's thread."""
    if not commit:
        await _rollback(conn)
        return
    try:
        await _run(conn, "COMMIT")
    except BaseException:
        await _rollback(conn)
        raise
    note_written()


def _begin_here(conn: sqlite3.Connection) -> bool:
    """``BEGIN IMMEDIATE`` on the calling thread (the event loop's) if it
    takes the write lock at once; False, with no transaction begun, when the
    writer's thread must try instead (``_begin_waiting``).

    The repository's asyncio lock is held, so only another process (an
    import, a copy, a replica) can hold SQLite's write lock. The writer's
    busy timeout is 0 between transactions (``open_sqlite_repository``), so
    the attempt never waits for it: it answers SQLITE_BUSY and the thread
    waits instead. Taking the lock is otherwise a look at the write-ahead
    log's index in shared memory and a file lock (and, after another
    process wrote, a read of the first page, as a point read does); nothing
    is written.
    ``in_transaction``: checked first, as a guard (the repository's lock is
    released only after the thread has ended the previous transaction); if
    one were still open, a BEGIN on the thread queues behind its ending."""
    if conn.in_transaction:
        return False
    try:
        conn.execute("BEGIN IMMEDIATE")
    except (sqlite3.Error, OSError):
        return False
    return True


def _begin_waiting(conn: sqlite3.Connection, busy_timeout_ms: int) -> None:
    """``BEGIN IMMEDIATE`` on the writer's thread, waiting up to
    ``busy_timeout_ms`` for another process's write lock; the writer's busy
    timeout is back at 0 when it returns, whatever happened. One call on the
    thread, so a cancelled request cannot leave the timeout raised for the
    next ``_begin_here`` on the loop."""
    try:
        conn.execute(f"PRAGMA busy_timeout = {busy_timeout_ms:d}")
        try:
            conn.execute("BEGIN IMMEDIATE")
        finally:
            conn.execute("PRAGMA busy_timeout = 0")
    except (sqlite3.Error, OSError) as exc:
        raise_translated(exc)


async def _on_thread(conn: aiosqlite.Connection, call: Callable[[], None]) -> None:
    """``call`` on ``conn``'s own thread, queued like its statements.
    aiosqlite has no public call for that (as ``_conn`` above, its private
    part, pinned in requirements.lock); if it changes, the waiting BEGIN of
    tests/store/test_sqlite_transaction.py fails."""
    await conn._execute(call)  # type: ignore[no-untyped-call]


def _release_after(done: asyncio.Future[None], lock: asyncio.Lock) -> None:
    """Release ``lock`` when the thread has run ``done``'s statement."""
    if not done.cancelled():
        done.exception()  # retrieved here: the awaiting request may be gone
    lock.release()


async def _rollback(conn: aiosqlite.Connection) -> None:
    """ROLLBACK, tolerating that there is nothing to roll back.

    Statements on one aiosqlite connection run in queue order, so a ROLLBACK
    queued after an interrupted BEGIN/COMMIT still runs after it; if that
    statement failed or committed, there is no transaction left and SQLite says
    so, which is fine here.
    """
    try:
        await _run(conn, "ROLLBACK")
    except sqlite3.OperationalError as error:
        if "no transaction is active" not in str(error):
            raise


_ENTRIES = f"SELECT {ENTRY_COLUMNS} FROM objects WHERE resource_id = ?"  # noqa: S608


class SqliteRepository(_Reads):
    """The gateway's store on one SQLite file. Use ``open_sqlite_repository``."""

    def __init__(
        self,
        path: Path,
        writer: aiosqlite.Connection,
        reader: aiosqlite.Connection,
        snapshots: SnapshotPool,
        points: PointReader | None = None,
        *,
        busy_timeout_ms: int = BUSY_TIMEOUT_MS,
        loop_snapshots: LoopSnapshots | None = None,
    ) -> None:
        self.path = path
        self._busy_timeout_ms = busy_timeout_ms
        self._writer = writer
        self._reader = reader
        self._snapshots = snapshots
        self._points = points
        # Query candidates are read on the loop's thread when cheap (see
        # ``LoopSnapshots``), through ``snapshots`` otherwise.
        self._candidate_pages = loop_snapshots or snapshots
        self._loop_snapshots = loop_snapshots
        self._lock = asyncio.Lock()
        self._closed = False

    def _read_connection(self) -> aiosqlite.Connection:
        return self._reader

    async def _point_query(self, sql: str, params: Params) -> list[sqlite3.Row]:
        rows = self._points.read(sql, params) if self._points is not None else None
        return rows if rows is not None else await self._query(sql, params)

    def transaction(self) -> AbstractAsyncContextManager[MirrorTransaction]:
        """Serialised, atomic unit of work. Not re-entrant: calling it (or
        ``complete_outbox`` / ``retry_outbox``) inside a transaction of the same
        repository waits for itself forever."""
        return self._transaction()

    def _transaction(self) -> _TransactionScope:
        if self._closed:
            raise RuntimeError(f"repository {self.path} is closed")
        return _TransactionScope(self)

    async def list_objects(self, resource_id: str) -> list[CalendarObject]:
        rows = await self._query(
            "SELECT * FROM objects WHERE resource_id = ? ORDER BY span_start, uid", (resource_id,)
        )
        return [decode_object(row) for row in rows]

    async def list_entries(self, resource_id: str) -> list[ObjectEntry]:
        rows = await self._query(_ENTRIES + " ORDER BY revision", (resource_id,))
        return [decode_entry(row) for row in rows]

    async def iter_entries(self, resource_id: str) -> AsyncGenerator[list[ObjectEntry]]:
        # By name: the (resource_id, href) index serves the order, so SQLite
        # streams rows without sorting them all first.
        pages = self._snapshots.pages(_ENTRIES + " ORDER BY href", (resource_id,))
        async with aclosing(pages):
            async for rows in pages:
                yield [decode_entry(row) for row in rows]

    def iter_objects(self, resource_id: str) -> AsyncGenerator[list[CalendarObject]]:
        sql = "SELECT * FROM objects WHERE resource_id = ? ORDER BY href"
        return self._object_pages(sql, (resource_id,))

    async def iter_candidates(
        self, resource_id: str, window: TimeSpan | None
    ) -> AsyncGenerator[list[QueriedObject]]:
        # Both statements filter nothing out after their first row (one reads
        # in the (resource_id, href) index's order, the other sorts every
        # candidate first), so each page after the first costs its rows
        # alone, as ``LoopSnapshots`` requires.
        if window is None:
            sql = f"SELECT {_QUERIED} FROM objects AS o WHERE resource_id = ? ORDER BY href"  # noqa: S608
            pages = self._candidate_pages.pages(sql, (resource_id,))
        else:
            statement = in_span_statement(resource_id, window, columns=_QUERIED)
            pages = self._candidate_pages.pages(*statement)
        async with aclosing(pages):
            async for rows in pages:
                yield [decode_queried_values(row) for row in rows]

    async def _object_pages(self, sql: str, params: Params) -> AsyncGenerator[list[CalendarObject]]:
        pages = self._snapshots.pages(sql, params)
        async with aclosing(pages):
            async for rows in pages:
                yield _listed(rows)

    async def get_many(self, resource_id: str, hrefs: Sequence[str]) -> list[QueriedObject]:
        found: list[QueriedObject] = []
        unique = list(dict.fromkeys(hrefs))
        # Batches stay under SQLite's default limit of bound parameters.
        for first in range(0, len(unique), _BATCH):
            batch = unique[first : first + _BATCH]
            marks = ", ".join("?" * len(batch))
            rows = await self._query(
                f"SELECT {_QUERIED} FROM objects AS o "  # noqa: S608
                f"WHERE resource_id = ? AND href IN ({marks})",
                (resource_id, *batch),
            )
            found.extend(decode_queried_values(row) for row in rows)
        return found

    async def collection_properties(self, resource_id: str) -> dict[str, str]:
        rows = await self._query(
            "SELECT name, value FROM collection_properties WHERE resource_id = ?", (resource_id,)
        )
        return {row["name"]: row["value"] for row in rows}

    async def set_collection_properties(
        self, resource_id: str, changes: Mapping[str, str | None]
    ) -> None:
        async with self._transaction() as tx:
            for name, value in changes.items():
                if value is None:
                    await tx._query(
                        "DELETE FROM collection_properties WHERE resource_id = ? AND name = ?",
                        (resource_id, name),
                    )
                else:
                    await tx._query(
                        "INSERT INTO collection_properties (resource_id, name, value) "
                        "VALUES (?, ?, ?) ON CONFLICT (resource_id, name) "
                        "DO UPDATE SET value = excluded.value",
                        (resource_id, name, value),
                    )

    async def revision(self, resource_id: str) -> int:
        rows = await self._point_query(
            "SELECT revision FROM collections WHERE resource_id = ?", (resource_id,)
        )
        return int(rows[0][0]) if rows else 0

    async def changes_since(self, resource_id: str, revision: int) -> list[Change] | None:
        # One statement, one snapshot: the revision check and the log agree even
        # while a writer commits.
        rows = await self._query(
            """
            SELECT coalesce((SELECT revision FROM collections WHERE resource_id = :r), 0)
                       AS current, NULL AS revision, NULL AS uid, NULL AS kind,
                   NULL AS href
            UNION ALL
            SELECT NULL, c.revision, c.uid, c.kind, c.href FROM changes AS c
            WHERE c.resource_id = :r AND c.revision > :since
              AND c.revision = (SELECT max(l.revision) FROM changes AS l
                                WHERE l.resource_id = c.resource_id AND l.href = c.href)
            """,
            {"r": resource_id, "since": revision},
        )
        current = int(rows[0]["current"])
        # The log is never pruned yet, so it reaches back to revision 0; a token
        # from the future (another server, a restored backup) cannot be honoured.
        if revision < 0 or revision > current:
            return None
        changes = [decode_change(row) for row in rows[1:]]
        return sorted(changes, key=lambda change: change.revision)

    async def claim_outbox(
        self, now: datetime, limit: int, lease: timedelta | None = None
    ) -> list[OutboxItem]:
        if lease is None:
            rows = await self._query(
                f"SELECT * FROM outbox AS o WHERE {_HEAD_OF_BOOKING} "  # noqa: S608
                f"AND {_DUE} ORDER BY id LIMIT :limit",
                {"now": utc_text(now), "limit": limit},
            )
        else:
            # Leased: the items are not due again until the lease runs out, so
            # a second worker (another process on the same file) skips them,
            # and a worker that dies mid-effect hands them on after the lease.
            async with self._transaction() as tx:
                rows = await tx._query(
                    "UPDATE outbox SET leased_until = :until, "  # noqa: S608
                    "resends = resends + (sending_since IS NOT NULL) WHERE id IN ("
                    f"SELECT id FROM outbox AS o WHERE {_HEAD_OF_BOOKING} "
                    f"AND {_DUE} ORDER BY id LIMIT :limit) "
                    "RETURNING *",
                    {"until": utc_text(now + lease), "now": utc_text(now), "limit": limit},
                )
            rows = sorted(rows, key=lambda row: int(row["id"]))
        return [decode_outbox_item(row) for row in rows]

    async def _write(self, sql: str, params: Params) -> None:
        async with self._transaction() as tx:
            await tx._query(sql, params)

    async def complete_outbox(self, item_id: int, error: str | None = None) -> None:
        await self._write(
            "UPDATE outbox SET done_at = ?, last_error = coalesce(?, last_error), "
            "leased_until = NULL, sending_since = NULL WHERE id = ? AND done_at IS NULL",
            (utc_text(datetime.now(UTC)), error, item_id),
        )

    async def fail_outbox(self, item_id: int, reason: str) -> None:
        """Close the item for good without its effect (never run again); the
        attempt that ended this way counts, like a failed one that is retried."""
        now = utc_text(datetime.now(UTC))
        await self._write(
            "UPDATE outbox SET attempts = attempts + 1, done_at = ?, failed_at = ?, "
            "last_error = ?, leased_until = NULL, sending_since = NULL "
            "WHERE id = ? AND done_at IS NULL",
            (now, now, reason, item_id),
        )

    async def mark_outbox_sending(self, item_id: int) -> None:
        """Committed before an effect that must not silently happen twice
        starts (``gateway.core.outbox``); cleared by the item's verdict."""
        await self._write(
            "UPDATE outbox SET sending_since = ? WHERE id = ? AND done_at IS NULL",
            (utc_text(datetime.now(UTC)), item_id),
        )

    async def retry_outbox(self, item_id: int, error: str, next_attempt: datetime) -> None:
        await self._write(
            "UPDATE outbox SET attempts = attempts + 1, last_error = ?, next_attempt_at = ?, "
            "leased_until = NULL, sending_since = NULL "
            "WHERE id = ? AND done_at IS NULL",
            (error, utc_text(next_attempt), item_id),
        )

    async def defer_outbox(self, item_id: int, next_attempt: datetime, reason: str) -> None:
        await self._write(
            "UPDATE outbox SET last_error = ?, next_attempt_at = ?, leased_until = NULL, "
            "sending_since = NULL WHERE id = ? AND done_at IS NULL",
            (reason, utc_text(next_attempt), item_id),
        )

    @asynccontextmanager
    async def sync_turn(self, resource_id: str) -> AsyncIterator[bool]:
        """Always this process's turn: one server owns a SQLite file (its
        sync worker keeps its own syncs of a calendar apart)."""
        yield True

    async def release_leases(self) -> int:
        """Void every lease (see ``OutboxWorker.run``); returns how many."""
        async with self._transaction() as tx:
            rows = await tx._query(
                "UPDATE outbox SET leased_until = NULL "
                "WHERE done_at IS NULL AND leased_until IS NOT NULL RETURNING id"
            )
        return len(rows)

    async def next_outbox_due(self) -> datetime | None:
        """When the earliest undone item falls due (None: nothing queued)."""
        rows = await self._query(
            "SELECT min(max(coalesce(next_attempt_at, ''), coalesce(leased_until, ''))) "  # noqa: S608
            f"FROM outbox AS o WHERE {_HEAD_OF_BOOKING}"
        )
        value = rows[0][0]
        if value is None:
            return None
        return from_utc_text(value) if value else datetime.min.replace(tzinfo=UTC)

    async def pending_outbox(self) -> int:
        rows = await self._query("SELECT count(*) FROM outbox WHERE done_at IS NULL")
        return int(rows[0][0])

    async def outbox_counts(self) -> dict[str, int]:
        """Undone items, those of them marked sending, and items closed as
        failed for good (ever: the admin looks at their last_error)."""
        rows = await self._query(
            "SELECT (SELECT count(*) FROM outbox WHERE done_at IS NULL) AS pending, "
            "(SELECT count(*) FROM outbox WHERE done_at IS NULL AND sending_since IS NOT NULL) "
            "AS sending, "
            "(SELECT count(*) FROM outbox WHERE failed_at IS NOT NULL) AS failed"
        )
        return {key: int(rows[0][key]) for key in ("pending", "sending", "failed")}

    async def failed_outbox(self, limit: int) -> list[FailedOutboxItem]:
        """Items closed as failed for good, newest first."""
        rows = await self._query(
            "SELECT id, kind, resource_id, booking_id, failed_at, last_error FROM outbox "
            "WHERE failed_at IS NOT NULL ORDER BY failed_at DESC, id DESC LIMIT ?",
            (limit,),
        )
        return [decode_failed_outbox_item(row) for row in rows]

    async def outbox_records(
        self, state: str | None, limit: int, resource_ids: Collection[str] | None = None
    ) -> list[OutboxRecord]:
        mine = ""
        params: list[Any] = []
        if resource_ids is not None:
            mine = f"AND resource_id IN ({', '.join('?' * len(resource_ids))}) "
            params = list(resource_ids)
        rows: list[sqlite3.Row] = []
        if state in (None, "pending"):
            rows += await self._query(
                f"SELECT * FROM outbox WHERE done_at IS NULL {mine}"  # noqa: S608
                "ORDER BY id LIMIT ?",
                (*params, limit),
            )
        if state in (None, "failed") and len(rows) < limit:
            rows += await self._query(
                f"SELECT * FROM outbox WHERE failed_at IS NOT NULL {mine}"  # noqa: S608
                "ORDER BY failed_at DESC, id DESC LIMIT ?",
                (*params, limit - len(rows)),
            )
        return [decode_outbox_record(row) for row in rows]

    async def outbox_record(self, item_id: int) -> OutboxRecord | None:
        rows = await self._query("SELECT * FROM outbox WHERE id = ?", (item_id,))
        return decode_outbox_record(rows[0]) if rows else None

    async def reopen_outbox(self, item_id: int, now: datetime) -> OutboxRecord | None:
        # A failed item is reopened whole (its lease and sending mark were
        # cleared when it failed); an undone one keeps a lease a worker holds.
        async with self._transaction() as tx:
            rows = await tx._query(
                "UPDATE outbox SET next_attempt_at = :now, done_at = NULL, failed_at = NULL "
                "WHERE id = :id AND (done_at IS NULL OR failed_at IS NOT NULL) RETURNING *",
                {"now": utc_text(now), "id": item_id},
            )
        return decode_outbox_record(rows[0]) if rows else None

    async def give_up_outbox(self, item_id: int, reason: str) -> OutboxRecord | None:
        now = utc_text(datetime.now(UTC))
        async with self._transaction() as tx:
            rows = await tx._query(
                "UPDATE outbox SET done_at = ?, failed_at = ?, last_error = ?, "
                "leased_until = NULL WHERE id = ? AND done_at IS NULL "
                "AND sending_since IS NULL RETURNING *",
                (now, now, reason, item_id),
            )
        return decode_outbox_record(rows[0]) if rows else None

    async def server_secret(self, name: str) -> bytes:
        rows = await self._query("SELECT secret FROM server_secrets WHERE name = ?", (name,))
        if rows:
            return bytes(rows[0][0])
        # Written under the write lock; a second process that got here too
        # keeps the first one's secret (DO NOTHING) and reads it back.
        async with self._transaction() as tx:
            await tx._query(
                "INSERT INTO server_secrets (name, secret, created_at) VALUES (?, ?, ?) "
                "ON CONFLICT (name) DO NOTHING",
                (name, secrets.token_bytes(32), utc_text(datetime.now(UTC))),
            )
            rows = await tx._query("SELECT secret FROM server_secrets WHERE name = ?", (name,))
        return bytes(rows[0][0])

    async def check_writable(self) -> None:
        """Prove that a booking would fit: allocate ``PROBE_BYTES`` of pages
        inside a savepoint that is rolled back (SQLite checks its page limit
        as pages are taken; nothing of them reaches the disk), then commit a
        one-row heartbeat (a real append to the write-ahead log, which is
        what a full file system refuses). Raises ``StorageFull``; the file
        does not grow."""
        async with self._transaction() as tx:
            await tx._query(
                "INSERT INTO storage_probe (id, checked_at) VALUES (1, ?) "
                "ON CONFLICT (id) DO UPDATE SET checked_at = excluded.checked_at",
                (utc_text(datetime.now(UTC)),),
            )
            await tx._query("SAVEPOINT room")
            await tx._query(
                "UPDATE storage_probe SET pad = zeroblob(?) WHERE id = 1", (PROBE_BYTES,)
            )
            await tx._query("ROLLBACK TO room")
            await tx._query("RELEASE room")

    async def close(self) -> None:
        """Close both connections; safe to call twice."""
        if self._closed:
            return
        self._closed = True
        if self._points is not None:
            # First: a read-only connection closed last could not checkpoint
            # and remove the write-ahead log as the writer does.
            self._points.close()
        if self._loop_snapshots is not None:
            self._loop_snapshots.close()  # as the point reader, for the same reason
        # Let a running transaction finish rather than cut it off mid-way.
        async with self._lock:
            try:
                await self._writer.close()
            finally:
                try:
                    await self._reader.close()
                finally:
                    await self._snapshots.close()


async def _connect(path: Path, *, writer: bool, busy_timeout_ms: int) -> aiosqlite.Connection:
    # isolation_level=None: the sqlite3 module must not open transactions on
    # its own; this module issues BEGIN/COMMIT/ROLLBACK explicitly.
    # check_same_thread=False on the writer: a transaction's statements run on
    # the event loop's thread while its BEGIN and COMMIT run on the
    # connection's own (``SqliteTransaction``), never at the same time.
    conn = await aiosqlite.connect(
        path,
        isolation_level=None,
        timeout=busy_timeout_ms / 1000,
        check_same_thread=not writer,
    )
    try:
        conn.row_factory = sqlite3.Row
        await _run(conn, f"PRAGMA busy_timeout = {busy_timeout_ms:d}")
        if writer:
            # WAL is a property of the file; the writer sets it before anything else.
            mode = await _run(conn, "PRAGMA journal_mode = WAL")
            if str(mode[0][0]).lower() != "wal":
                raise SchemaError(f"{path}: SQLite refused WAL journal mode (got {mode[0][0]!r})")
        await _run(conn, "PRAGMA foreign_keys = ON")
        await _run(conn, "PRAGMA synchronous = NORMAL")
        if not writer:
            # Guarantees every write goes through the locked writer path.
            await _run(conn, "PRAGMA query_only = ON")
    except BaseException:
        await conn.close()
        raise
    return conn


async def open_sqlite_repository(
    path: Path, *, busy_timeout_ms: int = BUSY_TIMEOUT_MS
) -> SqliteRepository:
    """Open (creating file and parent folders if needed) and migrate the database.

    ``busy_timeout_ms``: how long a write waits for another process's write lock
    before failing with "database is locked"."""
    if sqlite3.sqlite_version_info < _MIN_SQLITE:
        raise SchemaError(
            f"SQLite {sqlite3.sqlite_version} is too old; calgateway needs "
            f"{'.'.join(map(str, _MIN_SQLITE))} or newer"
        )
    path.parent.mkdir(parents=True, exist_ok=True)
    writer = await _connect(path, writer=True, busy_timeout_ms=busy_timeout_ms)
    try:
        await migrate(writer)
        await warn_shared_uids(writer, path)
        # From here on only transactions use the writer, and their BEGIN sets
        # the busy timeout itself when it must wait (``_begin_waiting``):
        # at 0, the BEGIN tried on the event loop's thread (``_begin_here``)
        # never waits there, with no PRAGMA around it. Nothing else in a
        # transaction waits for a lock (``SqliteTransaction``), nor does
        # COMMIT: its automatic checkpoint is a passive one, which never
        # calls the busy handler.
        await _run(writer, "PRAGMA busy_timeout = 0")
        reader = await _connect(path, writer=False, busy_timeout_ms=busy_timeout_ms)
    except BaseException:
        await writer.close()
        raise
    try:
        points = PointReader(path)
    except sqlite3.Error:
        points = None  # the reader answers every read, as it always could

    async def snapshot_connection() -> aiosqlite.Connection:
        conn = await _connect(path, writer=False, busy_timeout_ms=busy_timeout_ms)
        # A listing reads each page once, front to back: a page cache would
        # only hold memory (SQLite's default is 2 MiB per connection).
        await _run(conn, f"PRAGMA cache_size = -{SNAPSHOT_CACHE_KIB:d}")
        return conn

    snapshots = SnapshotPool(snapshot_connection)
    return SqliteRepository(
        path,
        writer,
        reader,
        snapshots,
        points,
        busy_timeout_ms=busy_timeout_ms,
        loop_snapshots=LoopSnapshots(path, snapshots, cache_kib=SNAPSHOT_CACHE_KIB),
    )


if TYPE_CHECKING:
    # Static proof that the classes satisfy the core's ports.
    def _conforms(
        repo: SqliteRepository, tx: SqliteTransaction
    ) -> tuple[Repository, WriteTransaction, MirrorRepository, MirrorTransaction]:
        return repo, tx, repo, tx
