"""Migration 0009 on a live SQLite database: objects stored before schedule
tags existed get their ETag as their tag (the text as it stands is the
organizer's as far as anyone knows), and keep it through an answer saved
as ``replace(obj, ...)``. The PostgreSQL form is tested in
test_postgres_repository (``test_upgrade_to_version_9_...``)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import aiosqlite

from gateway.store import open_sqlite_repository
from gateway.store.rows import encode_object
from gateway.store.schema import bundled_migrations, migrate
from tests.store.contract import make_object, save
from tests.store.old_schema import insert_objects_sql


async def test_objects_stored_before_get_their_etag_as_tag(tmp_path: Path) -> None:
    db_path = tmp_path / "gateway.sqlite3"
    old = make_object("old")
    async with aiosqlite.connect(db_path, isolation_level=None) as conn:
        await migrate(conn, bundled_migrations()[:8])
        await conn.execute("INSERT INTO collections VALUES ('anna', 1)")
        await conn.execute(insert_objects_sql(8), encode_object(old, 1))
    repo = await open_sqlite_repository(db_path)
    try:
        stored = await repo.get_by_uid("anna", "old")
        assert stored is not None and stored.schedule_tag == old.etag
        (entry,) = await repo.list_entries("anna")
        assert entry.schedule_tag == old.etag
        # A change the server makes keeps it.
        await save(
            repo,
            replace(stored, ics=stored.ics.replace("END:VEVENT", "X-ANSWERED:1\r\nEND:VEVENT")),
        )
        again = await repo.get_by_uid("anna", "old")
        assert again is not None and again.etag != old.etag
        assert again.schedule_tag == old.etag
    finally:
        await repo.close()
