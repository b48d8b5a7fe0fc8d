"""psycopg 3 implementation of ``gateway.core.ports`` on PostgreSQL.

The same ports, the same values (``rows`` and ``mirror`` encode them for
both backends) and the same behaviour as ``sqlite``; what differs is how:

* Connections come from a psycopg-pool pool, in autocommit mode: a read
  outside a transaction is one statement on a connection borrowed for it,
  and sees committed data only.
* Write transactions serialise as SQLite's ``BEGIN IMMEDIATE`` makes them
  do: each one first takes a transaction-level advisory lock
  (``pg_advisory_xact_lock``, one for the whole database) and holds it until
  COMMIT or ROLLBACK. So a transaction's check-then-write decisions (is
  this slot free? which revision comes next?) rest on what it read, across
  every process on the database, and nothing ever has to be retried.
  Transactions run at READ COMMITTED: every statement after the lock sees
  everything committed before it was granted. An ``asyncio.Lock`` in front
  of it keeps a process's waiting transactions off the pool: without it,
  transactions queueing for the database lock could hold every connection
  while the one holding the lock waits for a connection to read with.
  (A lock per resource and exclusion constraints would let bookings of
  different resources commit side by side; one lock keeps exactly SQLite's
  behaviour.)
* Several replicas share the database. Outbox leases name their holder,
  and a holder is alive while it holds its identity lock on a connection
  of its own (``postgres_locks``): a killed replica's items are taken by
  another at once, and a replica starting voids only dead holders' leases.
  The same connection holds the Google sync lock of a calendar during a
  sync (``sync_turn``), so one replica syncs it at a time.
* Listings read in pages (``iter_entries`` and friends) run one SELECT
  through a server-side cursor in a read-only transaction: the cursor reads
  from the snapshot it was opened in, so the pages form one snapshot while
  writers go on committing.
* The schema comes from the same ordered migrations (``postgres_schema``),
  applied at open under an advisory lock; a database newer than the code
  is refused.

No LISTEN/NOTIFY: what replicas cache (feed bodies, parsed objects) is
keyed by the collection revision or the object's ETag, and every request
reads the revision from the database, so another replica's write is seen
by the next request without being told.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
from collections.abc import AsyncGenerator, AsyncIterator, Collection, Mapping, Sequence
from contextlib import AbstractAsyncContextManager, AsyncExitStack, aclosing, asynccontextmanager
from datetime import UTC, datetime, timedelta
from types import TracebackType
from typing import TYPE_CHECKING, Any, NoReturn

import psycopg
from psycopg import AsyncConnection, errors
from psycopg.conninfo import conninfo_to_dict, make_conninfo
from psycopg.rows import DictRow, dict_row
from psycopg_pool import AsyncConnectionPool

from gateway.core.errors import StorageFull
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

from .full import FULL_LOG, note_written
from .postgres_locks import LIVE_WORKERS, ReplicaLocks, open_replica_locks
from .postgres_mirror import PgMirrorReadsMixin, PgMirrorWritesMixin
from .postgres_schema import LOCK_NAMESPACE, WRITE_LOCK, migrate
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
from .schema import SchemaError
from .snapshots import IDLE_SNAPSHOT_CONNECTIONS, MAX_SNAPSHOT_CONNECTIONS, PAGE_ROWS
from .uids import holding_this, refuse_foreign_uid

log = logging.getLogger("calgateway.store")

Conn = AsyncConnection[DictRow]

# Connections for reads and the one write transaction a process runs at a
# time, on top of those lent to listings.
POOL_CONNECTIONS = 8
CONNECT_TIMEOUT_S = 30.0

_UPSERT_OBJECT = (
    f"INSERT INTO objects ({', '.join(OBJECT_COLUMNS)}) "  # noqa: S608
    f"VALUES ({', '.join(f'%({c})s' for c in OBJECT_COLUMNS)}) "
    "ON CONFLICT (resource_id, uid) DO UPDATE SET "
    + ", ".join(f"{c} = excluded.{c}" for c in OBJECT_COLUMNS if c not in ("resource_id", "uid"))
)

# As in ``sqlite``: an item waits while an older undone item of the same
# kind and booking exists; it is due when its retry time has come and no
# worker holds a lease on it.
_HEAD_OF_BOOKING = (
    "o.done_at IS NULL AND (o.booking_id = '' OR NOT EXISTS ("
    "SELECT 1 FROM outbox AS e WHERE e.done_at IS NULL AND e.resource_id = o.resource_id "
    "AND e.booking_id = o.booking_id AND e.kind = o.kind AND e.id < o.id))"
)
# A lease holds while it has not run out and its holder lives (holds its
# identity lock, ``postgres_locks``): a dead replica's items are due at once.
# Statements using these start with ``_WITH_LIVE``.
_WITH_LIVE = f"WITH live AS MATERIALIZED ({LIVE_WORKERS}) "
_LEASE_HOLDS = (
    "(o.leased_until IS NOT NULL AND o.leased_until > %(now)s "
    "AND o.leased_by IN (SELECT owner FROM live))"
)
_DUE = f"(o.next_attempt_at IS NULL OR o.next_attempt_at <= %(now)s) AND NOT {_LEASE_HOLDS}"

_BUMP_REVISION = (
    "INSERT INTO collections AS c (resource_id, revision) VALUES (%s, 1) "
    "ON CONFLICT (resource_id) DO UPDATE SET revision = c.revision + 1 "
    "RETURNING revision"
)

_ENTRIES = f"SELECT {ENTRY_COLUMNS} FROM objects WHERE resource_id = %s"  # noqa: S608


# What a calendar-query reads of each candidate (``rows.QUERIED_COLUMNS``).
_QUERIED = ", ".join(f"o.{column}" for column in QUERIED_COLUMNS)


def in_span_statement(
    resource_id: str, window: TimeSpan, *, blocking_only: bool = False, columns: str = "o.*"
) -> tuple[str, dict[str, Any]]:
    """SQL and parameters of the time-range query (public so tests can EXPLAIN it),
    reading ``columns`` of each object.

    The same rule as ``sqlite.in_span_statement``: half-open overlap, an
    instant matches when it starts inside the window, a recurring object
    ending at the window start is a candidate, the window widened to whole
    seconds. The range test (``&&`` on closed ranges) is what the GiST index
    ``objects_by_span`` answers; the exact test follows on the columns.
    """
    # ``columns`` is a caller's constant, never input.
    sql = f"""
        SELECT {columns} FROM objects AS o
        WHERE int8range(o.span_start, o.span_end, '[]')
              && int8range(%(w_start)s, %(w_end)s, '[]')
          AND o.resource_id = %(resource_id)s
          AND o.span_start < %(w_end)s
          AND (o.span_end > %(w_start)s
               OR (o.span_end = %(w_start)s AND (o.span_start = o.span_end OR o.recurring = 1)))
          AND (NOT %(blocking_only)s OR (o.status <> 'cancelled' AND o.transparent = 0))
        ORDER BY o.span_start, o.uid
    """  # noqa: S608
    params = {
        "resource_id": resource_id,
        "w_start": epoch_floor(window.start),
        "w_end": epoch_ceil(window.end),
        "blocking_only": blocking_only,
    }
    return sql, params


def _raise_translated(exc: psycopg.Error) -> NoReturn:
    # PostgreSQL says "could not extend file" / "no space left" with SQLSTATE
    # 53100 (disk_full): the core's StorageFull, as SQLite's SQLITE_FULL is.
    if isinstance(exc, errors.DiskFull):
        full = StorageFull(f"PostgreSQL: {exc}")
        FULL_LOG.refused(full)
        raise full from exc
    raise exc


async def _run(conn: Conn, sql: str, params: Params | None = None) -> list[DictRow]:
    try:
        cursor = await conn.execute(sql, params)
        return await cursor.fetchall() if cursor.description is not None else []
    except psycopg.Error as exc:
        _raise_translated(exc)


class _Reads(PgMirrorReadsMixin):
    """The ReadPort, over whatever ``_query`` runs statements on."""

    async def get_by_id(self, booking_id: str) -> CalendarObject | None:
        rows = await self._query("SELECT * FROM objects WHERE booking_id = %s", (booking_id,))
        return decode_object(rows[0]) if rows else None

    async def get_by_uid(self, resource_id: str, uid: str) -> CalendarObject | None:
        rows = await self._query(
            "SELECT * FROM objects WHERE resource_id = %s AND uid = %s", (resource_id, uid)
        )
        return decode_object(rows[0]) if rows else None

    async def with_uid(self, uid: str) -> list[CalendarObject]:
        rows = await self._query("SELECT * FROM objects WHERE uid = %s ORDER BY id", (uid,))
        return [decode_object(row) for row in rows]

    async def get_by_href(self, resource_id: str, href: str) -> CalendarObject | None:
        rows = await self._query(
            "SELECT * FROM objects WHERE resource_id = %s AND href = %s", (resource_id, href)
        )
        return decode_object(rows[0]) if rows else None

    async def stored_text(
        self, resource_id: str, href: str, *, with_text: bool = True
    ) -> StoredText | None:
        columns = STORED_TEXT_COLUMNS_WITH_TEXT if with_text else STORED_TEXT_COLUMNS
        rows = await self._query(
            f"SELECT {columns} FROM objects WHERE resource_id = %s AND href = %s",  # noqa: S608
            (resource_id, href),
        )
        return decode_stored_text(rows[0], with_text=with_text) if rows else None

    async def text_with_attendees(self, resource_id: str, href: str) -> str | None:
        rows = await self._query(
            f"SELECT ics FROM objects WHERE resource_id = %s AND href = %s AND {HAS_ATTENDEES}",  # noqa: S608
            (resource_id, href),
        )
        return str(rows[0]["ics"]) if rows else None

    async def in_span(
        self, resource_id: str, window: TimeSpan, *, blocking_only: bool = False
    ) -> list[CalendarObject]:
        sql, params = in_span_statement(resource_id, window, blocking_only=blocking_only)
        return [decode_object(row) for row in await self._query(sql, params)]


class PostgresTransaction(_Reads, PgMirrorWritesMixin):
    """One write transaction on one connection, holding the write lock."""

    def __init__(self, conn: Conn) -> None:
        self._conn = conn
        self._open = True

    def _finish(self) -> None:
        self._open = False

    async def _query(self, sql: str, params: Params = ()) -> list[DictRow]:
        # A transaction object kept past its `async with` would otherwise
        # write on a connection the pool has lent to somebody else.
        if not self._open:
            raise RuntimeError("this transaction has already ended")
        return await _run(self._conn, sql, params)

    async def _revision(self, resource_id: str) -> int:
        rows = await self._query(
            "SELECT revision FROM collections WHERE resource_id = %s", (resource_id,)
        )
        return int(rows[0]["revision"]) if rows else 0

    async def _bump(self, resource_id: str) -> int:
        rows = await self._query(_BUMP_REVISION, (resource_id,))
        return int(rows[0]["revision"])

    async def _log(
        self, resource_id: str, revision: int, uid: str, href: str, kind: ChangeKind
    ) -> None:
        await self._query(
            "INSERT INTO changes (resource_id, revision, uid, href, kind) "
            "VALUES (%s, %s, %s, %s, %s)",
            (resource_id, revision, uid, href, kind.value),
        )

    async def save(self, obj: CalendarObject) -> int:
        booking = obj.booking
        key = (booking.resource_id, booking.uid, booking.id)
        # One statement for both checks (see sqlite.save).
        holders = await self._query(
            "SELECT id, resource_id, uid, booking_id, href FROM objects "
            "WHERE booking_id = %s OR uid = %s",
            (booking.id, booking.uid),
        )
        rows = holding_this(holders, booking.resource_id, booking.uid, booking.id)
        moved_from = [row["href"] for row in rows if row["href"] != obj.href]
        for row in rows:
            # A booking id names one object for life (see sqlite.save).
            if (row["resource_id"], row["uid"], row["booking_id"]) != key:
                raise ValueError(
                    f"booking {booking.id!r} (resource {booking.resource_id!r}, uid "
                    f"{booking.uid!r}) clashes with stored booking {row['booking_id']!r} "
                    f"(resource {row['resource_id']!r}, uid {row['uid']!r})"
                )
        if not any(row["resource_id"] == booking.resource_id for row in rows):
            # UIDs are unique across the gateway (schema version 5).
            refuse_foreign_uid(holders, booking.resource_id, booking.uid)
        for old_href in moved_from:
            # The old name is gone: sync clients hear so (RFC 6578 3.5.2).
            gone = await self._bump(booking.resource_id)
            await self._log(booking.resource_id, gone, booking.uid, old_href, ChangeKind.DELETE)
        revision = await self._bump(booking.resource_id)
        await self._query(_UPSERT_OBJECT, encode_object(obj, revision))
        await self._query(
            "DELETE FROM tombstones WHERE resource_id = %s AND uid = %s",
            (booking.resource_id, booking.uid),
        )
        await self._log(booking.resource_id, revision, booking.uid, obj.href, ChangeKind.PUT)
        return revision

    async def keep_answer_times(self, booking: Booking) -> None:
        await self._query(
            "UPDATE objects SET attendees = %s WHERE booking_id = %s",
            (encode_attendees(booking.attendees), booking.id),
        )

    async def delete(self, resource_id: str, uid: str) -> int:
        """Deleting an object that is not there changes nothing and returns
        the current revision (retried deletes stay harmless)."""
        gone = await self._query(
            "DELETE FROM objects WHERE resource_id = %s AND uid = %s RETURNING href",
            (resource_id, uid),
        )
        if not gone:
            return await self._revision(resource_id)
        href = gone[0]["href"]
        revision = await self._bump(resource_id)
        await self._query(
            "INSERT INTO tombstones (resource_id, uid, href, revision, deleted_at) "
            "VALUES (%s, %s, %s, %s, %s) "
            "ON CONFLICT (resource_id, uid) DO UPDATE SET href = excluded.href, "
            "revision = excluded.revision, deleted_at = excluded.deleted_at",
            (resource_id, uid, href, revision, utc_text(datetime.now(UTC))),
        )
        await self._log(resource_id, revision, uid, href, ChangeKind.DELETE)
        return revision

    async def enqueue(self, effect: OutboxEffect) -> None:
        await self._query(
            "INSERT INTO outbox (kind, resource_id, booking_id, payload, created_at) "
            "VALUES (%s, %s, %s, %s, %s)",
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
            "SELECT fingerprint, booking_id FROM idempotency_keys WHERE key = %s", (key,)
        )
        return IdempotencyRecord(rows[0]["fingerprint"], rows[0]["booking_id"]) if rows else None

    async def remember_idempotency(self, key: str, record: IdempotencyRecord) -> None:
        # A plain INSERT: a duplicate key fails (and rolls back), never overwrites.
        await self._query(
            "INSERT INTO idempotency_keys (key, fingerprint, booking_id, created_at) "
            "VALUES (%s, %s, %s, %s)",
            (key, record.fingerprint, record.booking_id, utc_text(datetime.now(UTC))),
        )


class _TransactionScope(AbstractAsyncContextManager[PostgresTransaction]):
    """Process lock, a pooled connection, BEGIN, the database write lock;
    COMMIT or ROLLBACK, and everything given back in reverse order."""

    def __init__(self, repo: PostgresRepository) -> None:
        self._repo = repo
        self._stack = AsyncExitStack()
        self._tx: PostgresTransaction | None = None

    async def __aenter__(self) -> PostgresTransaction:
        repo = self._repo
        async with AsyncExitStack() as stack:
            await stack.enter_async_context(repo._lock)
            conn = await stack.enter_async_context(repo._pool.connection())
            await stack.enter_async_context(conn.transaction())
            await _run(conn, "SELECT pg_advisory_xact_lock(%s, %s)", (LOCK_NAMESPACE, WRITE_LOCK))
            # Entered in full: from here on __aexit__ unwinds it.
            self._stack = stack.pop_all()
        self._tx = PostgresTransaction(conn)
        return self._tx

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        assert self._tx is not None
        self._tx._finish()
        try:
            await self._stack.__aexit__(exc_type, exc, tb)
        except psycopg.Error as error:
            _raise_translated(error)  # a COMMIT refused for want of space
        if exc_type is None:
            note_written()


class PostgresRepository(_Reads):
    """The gateway's store on one PostgreSQL database. Use ``open_postgres_repository``."""

    def __init__(
        self,
        pool: AsyncConnectionPool[Conn],
        locks: ReplicaLocks,
        *,
        listings: int,
        description: str,
    ) -> None:
        self._pool = pool
        self._locks = locks
        self.description = description  # the database, never its password
        self._lock = asyncio.Lock()
        self._listings = asyncio.Semaphore(listings)
        self._closed = False

    async def _query(self, sql: str, params: Params = ()) -> list[DictRow]:
        async with self._pool.connection() as conn:
            return await _run(conn, sql, params)

    def transaction(self) -> AbstractAsyncContextManager[MirrorTransaction]:
        """Serialised, atomic unit of work (see the module docstring). Not
        re-entrant: calling it inside a transaction of the same repository
        waits for itself forever."""
        return self._transaction()

    def _transaction(self) -> _TransactionScope:
        if self._closed:
            raise RuntimeError(f"repository {self.description} is closed")
        return _TransactionScope(self)

    async def list_objects(self, resource_id: str) -> list[CalendarObject]:
        rows = await self._query(
            "SELECT * FROM objects WHERE resource_id = %s ORDER BY span_start, uid", (resource_id,)
        )
        return [decode_object(row) for row in rows]

    async def list_entries(self, resource_id: str) -> list[ObjectEntry]:
        rows = await self._query(_ENTRIES + " ORDER BY revision", (resource_id,))
        return [decode_entry(row.values()) for row in rows]

    async def iter_entries(self, resource_id: str) -> AsyncGenerator[list[ObjectEntry]]:
        pages = self._pages(_ENTRIES + " ORDER BY href", (resource_id,))
        async with aclosing(pages):
            async for rows in pages:
                yield [decode_entry(row.values()) for row in rows]

    def iter_objects(self, resource_id: str) -> AsyncGenerator[list[CalendarObject]]:
        sql = "SELECT * FROM objects WHERE resource_id = %s ORDER BY href"
        return self._object_pages(sql, (resource_id,))

    async def iter_candidates(
        self, resource_id: str, window: TimeSpan | None
    ) -> AsyncGenerator[list[QueriedObject]]:
        if window is None:
            sql = f"SELECT {_QUERIED} FROM objects AS o WHERE resource_id = %s ORDER BY href"  # noqa: S608
            pages = self._pages(sql, (resource_id,))
        else:
            pages = self._pages(*in_span_statement(resource_id, window, columns=_QUERIED))
        async with aclosing(pages):
            async for rows in pages:
                # Rows are dicts in the SELECT's column order.
                yield [decode_queried_values(row.values()) for row in rows]

    async def _object_pages(self, sql: str, params: Params) -> AsyncGenerator[list[CalendarObject]]:
        pages = self._pages(sql, params)
        async with aclosing(pages):
            async for rows in pages:
                yield [decode_listed_object(row) for row in rows]

    async def _pages(
        self, sql: str, params: Params, *, page_rows: int = PAGE_ROWS
    ) -> AsyncGenerator[list[DictRow]]:
        """The rows of one SELECT, a page at a time, from one snapshot: a
        server-side cursor reads from the snapshot it was opened in. Close
        the iterator when stopping early: until then it holds a connection."""
        if self._closed:
            raise RuntimeError(f"repository {self.description} is closed")
        async with self._listings, self._pool.connection() as conn:
            await _run(conn, "BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY")
            try:
                async with conn.cursor(name="listing") as cursor:
                    try:
                        await cursor.execute(sql, params)
                        while rows := await cursor.fetchmany(page_rows):
                            yield rows
                            if len(rows) < page_rows:
                                break  # a short page is the last: no round trip for an empty one
                    except psycopg.Error as exc:
                        _raise_translated(exc)  # a sort spilling to a full disk
            finally:
                # Read only: there is nothing to keep. A connection left in a
                # broken state is thrown away by the pool.
                if not conn.broken:
                    await conn.execute("ROLLBACK")

    async def get_many(self, resource_id: str, hrefs: Sequence[str]) -> list[QueriedObject]:
        unique = list(dict.fromkeys(hrefs))
        if not unique:
            return []
        # One array parameter, however many names.
        rows = await self._query(
            f"SELECT {_QUERIED} FROM objects AS o WHERE resource_id = %s AND href = ANY(%s)",  # noqa: S608
            (resource_id, unique),
        )
        return [decode_queried_values(row.values()) for row in rows]

    async def collection_properties(self, resource_id: str) -> dict[str, str]:
        rows = await self._query(
            "SELECT name, value FROM collection_properties WHERE resource_id = %s",
            (resource_id,),
        )
        return {row["name"]: row["value"] for row in rows}

    async def set_collection_properties(
        self, resource_id: str, changes: Mapping[str, str | None]
    ) -> None:
        async with self._transaction() as tx:
            for name, value in changes.items():
                if value is None:
                    await tx._query(
                        "DELETE FROM collection_properties WHERE resource_id = %s AND name = %s",
                        (resource_id, name),
                    )
                else:
                    await tx._query(
                        "INSERT INTO collection_properties (resource_id, name, value) "
                        "VALUES (%s, %s, %s) ON CONFLICT (resource_id, name) "
                        "DO UPDATE SET value = excluded.value",
                        (resource_id, name, value),
                    )

    async def revision(self, resource_id: str) -> int:
        rows = await self._query(
            "SELECT revision FROM collections WHERE resource_id = %s", (resource_id,)
        )
        return int(rows[0]["revision"]) if rows else 0

    async def changes_since(self, resource_id: str, revision: int) -> list[Change] | None:
        # One statement, one snapshot: the revision and the log agree even
        # while a writer commits. The one-row CTE joined to the log gives a
        # row (with a NULL change) even when nothing changed.
        rows = await self._query(
            """
            WITH current AS (
                SELECT coalesce((SELECT revision FROM collections WHERE resource_id = %(r)s), 0)
                       AS current
            )
            SELECT current.current, c.revision, c.uid, c.kind, c.href
            FROM current LEFT JOIN changes AS c
              ON c.resource_id = %(r)s AND c.revision > %(since)s
             AND c.revision = (SELECT max(l.revision) FROM changes AS l
                               WHERE l.resource_id = c.resource_id AND l.href = c.href)
            ORDER BY c.revision
            """,
            {"r": resource_id, "since": revision},
        )
        current = int(rows[0]["current"])
        # The log is never pruned yet; a token from the future cannot be honoured.
        if revision < 0 or revision > current:
            return None
        return [decode_change(row) for row in rows if row["revision"] is not None]

    async def claim_outbox(
        self, now: datetime, limit: int, lease: timedelta | None = None
    ) -> list[OutboxItem]:
        if lease is None:
            rows = await self._query(
                f"{_WITH_LIVE}SELECT * FROM outbox AS o WHERE {_HEAD_OF_BOOKING} "  # noqa: S608
                f"AND {_DUE} ORDER BY id LIMIT %(limit)s",
                {"now": utc_text(now), "limit": limit},
            )
        else:
            # One statement, outside the write lock (claims never queue
            # behind bookings): the items are picked FOR UPDATE SKIP LOCKED,
            # so two replicas claiming at once never take the same item (one
            # skips what the other is leasing), and leased in the same
            # statement. Other replicas skip them while the lease holds, that
            # is until it runs out or this replica dies (``_LEASE_HOLDS``).
            # The head-of-booking test reads committed rows: an item whose
            # predecessor is being closed right now waits for the next claim.
            owner = await self._locks.identity()
            rows = await self._query(
                f"{_WITH_LIVE}UPDATE outbox SET leased_until = %(until)s, "  # noqa: S608
                "leased_by = %(owner)s, "
                "resends = resends + (sending_since IS NOT NULL)::int WHERE id IN ("
                f"SELECT id FROM outbox AS o WHERE {_HEAD_OF_BOOKING} "
                f"AND {_DUE} ORDER BY id LIMIT %(limit)s FOR UPDATE OF o SKIP LOCKED) "
                "RETURNING *",
                {
                    "until": utc_text(now + lease),
                    "now": utc_text(now),
                    "limit": limit,
                    "owner": owner,
                },
            )
            rows = sorted(rows, key=lambda row: int(row["id"]))
        return [decode_outbox_item(row) for row in rows]

    async def _write(self, sql: str, params: Params) -> None:
        async with self._transaction() as tx:
            await tx._query(sql, params)

    async def complete_outbox(self, item_id: int, error: str | None = None) -> None:
        await self._write(
            "UPDATE outbox SET done_at = %s, last_error = coalesce(%s, last_error), "
            "leased_until = NULL, sending_since = NULL WHERE id = %s AND done_at IS NULL",
            (utc_text(datetime.now(UTC)), error, item_id),
        )

    async def fail_outbox(self, item_id: int, reason: str) -> None:
        """Close the item for good without its effect (never run again); the
        attempt that ended this way counts, like a failed one that is retried."""
        now = utc_text(datetime.now(UTC))
        await self._write(
            "UPDATE outbox SET attempts = attempts + 1, done_at = %s, failed_at = %s, "
            "last_error = %s, leased_until = NULL, sending_since = NULL "
            "WHERE id = %s AND done_at IS NULL",
            (now, now, reason, item_id),
        )

    async def mark_outbox_sending(self, item_id: int) -> None:
        await self._write(
            "UPDATE outbox SET sending_since = %s WHERE id = %s AND done_at IS NULL",
            (utc_text(datetime.now(UTC)), item_id),
        )

    async def retry_outbox(self, item_id: int, error: str, next_attempt: datetime) -> None:
        await self._write(
            "UPDATE outbox SET attempts = attempts + 1, last_error = %s, next_attempt_at = %s, "
            "leased_until = NULL, sending_since = NULL "
            "WHERE id = %s AND done_at IS NULL",
            (error, utc_text(next_attempt), item_id),
        )

    async def defer_outbox(self, item_id: int, next_attempt: datetime, reason: str) -> None:
        await self._write(
            "UPDATE outbox SET last_error = %s, next_attempt_at = %s, leased_until = NULL, "
            "sending_since = NULL WHERE id = %s AND done_at IS NULL",
            (reason, utc_text(next_attempt), item_id),
        )

    @asynccontextmanager
    async def sync_turn(self, resource_id: str) -> AsyncIterator[bool]:
        """The calendar's sync lock on this replica's lock connection
        (``postgres_locks``), for the block; False when another replica
        holds it. A replica that dies mid-sync lets go with its connection."""
        taken = await self._locks.try_sync(resource_id)
        try:
            yield taken
        finally:
            if taken:
                await self._locks.end_sync(resource_id)

    async def release_leases(self) -> int:
        """Void the leases of holders that are gone (a replica that died);
        returns how many. Live replicas' leases stay: several replicas
        share this outbox, and a replica starting must not take the items
        another one is running."""
        async with self._transaction() as tx:
            rows = await tx._query(
                f"{_WITH_LIVE}UPDATE outbox AS o SET leased_until = NULL "  # noqa: S608
                "WHERE o.done_at IS NULL AND o.leased_until IS NOT NULL "
                "AND (o.leased_by IS NULL OR o.leased_by NOT IN (SELECT owner FROM live)) "
                "RETURNING o.id"
            )
        return len(rows)

    async def next_outbox_due(self) -> datetime | None:
        # A dead holder's lease does not delay the item.
        rows = await self._query(
            f"{_WITH_LIVE}SELECT min(greatest(coalesce(o.next_attempt_at, ''), "  # noqa: S608
            "CASE WHEN o.leased_by IN (SELECT owner FROM live) "
            "THEN coalesce(o.leased_until, '') ELSE '' END)) "
            f"AS due FROM outbox AS o WHERE {_HEAD_OF_BOOKING}"
        )
        value = rows[0]["due"]
        if value is None:
            return None
        return from_utc_text(value) if value else datetime.min.replace(tzinfo=UTC)

    async def pending_outbox(self) -> int:
        rows = await self._query("SELECT count(*) AS n FROM outbox WHERE done_at IS NULL")
        return int(rows[0]["n"])

    async def outbox_counts(self) -> dict[str, int]:
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
            "WHERE failed_at IS NOT NULL ORDER BY failed_at DESC, id DESC LIMIT %s",
            (limit,),
        )
        return [decode_failed_outbox_item(row) for row in rows]

    async def outbox_records(
        self, state: str | None, limit: int, resource_ids: Collection[str] | None = None
    ) -> list[OutboxRecord]:
        mine = "" if resource_ids is None else "AND resource_id = ANY(%(mine)s) "
        params: dict[str, Any] = {"mine": list(resource_ids or ())}
        rows: list[DictRow] = []
        if state in (None, "pending"):
            rows += await self._query(
                f"SELECT * FROM outbox WHERE done_at IS NULL {mine}"  # noqa: S608
                "ORDER BY id LIMIT %(limit)s",
                {**params, "limit": limit},
            )
        if state in (None, "failed") and len(rows) < limit:
            rows += await self._query(
                f"SELECT * FROM outbox WHERE failed_at IS NOT NULL {mine}"  # noqa: S608
                "ORDER BY failed_at DESC, id DESC LIMIT %(limit)s",
                {**params, "limit": limit - len(rows)},
            )
        return [decode_outbox_record(row) for row in rows]

    async def outbox_record(self, item_id: int) -> OutboxRecord | None:
        rows = await self._query("SELECT * FROM outbox WHERE id = %s", (item_id,))
        return decode_outbox_record(rows[0]) if rows else None

    async def reopen_outbox(self, item_id: int, now: datetime) -> OutboxRecord | None:
        # As SQLite's: a failed item reopened whole, an undone one keeps the
        # lease a live worker may hold on it.
        async with self._transaction() as tx:
            rows = await tx._query(
                "UPDATE outbox SET next_attempt_at = %(now)s, done_at = NULL, failed_at = NULL "
                "WHERE id = %(id)s AND (done_at IS NULL OR failed_at IS NOT NULL) RETURNING *",
                {"now": utc_text(now), "id": item_id},
            )
        return decode_outbox_record(rows[0]) if rows else None

    async def give_up_outbox(self, item_id: int, reason: str) -> OutboxRecord | None:
        now = utc_text(datetime.now(UTC))
        async with self._transaction() as tx:
            rows = await tx._query(
                "UPDATE outbox SET done_at = %s, failed_at = %s, last_error = %s, "
                "leased_until = NULL, leased_by = NULL WHERE id = %s AND done_at IS NULL "
                "AND sending_since IS NULL RETURNING *",
                (now, now, reason, item_id),
            )
        return decode_outbox_record(rows[0]) if rows else None

    async def server_secret(self, name: str) -> bytes:
        rows = await self._query("SELECT secret FROM server_secrets WHERE name = %s", (name,))
        if rows:
            return bytes(rows[0]["secret"])
        # Replicas starting together: the transactions serialise on the
        # write lock, the first one's row stays (DO NOTHING) and every one
        # reads that row back.
        async with self._transaction() as tx:
            await tx._query(
                "INSERT INTO server_secrets (name, secret, created_at) VALUES (%s, %s, %s) "
                "ON CONFLICT (name) DO NOTHING",
                (name, secrets.token_bytes(32), utc_text(datetime.now(UTC))),
            )
            rows = await tx._query("SELECT secret FROM server_secrets WHERE name = %s", (name,))
        return bytes(rows[0]["secret"])

    async def check_writable(self) -> None:
        """Commit a one-row heartbeat: a real write through the write lock
        and the write-ahead log, which a server out of disk space refuses
        (``StorageFull``). Unlike SQLite there is no page limit to probe
        room against, so the room for a booking is not tried out."""
        async with self._transaction() as tx:
            await tx._query(
                "INSERT INTO storage_probe (id, checked_at) VALUES (1, %s) "
                "ON CONFLICT (id) DO UPDATE SET checked_at = excluded.checked_at",
                (utc_text(datetime.now(UTC)),),
            )

    async def close(self) -> None:
        """Close the pool; safe to call twice. A running transaction is
        let finish rather than cut off."""
        if self._closed:
            return
        self._closed = True
        async with self._lock:
            await self._pool.close()
        await self._locks.close()


