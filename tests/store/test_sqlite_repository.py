"""The SQLite repository: the shared contract on a real file, plus SQLite specifics."""

from __future__ import annotations

import asyncio
import re
import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiosqlite
import pytest

from gateway.core.model import FAR_FUTURE, Change, ChangeKind, TimeSpan
from gateway.core.ports import IdempotencyRecord
from gateway.store import SchemaTooNewError, SqliteRepository, open_sqlite_repository
from gateway.store.schema import Migration, bundled_migrations, migrate, user_version
from gateway.store.sqlite import in_span_statement
from tests.dbcheck import row_counts
from tests.store.contract import (
    Boom,
    OpenRepo,
    RepositoryContract,
    at,
    effect,
    make_object,
    save,
    window,
)


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    # Nested on purpose: opening must create missing parent folders.
    return tmp_path / "data" / "db" / "gateway.sqlite3"


@pytest.fixture
def open_repo(db_path: Path) -> OpenRepo:
    async def opener() -> SqliteRepository:
        return await open_sqlite_repository(db_path)

    return opener


class TestSqliteRepository(RepositoryContract):
    pass


def query(
    db_path: Path, sql: str, params: tuple[object, ...] | dict[str, object] = ()
) -> list[Any]:
    conn = sqlite3.connect(db_path)
    try:
        return conn.execute(sql, params).fetchall()
    finally:
        conn.close()


# -- file and connections ----------------------------------------------------


async def test_creates_file_in_wal_mode(repo: SqliteRepository, db_path: Path) -> None:
    assert await asyncio.to_thread(db_path.is_file)
    assert query(db_path, "PRAGMA journal_mode") == [("wal",)]


async def test_connection_settings(repo: SqliteRepository) -> None:
    # The writer waits for another process's write lock only while its BEGIN
    # runs on its own thread (``_begin_waiting``), never on the event loop's.
    for conn, busy_timeout in ((repo._writer, 0), (repo._reader, 5000)):
        settings = {}
        for pragma in ("foreign_keys", "busy_timeout", "synchronous", "journal_mode"):
            rows = list(await conn.execute_fetchall(f"PRAGMA {pragma}"))
            settings[pragma] = rows[0][0]
        assert settings == {
            "foreign_keys": 1,
            "busy_timeout": busy_timeout,
            "synchronous": 1,  # NORMAL
            "journal_mode": "wal",
        }
    # The reader cannot write by accident: writes must take the locked path.
    with pytest.raises(sqlite3.OperationalError, match="readonly"):
        await repo._reader.execute_fetchall("DELETE FROM outbox")


async def test_transaction_object_is_dead_after_its_block(repo: SqliteRepository) -> None:
    async with repo.transaction() as tx:
        pass
    with pytest.raises(RuntimeError, match="ended"):
        await tx.save(make_object())


async def test_rollback_leaves_no_row_anywhere(repo: SqliteRepository, db_path: Path) -> None:
    with pytest.raises(Boom):
        async with repo.transaction() as tx:
            await tx.save(make_object("a"))
            await tx.delete("anna", "a")
            await tx.save(make_object("b"))
            await tx.enqueue(effect(1))
            await tx.remember_idempotency("k", IdempotencyRecord("f", "b"))
            raise Boom
    assert row_counts(db_path) == {
        "objects": 0,
        "changes": 0,
        "outbox": 0,
        "idempotency_keys": 0,
        "tombstones": 0,
        "revision": 0,
    }
    assert query(db_path, "SELECT count(*) FROM time_index") == [(0,)]


async def test_tombstones_follow_deletes_and_resaves(repo: SqliteRepository, db_path: Path) -> None:
    await save(repo, make_object("a"))
    async with repo.transaction() as tx:
        await tx.delete("anna", "a")
    assert query(db_path, "SELECT resource_id, uid, revision FROM tombstones") == [("anna", "a", 2)]
    await save(repo, make_object("a"))
    assert query(db_path, "SELECT count(*) FROM tombstones") == [(0,)]


