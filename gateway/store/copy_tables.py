"""What ``calgateway copy-store`` copies: the one list of tables, in the
order both backends' migrations create them, and how rows are read and
written on either backend (the ``RowStore`` each backend module offers).

The copy works on rows, below the repository ports, because the ports
cannot say what must move unchanged: a ``save`` bumps the collection
revision and writes a change-log row of its own, so sync tokens, ETags and
the change log would be renumbered (a client's sync-token would point at
other changes); the outbox has no port to put back an item with its
attempts, lease and failure; the Google mirror's invites and sync log ids
have none either. The two schemas are the same tables, columns and values
by design (``migrations/NNNN_*.pg.sql`` are twins of the SQLite steps, and
``rows`` / ``mirror`` encode values once for both), so a row copied column
by column means the same on the other backend.

Not copied (``NOT_COPIED``, with the reason): the schema version's own
bookkeeping (the target is migrated by its own code, and the copy insists
the source is at the same version), SQLite's R*Tree time index (triggers
fill it from ``objects``; PostgreSQL indexes an expression) and the
``/healthz`` heartbeat row.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

Row = tuple[Any, ...]


class CopyRefused(Exception):
    """The copy cannot start: nothing was written (the command exits 2)."""


class CopyFailed(Exception):
    """The copy went wrong part of the way, and the target's transaction
    was rolled back: the target is as it was (the command exits 1)."""


@dataclass(frozen=True, slots=True)
class Table:
    """One table copied whole.

    ``key``: the primary key, the order rows are read in on both backends
    (text keys are byte-ordered on both: SQLite's BINARY, PostgreSQL's
    COLLATE "C" in the schema), so the checksums of the two sides see the
    rows in the same order. ``counter``: the column the database numbers
    itself (SQLite AUTOINCREMENT or rowid, PostgreSQL identity), whose
    high-water mark moves too, so ids are never handed out twice.
    ``cleared``: columns written as NULL on the target.
    """

    name: str
    key: tuple[str, ...]
    counter: str | None = None
    cleared: tuple[str, ...] = ()


# In migration order: a table comes after the tables its foreign keys name.
TABLES: tuple[Table, ...] = (
    Table("collections", ("resource_id",)),
    Table("objects", ("id",), counter="id"),
    Table("changes", ("resource_id", "revision")),
    Table("tombstones", ("resource_id", "uid")),
    # A lease (its time and its holder, a replica's lock id) belongs to a
    # worker of the old installation, which is gone: the target's workers
    # may take the item at once. sending_since stays, so an e-mail that may
    # have gone out is still told apart from one never tried.
    Table("outbox", ("id",), counter="id", cleared=("leased_until", "leased_by")),
    Table("idempotency_keys", ("key",)),
    Table("collection_properties", ("resource_id", "name")),
    Table("google_connections", ("resource_id",)),
    Table("google_invites", ("token_hash",)),
    Table("google_events", ("resource_id", "event_id")),
    Table("sync_log", ("id",), counter="id"),
    # The console's session key moves with the data: sessions stay valid.
    Table("server_secrets", ("name",)),
)

NOT_COPIED: dict[str, str] = {
    "schema_migrations": "PostgreSQL's schema version rows (the versions must be equal)",
    "storage_probe": "the /healthz heartbeat row",
    "time_index": "SQLite's R*Tree over objects, filled by triggers",
    "time_index_node": "part of SQLite's R*Tree",
    "time_index_parent": "part of SQLite's R*Tree",
    "time_index_rowid": "part of SQLite's R*Tree",
}


class RowStore(Protocol):
    """One database, opened by ``copy_sqlite`` or ``copy_postgres`` for
    reading (a snapshot) or for writing (one transaction holding the write
    lock): tables and rows, nothing of the domain."""

    description: str
    # What the driver raises when the database refuses something.
    errors: tuple[type[BaseException], ...]

    async def schema_version(self) -> int: ...

    async def table_names(self) -> set[str]: ...

    async def columns(self, table: str) -> list[str]:
        """The table's columns, in the database's order."""
        ...

    async def count(self, table: str) -> int: ...

    def rows(self, table: Table, columns: Sequence[str]) -> AsyncIterator[list[Row]]:
        """Every row, in ``table.key`` order, a page at a time."""
        ...

    async def counter(self, table: Table) -> int | None:
        """The highest id the database has handed out in ``table.counter``
        (at least the highest stored); None when it keeps no such mark."""
        ...

    async def insert(self, table: str, columns: Sequence[str], rows: Sequence[Row]) -> None: ...

    async def set_counter(self, table: Table, value: int) -> bool:
        """Never hand out ids up to ``value``; False where the database
        keeps no such mark (SQLite's plain rowid: max + 1, as before)."""
        ...