async def _configure(conn: Conn) -> None:
    # The stored values are UTF-8 text (sizes count its bytes), as in SQLite.
    cursor = await conn.execute("SHOW server_encoding")
    row = await cursor.fetchone()
    if row is None or row["server_encoding"] != "UTF8":
        found = None if row is None else row["server_encoding"]
        raise SchemaError(f"the database must use the UTF8 encoding, not {found!r}")


@asynccontextmanager
async def _connection(url: str) -> AsyncIterator[Conn]:
    conn = await AsyncConnection.connect(
        url, autocommit=True, row_factory=dict_row, connect_timeout=int(CONNECT_TIMEOUT_S)
    )
    async with conn:
        yield conn


async def _warn_shared_uids(conn: Conn) -> int:
    """uids.warn_shared_uids on PostgreSQL: log each UID that objects of
    several collections still share (kept by migration 0005)."""
    cursor = await conn.execute(
        "SELECT o.uid, string_agg(o.resource_id || '/' || o.href, ', ' ORDER BY o.id) AS objects "
        "FROM (SELECT DISTINCT uid FROM objects WHERE uid_shared = 1) AS s "
        "JOIN objects AS o ON o.uid = s.uid GROUP BY o.uid ORDER BY o.uid"
    )
    rows = await cursor.fetchall()
    for row in rows:
        log.warning(
            "UID shared by objects of several calendars (stored before UIDs were unique); "
            "attendees' replies to it are applied only when their ORGANIZER tells the "
            "objects apart: delete the copy that should not be there",
            extra={"uid": row["uid"], "objects": row["objects"]},
        )
    return len(rows)


