"""Listings read in pages (``gateway.store.snapshots``): every row comes
once, in order, in pages of at most ``page_rows``, and no page is empty,
whether the rows fill the last page exactly or not. ``LoopSnapshots`` reads
a listing whose first page is cheap on the loop's thread, as one snapshot,
and hands any other to the threads' pool."""

from __future__ import annotations

import sqlite3
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, aclosing, asynccontextmanager
from pathlib import Path
from typing import Any

import aiosqlite
import pytest

from gateway.store import open_sqlite_repository
from gateway.store.snapshots import LoopSnapshots, SnapshotPool
from tests.store.contract import at, make_object, save, window

PAGE = 10
ALL = "SELECT n FROM t ORDER BY n"


@pytest.mark.parametrize("count", [0, 1, PAGE - 1, PAGE, PAGE + 1, 3 * PAGE, 3 * PAGE + 7])
async def test_pages_hold_every_row_once_and_none_is_empty(tmp_path: Path, count: int) -> None:
    path = tmp_path / "rows.sqlite3"
    _table(path, count)
    pool = _Threads(path).pool
    try:
        pages = [[row[0] for row in page] async for page in pool.pages(ALL, page_rows=PAGE)]
    finally:
        await pool.close()
    assert [n for page in pages for n in page] == list(range(count))
    assert all(0 < len(page) <= PAGE for page in pages)
    assert len(pages) == -(-count // PAGE)  # full pages, then one short one if any


# -- LoopSnapshots: listings stepped on the event loop's thread ---------------------


def _table(path: Path, count: int) -> None:
    with sqlite3.connect(path) as setup:
        setup.execute("PRAGMA journal_mode = WAL")  # as the gateway's files
        setup.execute("CREATE TABLE t (n INTEGER)")
        setup.executemany("INSERT INTO t VALUES (?)", [(n,) for n in range(count)])
    setup.close()


class _Threads:
    """A ``SnapshotPool`` on aiosqlite threads that counts the listings it
    was given."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.connects = 0

        async def connect() -> aiosqlite.Connection:
            self.connects += 1
            return await aiosqlite.connect(path)

        self.pool = SnapshotPool(connect)


@asynccontextmanager
async def _listings(
    tmp_path: Path, count: int, **options: int
) -> AsyncIterator[tuple[LoopSnapshots, _Threads]]:
    """A table of ``count`` numbers, ``LoopSnapshots`` over it (``options``
    as its keywords) and the threads' pool it hands listings to; both
    closed after."""
    path = tmp_path / "rows.sqlite3"
    _table(path, count)
    threads = _Threads(path)
    loop = LoopSnapshots(path, threads.pool, cache_kib=64, **options)
    try:
        yield loop, threads
    finally:
        loop.close()
        await threads.pool.close()


async def _numbers(loop: LoopSnapshots, sql: str = ALL) -> list[int]:
    return [row[0] async for page in loop.pages(sql, page_rows=PAGE) for row in page]


@pytest.mark.parametrize("count", [0, 1, PAGE, 3 * PAGE + 7])
async def test_a_cheap_listing_is_read_on_the_loop_in_the_same_pages(
    tmp_path: Path, count: int
) -> None:
    async with _listings(tmp_path, count) as (loop, threads):
        pages = [[row[0] for row in page] async for page in loop.pages(ALL, page_rows=PAGE)]
    assert [n for page in pages for n in page] == list(range(count))
    assert all(0 < len(page) <= PAGE for page in pages)
    assert threads.connects == 0  # no thread took part


async def test_a_first_page_over_its_budget_is_read_on_a_thread(tmp_path: Path) -> None:
    """A sort of every row before the first costs more than the budget: the
    statement is interrupted and the listing starts again on a thread,
    whole and once."""
    async with _listings(tmp_path, 3000, first_steps=1000) as (loop, threads):
        # Descending: SQLite sorts all 3000 rows before it gives the first.
        got = await _numbers(loop, "SELECT n FROM t ORDER BY -n")
        assert threads.connects == 1
        assert got == list(range(2999, -1, -1))
        # The interrupted connection is fine for a cheap listing after it.
        assert await _numbers(loop, "SELECT n FROM t WHERE n < 5 ORDER BY n") == list(range(5))
        assert threads.connects == 1


async def test_a_listing_on_the_loop_is_one_snapshot(tmp_path: Path) -> None:
    async with _listings(tmp_path, 3 * PAGE) as (loop, threads):
        writer = sqlite3.connect(threads.path, isolation_level=None)
        try:
            pages = loop.pages(ALL, page_rows=PAGE)
            async with aclosing(pages):
                first = await anext(pages)
                writer.execute("DELETE FROM t WHERE n = ?", (3 * PAGE - 1,))  # not read yet
                writer.execute("INSERT INTO t VALUES (?)", (5 * PAGE,))
                rest = [row[0] async for page in pages for row in page]
        finally:
            writer.close()
        assert [row[0] for row in first] + rest == list(range(3 * PAGE))
        # The next listing sees the writes: the snapshot ended with the last.
        assert (await _numbers(loop))[-2:] == [3 * PAGE - 2, 5 * PAGE]
        assert threads.connects == 0


async def test_listings_beyond_the_connections_go_to_threads(tmp_path: Path) -> None:
    async with _listings(tmp_path, 3 * PAGE, size=2, keep=1) as (loop, threads):
        async with AsyncExitStack() as stack:
            listings = [
                await stack.enter_async_context(aclosing(loop.pages(ALL, page_rows=PAGE)))
                for _ in range(3)
            ]
            firsts = [await anext(listing) for listing in listings]
            assert threads.connects == 1  # the third
            assert all([row[0] for row in first] == list(range(PAGE)) for first in firsts)
        # All given back (one kept idle): two at once are on the loop again.
        async with AsyncExitStack() as stack:
            for _ in range(2):
                pages = await stack.enter_async_context(aclosing(loop.pages(ALL, page_rows=PAGE)))
                await anext(pages)
        assert threads.connects == 1


async def test_after_close_listings_go_to_threads(tmp_path: Path) -> None:
    async with _listings(tmp_path, PAGE) as (loop, threads):
        loop.close()
        assert await _numbers(loop) == list(range(PAGE))
        assert threads.connects == 1


async def test_a_weeks_query_candidates_are_read_on_the_loop(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The repository reads a short time range's candidates without a thread,
    and a long one's (more to sort than the budget) on one."""
    repo = await open_sqlite_repository(tmp_path / "gateway.sqlite3")
    try:
        await save(repo, *(make_object(f"u{n:04d}", at(n), at(n + 0.5)) for n in range(1200)))
        on_threads: list[str] = []
        real = SnapshotPool.pages

        def counted(self: SnapshotPool, sql: str, *args: Any, **kwargs: Any) -> Any:
            on_threads.append(sql)
            return real(self, sql, *args, **kwargs)

        monkeypatch.setattr(SnapshotPool, "pages", counted)
        week = [o async for page in repo.iter_candidates("anna", window(10, 178)) for o in page]
        assert [o.uid for o in week] == [f"u{n:04d}" for n in range(10, 178)]
        assert on_threads == []
        every = [o async for page in repo.iter_candidates("anna", window(-1, 2000)) for o in page]
        assert len(every) == 1200
        assert len(on_threads) == 1
    finally:
        await repo.close()
