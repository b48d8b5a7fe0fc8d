"""SQLite write transactions (``gateway.store.sqlite.SqliteTransaction``):
their statements answer at once on the event loop's thread, a big
transaction goes on on the writer's thread, and whatever ends a transaction
early (a failed statement, a cancelled request, a full disk) leaves nothing
of it behind and the store ready for the next one."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator, Coroutine, Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from gateway.core.errors import StorageFull
from gateway.core.ports import IdempotencyRecord
from gateway.store import SqliteRepository, open_sqlite_repository
from gateway.store.sqlite import LOOP_STATEMENTS
from tests.storage import fill_disk, free_disk
from tests.store.contract import ics_for, make_object, save
from tests.store.test_sqlite_point_reads import answered_at_once

WAIT_S = 10  # every wait of these tests is bounded


@pytest.fixture
async def sqlite_repo(tmp_path: Path) -> AsyncIterator[SqliteRepository]:
    repository = await open_sqlite_repository(tmp_path / "gateway.sqlite3")
    yield repository
    await repository.close()


async def test_statements_answer_at_once_until_the_budget_then_on_the_thread(
    sqlite_repo: SqliteRepository,
) -> None:
    first = make_object("u1")
    async with sqlite_repo.transaction() as tx:
        await tx.save(first)
        # The transaction's own uncommitted write, read without a hop.
        seen = answered_at_once(tx.get_by_href("anna", first.href))
        assert seen is not None
        assert seen.ics == first.ics
        for _ in range(LOOP_STATEMENTS):
            await tx.get_by_href("anna", first.href)
        # The budget is spent: the next statement goes to the writer's
        # thread (and waits for it), in order behind nothing else.
        with pytest.raises(AssertionError, match="waited"):
            answered_at_once(tx.get_by_href("anna", first.href))
        second = make_object("u2")
        revision = await tx.save(second)
        assert await tx.get_by_href("anna", second.href) is not None
    assert await sqlite_repo.revision("anna") == revision
    for obj in (first, second):
        got = await sqlite_repo.get_by_href("anna", obj.href)
        assert got is not None
        assert got.ics == obj.ics


async def test_a_big_transaction_commits_every_write_in_order(
    sqlite_repo: SqliteRepository,
) -> None:
    objects = [make_object(f"u{n}") for n in range(LOOP_STATEMENTS)]  # ~6 statements each
    revision = await save(sqlite_repo, *objects)
    assert revision == len(objects)
    entries = await sqlite_repo.list_entries("anna")
    assert [entry.href for entry in entries] == [obj.href for obj in objects]
    assert [entry.revision for entry in entries] == list(range(1, len(objects) + 1))


async def test_a_failed_statement_rolls_the_whole_transaction_back(
    sqlite_repo: SqliteRepository,
) -> None:
    kept = make_object("kept")
    before = await save(sqlite_repo, kept)
    record = IdempotencyRecord("fingerprint", "b1")
    with pytest.raises(sqlite3.IntegrityError):
        async with sqlite_repo.transaction() as tx:
            await tx.save(make_object("lost"))
            await tx.save(replace(kept, ics=ics_for("kept", "SUMMARY:changed\r\n")))
            await tx.remember_idempotency("key", record)
            await tx.remember_idempotency("key", record)  # a duplicate key fails
    assert await sqlite_repo.get_by_uid("anna", "lost") is None
    got = await sqlite_repo.get_by_uid("anna", "kept")
    assert got is not None
    assert got.ics == kept.ics
    assert await sqlite_repo.revision("anna") == before
    async with sqlite_repo.transaction() as tx:
        assert await tx.idempotency("key") is None
    # The writer is clean: the next transaction commits.
    assert await save(sqlite_repo, make_object("next")) == before + 1


async def test_a_transaction_cancelled_midway_rolls_back(sqlite_repo: SqliteRepository) -> None:
    inside = asyncio.Event()

    async def request() -> None:
        async with sqlite_repo.transaction() as tx:
            await tx.save(make_object("gone"))
            inside.set()
            await asyncio.Event().wait()  # the client goes away here

    task = asyncio.create_task(request())
    await asyncio.wait_for(inside.wait(), WAIT_S)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await asyncio.wait_for(task, WAIT_S)
    assert await sqlite_repo.get_by_uid("anna", "gone") is None
    assert await sqlite_repo.revision("anna") == 0
    assert await asyncio.wait_for(save(sqlite_repo, make_object("next")), WAIT_S) == 1


@pytest.mark.parametrize("spent", [0, LOOP_STATEMENTS], ids=["on the loop", "on the thread"])
async def test_a_full_disk_is_storage_full_wherever_the_statement_ran(
    sqlite_repo: SqliteRepository, spent: int
) -> None:
    await save(sqlite_repo, make_object("u0"))
    await fill_disk(sqlite_repo)
    big = "DESCRIPTION:" + "x" * 60 + "\r\n"
    with pytest.raises(StorageFull):
        for n in range(1, 40):  # free pages, if any, are used up first
            async with sqlite_repo.transaction() as tx:
                for _ in range(spent):
                    await tx.get_by_uid("anna", "u0")
                await tx.save(make_object(f"u{n}", ics=ics_for(f"u{n}", big * 150)))
    await free_disk(sqlite_repo)
    revision = await sqlite_repo.revision("anna")
    assert await save(sqlite_repo, make_object("after")) == revision + 1


async def test_a_transaction_begins_at_once_when_no_other_process_writes(
    sqlite_repo: SqliteRepository,
) -> None:
    scope = sqlite_repo.transaction()
    tx = answered_at_once(scope.__aenter__())  # BEGIN without a hop to the thread
    try:
        await tx.save(make_object("u1"))
    finally:
        await scope.__aexit__(None, None, None)
    assert await sqlite_repo.revision("anna") == 1


@contextmanager
def _write_lock_held_elsewhere(path: Path) -> Iterator[None]:
    """SQLite's write lock held by another connection, as another process
    (``calgateway import``, say) would hold it, for the block."""
    other = sqlite3.connect(path, isolation_level=None, timeout=WAIT_S)
    try:
        other.execute("BEGIN IMMEDIATE")
        yield
        other.execute("COMMIT")
    finally:
        other.close()


async def _waiting(write: Coroutine[Any, Any, int]) -> asyncio.Task[int]:
    """``write`` started, and still waiting a moment later (for the lock)."""
    task = asyncio.create_task(write)
    done, _ = await asyncio.wait({task}, timeout=0.3)
    assert not done
    return task


async def test_another_process_holding_the_write_lock_makes_begin_wait_off_the_loop(
    sqlite_repo: SqliteRepository,
) -> None:
    kept = make_object("kept")
    await save(sqlite_repo, kept)  # a BEGIN on the loop first: the timeout is back after it
    with _write_lock_held_elsewhere(sqlite_repo.path):
        task = await _waiting(save(sqlite_repo, make_object("waits")))
        # Waiting for the lock, with the busy timeout, on the writer's thread:
        # the loop goes on answering meanwhile.
        seen = answered_at_once(sqlite_repo.get_by_href("anna", kept.href))
        assert seen is not None
        assert seen.ics == kept.ics
    assert await asyncio.wait_for(task, WAIT_S) == 2
    assert await sqlite_repo.get_by_uid("anna", "waits") is not None
    # And the next transaction begins on the loop again.
    scope = sqlite_repo.transaction()
    answered_at_once(scope.__aenter__())
    await scope.__aexit__(None, None, None)


async def test_a_request_cancelled_while_begin_waits_leaves_the_writer_ready(
    sqlite_repo: SqliteRepository,
) -> None:
    with _write_lock_held_elsewhere(sqlite_repo.path):
        task = await _waiting(save(sqlite_repo, make_object("gone")))
        task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await asyncio.wait_for(task, WAIT_S)
    assert await asyncio.wait_for(save(sqlite_repo, make_object("next")), WAIT_S) == 1
    assert await sqlite_repo.get_by_uid("anna", "gone") is None


async def _busy_timeout_in_a_transaction(repo: SqliteRepository) -> int:
    async with repo.transaction() as tx:
        rows = await tx._query("PRAGMA busy_timeout")
    return int(rows[0][0])


async def test_a_begin_that_waited_leaves_the_loop_never_waiting(tmp_path: Path) -> None:
    """The writer's busy timeout is raised only for a BEGIN waiting on its
    thread: afterwards, whether that BEGIN got the lock, gave up or was
    cancelled, a BEGIN tried on the event loop's thread must not wait there
    for another process's lock (it would stop every request meanwhile)."""
    repo = await open_sqlite_repository(tmp_path / "gateway.sqlite3", busy_timeout_ms=50)
    try:
        assert await _busy_timeout_in_a_transaction(repo) == 0
        with (
            _write_lock_held_elsewhere(repo.path),
            pytest.raises(sqlite3.OperationalError, match="locked"),
        ):
            await save(repo, make_object("gives up"))
        assert await _busy_timeout_in_a_transaction(repo) == 0
    finally:
        await repo.close()
    repo = await open_sqlite_repository(tmp_path / "gateway.sqlite3")
    try:
        with _write_lock_held_elsewhere(repo.path):
            task = await _waiting(save(repo, make_object("waits")))
        assert await asyncio.wait_for(task, WAIT_S) == 1
        assert await _busy_timeout_in_a_transaction(repo) == 0
        with _write_lock_held_elsewhere(repo.path):
            task = await _waiting(save(repo, make_object("gone")))
            task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await asyncio.wait_for(task, WAIT_S)
        assert await _busy_timeout_in_a_transaction(repo) == 0
    finally:
        await repo.close()
