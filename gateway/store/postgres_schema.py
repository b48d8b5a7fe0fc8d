"""Schema migrations on PostgreSQL: the same ordered steps as SQLite's.

There is one list of schema versions: ``migrations/NNNN_name.sql``, read by
``schema.bundled_migrations`` (gapless, numbered from 1). Each step has its
PostgreSQL form beside it, ``migrations/NNNN_name.pg.sql``; a step without
one, or a PostgreSQL file without its SQLite step, stops the start, so the
two backends cannot drift apart: version N means the same tables on both.

The version is kept in the database, in ``schema_migrations`` (one row per
applied step, with its name and time). ``migrate``:

* takes a session advisory lock (``pg_advisory_lock``) first, so two
  replicas starting at once apply each step once: the second waits, then
  finds the steps applied;
* refuses a database whose version is newer than the code knows
  (``SchemaTooNewError``, the same error and message as SQLite's) before
  it changes anything;
* runs each step in a transaction of its own together with its row in
  ``schema_migrations`` (PostgreSQL's DDL is transactional), so a failing
  step leaves the database exactly at the previous version.

Not here: the repository (``postgres``), ``calgateway migrate`` (issue 14).
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib import resources

import psycopg
from psycopg import AsyncConnection
from psycopg.rows import DictRow

from .rows import utc_text
from .schema import SchemaError, SchemaTooNewError, bundled_migrations

PG_SUFFIX = ".pg.sql"

# Advisory locks of this gateway, as (namespace, key) pairs: the two-integer
# form keeps them apart from other applications' one-bigint locks on the
# same database. The namespace spells "calg".
LOCK_NAMESPACE = 0x63616C67
MIGRATE_LOCK = 1
WRITE_LOCK = 2
# Session locks of one replica (``postgres_locks``): its identity as an
# outbox lease holder ("calw"), and one per Google-synced calendar ("cals").
WORKER_NAMESPACE = 0x63616C77
SYNC_NAMESPACE = 0x63616C73


@dataclass(frozen=True, slots=True)
class PgMigration:
    version: int
    name: str
    sql: str


def bundled_pg_migrations() -> list[PgMigration]:
    """The PostgreSQL form of every bundled step, in order."""
    steps = bundled_migrations()
    folder = resources.files(__package__).joinpath("migrations")
    forms = {entry.name: entry for entry in folder.iterdir() if entry.name.endswith(PG_SUFFIX)}
    wanted = {f"{step.version:04d}_{step.name}{PG_SUFFIX}": step for step in steps}
    missing = sorted(set(wanted) - set(forms))
    stray = sorted(set(forms) - set(wanted))
    if missing or stray:
        raise SchemaError(
            "every migration needs a SQLite form (.sql) and a PostgreSQL form (.pg.sql) "
            f"with the same number and name; missing: {missing or 'none'}, "
            f"without a SQLite step: {stray or 'none'}"
        )
    return [
        PgMigration(step.version, step.name, forms[name].read_text(encoding="utf-8"))
        for name, step in wanted.items()
    ]


_VERSION_TABLE = """
CREATE TABLE IF NOT EXISTS schema_migrations (
    version    INTEGER PRIMARY KEY CHECK (version > 0),
    name       TEXT NOT NULL,
    applied_at TEXT NOT NULL
)
"""


async def schema_version(conn: AsyncConnection[DictRow]) -> int:
    """The newest applied step (0 for a database never migrated)."""
    cur = await conn.execute("SELECT to_regclass('schema_migrations') IS NOT NULL AS present")
    row = await cur.fetchone()
    if row is None or not row["present"]:
        return 0
    cur = await conn.execute("SELECT coalesce(max(version), 0) AS version FROM schema_migrations")
    row = await cur.fetchone()
    return 0 if row is None else int(row["version"])


async def migrate(
    conn: AsyncConnection[DictRow], migrations: Sequence[PgMigration] | None = None
) -> int:
    """Bring the database up to the newest step; returns the final version.

    ``conn`` must be in autocommit mode, so the transactions here are the
    only ones (and the session lock is not held by a transaction)."""
    steps = bundled_pg_migrations() if migrations is None else list(migrations)
    latest = steps[-1].version if steps else 0
    await conn.execute("SELECT pg_advisory_lock(%s, %s)", (LOCK_NAMESPACE, MIGRATE_LOCK))
    try:
        # Read under the lock: another replica may have migrated meanwhile.
        current = await schema_version(conn)
        if current > latest:
            raise SchemaTooNewError(current, latest)
        for step in steps:
            if step.version <= current:
                continue
            try:
                async with conn.transaction():
                    if step.version == 1:
                        await conn.execute(_VERSION_TABLE)
                    # Without parameters psycopg sends the script with the simple
                    # query protocol, which runs several statements in one go.
                    await conn.execute(step.sql.encode())
                    await conn.execute(
                        "INSERT INTO schema_migrations (version, name, applied_at) "
                        "VALUES (%s, %s, %s)",
                        (step.version, step.name, utc_text(datetime.now(UTC))),
                    )
            except psycopg.Error as exc:
                raise SchemaError(
                    f"PostgreSQL migration {step.version:04d}_{step.name} failed, the database "
                    f"stays at version {current}: {exc}"
                ) from exc
            current = step.version
        return current
    finally:
        # A broken connection has lost the session lock with the session.
        with contextlib.suppress(psycopg.Error):
            await conn.execute("SELECT pg_advisory_unlock(%s, %s)", (LOCK_NAMESPACE, MIGRATE_LOCK))
