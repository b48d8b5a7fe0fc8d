"""Migration 0005 on a live database holding one UID in two calendars: it
must not fail, keeps both objects, says so, and from then on the database
itself refuses a UID another calendar holds."""

from __future__ import annotations

import logging
import sqlite3
from dataclasses import replace
from pathlib import Path

import aiosqlite
import pytest

from gateway.core.errors import UidConflict
from gateway.store import open_sqlite_repository
from gateway.store.rows import encode_object
from gateway.store.schema import bundled_migrations, migrate
from tests.store.contract import make_object, save
from tests.store.old_schema import insert_objects_sql

_INSERT = insert_objects_sql(4)


async def _version_4_database(db_path: Path) -> None:
    """A database as version 4 left it: UID 'dup' in anna's calendar, then
    (a user of bob's calendar copied it) in bob's, and one UID of its own."""
    async with aiosqlite.connect(db_path, isolation_level=None) as conn:
        await migrate(conn, bundled_migrations()[:4])
        for resource in ("anna", "bob"):
            await conn.execute("INSERT INTO collections VALUES (?, 1)", (resource,))
        for obj in (
            make_object("dup"),
            make_object("dup", resource_id="bob"),
            make_object("own", resource_id="bob"),
        ):
            await conn.execute(_INSERT, encode_object(obj, 1))


def _rows(db_path: Path, sql: str) -> list[tuple[object, ...]]:
    conn = sqlite3.connect(db_path)
    try:
        return conn.execute(sql).fetchall()
    finally:
        conn.close()


async def test_existing_copies_are_kept_logged_and_new_ones_refused(
    db_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    await _version_4_database(db_path)
    with caplog.at_level(logging.WARNING, logger="calgateway.store"):
        repo = await open_sqlite_repository(db_path)
    try:
        # Kept, the oldest first; only the later copy is marked.
        assert [o.resource_id for o in await repo.with_uid("dup")] == ["anna", "bob"]
        assert _rows(db_path, "SELECT resource_id, uid, uid_shared FROM objects ORDER BY id") == [
            ("anna", "dup", 0),
            ("bob", "dup", 1),
            ("bob", "own", 0),
        ]
        # Each calendar's log says so, and so does the server's at start.
        warnings = _rows(
            db_path, "SELECT resource_id, kind, message FROM sync_log ORDER BY resource_id"
        )
        assert [(r, k) for r, k, _ in warnings] == [("anna", "warning"), ("bob", "warning")]
        assert all("'dup'" in str(m) and "another calendar" in str(m) for _, _, m in warnings)
        started = [r for r in caplog.records if "UID shared" in r.getMessage()]
        assert len(started) == 1
        assert started[0].__dict__["objects"] == "anna/dup.ics, bob/dup.ics"

        # Both copies still change as before ...
        await save(repo, make_object("dup", resource_id="bob", title="still mine"))
        await save(repo, make_object("dup", title="still anna's"))
        # ... but no third calendar may take the UID (named by its oldest
        # copy), nor another one's.
        with pytest.raises(UidConflict) as refused:
            await save(repo, make_object("dup", resource_id="room"))
        assert (refused.value.resource_id, refused.value.href) == ("anna", "dup.ics")
        with pytest.raises(UidConflict):
            await save(repo, make_object("own"))
    finally:
        await repo.close()

    # The database itself refuses a new copy, whatever writes it.
    conn = sqlite3.connect(db_path)
    try:
        with pytest.raises(sqlite3.IntegrityError, match="UNIQUE"):
            conn.execute(_INSERT, encode_object(make_object("own", resource_id="anna"), 2))
    finally:
        conn.close()


async def test_a_fresh_database_logs_nothing_and_refuses_copies(
    db_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="calgateway.store"):
        repo = await open_sqlite_repository(db_path)
    try:
        obj = make_object("a")
        await save(repo, obj)
        with pytest.raises(UidConflict) as refused:
            await save(repo, replace(make_object("a", resource_id="bob"), href="b.ics"))
        assert refused.value.resource_id == "anna"
    finally:
        await repo.close()
    assert not [r for r in caplog.records if "UID shared" in r.getMessage()]
    assert _rows(db_path, "SELECT count(*) FROM sync_log") == [(0,)]
