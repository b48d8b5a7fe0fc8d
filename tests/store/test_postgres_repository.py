"""The PostgreSQL repository on a real server (``tests.pgserver``): the shared
store contracts, plus migrations, the write lock and PostgreSQL specifics."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pytest
from psycopg.rows import dict_row

from gateway.core.errors import UidConflict
from gateway.core.model import TimeSpan
from gateway.store import SchemaTooNewError
from gateway.store.postgres import (
    PostgresRepository,
    in_span_statement,
    open_postgres_repository,
)
from gateway.store.postgres_schema import (
    LOCK_NAMESPACE,
    WRITE_LOCK,
    PgMigration,
    bundled_pg_migrations,
    migrate,
    schema_version,
)
from gateway.store.rows import OBJECT_COLUMNS, encode_object, from_utc_text
from gateway.store.schema import SchemaError, bundled_migrations
from google_bridge.tokens import TokenVault, new_key
from tests.pgserver import (  # noqa: F401 - fixtures
    postgres_server,
    postgres_url,
    require_postgres,
)
from tests.store.contract import Boom, OpenRepo, RepositoryContract, make_object, save
from tests.store.mirror_contract import MirrorStoreContract, rich_connection, save_connections
from tests.store.old_schema import insert_objects_sql
from tests.store.test_object_size_migration import OLD_OBJECTS

require_postgres()


@pytest.fixture
def open_repo(postgres_url: str) -> OpenRepo:  # noqa: F811 - the fixture
    async def opener() -> PostgresRepository:
        return await open_postgres_repository(postgres_url)

    return opener


@pytest.fixture
async def repo(open_repo: OpenRepo) -> AsyncIterator[PostgresRepository]:
    repository = await open_repo()
    assert isinstance(repository, PostgresRepository)
    yield repository
    await repository.close()


class TestPostgresRepository(RepositoryContract):
    pass


class TestPostgresMirrorStore(MirrorStoreContract):
    integrity_error = psycopg.errors.UniqueViolation


def query(url: str, sql: str, params: tuple[Any, ...] = ()) -> list[dict[str, Any]]:
    """Read the database behind the store's back."""
    with psycopg.connect(url, autocommit=True, row_factory=dict_row) as conn:
        cursor = conn.execute(sql.encode() if not params else sql, params or None)
        return cursor.fetchall() if cursor.description is not None else []


def schema_of(url: str) -> list[tuple[Any, ...]]:
    """Tables, columns, indexes and constraints: what a migration changes."""
    columns = query(
        url,
        "SELECT table_name, column_name, data_type, is_nullable, column_default, collation_name "
        "FROM information_schema.columns WHERE table_schema = 'public' "
        "ORDER BY table_name, column_name",
    )
    indexes = query(
        url, "SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = 'public' ORDER BY 1"
    )
    constraints = query(
        url,
        "SELECT conname, pg_get_constraintdef(oid) AS def FROM pg_constraint "
        "WHERE connamespace = 'public'::regnamespace ORDER BY 1, 2",
    )
    return [tuple(row.values()) for row in [*columns, *indexes, *constraints]]


# -- migrations ------------------------------------------------------------------


def test_every_step_has_a_postgresql_form() -> None:
    sqlite_steps = [(m.version, m.name) for m in bundled_migrations()]
    pg_steps = [(m.version, m.name) for m in bundled_pg_migrations()]
    assert pg_steps == sqlite_steps
    assert all(m.sql.strip() for m in bundled_pg_migrations())


async def test_migrations_record_each_version(repo: PostgresRepository, postgres_url: str) -> None:  # noqa: F811
    rows = query(postgres_url, "SELECT version, name FROM schema_migrations ORDER BY version")
    assert [(r["version"], r["name"]) for r in rows] == [
        (m.version, m.name) for m in bundled_migrations()
    ]
    tables = {r["tablename"] for r in query(postgres_url, "SELECT tablename FROM pg_tables")}
    assert {
        "collections",
        "objects",
        "changes",
        "tombstones",
        "outbox",
        "idempotency_keys",
        "collection_properties",
        "google_connections",
        "google_invites",
        "google_events",
        "sync_log",
        "storage_probe",
    } <= tables


async def test_migrating_twice_changes_nothing(postgres_url: str) -> None:  # noqa: F811
    first = await open_postgres_repository(postgres_url)
    await save(first, make_object("a"))
    await first.close()
    before = schema_of(postgres_url)
    applied = query(postgres_url, "SELECT * FROM schema_migrations ORDER BY version")
    again = await open_postgres_repository(postgres_url)
    try:
        assert schema_of(postgres_url) == before
        assert query(postgres_url, "SELECT * FROM schema_migrations ORDER BY version") == applied
        assert await again.get_by_uid("anna", "a") == make_object("a")
    finally:
        await again.close()


