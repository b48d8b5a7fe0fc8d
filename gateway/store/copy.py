"""Move a whole installation from one store to another: ``calgateway
copy-store`` (SQLite to PostgreSQL, back, or between two of a kind).

Everything the gateway keeps moves as it is, row by row, table by table
(``copy_tables.TABLES``; why rows and not the ports is said there):
calendar objects with their hrefs and ETags, each collection's revision,
the change log and tombstones (a client's sync-token still works on the
target), collection properties, the outbox (pending and failed items, with
their attempts; leases cleared), idempotency keys and the Google mirror
(connections with their refresh tokens as stored, still encrypted; invites,
event links, sync log), and the high-water marks of the ids the database
numbers, so the target never hands out an id again.

Safety:

* the source is read in one snapshot, and must be at the schema version of
  this code (the target is migrated to it, so both hold the same tables);
* the target is written in one transaction under its write lock, and must
  be empty (no row in any copied table) when that transaction starts;
* before the COMMIT the target is read back inside the same transaction:
  the row count of every table and a SHA-256 over every copied value must
  equal the source's (as written: cleared leases included), else the
  transaction is rolled back. Any error on the way rolls it back too, so
  the target is never left half-written.

The checksum covers every column of every row of every copied table, in
key order, each value tagged with its kind (NULL, integer, text, bytes)
and length, so a value that changed type, was cut or re-encoded on the way
changes it. It does not cover the tables in ``NOT_COPIED``.

Not here: reading settings (``gateway.cli`` turns URLs and password
settings into ``StoreAddress``).
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from .copy_sqlite import SqliteRows, open_sqlite_rows
from .copy_tables import TABLES, CopyFailed, CopyRefused, Row, RowStore, Table
from .schema import bundled_migrations

__all__ = [
    "CopyFailed",
    "CopyRefused",
    "CopyReport",
    "StoreAddress",
    "TargetNotEmpty",
    "copy_store",
]

# Rows read and written at a time: objects carry their calendar text, so a
# page is bounded by rows, not bytes (100 objects of a few KiB each).
PAGE_ROWS = 100


@dataclass(frozen=True, slots=True)
class StoreAddress:
    """A store to copy from or to: a SQLite file or a PostgreSQL URL
    (without its password, which comes apart and is never shown)."""

    backend: Literal["sqlite", "postgresql"]
    location: str  # the SQLite file's path, or the PostgreSQL URL
    description: str  # for messages
    password: str | None = field(default=None, repr=False)


class TargetNotEmpty(CopyRefused):
    def __init__(self, description: str, filled: dict[str, int]) -> None:
        rows = ", ".join(f"{name}: {count}" for name, count in filled.items())
        super().__init__(
            f"the target {description} is not empty ({rows}): copy-store only fills an "
            "empty store, it never merges or overwrites; give it a new database or file"
        )
        self.filled = filled


@dataclass(frozen=True, slots=True)
class TableCopy:
    name: str
    rows: int
    sha256: str


@dataclass(frozen=True, slots=True)
class CopyReport:
    source: str
    target: str
    schema_version: int
    tables: tuple[TableCopy, ...]
    # Table -> the highest id handed out, where the target keeps such a mark.
    counters: dict[str, int]
    leases_cleared: int
    seconds: float

    @property
    def checksum(self) -> str:
        """One SHA-256 over the tables' names, row counts and checksums."""
        digest = hashlib.sha256()
        for table in self.tables:
            digest.update(f"{table.name}\0{table.rows}\0{table.sha256}\0".encode())
        return digest.hexdigest()

    def lines(self) -> list[str]:
        """The report the command prints."""
        width = max(len(t.name) for t in self.tables)
        out = [f"copied {self.source} -> {self.target} (schema version {self.schema_version})"]
        out += [
            f"  {t.name.ljust(width)}  {t.rows:>9} rows  sha256 {t.sha256[:16]}"
            for t in self.tables
        ]
        ids = ", ".join(f"{name} {value}" for name, value in self.counters.items())
        out.append(f"  ids handed out so far, kept on the target: {ids}")
        if self.leases_cleared:
            out.append(
                f"  {self.leases_cleared} outbox lease(s) cleared: those items run again on the "
                "target (a lease means a worker held them: was a server still running?)"
            )
        out.append(
            f"verified: row counts and SHA-256 of every copied value equal on both sides "
            f"(checksum {self.checksum}); {self.seconds:.1f} s"
        )
        return out


def _feed(digest: hashlib._Hash, row: Row) -> None:
    """One row into the checksum: each value tagged with its kind and length,
    so that a value of another type, or cut short, changes it."""
    for value in row:
        if value is None:
            digest.update(b"N")
        elif isinstance(value, bool):  # no column holds one; a driver would be wrong
            raise CopyFailed(f"unexpected boolean value {value!r}")
        elif isinstance(value, int):
            digest.update(b"I%d;" % value)
        elif isinstance(value, str):
            data = value.encode("utf-8")
            digest.update(b"S%d:" % len(data))
            digest.update(data)
        elif isinstance(value, bytes | bytearray | memoryview):
            data = bytes(value)
            digest.update(b"B%d:" % len(data))
            digest.update(data)
        else:
            raise CopyFailed(f"unexpected value of type {type(value).__name__}")


@asynccontextmanager
async def _open(address: StoreAddress, *, write: bool, page_rows: int) -> AsyncIterator[RowStore]:
    if address.backend == "sqlite":
        async with open_sqlite_rows(
            Path(address.location), address.description, write=write, page_rows=page_rows
        ) as rows:
            yield rows
        return
    # psycopg only when a URL names PostgreSQL, as for the server.
    from .copy_postgres import open_postgres_rows

    async with open_postgres_rows(
        address.location, address.password, address.description, write=write, page_rows=page_rows
    ) as pg_rows:
        yield pg_rows


