"""Listings read in pages (``gateway.store.snapshots.SnapshotPool``): every
row comes once, in order, in pages of at most ``page_rows``, and no page is
empty, whether the rows fill the last page exactly or not."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import aiosqlite
import pytest

from gateway.store.snapshots import SnapshotPool

PAGE = 10


@pytest.mark.parametrize("count", [0, 1, PAGE - 1, PAGE, PAGE + 1, 3 * PAGE, 3 * PAGE + 7])
async def test_pages_hold_every_row_once_and_none_is_empty(tmp_path: Path, count: int) -> None:
    path = tmp_path / "rows.sqlite3"
    with sqlite3.connect(path) as setup:
        setup.execute("CREATE TABLE t (n INTEGER)")
        setup.executemany("INSERT INTO t VALUES (?)", [(n,) for n in range(count)])
    setup.close()

    async def connect() -> aiosqlite.Connection:
        return await aiosqlite.connect(path)

    pool = SnapshotPool(connect)
    try:
        pages = [
            [row[0] for row in page]
            async for page in pool.pages("SELECT n FROM t ORDER BY n", page_rows=PAGE)
        ]
    finally:
        await pool.close()
    assert [n for page in pages for n in page] == list(range(count))
    assert all(0 < len(page) <= PAGE for page in pages)
    assert len(pages) == -(-count // PAGE)  # full pages, then one short one if any