async def test_replicas_opening_an_empty_database_at_once_both_get_the_schema(
    postgres_url: str,  # noqa: F811
) -> None:
    # The migration lock makes the later ones wait, then find every step done.
    repos = await asyncio.gather(*(open_postgres_repository(postgres_url) for _ in range(4)))
    try:
        latest = bundled_migrations()[-1].version
        versions = query(postgres_url, "SELECT version FROM schema_migrations ORDER BY version")
        assert [r["version"] for r in versions] == list(range(1, latest + 1))
        for n, repo in enumerate(repos):
            await save(repo, make_object(f"from-{n}"))
        assert await repos[0].revision("anna") == len(repos)
    finally:
        for repo in repos:
            await repo.close()


async def test_newer_database_is_refused_and_left_alone(postgres_url: str) -> None:  # noqa: F811
    query(
        postgres_url,
        "CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, "
        "applied_at TEXT NOT NULL)",
    )
    query(postgres_url, "INSERT INTO schema_migrations VALUES (999, 'from_the_future', 'x')")
    before = schema_of(postgres_url)
    latest = bundled_migrations()[-1].version
    with pytest.raises(SchemaTooNewError, match=rf"version 999 is newer .* supports \({latest}\)"):
        await open_postgres_repository(postgres_url)
    assert schema_of(postgres_url) == before


async def test_failed_step_leaves_the_previous_version(postgres_url: str) -> None:  # noqa: F811
    good = PgMigration(1, "good", "CREATE TABLE one (x INTEGER);\n")
    bad = PgMigration(2, "bad", "CREATE TABLE two (x INTEGER);\nINSERT INTO missing VALUES (1);\n")
    async with await psycopg.AsyncConnection.connect(
        postgres_url, autocommit=True, row_factory=dict_row
    ) as conn:
        with pytest.raises(SchemaError, match="0002_bad failed, the database stays at version 1"):
            await migrate(conn, [good, bad])
        assert await schema_version(conn) == 1
        cursor = await conn.execute("SELECT to_regclass('two') AS two")
        assert (await cursor.fetchone()) == {"two": None}
        fixed = PgMigration(2, "fixed", "CREATE TABLE two (x INTEGER);\n")
        assert await migrate(conn, [good, fixed]) == 2


# -- the write lock ----------------------------------------------------------------


async def test_another_process_holding_the_write_lock_makes_transactions_wait(
    repo: PostgresRepository,
    postgres_url: str,  # noqa: F811
) -> None:
    # Another replica is stood in for by a plain connection holding the lock
    # in a transaction; even a transaction that only reads must wait for it,
    # since its check-then-write decisions rest on what it reads.
    async with await psycopg.AsyncConnection.connect(postgres_url) as other:
        await other.execute("SELECT pg_advisory_xact_lock(%s, %s)", (LOCK_NAMESPACE, WRITE_LOCK))
        entered = asyncio.Event()

        async def write() -> None:
            async with repo.transaction() as tx:
                entered.set()
                await tx.save(make_object("after"))

        task = asyncio.create_task(write())
        # Until the server shows the transaction queued behind the lock (no
        # fixed wait: what the lock table says, polled within a bound).
        async with await psycopg.AsyncConnection.connect(postgres_url) as observer:
            async with asyncio.timeout(10):
                while not await waiting_for_advisory_lock(observer):  # noqa: ASYNC110 - bounded
                    await asyncio.sleep(0.01)
        assert not entered.is_set()
        await other.commit()
        async with asyncio.timeout(10):
            await task
    assert [o.uid for o in await repo.list_objects("anna")] == ["after"]


async def waiting_for_advisory_lock(conn: psycopg.AsyncConnection[Any]) -> bool:
    """Whether some session waits for an advisory lock another holds."""
    cursor = await conn.execute(
        "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted"
    )
    row = await cursor.fetchone()
    return row is not None and int(row[0]) > 0


async def test_two_repositories_on_one_database_serialise(postgres_url: str) -> None:  # noqa: F811
    # As two replicas: each reads, yields, then writes what it read.
    repos = [await open_postgres_repository(postgres_url) for _ in range(2)]
    try:

        async def book(repo: PostgresRepository) -> None:
            async with repo.transaction() as tx:
                seen = await tx.in_span(
                    "anna",
                    TimeSpan(datetime(2000, 1, 1, tzinfo=UTC), datetime(2100, 1, 1, tzinfo=UTC)),
                )
                await asyncio.sleep(0.01)
                await tx.save(make_object(f"slot{len(seen)}"))

        await asyncio.gather(*(book(repos[n % 2]) for n in range(8)))
        assert sorted(o.uid for o in await repos[0].list_objects("anna")) == sorted(
            f"slot{n}" for n in range(8)
        )
    finally:
        for repo in repos:
            await repo.close()


