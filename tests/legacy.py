"""Data older versions could store and this one refuses, written straight
into the store as those versions left it (migration 0005 kept it, and
``calgateway copy-store`` carries it from a SQLite file to PostgreSQL)."""

from __future__ import annotations

import asyncio

from gateway.store.rows import OBJECT_COLUMNS
from tests.backends import Store


async def insert_legacy_copy(
    store: Store, booking_id: str, resource_id: str, copy_id: str, href: str = "copy.ics"
) -> None:
    """A copy of the object ``booking_id`` (same UID, same attendees) in
    the calendar ``resource_id``, stored BEFORE it: as a user of that calendar
    could PUT it before UIDs were unique across the gateway, and marked the way
    migration 0005 marks the later of two objects sharing a UID."""
    await asyncio.to_thread(_insert_copy, store, booking_id, resource_id, copy_id, href)


def _insert_copy(store: Store, booking_id: str, resource_id: str, copy_id: str, href: str) -> None:
    copied = [c for c in OBJECT_COLUMNS if c not in ("resource_id", "booking_id", "href")]
    columns = ", ".join(copied)
    with store.writing() as execute:
        execute(
            "INSERT INTO collections (resource_id, revision) VALUES (?, 0) "
            "ON CONFLICT (resource_id) DO NOTHING",
            (resource_id,),
        )
        (row,) = execute("SELECT uid FROM objects WHERE booking_id = ?", (booking_id,))
        execute("UPDATE objects SET uid_shared = 1 WHERE uid = ?", (row["uid"],))
        execute(
            f"INSERT INTO objects (id, resource_id, booking_id, href, {columns}) "
            f"SELECT (SELECT min(id) FROM objects) - 1, ?, ?, ?, {columns} "
            "FROM objects WHERE booking_id = ?",
            (resource_id, copy_id, href, booking_id),
        )
