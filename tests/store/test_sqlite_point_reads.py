"""SQLite point reads (``gateway.store.point_reads``): a GET's object and a
feed's revision are read on the event loop's thread, at once, even while a
write transaction is open; and the aiosqlite reader answers whenever that
read fails."""

from __future__ import annotations

import sqlite3
from collections.abc import AsyncIterator, Coroutine
from dataclasses import replace
from pathlib import Path
from typing import Any, TypeVar

import pytest

from gateway.store import SqliteRepository, open_sqlite_repository
from tests.store.contract import ics_for, make_object, save

T = TypeVar("T")


@pytest.fixture
async def sqlite_repo(tmp_path: Path) -> AsyncIterator[SqliteRepository]:
    repository = await open_sqlite_repository(tmp_path / "gateway.sqlite3")
    yield repository
    await repository.close()


def answered_at_once(read: Coroutine[Any, Any, T]) -> T:
    """The read's answer if it came without the coroutine ever waiting (no
    hop to another thread, no lock); fails the test otherwise."""
    try:
        read.send(None)
    except StopIteration as done:
        return done.value  # type: ignore[no-any-return]
    read.close()
    raise AssertionError("the read waited instead of answering at once")


async def test_point_reads_answer_at_once_while_a_write_transaction_is_open(
    sqlite_repo: SqliteRepository,
) -> None:
    before = make_object("u1")
    revision = await save(sqlite_repo, before)
    after = replace(before, ics=ics_for("u1", "SUMMARY:moved\r\n"))
    async with sqlite_repo.transaction() as tx:
        await tx.save(after)
        # The writer holds SQLite's write lock with a change not yet committed:
        # a WAL reader neither waits for it nor sees the change.
        seen = answered_at_once(sqlite_repo.get_by_href("anna", before.href))
        assert seen is not None
        assert seen.ics == before.ics
        assert answered_at_once(sqlite_repo.revision("anna")) == revision
    # Committed: the next point read sees it (no read snapshot was kept open).
    seen = answered_at_once(sqlite_repo.get_by_href("anna", before.href))
    assert seen is not None
    assert seen.ics == after.ics
    assert answered_at_once(sqlite_repo.revision("anna")) == revision + 1
    assert answered_at_once(sqlite_repo.get_by_href("anna", "nothing.ics")) is None
    assert answered_at_once(sqlite_repo.revision("nobody")) == 0


class _LockedConnection(sqlite3.Connection):
    """A connection whose every statement meets a lock, as with SQLITE_BUSY."""

    statements = 0

    def execute(self, *args: Any, **kwargs: Any) -> sqlite3.Cursor:
        _LockedConnection.statements += 1
        raise sqlite3.OperationalError("database is locked")


async def test_a_failed_point_read_is_answered_by_the_aiosqlite_reader(
    sqlite_repo: SqliteRepository, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    obj = make_object("u1")
    revision = await save(sqlite_repo, obj)
    monkeypatch.setattr(_LockedConnection, "statements", 0)
    locked = sqlite3.connect(tmp_path / "gateway.sqlite3", factory=_LockedConnection)
    try:
        assert sqlite_repo._points is not None
        monkeypatch.setattr(sqlite_repo._points, "_conn", locked)
        seen = await sqlite_repo.get_by_href("anna", obj.href)
        assert seen is not None
        assert seen.ics == obj.ics
        assert await sqlite_repo.revision("anna") == revision
        assert await sqlite_repo.get_by_href("anna", "nothing.ics") is None
        # Each read tried the point reader first and was answered anyway.
        assert _LockedConnection.statements == 3
    finally:
        locked.close()