async def test_transaction_object_is_dead_after_its_block(repo: PostgresRepository) -> None:
    async with repo.transaction() as tx:
        pass
    with pytest.raises(RuntimeError, match="ended"):
        await tx.save(make_object())


async def test_rollback_leaves_no_row_anywhere(
    repo: PostgresRepository,
    postgres_url: str,  # noqa: F811
) -> None:
    with pytest.raises(Boom):
        async with repo.transaction() as tx:
            await tx.save(make_object("a"))
            await tx.delete("anna", "a")
            await tx.save(make_object("b"))
            raise Boom
    for table in ("objects", "changes", "outbox", "idempotency_keys", "tombstones", "collections"):
        assert query(postgres_url, f"SELECT count(*) AS n FROM {table}") == [{"n": 0}]


async def test_closed_repository_refuses_transactions(repo: PostgresRepository) -> None:
    await repo.close()
    with pytest.raises(RuntimeError, match="closed"):
        repo.transaction()


# -- stored values -------------------------------------------------------------------


async def test_values_are_stored_as_sqlite_stores_them(
    repo: PostgresRepository,
    postgres_url: str,  # noqa: F811
) -> None:
    # The same encoding (gateway.store.rows) on both backends: a store can be
    # copied row by row (issue 14, copy-store).
    obj = make_object("a")
    await save(repo, obj)
    (row,) = query(postgres_url, "SELECT start_at, created_at, span_start, attendees FROM objects")
    assert row == {
        "start_at": obj.booking.start.isoformat(),
        "created_at": "2026-01-02T03:04:05.678901+00:00",
        "span_start": int(obj.span.start.timestamp()),
        "attendees": "[]",
    }


async def test_sealed_refresh_token_is_stored_as_ciphertext(
    repo: PostgresRepository,
    postgres_url: str,  # noqa: F811
) -> None:
    vault = TokenVault([new_key()])
    sealed = vault.seal("1//refresh-token-of-anna")
    await save_connections(repo, replace(rich_connection(), refresh_token=sealed))
    stored = await repo.get_connection("anna")
    assert stored is not None and vault.open(stored.refresh_token) == "1//refresh-token-of-anna"
    (row,) = query(postgres_url, "SELECT refresh_token FROM google_connections")
    assert row["refresh_token"] == sealed