async def open_postgres_repository(
    url: str,
    *,
    password: str | None = None,
    pool_size: int = POOL_CONNECTIONS,
    listings: int = MAX_SNAPSHOT_CONNECTIONS,
) -> PostgresRepository:
    """Connect, migrate (under the migration lock) and open the pool.

    ``url``: a libpq connection string or ``postgresql://`` URL; the
    password is ``password`` when given, else libpq's own places
    (``PGPASSWORD``, ``~/.pgpass``). ``pool_size`` connections serve reads
    and writes, ``listings`` more at most are lent to listings read in
    pages."""
    description = _describe(url)
    if password is not None:
        url = make_conninfo(url, password=password)
    async with _connection(url) as conn:
        await _configure(conn)
        await migrate(conn)
        await _warn_shared_uids(conn)
    pool: AsyncConnectionPool[Conn] = AsyncConnectionPool(
        url,
        connection_class=AsyncConnection[DictRow],
        kwargs={"autocommit": True, "row_factory": dict_row},
        min_size=min(IDLE_SNAPSHOT_CONNECTIONS, pool_size),
        max_size=pool_size + listings,
        timeout=CONNECT_TIMEOUT_S,
        open=False,
        name="calgateway",
    )
    locks = await open_replica_locks(url, int(CONNECT_TIMEOUT_S))
    try:
        await pool.open(wait=True, timeout=CONNECT_TIMEOUT_S)
    except BaseException:
        await locks.close()
        raise
    log.info("replica identity taken", extra={"database": description, "replica": locks.owner})
    return PostgresRepository(pool, locks, listings=listings, description=description)


def _describe(url: str) -> str:
    """The database, for messages: host, port and name, never a password."""
    info = conninfo_to_dict(url)
    return f"postgresql://{info.get('host', '')}:{info.get('port', '')}/{info.get('dbname', '')}"


if TYPE_CHECKING:
    # Static proof that the classes satisfy the core's ports.
    def _conforms(
        repo: PostgresRepository, tx: PostgresTransaction
    ) -> tuple[Repository, WriteTransaction, MirrorRepository, MirrorTransaction]:
        return repo, tx, repo, tx
