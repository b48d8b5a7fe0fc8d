"""Data older versions could store and this one refuses, written straight
into the database file as those versions left it (migration 0005 kept it)."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from gateway.store.rows import OBJECT_COLUMNS


async def insert_legacy_copy(
    db_path: Path, booking_id: str, resource_id: str, copy_id: str, href: str = "copy.ics"
) -> None:
    """A copy of the object ``booking_id`` (same UID, same attendees) in
    the calendar ``resource_id``, stored BEFORE it: as a user of that calendar
    could PUT it before UIDs were unique across the gateway, and marked the way
    migration 0005 marks the later of two objects sharing a UID."""
    await asyncio.to_thread(_insert_copy, db_path, booking_id, resource_id, copy_id, href)


async def write_directly(db_path: Path, sql: str, params: tuple[object, ...] = ()) -> None:
    """One statement in a write transaction of its own (see ``writing``)."""

    def write() -> None:
        with writing(db_path) as conn:
            conn.execute(sql, params)

    await asyncio.to_thread(write)


def _insert_copy(db_path: Path, booking_id: str, resource_id: str, copy_id: str, href: str) -> None:
    copied = [c for c in OBJECT_COLUMNS if c not in ("resource_id", "booking_id", "href")]
    columns = ", ".join(copied)
    with writing(db_path) as conn:
        conn.execute(
            "INSERT OR IGNORE INTO collections (resource_id, revision) VALUES (?, 0)",
            (resource_id,),
        )
        uid = conn.execute(
            "SELECT uid FROM objects WHERE booking_id = ?", (booking_id,)
        ).fetchone()[0]
        conn.execute("UPDATE objects SET uid_shared = 1 WHERE uid = ?", (uid,))
        conn.execute(
            f"INSERT INTO objects (id, resource_id, booking_id, href, {columns}) "
            f"SELECT (SELECT min(id) FROM objects) - 1, ?, ?, ?, {columns} "
            "FROM objects WHERE booking_id = ?",
            (resource_id, copy_id, href, booking_id),
        )


@contextmanager
def writing(db_path: Path) -> Iterator[sqlite3.Connection]:
    """One write transaction on the database file, beside a running server:
    BEGIN IMMEDIATE waits for the server's write lock (in WAL mode a read
    turned write would fail at once if the server wrote meanwhile). Run it
    off the event loop (``asyncio.to_thread``): a server in the same loop
    holding the lock could not finish while the loop is blocked here."""
    conn = sqlite3.connect(db_path, timeout=10, isolation_level=None)
    try:
        conn.execute("BEGIN IMMEDIATE")
        try:
            yield conn
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")
    finally:
        conn.close()
