"""Importing a calendar file into a resource's calendar (``calgateway
import``, ``POST /api/v1/resources/{id}/import``): the pieces of the file,
what happened to each, and a dry run.

Every piece (the components of one UID) goes through the same steps as a
CalDAV PUT of it (``BookingService.import_calendar``): validation, the UID
and double-booking checks, storing as sent. This module holds what is
particular to an import:

* ``outcome_of``: the one rule saying what a refusal means in the report;
* ``DryRunWrites``: a write transaction that keeps what would be written in
  memory over the real data, so a dry run takes the very same steps and
  reports what a real run would (objects of the file that overlap each other
  included) without writing or locking anything;
* ``ImportReport``: the outcomes and their counts.
"""

from __future__ import annotations

import hashlib
import re
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum

from .errors import (
    BookingConflict,
    ExpansionLimit,
    GatewayError,
    ImportedObject,
    InvalidCalendarData,
    UidConflict,
)
from .model import Booking, CalendarObject, OutboxEffect, TimeSpan, default_href
from .ports import IdempotencyRecord, ReadPort

# A UID that is already a safe URL path segment names its object (RFC 3986
# 2.3 unreserved, and "@", common in UIDs); any other is named by its hash.
_PLAIN_UID = re.compile(r"[A-Za-z0-9._~@+=-]{1,200}")


