"""The Google mirror's tables (migration 0003) over a real SQLite file: the
shared contract (``tests.store.mirror_contract``), plus what only the file
can show."""

from __future__ import annotations

import asyncio
import sqlite3
from dataclasses import replace
from pathlib import Path

import pytest

from gateway.store import SqliteRepository, open_sqlite_repository
from google_bridge.tokens import TokenVault, new_key
from tests.store.mirror_contract import (
    MirrorStoreContract,
    OpenMirrorRepo,
    rich_connection,
    save_connections,
)


@pytest.fixture
def open_repo(db_path: Path) -> OpenMirrorRepo:
    async def opener() -> SqliteRepository:
        return await open_sqlite_repository(db_path)

    return opener


class TestSqliteMirrorStore(MirrorStoreContract):
    integrity_error = sqlite3.IntegrityError


def file_bytes(db_path: Path) -> bytes:
    """The database with its write-ahead log (recent commits live there)."""
    parts = [db_path, db_path.with_name(db_path.name + "-wal")]
    return b"".join(part.read_bytes() for part in parts if part.exists())


async def test_sealed_refresh_token_is_stored_as_ciphertext(
    repo: SqliteRepository, db_path: Path
) -> None:
    vault = TokenVault([new_key()])
    sealed = vault.seal("1//refresh-token-of-anna")
    await save_connections(repo, replace(rich_connection(), refresh_token=sealed))
    stored = await repo.get_connection("anna")
    assert stored is not None and vault.open(stored.refresh_token) == "1//refresh-token-of-anna"
    # The database file never holds the token in the clear.
    assert b"refresh-token-of-anna" not in await asyncio.to_thread(file_bytes, db_path)
    with sqlite3.connect(db_path) as conn:
        (blob,) = conn.execute("SELECT refresh_token FROM google_connections").fetchone()
    assert bytes(blob) == sealed
