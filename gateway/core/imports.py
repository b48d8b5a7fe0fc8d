"""Applying a page of Google changes inside one transaction.

What changes is decided before (``google_bridge.reconcile``: which blocks to
write or remove, the new links); this only executes it, in one transaction.
Google -> gateway is always anonymous: a Google event becomes a busy block
(title "Busy", no description, location or attendees) that blocks bookings
like any other. An imported block that overlaps an existing booking does not
remove it: the booking is kept and the conflict goes to the sync log, for a
person to resolve (the gateway cannot call the customer).

Applying is idempotent: the same page applied twice (a crash between
fetching and committing, a 410 full sync) leaves the same objects, and an
unchanged block is not rewritten (no revision bump, no sync-collection noise).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from datetime import datetime

from .answers import keeps_client_text
from .errors import ExpansionLimit
from .mirror import (
    BusyBlock,
    Connection,
    ConnectionStatus,
    ImportBatch,
    ImportResult,
    LogKind,
    SyncLogEntry,
    imported_uid,
)
from .model import (
    Booking,
    BookingStatus,
    CalendarObject,
    Origin,
    PartStat,
    Resource,
    TimeSpan,
)
from .ports import CalendarCodec, MirrorTransaction

BUSY_TITLE = "Busy"


class StaleImport(Exception):
    """The resource's connection changed (another calendar, a disconnect)
    while the page was being fetched: the page belongs to nobody now."""


class ImportApplier:
    def __init__(
        self,
        codec: CalendarCodec,
        resource: Resource,
        clock: Callable[[], datetime],
        new_id: Callable[[], str],
    ) -> None:
        self._codec = codec
        self._resource = resource
        self._clock = clock
        self._new_id = new_id
        self._result = ImportResult()

    async def apply(
        self, tx: MirrorTransaction, batch: ImportBatch, calendar_id: str
    ) -> ImportResult:
        connection = await tx.get_connection(self._resource.id)
        if connection is None or not connection.connected or connection.calendar_id != calendar_id:
            raise StaleImport(
                f"resource {self._resource.id!r} is no longer synced with that calendar"
            )
        links = dict(batch.status)
        written: dict[str, str] = {}
        for block in batch.upserts:
            link = links.get(block.event_id)
            written[block.event_id] = await self._upsert(
                tx, block, link.booking_id if link is not None else ""
            )
        for event_id in batch.removals:
            await self._remove(tx, event_id)
        for event_id, link in batch.status:
            if link is None:
                await tx.delete_link(self._resource.id, event_id)
            elif event_id in written:
                await tx.save_link(replace(link, booking_id=written[event_id]))
            else:
                await tx.save_link(link)
        for response in batch.responses:
            await self._respond(tx, response.booking_id, response.email, response.partstat)
        for note in batch.notes:
            await tx.log(note)
        await tx.save_connection(self._advance(connection, batch))
        return self._result

    # -- blocks ------------------------------------------------------------------

    async def _upsert(self, tx: MirrorTransaction, block: BusyBlock, known_id: str) -> str:
        """Write a block's busy object (``known_id``: the booking id its link
        holds) and return its booking id. What is stored already is not
        written again: a page applied twice (a crash before the sync token
        was saved, a 410 full sync) bumps no revision."""
        resource = self._resource
        uid = imported_uid(resource.id, block.event_id)
        previous = await tx.get_by_uid(resource.id, uid)
        status = BookingStatus.TENTATIVE if block.tentative else BookingStatus.CONFIRMED
        span = block.span
        if previous is not None:
            old = previous.booking
            if (
                old.start == span.start
                and old.end == span.end
                and old.status is status
                and old.timezone == block.timezone
            ):
                self._result = replace(self._result, unchanged=self._result.unchanged + 1)
                return old.id
        now = self._clock()
        booking_id = previous.booking.id if previous else known_id
        booking = Booking(
            id=booking_id or self._new_id(),
            resource_id=resource.id,
            uid=uid,
            title=BUSY_TITLE,
            start=span.start,
            end=span.end,
            timezone=block.timezone,
            created=previous.booking.created if previous else now,
            updated=now,
            status=status,
            origin=Origin.GOOGLE,
            sequence=previous.booking.sequence + 1 if previous else 0,
        )
        ics = self._codec.render(booking, resource, previous.ics if previous else None)
        await self._log_overlaps(tx, booking, block)
        await tx.save(CalendarObject(booking=booking, ics=ics, span=span.in_utc(), href=""))
        if previous is None:
            self._result = replace(self._result, created=self._result.created + 1)
        else:
            self._result = replace(self._result, updated=self._result.updated + 1)
        return booking.id

    async def _log_overlaps(
        self, tx: MirrorTransaction, booking: Booking, block: BusyBlock
    ) -> None:
        """An imported block over a booking: keep the booking, tell a person."""
        if block.tentative:
            return
        span = TimeSpan(booking.start, booking.end)
        for other in await tx.in_span(self._resource.id, span.in_utc(), blocking_only=True):
            if other.booking.origin is Origin.GOOGLE or other.uid == booking.uid:
                continue
            try:
                occurrences = self._codec.occurrences(other, span.in_utc())
            except ExpansionLimit:
                continue  # too large to tell; the note is only a courtesy
            clash = [s for s in occurrences if s.overlaps(span)]
            if not clash:
                continue
            await tx.log(
                SyncLogEntry(
                    self._resource.id,
                    LogKind.CONFLICT,
                    f"a Google event ({_when(span)}) overlaps the booking "
                    f"{other.booking.title!r} ({_when(clash[0])}); the booking is kept",
                    self._clock(),
                    booking_id=other.booking.id,
                    event_id=block.event_id,
                )
            )
            self._result = replace(self._result, conflicts=self._result.conflicts + 1)

    async def _remove(self, tx: MirrorTransaction, event_id: str) -> None:
        uid = imported_uid(self._resource.id, event_id)
        if await tx.get_by_uid(self._resource.id, uid) is not None:
            await tx.delete(self._resource.id, uid)
            self._result = replace(self._result, removed=self._result.removed + 1)

    async def _respond(
        self, tx: MirrorTransaction, booking_id: str, email: str, partstat: str
    ) -> None:
        """A booker answered on Google: the booking's ATTENDEE PARTSTAT follows
        (RFC 5546 3.2.3: a reply changes no SEQUENCE)."""
        obj = await tx.get_by_id(booking_id)
        if obj is None:
            return
        booking = obj.booking
        wanted = PartStat(partstat)
        attendees = tuple(
            # Google tells no time for the answer (gateway.core.answers).
            replace(a, partstat=wanted, answered_at=None) if a.email.lower() == email.lower() else a
            for a in booking.attendees
        )
        if attendees == booking.attendees:
            return
        updated = replace(booking, attendees=attendees, updated=self._clock())
        resource = self._resource
        if keeps_client_text(booking):
            ics = self._codec.answered(obj.ics, email, wanted)
        else:
            ics = self._codec.render(updated, resource, obj.ics)
        # An answer is the server's change, not the organizer's: the
        # schedule tag stays (RFC 6638 3.2.10).
        await tx.save(replace(obj, booking=updated, ics=ics))
        await tx.log(
            SyncLogEntry(
                resource.id,
                LogKind.IMPORTED,
                f"{email} answered {wanted.value} in Google Calendar",
                self._clock(),
                booking_id=booking.id,
            )
        )

    def _advance(self, connection: Connection, batch: ImportBatch) -> Connection:
        status = connection.status
        if batch.sync_token and status is ConnectionStatus.IMPORTING:
            status = ConnectionStatus.SYNCED
        return replace(
            connection,
            status=status,
            sync_token=batch.sync_token or connection.sync_token,
            imported=batch.imported if batch.seen is not None else connection.imported,
            last_sync_at=self._clock() if batch.sync_token else connection.last_sync_at,
        )


def _when(span: TimeSpan) -> str:
    start, end = span.start, span.end
    return f"{start:%Y-%m-%d %H:%M}-{end:%H:%M} {start:%Z}".strip()