class UnsplittableFile(GatewayError):
    """The file has no calendar structure to split (no VCALENDAR, an END
    that closes nothing, cut short): nothing of it is imported."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


@dataclass(frozen=True)
class ImportPiece:
    """The calendar object of one UID, as the file wrote it; ``line`` is
    where its first component begins in the file (1-based)."""

    uid: str
    line: int
    ics: str


@dataclass(frozen=True)
class Unplaced:
    """A component of the file that belongs to no calendar object."""

    line: int
    message: str


@dataclass(frozen=True)
class CalendarFile:
    pieces: tuple[ImportPiece, ...]
    unplaced: tuple[Unplaced, ...] = ()


class ImportStatus(StrEnum):
    STORED = "stored"  # new in the calendar
    UPDATED = "updated"  # its UID was there with other content
    UNCHANGED = "unchanged"  # already there exactly so (a second run)
    DOUBLE_BOOKING = "double-booking"
    INVALID = "invalid"
    UID_CONFLICT = "uid-conflict"

    @property
    def refused(self) -> bool:
        return self not in (ImportStatus.STORED, ImportStatus.UPDATED, ImportStatus.UNCHANGED)


@dataclass(frozen=True)
class ImportOutcome:
    uid: str
    line: int
    status: ImportStatus
    message: str = ""
    # For a double booking: the busy time it would overlap.
    conflicts: tuple[TimeSpan, ...] = ()


@dataclass(frozen=True)
class ImportReport:
    resource_id: str
    dry_run: bool
    outcomes: tuple[ImportOutcome, ...]

    def counts(self) -> dict[str, int]:
        """How many objects ended in each status (every status named)."""
        found = Counter(outcome.status for outcome in self.outcomes)
        return {status.value: found[status] for status in ImportStatus}

    @property
    def refused(self) -> int:
        return sum(1 for outcome in self.outcomes if outcome.status.refused)


# What a caller is told after each batch: objects done, objects in all.
Progress = Callable[[int, int], None]


def _spans(spans: list[TimeSpan]) -> str:
    shown = ", ".join(
        f"{s.start.strftime('%Y-%m-%dT%H:%M:%SZ')}/{s.end.strftime('%Y-%m-%dT%H:%M:%SZ')}"
        for s in (span.in_utc() for span in spans[:5])
    )
    more = f" and {len(spans) - 5} more" if len(spans) > 5 else ""
    return shown + more


def import_href(uid: str, *, taken: bool = False) -> str:
    """The name an imported object gets: the gateway's own ``{uid}.ics``
    when the UID makes a clean name, else one from its hash (so a second run
    finds the same name). ``taken``: that name holds another UID already."""
    if _PLAIN_UID.fullmatch(uid) and not taken:
        return default_href(uid)
    return hashlib.sha256(uid.encode("utf-8", "surrogatepass")).hexdigest()[:40] + ".ics"


def outcome_of(piece: ImportPiece, error: GatewayError) -> ImportOutcome | None:
    """The report line of a piece the booking path refused with ``error``;
    None for an error that is no verdict on the piece (the import stops)."""
    if isinstance(error, BookingConflict):
        return ImportOutcome(
            piece.uid,
            piece.line,
            ImportStatus.DOUBLE_BOOKING,
            f"overlaps busy time of {error.resource_id!r} at {_spans(error.conflicts)}",
            tuple(error.conflicts),
        )
    if isinstance(error, InvalidCalendarData):
        return ImportOutcome(
            piece.uid, piece.line, ImportStatus.INVALID, f"{error.precondition}: {error.message}"
        )
    if isinstance(error, ExpansionLimit):
        return ImportOutcome(piece.uid, piece.line, ImportStatus.INVALID, error.message)
    if isinstance(error, UidConflict | ImportedObject):
        return ImportOutcome(piece.uid, piece.line, ImportStatus.UID_CONFLICT, str(error))
    return None


@dataclass
class DryRunWrites:
    """A ``WriteTransaction`` for a dry run: reads see the real data with
    what this run would have written laid over it; nothing reaches the
    database and no lock is held.

    Deletes are not needed by an import, so they are refused loudly rather
    than faked."""

    reads: ReadPort
    _written: dict[tuple[str, str], CalendarObject] = field(default_factory=dict)

    def _over(self, found: CalendarObject | None, key: tuple[str, str]) -> CalendarObject | None:
        return self._written.get(key, found)

    async def get_by_id(self, booking_id: str) -> CalendarObject | None:
        for obj in self._written.values():
            if obj.booking.id == booking_id:
                return obj
        return await self.reads.get_by_id(booking_id)

    async def get_by_uid(self, resource_id: str, uid: str) -> CalendarObject | None:
        return self._over(await self.reads.get_by_uid(resource_id, uid), (resource_id, uid))

    async def with_uid(self, uid: str) -> list[CalendarObject]:
        stored = await self.reads.with_uid(uid)
        mine = [obj for key, obj in self._written.items() if key[1] == uid]
        return [obj for obj in stored if (obj.resource_id, uid) not in self._written] + mine

    async def get_by_href(self, resource_id: str, href: str) -> CalendarObject | None:
        for (resource, _), obj in self._written.items():
            if resource == resource_id and obj.href == href:
                return obj
        found = await self.reads.get_by_href(resource_id, href)
        if found is not None and (resource_id, found.uid) in self._written:
            return None  # its UID moved to another name in this run
        return found

    async def in_span(
        self, resource_id: str, window: TimeSpan, *, blocking_only: bool = False
    ) -> list[CalendarObject]:
        stored = await self.reads.in_span(resource_id, window, blocking_only=blocking_only)
        kept = [obj for obj in stored if (resource_id, obj.uid) not in self._written]
        mine = [
            obj
            for (resource, _), obj in self._written.items()
            if resource == resource_id
            and obj.span.meets(window)
            and (obj.booking.blocks_time or not blocking_only)
        ]
        return kept + mine

    async def save(self, obj: CalendarObject) -> int:
        others = [o for o in await self.reads.with_uid(obj.uid) if o.resource_id != obj.resource_id]
        if others and await self.reads.get_by_uid(obj.resource_id, obj.uid) is None:
            raise UidConflict(obj.uid, others[0].href, resource_id=others[0].resource_id)
        self._written[(obj.resource_id, obj.uid)] = obj
        return 0

    async def keep_answer_times(self, booking: Booking) -> None:
        return None

    async def delete(self, resource_id: str, uid: str) -> int:
        raise NotImplementedError("an import deletes nothing")

    async def enqueue(self, effect: OutboxEffect) -> None:
        return None

    async def idempotency(self, key: str) -> IdempotencyRecord | None:
        return None

    async def remember_idempotency(self, key: str, record: IdempotencyRecord) -> None:
        return None


def describe(outcome: ImportOutcome) -> str:
    """One line of the report, for a person: where, which UID, what happened."""
    where = f"line {outcome.line}"
    uid = f" {outcome.uid}" if outcome.uid else ""
    why = f": {outcome.message}" if outcome.message else ""
    return f"{outcome.status.value:<14} {where}{uid}{why}"


def counts_line(counts: Mapping[str, int]) -> str:
    """ "3 stored, 1 double-booking" (statuses with none left out)."""
    return ", ".join(f"{n} {status}" for status, n in counts.items() if n) or "nothing"
