"""``copy_tables.RowStore`` on a SQLite file, for ``calgateway copy-store``.

As a source the file is opened read-only (``query_only``) and read in one
transaction, so every table comes from the same snapshot even if a process
still writes (WAL mode). As a target it is migrated like any start does,
then written in one ``BEGIN IMMEDIATE`` transaction that holds SQLite's
write lock from the emptiness check to the COMMIT, so a failure at any
point leaves nothing behind. Connections are set up by ``sqlite._connect``,
the same pragmas the server uses (foreign keys on, so rows must come in
``TABLES`` order).
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from pathlib import Path

import aiosqlite

from .copy_tables import CopyRefused, Row, Table
from .schema import migrate, user_version
from .sqlite import BUSY_TIMEOUT_MS, _connect


def _name(identifier: str) -> str:
    # Names come from the constant table list and the database's own
    # catalogue; quoting keeps a keyword-like column ("key") a name.
    return '"' + identifier.replace('"', '""') + '"'


class SqliteRows:
    errors: tuple[type[BaseException], ...] = (sqlite3.Error, OSError)

    def __init__(self, conn: aiosqlite.Connection, description: str, page_rows: int) -> None:
        self._conn = conn
        self.description = description
        self._page_rows = page_rows

    async def _all(self, sql: str, params: Sequence[object] = ()) -> list[sqlite3.Row]:
        return list(await self._conn.execute_fetchall(sql, params))

    async def schema_version(self) -> int:
        return await user_version(self._conn)

    async def table_names(self) -> set[str]:
        rows = await self._all(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite\\_%' "
            "ESCAPE '\\'"
        )
        return {str(row[0]) for row in rows}

    async def columns(self, table: str) -> list[str]:
        return [str(row[1]) for row in await self._all(f"PRAGMA table_info({_name(table)})")]

    async def count(self, table: str) -> int:
        rows = await self._all(f"SELECT count(*) FROM {_name(table)}")  # noqa: S608
        return int(rows[0][0])

    async def rows(self, table: Table, columns: Sequence[str]) -> AsyncIterator[list[Row]]:
        sql = (
            f"SELECT {', '.join(map(_name, columns))} FROM {_name(table.name)} "  # noqa: S608
            f"ORDER BY {', '.join(map(_name, table.key))}"
        )
        async with self._conn.execute(sql) as cursor:
            while page := await cursor.fetchmany(self._page_rows):
                yield [tuple(row) for row in page]

    async def _autoincrement(self, table: str) -> bool:
        rows = await self._all(
            "SELECT sql FROM sqlite_master WHERE type = 'table' AND name = ?", (table,)
        )
        return bool(rows) and "AUTOINCREMENT" in str(rows[0][0]).upper()

    async def counter(self, table: Table) -> int | None:
        if table.counter is None:
            return None
        rows = await self._all(
            f"SELECT coalesce(max({_name(table.counter)}), 0) FROM {_name(table.name)}"  # noqa: S608
        )
        highest = int(rows[0][0])
        if await self._autoincrement(table.name):
            seq = await self._all("SELECT seq FROM sqlite_sequence WHERE name = ?", (table.name,))
            if seq:
                highest = max(highest, int(seq[0][0]))
        return highest

    async def insert(self, table: str, columns: Sequence[str], rows: Sequence[Row]) -> None:
        sql = (
            f"INSERT INTO {_name(table)} ({', '.join(map(_name, columns))}) "  # noqa: S608
            f"VALUES ({', '.join('?' for _ in columns)})"
        )
        await self._conn.executemany(sql, rows)

    async def set_counter(self, table: Table, value: int) -> bool:
        # Only AUTOINCREMENT keeps a mark (in sqlite_sequence); a plain rowid
        # (objects.id) is max + 1 by SQLite's rule.
        if table.counter is None or not await self._autoincrement(table.name):
            return False
        if value <= 0:
            return True
        cursor = await self._conn.execute(
            "UPDATE sqlite_sequence SET seq = max(seq, ?) WHERE name = ?", (value, table.name)
        )
        if cursor.rowcount == 0:
            await self._conn.execute(
                "INSERT INTO sqlite_sequence (name, seq) VALUES (?, ?)", (table.name, value)
            )
        return True


@asynccontextmanager
async def open_sqlite_rows(
    path: Path, description: str, *, write: bool, page_rows: int
) -> AsyncIterator[SqliteRows]:
    """The file as a source (``write=False``: it must exist; one read
    snapshot) or as a target (created and migrated if needed; one write
    transaction, committed only when the block ends without an error)."""
    if write:
        await asyncio.to_thread(path.parent.mkdir, parents=True, exist_ok=True)
    elif not await asyncio.to_thread(path.is_file):
        raise CopyRefused(f"the source {description} does not exist")
    conn = await _connect(path, writer=write, busy_timeout_ms=BUSY_TIMEOUT_MS)
    try:
        if write:
            await migrate(conn)
        await conn.execute("BEGIN IMMEDIATE" if write else "BEGIN")
        try:
            yield SqliteRows(conn, description, page_rows)
        except BaseException:
            await conn.execute("ROLLBACK")
            raise
        await conn.execute("COMMIT" if write else "ROLLBACK")
    finally:
        await conn.close()
