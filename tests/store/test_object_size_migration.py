"""Migration 0010 on a live SQLite database: objects stored before sizes
were kept get the UTF-8 size of their text, which the listings
(getcontentlength) then read. The PostgreSQL form is tested in
test_postgres_repository (``test_upgrade_to_version_10_...``)."""

from __future__ import annotations

from pathlib import Path

import aiosqlite

from gateway.store import open_sqlite_repository
from gateway.store.rows import encode_object
from gateway.store.schema import bundled_migrations, migrate
from tests.store.contract import ics_for, make_object
from tests.store.old_schema import insert_objects_sql

OLD_OBJECTS = (
    make_object("plain"),
    make_object("zoe", ics=ics_for("zoe", "SUMMARY:Haarschnitt für Zoë 💇\r\n")),
)


async def test_objects_stored_before_get_the_size_of_their_text(tmp_path: Path) -> None:
    db_path = tmp_path / "gateway.sqlite3"
    async with aiosqlite.connect(db_path, isolation_level=None) as conn:
        await migrate(conn, bundled_migrations()[:9])
        await conn.execute("INSERT INTO collections VALUES ('anna', 1)")
        for obj in OLD_OBJECTS:
            await conn.execute(insert_objects_sql(9), encode_object(obj, 1))
    repo = await open_sqlite_repository(db_path)
    try:
        listed = {e.href: e.size for e in await repo.list_entries("anna")}
        assert listed == {o.href: len(o.ics.encode("utf-8")) for o in OLD_OBJECTS}
        assert listed["zoe.ics"] > len(OLD_OBJECTS[1].ics)
    finally:
        await repo.close()