async def test_in_span_uses_the_range_index_on_ten_thousand_objects(
    repo: PostgresRepository,
    postgres_url: str,  # noqa: F811
) -> None:
    # Written straight into the table (saving them one by one takes long and
    # is not what this test is about), encoded as the store encodes them.
    start = datetime(2026, 1, 1, tzinfo=UTC)
    await save(repo, make_object("first"), make_object("other", resource_id="bob"))
    rows = []
    for n in range(10_000):
        resource = "anna" if n % 2 == 0 else "bob"
        slot = start + timedelta(hours=6 * (n // 2))
        obj = make_object(f"u{n}", slot, slot + timedelta(hours=1), resource_id=resource)
        rows.append(encode_object(obj, 1))
    insert = (
        f"INSERT INTO objects ({', '.join(OBJECT_COLUMNS)}) "
        f"VALUES ({', '.join(f'%({c})s' for c in OBJECT_COLUMNS)})"
    )
    with psycopg.connect(postgres_url) as conn:
        conn.cursor().executemany(insert, rows)
    query(postgres_url, "ANALYZE")
    week = TimeSpan(datetime(2026, 6, 1, tzinfo=UTC), datetime(2026, 6, 8, tzinfo=UTC))
    found = await repo.in_span("anna", week)
    assert len(found) == 7 * 4
    sql, params = in_span_statement("anna", week)
    async with await psycopg.AsyncConnection.connect(postgres_url) as conn:
        cursor = await conn.execute("EXPLAIN " + sql, params)
        plan = "\n".join(str(row[0]) for row in await cursor.fetchall())
    assert "objects_by_span" in plan, plan
    assert "Seq Scan" not in plan, plan


async def test_upgrade_to_version_5_keeps_shared_uids_marks_and_logs_them(
    postgres_url: str,  # noqa: F811
    caplog: pytest.LogCaptureFixture,
) -> None:
    # tests/store/test_uid_migration.py on PostgreSQL: the data step of 0005.
    async with await psycopg.AsyncConnection.connect(
        postgres_url, autocommit=True, row_factory=dict_row
    ) as conn:
        await migrate(conn, bundled_pg_migrations()[:4])
        insert = insert_objects_sql(4, postgres=True)
        for resource in ("anna", "bob"):
            await conn.execute("INSERT INTO collections VALUES (%s, 1)", (resource,))
        for obj in (
            make_object("dup"),
            make_object("dup", resource_id="bob"),
            make_object("own", resource_id="bob"),
        ):
            await conn.execute(insert, encode_object(obj, 1))
    with caplog.at_level(logging.WARNING, logger="calgateway.store"):
        repo = await open_postgres_repository(postgres_url)
    try:
        assert [o.resource_id for o in await repo.with_uid("dup")] == ["anna", "bob"]
        marks = query(postgres_url, "SELECT resource_id, uid, uid_shared FROM objects ORDER BY id")
        assert [tuple(r.values()) for r in marks] == [
            ("anna", "dup", 0),
            ("bob", "dup", 1),
            ("bob", "own", 0),
        ]
        warnings = query(
            postgres_url, "SELECT resource_id, kind, message, at FROM sync_log ORDER BY resource_id"
        )
        assert [(r["resource_id"], r["kind"]) for r in warnings] == [
            ("anna", "warning"),
            ("bob", "warning"),
        ]
        assert all("'dup'" in r["message"] for r in warnings)
        # Written as rows.utc_text writes times, so it reads back.
        assert all(from_utc_text(r["at"]).tzinfo is not None for r in warnings)
        started = [r for r in caplog.records if "UID shared" in r.getMessage()]
        assert [r.__dict__["objects"] for r in started] == ["anna/dup.ics, bob/dup.ics"]
        await save(repo, make_object("dup", resource_id="bob", title="still mine"))
        with pytest.raises(UidConflict) as refused:
            await save(repo, make_object("dup", resource_id="room"))
        # Named by its oldest copy, as the SQLite store does.
        assert (refused.value.resource_id, refused.value.href) == ("anna", "dup.ics")
    finally:
        await repo.close()
    with pytest.raises(psycopg.errors.UniqueViolation):
        query(
            postgres_url,
            "INSERT INTO objects (resource_id, uid, booking_id, title, description, location, "
            "start_at, end_at, timezone, created_at, updated_at, attendees, status, transparent, "
            "origin, sequence, recurring, ics, etag, span_start, span_end, revision, href) "
            "SELECT 'anna', 'own', 'new', title, description, location, start_at, end_at, "
            "timezone, created_at, updated_at, attendees, status, transparent, origin, sequence, "
            "recurring, ics, etag, span_start, span_end, revision, 'own2.ics' FROM objects "
            "WHERE uid = 'own'",
        )


async def test_upgrade_to_version_9_gives_stored_objects_their_etag_as_schedule_tag(
    postgres_url: str,  # noqa: F811
) -> None:
    # tests/store/test_schedule_tag_migration.py on PostgreSQL: 0009.
    old = make_object("old")
    async with await psycopg.AsyncConnection.connect(
        postgres_url, autocommit=True, row_factory=dict_row
    ) as conn:
        await migrate(conn, bundled_pg_migrations()[:8])
        await conn.execute("INSERT INTO collections VALUES ('anna', 1)")
        await conn.execute(insert_objects_sql(8, postgres=True), encode_object(old, 1))
    repo = await open_postgres_repository(postgres_url)
    try:
        stored = await repo.get_by_uid("anna", "old")
        assert stored is not None and stored.schedule_tag == old.etag
    finally:
        await repo.close()


async def test_upgrade_to_version_10_gives_stored_objects_the_size_of_their_text(
    postgres_url: str,  # noqa: F811
) -> None:
    # tests/store/test_object_size_migration.py on PostgreSQL: 0010.
    async with await psycopg.AsyncConnection.connect(
        postgres_url, autocommit=True, row_factory=dict_row
    ) as conn:
        await migrate(conn, bundled_pg_migrations()[:9])
        await conn.execute("INSERT INTO collections VALUES ('anna', 1)")
        for obj in OLD_OBJECTS:
            await conn.execute(insert_objects_sql(9, postgres=True), encode_object(obj, 1))
    repo = await open_postgres_repository(postgres_url)
    try:
        listed = {e.href: e.size for e in await repo.list_entries("anna")}
        assert listed == {o.href: len(o.ics.encode("utf-8")) for o in OLD_OBJECTS}
    finally:
        await repo.close()