async def test_time_index_stays_in_step_with_objects(repo: SqliteRepository, db_path: Path) -> None:
    await save(
        repo,
        make_object("a", at(10), at(11)),
        make_object("b", at(12), at(13)),
        make_object("rec", recurring=True, span=TimeSpan(at(1), FAR_FUTURE)),
    )
    await save(repo, make_object("a", at(20), at(21)))
    async with repo.transaction() as tx:
        await tx.delete("anna", "b")
    rows = query(
        db_path,
        "SELECT o.uid, o.span_start, o.span_end, t.span_start, t.span_end "
        "FROM objects o JOIN time_index t ON t.id = o.id ORDER BY o.uid",
    )
    assert [r[0] for r in rows] == ["a", "rec"]
    assert query(db_path, "SELECT count(*) FROM time_index") == [(2,)]
    for _, start, end, box_start, box_end in rows:
        # float32 boxes are rounded outward: they contain the exact span.
        assert box_start <= start and box_end >= end
    assert rows[1][2] == int(FAR_FUTURE.timestamp())


async def test_a_second_process_cannot_write_while_one_holds_the_write_lock(
    db_path: Path,
) -> None:
    # Another process is stood in for by a plain sqlite3 connection holding a
    # write transaction. BEGIN IMMEDIATE makes our transaction wait for that
    # lock at its start (so its reads see a settled database) and give up
    # after the busy timeout without writing anything.
    repo = await open_sqlite_repository(db_path, busy_timeout_ms=50)
    other = sqlite3.connect(db_path, isolation_level=None)
    try:
        other.execute("BEGIN IMMEDIATE")
        other.execute("UPDATE collections SET revision = revision")
        # Even a transaction that would only read must wait: its check-then-write
        # decisions (double booking) rest on what it reads.
        with pytest.raises(sqlite3.OperationalError, match="locked"):
            async with repo.transaction() as tx:
                await tx.in_span("anna", window(0, 24))
        with pytest.raises(sqlite3.OperationalError, match="locked"):
            async with repo.transaction() as tx:
                await tx.save(make_object("blocked"))
        other.execute("COMMIT")
        async with repo.transaction() as tx:
            await tx.save(make_object("after"))
        assert [o.uid for o in await repo.list_objects("anna")] == ["after"]
        assert await repo.revision("anna") == 1
    finally:
        other.close()
        await repo.close()


# -- migrations ----------------------------------------------------------------


async def test_migrations_set_user_version(repo: SqliteRepository, db_path: Path) -> None:
    latest = bundled_migrations()[-1].version
    assert latest == len(bundled_migrations())
    assert query(db_path, "PRAGMA user_version") == [(latest,)]
    tables = {r[0] for r in query(db_path, "SELECT name FROM sqlite_master WHERE type='table'")}
    assert {"collections", "objects", "time_index", "changes", "tombstones", "outbox"} <= tables
    assert "idempotency_keys" in tables


async def test_reopening_does_not_reapply(repo: SqliteRepository, open_repo: OpenRepo) -> None:
    await save(repo, make_object("a"))
    again = await open_repo()
    try:
        assert await again.get_by_uid("anna", "a") == make_object("a")
    finally:
        await again.close()


async def test_newer_database_is_refused(db_path: Path) -> None:
    db_path.parent.mkdir(parents=True)
    conn = sqlite3.connect(db_path)
    conn.execute("PRAGMA user_version = 999")
    conn.close()
    latest = bundled_migrations()[-1].version
    with pytest.raises(SchemaTooNewError, match=rf"version 999 is newer .* supports \({latest}\)"):
        await open_sqlite_repository(db_path)
    # Refusing changed nothing.
    assert query(db_path, "PRAGMA user_version") == [(999,)]
    assert query(db_path, "SELECT count(*) FROM sqlite_master") == [(0,)]


async def test_failed_migration_rolls_back_to_previous_version(tmp_path: Path) -> None:
    good = Migration(1, "good", "CREATE TABLE one (x INTEGER);\n")
    bad = Migration(2, "bad", "CREATE TABLE two (x INTEGER);\nINSERT INTO missing VALUES (1);\n")
    async with aiosqlite.connect(tmp_path / "m.sqlite3", isolation_level=None) as conn:
        with pytest.raises(sqlite3.OperationalError, match="missing"):
            await migrate(conn, [good, bad])
        assert await user_version(conn) == 1
        names = {r[0] for r in await conn.execute_fetchall("SELECT name FROM sqlite_master")}
        assert names == {"one"}
        assert not conn.in_transaction
        # Fixed, it goes on from where it stopped.
        fixed = Migration(2, "fixed", "CREATE TABLE two (x INTEGER);\n")
        assert await migrate(conn, [good, fixed]) == 2


