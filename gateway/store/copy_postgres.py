"""``copy_tables.RowStore`` on a PostgreSQL database, for ``calgateway
copy-store`` (imported only when a URL names PostgreSQL).

As a source the database is read in one ``REPEATABLE READ, READ ONLY``
transaction: every table from the same snapshot, through server-side
cursors (a page at a time, not the whole table in memory). As a target it
is checked and migrated as ``open_postgres_repository`` does, then written
in one transaction that holds the gateway's database-wide write lock
(``pg_advisory_xact_lock``, the lock every write of every replica takes)
from the emptiness check to the COMMIT: a replica started on it too early
waits instead of writing in between, and a failure leaves nothing behind.
Rows go in with COPY, the fastest way into PostgreSQL.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager

import psycopg
from psycopg import sql
from psycopg.conninfo import make_conninfo
from psycopg.rows import tuple_row

from .copy_tables import Row, Table
from .postgres import Conn, _configure, _connection
from .postgres_schema import LOCK_NAMESPACE, WRITE_LOCK, migrate, schema_version


def _names(columns: Sequence[str]) -> sql.Composable:
    return sql.SQL(", ").join(map(sql.Identifier, columns))


class PostgresRows:
    errors: tuple[type[BaseException], ...] = (psycopg.Error,)

    def __init__(self, conn: Conn, description: str, page_rows: int) -> None:
        self._conn = conn
        self.description = description
        self._page_rows = page_rows
        self._cursors = 0

    async def _one(self, query: sql.Composed | str, params: Sequence[object] = ()) -> object:
        cursor = await self._conn.execute(query, params)
        row = await cursor.fetchone()
        assert row is not None  # aggregates always answer one row
        return next(iter(row.values()))

    async def schema_version(self) -> int:
        return await schema_version(self._conn)

    async def table_names(self) -> set[str]:
        cursor = await self._conn.execute(
            "SELECT tablename FROM pg_tables WHERE schemaname = current_schema()"
        )
        return {str(row["tablename"]) for row in await cursor.fetchall()}

    async def columns(self, table: str) -> list[str]:
        cursor = await self._conn.execute(
            "SELECT column_name FROM information_schema.columns "
            "WHERE table_schema = current_schema() AND table_name = %s ORDER BY ordinal_position",
            (table,),
        )
        return [str(row["column_name"]) for row in await cursor.fetchall()]

    async def count(self, table: str) -> int:
        query = sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(table))
        return int(str(await self._one(query)))

    async def rows(self, table: Table, columns: Sequence[str]) -> AsyncIterator[list[Row]]:
        query = sql.SQL("SELECT {} FROM {} ORDER BY {}").format(
            _names(columns), sql.Identifier(table.name), _names(table.key)
        )
        self._cursors += 1
        name = f"copy_{self._cursors}"
        async with self._conn.cursor(name=name, row_factory=tuple_row) as cursor:
            await cursor.execute(query)
            while page := await cursor.fetchmany(self._page_rows):
                yield page

    async def counter(self, table: Table) -> int | None:
        if table.counter is None:
            return None
        # pg_sequence_last_value: NULL while the sequence has handed out nothing.
        query = sql.SQL(
            "SELECT greatest(coalesce(pg_sequence_last_value("
            "pg_get_serial_sequence(%s, %s)::regclass), 0), "
            "(SELECT coalesce(max({column}), 0) FROM {table})) AS highest"
        ).format(column=sql.Identifier(table.counter), table=sql.Identifier(table.name))
        return int(str(await self._one(query, (table.name, table.counter))))

    async def insert(self, table: str, columns: Sequence[str], rows: Sequence[Row]) -> None:
        query = sql.SQL("COPY {} ({}) FROM STDIN").format(sql.Identifier(table), _names(columns))
        async with self._conn.cursor() as cursor, cursor.copy(query) as copy:
            for row in rows:
                await copy.write_row(row)

    async def set_counter(self, table: Table, value: int) -> bool:
        if table.counter is None:
            return False
        # setval(.., 1, false): the next id is 1, as in a new table.
        await self._conn.execute(
            "SELECT setval(pg_get_serial_sequence(%s, %s), greatest(%s, 1), %s)",
            (table.name, table.counter, value, value > 0),
        )
        return True


@asynccontextmanager
async def open_postgres_rows(
    url: str, password: str | None, description: str, *, write: bool, page_rows: int
) -> AsyncIterator[PostgresRows]:
    """The database as a source (``write=False``: one read-only snapshot)
    or as a target (migrated; one transaction under the write lock,
    committed only when the block ends without an error)."""
    conninfo = make_conninfo(url, password=password) if password is not None else url
    async with _connection(conninfo) as conn:
        await _configure(conn)
        if write:
            await migrate(conn)
            async with conn.transaction():
                await conn.execute(
                    "SELECT pg_advisory_xact_lock(%s, %s)", (LOCK_NAMESPACE, WRITE_LOCK)
                )
                yield PostgresRows(conn, description, page_rows)
            return
        await conn.execute("BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY")
        try:
            yield PostgresRows(conn, description, page_rows)
        finally:
            if not conn.broken:
                await conn.execute("ROLLBACK")
