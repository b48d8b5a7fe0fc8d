"""Versioned schema migrations, tracked with ``PRAGMA user_version``.

Migrations are ``migrations/NNNN_name.sql`` files shipped as package data. Each
runs in its own ``BEGIN IMMEDIATE`` transaction together with the version bump,
so a failing migration leaves the database exactly at the previous version, and
two processes starting at once cannot both apply the same step.
"""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass
from importlib import resources

import aiosqlite

_FILE_NAME = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql$")


class SchemaError(RuntimeError):
    """The database schema cannot be used by this version of the code."""


class SchemaTooNewError(SchemaError):
    def __init__(self, found: int, supported: int) -> None:
        super().__init__(
            f"database schema version {found} is newer than this calgateway supports "
            f"({supported}); upgrade calgateway or restore a matching backup"
        )
        self.found = found
        self.supported = supported


@dataclass(frozen=True, slots=True)
class Migration:
    version: int
    name: str
    sql: str

    def statements(self) -> list[str]:
        """The script split into single statements.

        ``executescript`` would COMMIT before running, which breaks the
        one-transaction-per-migration rule, so statements run one by one.
        ``sqlite3.complete_statement`` knows that a trigger body's semicolons do
        not end the CREATE TRIGGER.
        """
        statements: list[str] = []
        pending = ""
        for line in self.sql.splitlines(keepends=True):
            pending += line
            if sqlite3.complete_statement(pending):
                if _has_code(pending):
                    statements.append(_strip_leading_comments(pending))
                pending = ""
        if _has_code(pending):
            raise SchemaError(f"migration {self.version:04d}_{self.name}: unterminated statement")
        return statements


def _strip_leading_comments(sql: str) -> str:
    # Leading comments would only clutter the statement SQLite echoes in errors.
    lines = sql.strip().splitlines()
    while lines and (not lines[0].strip() or lines[0].lstrip().startswith("--")):
        lines.pop(0)
    return "\n".join(lines)


def _has_code(sql: str) -> bool:
    return any(line.strip() and not line.strip().startswith("--") for line in sql.splitlines())


def bundled_migrations() -> list[Migration]:
    """The migrations shipped with this package, in order, checked to be gapless."""
    folder = resources.files(__package__).joinpath("migrations")
    found: list[Migration] = []
    for entry in folder.iterdir():
        match = _FILE_NAME.match(entry.name)
        if match is None:
            continue
        found.append(Migration(int(match[1]), match[2], entry.read_text(encoding="utf-8")))
    found.sort(key=lambda m: m.version)
    # A gap or duplicate means a mis-numbered file; applying around it would give
    # databases that claim a version but lack its tables.
    if [m.version for m in found] != list(range(1, len(found) + 1)):
        names = ", ".join(f"{m.version:04d}_{m.name}" for m in found)
        raise SchemaError(f"migrations must be numbered 0001, 0002, ... without gaps: {names}")
    return found


async def user_version(conn: aiosqlite.Connection) -> int:
    rows = list(await conn.execute_fetchall("PRAGMA user_version"))
    return int(rows[0][0])


async def migrate(conn: aiosqlite.Connection, migrations: Sequence[Migration] | None = None) -> int:
    """Bring the database up to the newest migration; returns the final version.

    ``conn`` must be in autocommit mode (``isolation_level=None``) so the
    transactions here are the only ones.
    """
    steps = bundled_migrations() if migrations is None else list(migrations)
    latest = steps[-1].version if steps else 0
    current = await user_version(conn)
    if current > latest:
        raise SchemaTooNewError(current, latest)
    for step in steps:
        if step.version <= current:
            continue
        await conn.execute("BEGIN IMMEDIATE")
        try:
            # Re-read under the write lock: another process may have migrated
            # while this one waited.
            current = await user_version(conn)
            if current >= step.version:
                await conn.execute("ROLLBACK")
                continue
            for statement in step.statements():
                await conn.execute(statement)
            # PRAGMA takes no bound parameters; the version is an int we parsed.
            await conn.execute(f"PRAGMA user_version = {step.version:d}")
            await conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                await conn.execute("ROLLBACK")
            raise
        current = step.version
    if current > latest:  # another, newer process migrated past us meanwhile
        raise SchemaTooNewError(current, latest)
    return current