async def _check_source(source: RowStore, version: int) -> None:
    found = await source.schema_version()
    if found == 0:
        raise CopyRefused(f"the source {source.description} holds no calgateway data")
    if found != version:
        advice = (
            "upgrade calgateway first"
            if found > version
            else "bring it up to date first: `calgateway migrate --config` with its settings"
        )
        raise CopyRefused(
            f"the source {source.description} is at schema version {found}, this calgateway "
            f"copies version {version}: {advice}"
        )
    # Same version, same tables: tests/store/test_copy_store.py holds TABLES
    # and NOT_COPIED to every table of both schemas, so no table is left
    # behind (tables of other applications in a shared database are).


async def _columns(source: RowStore, target: RowStore, table: Table) -> list[str]:
    """The target's columns, which the source must have exactly too."""
    theirs, ours = await source.columns(table.name), await target.columns(table.name)
    if set(theirs) != set(ours):
        raise CopyRefused(
            f"table {table.name} has other columns in {source.description} ({', '.join(theirs)}) "
            f"than in {target.description} ({', '.join(ours)})"
        )
    return ours


async def _refuse_filled(target: RowStore) -> None:
    filled = {t.name: n for t in TABLES if (n := await target.count(t.name))}
    if filled:
        raise TargetNotEmpty(target.description, filled)


async def _copy_table(
    source: RowStore, target: RowStore, table: Table, columns: Sequence[str]
) -> tuple[TableCopy, int]:
    """Copy one table; returns its count and checksum as written, and in
    how many rows ``table.cleared`` columns were cleared."""
    digest = hashlib.sha256()
    cleared = [columns.index(name) for name in table.cleared]
    rows = leases = 0
    async for page in source.rows(table, columns):
        if cleared:
            leases += sum(1 for row in page if any(row[i] is not None for i in cleared))
            page = [
                tuple(None if i in cleared else value for i, value in enumerate(row))
                for row in page
            ]
        for row in page:
            _feed(digest, row)
        await target.insert(table.name, columns, page)
        rows += len(page)
    return TableCopy(table.name, rows, digest.hexdigest()), leases


async def _read_back(target: RowStore, table: Table, columns: Sequence[str]) -> TableCopy:
    digest = hashlib.sha256()
    rows = 0
    async for page in target.rows(table, columns):
        for row in page:
            _feed(digest, row)
        rows += len(page)
    return TableCopy(table.name, rows, digest.hexdigest())


async def copy_store(
    source: StoreAddress, target: StoreAddress, *, page_rows: int = PAGE_ROWS
) -> CopyReport:
    """Copy every row of ``source`` into the empty ``target`` and verify it
    (see the module docstring). Raises ``CopyRefused`` (``TargetNotEmpty``)
    before anything is written, ``CopyFailed`` when the copy went wrong
    and was rolled back."""
    same = (source.backend, source.location) == (target.backend, target.location)
    if same or source.description == target.description:
        raise CopyRefused(f"--from and --to name the same store, {source.description}")
    try:
        return await _copy(source, target, page_rows)
    except (*_errors(source), *_errors(target)) as exc:
        # Connecting, locking, migrating, committing: the target's
        # transaction did not commit, whatever step failed.
        raise CopyFailed(f"{exc}; nothing was written to {target.description}") from exc


def _errors(address: StoreAddress) -> tuple[type[BaseException], ...]:
    if address.backend == "sqlite":
        return SqliteRows.errors
    from .copy_postgres import PostgresRows

    return PostgresRows.errors


async def _copy(source: StoreAddress, target: StoreAddress, page_rows: int) -> CopyReport:
    started = time.monotonic()
    version = bundled_migrations()[-1].version
    async with _open(source, write=False, page_rows=page_rows) as src:
        await _check_source(src, version)
        async with _open(target, write=True, page_rows=page_rows) as dst:
            columns = {t.name: await _columns(src, dst, t) for t in TABLES}
            await _refuse_filled(dst)
            copied: list[TableCopy] = []
            counters: dict[str, int] = {}
            leases = 0
            errors = (*src.errors, *dst.errors)
            for table in TABLES:
                try:
                    done, cleared = await _copy_table(src, dst, table, columns[table.name])
                    highest = await src.counter(table)
                    if highest is not None and await dst.set_counter(table, highest):
                        counters[table.name] = highest
                except errors as exc:
                    raise CopyFailed(
                        f"copying table {table.name} failed, nothing was written to "
                        f"{target.description}: {exc}"
                    ) from exc
                copied.append(done)
                leases += cleared
            await _verify(dst, copied, columns, counters)
    return CopyReport(
        source=source.description,
        target=target.description,
        schema_version=version,
        tables=tuple(copied),
        counters=counters,
        leases_cleared=leases,
        seconds=time.monotonic() - started,
    )


async def _verify(
    target: RowStore,
    copied: Sequence[TableCopy],
    columns: dict[str, list[str]],
    counters: dict[str, int],
) -> None:
    """Read everything back inside the target's transaction; a difference
    raises, which rolls the transaction back."""
    by_name = {t.name: t for t in TABLES}
    for written in copied:
        table = by_name[written.name]
        read = await _read_back(target, table, columns[table.name])
        if read != written:
            raise CopyFailed(
                f"verification failed for table {table.name}: {written.rows} rows written "
                f"(sha256 {written.sha256}), {read.rows} read back (sha256 {read.sha256}); "
                f"the copy was rolled back, {target.description} is as it was"
            )
        expected = counters.get(table.name)
        if expected is not None and (await target.counter(table) or 0) < expected:
            raise CopyFailed(
                f"verification failed for table {table.name}: the target would hand out ids "
                f"up to {expected} again; the copy was rolled back"
            )
