"""A full disk for the gateway's real SQLite file, and space freed again.

``PRAGMA max_page_count`` on the writer connection caps the database at its
current size: from then on a write that needs one more page fails with
SQLITE_FULL, "database or disk is full", the same error and the same
automatic rollback as a file system that has no space left. Raising the cap
again is an operator freeing space. It is a setting of the connection, so
it is made on the repository's own writer, between its transactions.
"""

from __future__ import annotations

import pytest

from gateway.store import SqliteRepository, full

# Far above anything a test writes; SQLite's own default is about 2^32.
ROOMY = 1_000_000_000


async def _set_cap(repo: SqliteRepository, pages: int | None) -> int:
    async with repo._lock:  # between transactions, never inside one
        writer = repo._writer
        if pages is None:
            rows = list(await writer.execute_fetchall("PRAGMA page_count"))
            pages = int(rows[0][0])
        rows = list(await writer.execute_fetchall(f"PRAGMA max_page_count = {pages:d}"))
        return int(rows[0][0])


async def fill_disk(repo: SqliteRepository) -> int:
    """No page beyond the database's current size: returns the cap. Pages
    on the free list (left by deletes) may still be used up first."""
    return await _set_cap(repo, None)


async def free_disk(repo: SqliteRepository) -> None:
    await _set_cap(repo, ROOMY)


def fresh_full_log(monkeypatch: pytest.MonkeyPatch) -> full.FullLog:
    """The process-wide full-disk log as on a fresh start (another test may
    have filled a disk a moment ago, and its lines are rate-limited)."""
    log = full.FullLog()
    monkeypatch.setattr(full, "FULL_LOG", log)
    return log
