"""A full disk in the store: one typed error (``StorageFull``) from SQLite's
SQLITE_FULL and from ENOSPC/EDQUOT, a write check that notices it, a log
that says it once, nothing committed lost; and background loops that pause
on it instead of spinning. Against the real SQLite file (``tests.storage``)."""

from __future__ import annotations

import asyncio
import errno
import logging
import sqlite3
from pathlib import Path

import pytest

from gateway.core.errors import StorageFull
from gateway.core.rounds import run_rounds
from gateway.store import SqliteRepository
from gateway.store.full import FullLog, storage_full
from tests.mail import stored
from tests.samples import make_booking
from tests.storage import fill_disk, free_disk


def sqlite_error(code: int, message: str = "database or disk is full") -> sqlite3.Error:
    error = sqlite3.OperationalError(message)
    error.sqlite_errorcode = code
    return error


def real_sqlite_full(tmp_path: Path) -> sqlite3.Error:
    with sqlite3.connect(tmp_path / "tiny.sqlite3") as conn:
        conn.execute("CREATE TABLE t (x BLOB)")
        pages = conn.execute("PRAGMA page_count").fetchone()[0]
        conn.execute(f"PRAGMA max_page_count = {pages}")
        try:
            conn.execute("INSERT INTO t VALUES (zeroblob(100000))")
        except sqlite3.Error as error:
            return error
    raise AssertionError("SQLite took a write beyond max_page_count")


@pytest.mark.parametrize(
    ("error", "full"),
    [
        (sqlite_error(13), True),  # SQLITE_FULL
        (sqlite_error(13 | (1 << 8)), True),  # an extended code of SQLITE_FULL
        (sqlite_error(5, "database is locked"), False),  # SQLITE_BUSY
        (sqlite_error(10, "disk I/O error"), False),  # SQLITE_IOERR: not "full"
        (sqlite3.IntegrityError("UNIQUE constraint failed"), False),  # no code at all
        (OSError(errno.ENOSPC, "No space left on device"), True),
        (OSError(errno.EDQUOT, "Disk quota exceeded"), True),
        (OSError(errno.EACCES, "Permission denied"), False),
        (ValueError("not storage"), False),
    ],
)
def test_what_counts_as_full(error: BaseException, full: bool) -> None:
    assert (storage_full(error) is not None) is full


def test_the_real_sqlite_error_counts_as_full(tmp_path: Path) -> None:
    translated = storage_full(real_sqlite_full(tmp_path))
    assert translated is not None
    assert "storage is full" in translated.message
    assert "database or disk is full" in translated.detail


class Ticks:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_a_full_disk_is_logged_once_then_reminded_then_cleared(
    caplog: pytest.LogCaptureFixture,
) -> None:
    clock = Ticks()
    logger = logging.getLogger("test.storage")
    lines = FullLog(logger, every=60.0, clock=clock)
    full = StorageFull("SQLite: database or disk is full")
    with caplog.at_level(logging.INFO, logger="test.storage"):
        for _ in range(500):  # a busy server: 500 refused writes in a burst
            lines.refused(full)
        assert [r.getMessage() for r in caplog.records] == [
            "storage full: changes are refused until disk space is freed"
        ]
        assert lines.full
        clock.now = 61.0
        lines.refused(full)
        clock.now = 62.0
        lines.written()
        lines.written()
    messages = [r.getMessage() for r in caplog.records]
    assert messages == [
        "storage full: changes are refused until disk space is freed",
        "storage still full: changes are refused until disk space is freed",
        "storage writable again",
    ]
    assert caplog.records[1].__dict__["refused_since_last_line"] == 500
    assert not any(r.exc_info for r in caplog.records)
    assert not lines.full


def test_a_nearly_full_disk_that_flaps_costs_two_lines_a_minute(
    caplog: pytest.LogCaptureFixture,
) -> None:
    clock = Ticks()
    logger = logging.getLogger("test.storage")
    lines = FullLog(logger, every=60.0, clock=clock)
    full = StorageFull("SQLite: database or disk is full")
    with caplog.at_level(logging.INFO, logger="test.storage"):
        for second in range(59):  # a big write refused, a small one passes
            clock.now = float(second)
            lines.refused(full)
            lines.written()
    assert [r.getMessage() for r in caplog.records] == [
        "storage full: changes are refused until disk space is freed",
        "storage writable again",
    ]


async def big_write(repo: SqliteRepository, n: int) -> None:
    booking = make_booking(id=f"b{n}", uid=f"b{n}@gateway.test", description="x" * 9000)
    async with repo.transaction() as tx:
        await tx.save(stored(booking))


async def test_a_refused_write_is_storage_full_and_loses_nothing(
    repo: SqliteRepository, db_path: Path
) -> None:
    await big_write(repo, 0)
    await fill_disk(repo)
    acknowledged = []
    with pytest.raises(StorageFull):
        for n in range(1, 40):  # free pages, if any, are used up first
            await big_write(repo, n)
            acknowledged.append(f"b{n}")
    with pytest.raises(StorageFull):
        await repo.check_writable()
    # Reads go on; every acknowledged write is there.
    for booking_id in ["b0", *acknowledged]:
        assert await repo.get_by_id(booking_id) is not None
    await free_disk(repo)
    await repo.check_writable()
    await big_write(repo, 99)
    assert await repo.get_by_id("b99") is not None


async def test_the_write_check_does_not_grow_the_database(
    repo: SqliteRepository, db_path: Path
) -> None:
    await repo.check_writable()
    size = (await repo._query("PRAGMA page_count"))[0][0]
    for _ in range(20):
        await repo.check_writable()
    assert (await repo._query("PRAGMA page_count"))[0][0] == size


async def test_a_loop_whose_round_hits_a_full_disk_pauses_instead_of_spinning(
    caplog: pytest.LogCaptureFixture,
) -> None:
    rounds = 0

    async def one_round() -> None:
        nonlocal rounds
        rounds += 1
        raise StorageFull("SQLite: database or disk is full")

    async def due_now() -> float:
        await asyncio.sleep(0)
        return 0.0  # items are due: without the pause this loops flat out

    loop = asyncio.create_task(
        run_rounds(
            one_round,
            asyncio.Event(),
            due_now,
            log=logging.getLogger("test.rounds"),
            failure="round failed",
            pause_after_failure=3600.0,
        )
    )
    for _ in range(50):  # let the loop run as far as it will
        await asyncio.sleep(0)
    loop.cancel()
    with pytest.raises(asyncio.CancelledError):
        await loop
    assert rounds == 1
    # The store logs a full disk once; the loop adds no traceback per round.
    assert not [r for r in caplog.records if r.name == "test.rounds"]
