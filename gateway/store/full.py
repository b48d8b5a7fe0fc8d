"""Telling a full disk apart from other storage errors, and saying so once.

A full disk reaches the gateway as SQLite's ``SQLITE_FULL`` ("database or
disk is full": the file system refused to grow a file, or the database hit
``PRAGMA max_page_count``) or as an ``OSError`` with ``ENOSPC`` (no space
left) or ``EDQUOT`` (quota exceeded) from anything else that writes files.
``storage_full`` maps each of them to the one core error ``StorageFull``,
which front ends answer with 507 (CalDAV) or 503 (API) instead of a bare 500.

SQLite rolls a transaction back by itself on ``SQLITE_FULL``, so a refused
write leaves nothing half done; what was committed before stays committed.

``FullLog`` writes ONE error line when storage fills up and one when writes
succeed again, and while it stays full at most one reminder a minute with
the number of refused writes since the last line: a busy server must not
write a traceback per request to a disk that is already full. A nearly full
disk flaps (small writes pass, bigger ones do not): a refusal within a
minute of the last "full" line adds no line, and "writable again" follows
only a "full" line that was written, so flapping costs two lines a minute.

This module does not free space, retry, or decide HTTP answers.
"""

from __future__ import annotations

import errno
import logging
import sqlite3
import threading
import time
from collections.abc import Callable
from typing import NoReturn

from gateway.core.errors import StorageFull

log = logging.getLogger("calgateway.storage")

# sqlite3 error codes: the primary code is the low byte of an extended code.
SQLITE_FULL = 13
_FULL_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT})

REMIND_EVERY_S = 60.0


def storage_full(exc: BaseException) -> StorageFull | None:
    """The ``StorageFull`` that ``exc`` means, or None if it means something
    else. Pure: it only looks at the exception."""
    if isinstance(exc, StorageFull):
        return exc
    if isinstance(exc, sqlite3.Error):
        code = getattr(exc, "sqlite_errorcode", None)
        if isinstance(code, int) and code & 0xFF == SQLITE_FULL:
            return StorageFull(f"SQLite: {exc}")
        return None
    if isinstance(exc, OSError) and exc.errno in _FULL_ERRNOS:
        return StorageFull(f"{errno.errorcode.get(exc.errno, exc.errno)}: {exc.strerror}")
    return None


class FullLog:
    """Rate-limited log lines about a full disk (see the module docstring).
    Thread-safe: the store's connections run on threads of their own."""

    def __init__(
        self,
        logger: logging.Logger = log,
        *,
        every: float = REMIND_EVERY_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._log = logger
        self._every = every
        self._clock = clock
        self._lock = threading.Lock()
        self._full = False
        self._announced = False  # a "full" line stands without its "again"
        self._last_line: float | None = None
        self._refused = 0

    @property
    def full(self) -> bool:
        """True from a refused write until the next write that succeeds."""
        return self._full

    def refused(self, error: StorageFull) -> None:
        with self._lock:
            now = self._clock()
            self._refused += 1
            recent = self._last_line is not None and now - self._last_line < self._every
            first = not self._full
            self._full = True
            if recent:
                return
            self._last_line = now
            self._announced = True
            refused, self._refused = self._refused, 0
        if first:
            self._log.error(
                "storage full: changes are refused until disk space is freed",
                extra={"detail": error.detail},
            )
        else:
            self._log.error(
                "storage still full: changes are refused until disk space is freed",
                extra={"detail": error.detail, "refused_since_last_line": refused},
            )

    def written(self) -> None:
        if not self._full:  # the common case: no lock taken
            return
        with self._lock:
            if not self._full:
                return
            self._full = False
            if not self._announced:
                return
            self._announced = False
            refused, self._refused = self._refused, 0
        self._log.warning("storage writable again", extra={"refused_since_last_line": refused})


# One per process: a process serves one database, and every connection's
# refusals belong in the same few lines.
FULL_LOG = FullLog()


def note_written() -> None:
    """A write was committed: storage takes writes (again)."""
    FULL_LOG.written()


def translate(exc: BaseException) -> BaseException:
    """``exc``, or the ``StorageFull`` it means (logged through ``FULL_LOG``).
    Raise the result ``from exc`` when it is not ``exc`` itself."""
    if isinstance(exc, StorageFull):
        return exc  # translated (and logged) already
    full = storage_full(exc)
    if full is None:
        return exc
    FULL_LOG.refused(full)
    return full


def raise_translated(exc: BaseException) -> NoReturn:
    """Raise ``exc`` again, as ``StorageFull`` when it means a full disk.
    For ``except`` clauses around statements."""
    error = translate(exc)
    if error is exc:
        raise exc
    raise error from exc