async def test_upgrade_from_version_1_names_objects_after_their_uid(db_path: Path) -> None:
    db_path.parent.mkdir(parents=True)
    async with aiosqlite.connect(db_path, isolation_level=None) as conn:
        await migrate(conn, bundled_migrations()[:1])
        await conn.execute("INSERT INTO collections VALUES ('anna', 2)")
        await conn.execute(
            "INSERT INTO objects (resource_id, uid, booking_id, title, description, location,"
            " start_at, end_at, timezone, created_at, updated_at, attendees, status,"
            " transparent, origin, sequence, recurring, ics, etag, span_start, span_end,"
            " revision) VALUES ('anna', 'old@x', 'b1', 't', '', '', '2026-01-01T10:00:00+00:00',"
            " '2026-01-01T11:00:00+00:00', 'UTC', '2026-01-01T00:00:00.000000+00:00',"
            " '2026-01-01T00:00:00.000000+00:00', '[]', 'confirmed', 0, 'api', 0, 0, 'x', '\"e\"',"
            " 1767261600, 1767265200, 1)"
        )
        await conn.execute("INSERT INTO changes VALUES ('anna', 1, 'old@x', 'put')")
        await conn.execute("INSERT INTO changes VALUES ('anna', 2, 'gone@x', 'delete')")
    repo = await open_sqlite_repository(db_path)
    try:
        obj = await repo.get_by_href("anna", "old@x.ics")
        assert obj is not None and obj.uid == "old@x"
        assert await repo.changes_since("anna", 0) == [
            Change(1, "old@x", ChangeKind.PUT, "old@x.ics"),
            Change(2, "gone@x", ChangeKind.DELETE, "gone@x.ics"),
        ]
    finally:
        await repo.close()


def test_statement_splitting_keeps_trigger_bodies_whole() -> None:
    statements = bundled_migrations()[0].statements()
    triggers = [s for s in statements if s.startswith("CREATE TRIGGER")]
    assert len(triggers) == 3
    assert all(t.endswith("END;") for t in triggers)
    assert not any(s.startswith("--") for s in statements)


# -- time-range index at scale ---------------------------------------------------


async def test_in_span_uses_the_rtree_on_ten_thousand_objects(
    repo: SqliteRepository, db_path: Path
) -> None:
    # Two resources, 5,000 hour-long bookings each, one every 6 hours.
    start = datetime(2026, 1, 1, tzinfo=UTC)
    async with repo.transaction() as tx:
        for n in range(10_000):
            resource = "anna" if n % 2 == 0 else "bob"
            slot = start + timedelta(hours=6 * (n // 2))
            await tx.save(
                make_object(f"u{n}", slot, slot + timedelta(hours=1), resource_id=resource)
            )
    query(db_path, "ANALYZE")  # planner statistics must not talk it out of the R*Tree

    week = TimeSpan(datetime(2026, 6, 1, tzinfo=UTC), datetime(2026, 6, 8, tzinfo=UTC))
    found = await repo.in_span("anna", week)
    assert len(found) == 7 * 4
    assert all(o.span.overlaps(week) for o in found)

    for blocking_only in (False, True):
        sql, params = in_span_statement("anna", week, blocking_only=blocking_only)
        plan = [row[3] for row in query(db_path, "EXPLAIN QUERY PLAN " + sql, params)]
        # A non-empty index string means the R*Tree searches by the span
        # constraints ("B0D1": coordinate 0 <=, coordinate 1 >=), not a full walk.
        assert re.fullmatch(r"SCAN t VIRTUAL TABLE INDEX 2:(?:[A-E]\d)+", plan[0]), plan
        assert any(step.startswith("SEARCH o USING INTEGER PRIMARY KEY") for step in plan), plan
        assert not any(step.startswith("SCAN o") for step in plan), plan


async def test_closed_repository_refuses_transactions(repo: SqliteRepository) -> None:
    await repo.close()
    with pytest.raises(RuntimeError, match="closed"):
        repo.transaction()
