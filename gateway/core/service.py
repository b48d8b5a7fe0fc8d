"""BookingService: every change to a calendar goes through here.

Each change is one store transaction holding the object, its index rows, the
revision bump, the change-log row and the outbox rows for its side effects
(DESIGN.md, data flow), so a crash loses nothing and duplicates nothing.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from .errors import BookingConflict, IdempotencyKeyReused, InvalidBooking, NotFound
from .model import (
    Booking,
    BookingChanges,
    BookingDraft,
    BookingStatus,
    CalendarObject,
    OutboxEffect,
    Resource,
    TimeSpan,
    merge_spans,
)
from .ports import CalendarCodec, IdempotencyRecord, ReadPort, Repository, WriteTransaction

INVITATION = "invitation"
"""Outbox kind: tell the booker (created / rescheduled / cancelled)."""

MAX_BOOKING_LENGTH = timedelta(days=31)
MAX_QUERY_WINDOW = timedelta(days=366)


def _utc_now() -> datetime:
    return datetime.now(UTC)


def _new_id() -> str:
    return uuid.uuid4().hex


class BookingService:
    def __init__(
        self,
        repository: Repository,
        codec: CalendarCodec,
        resources: Mapping[str, Resource],
        *,
        uid_domain: str,
        clock: Callable[[], datetime] = _utc_now,
        new_id: Callable[[], str] = _new_id,
    ) -> None:
        self._repo = repository
        self._codec = codec
        self._resources = dict(resources)
        self._uid_domain = uid_domain
        self._clock = clock
        self._new_id = new_id

    # -- resources -----------------------------------------------------------

    @property
    def resources(self) -> Mapping[str, Resource]:
        return self._resources

    def resource(self, resource_id: str) -> Resource:
        try:
            return self._resources[resource_id]
        except KeyError:
            raise NotFound("resource", resource_id) from None

    # -- queries ---------------------------------------------------------------

    async def get(self, booking_id: str) -> Booking:
        obj = await self._repo.get_by_id(booking_id)
        if obj is None:
            raise NotFound("booking", booking_id)
        return obj.booking

    async def in_window(self, resource_id: str, window: TimeSpan) -> list[Booking]:
        """Bookings of a resource overlapping ``window``, by start time."""
        self.resource(resource_id)
        _check_window(window)
        objects = await self._repo.in_span(resource_id, window)
        found = [o.booking for o in objects if self._hits(o, window)]
        return sorted(found, key=lambda b: (b.start, b.id))

    async def busy(self, resource_id: str, window: TimeSpan) -> list[TimeSpan]:
        """Merged busy intervals of a resource, clipped to ``window``."""
        self.resource(resource_id)
        _check_window(window)
        objects = await self._repo.in_span(resource_id, window, blocking_only=True)
        spans = [s for o in objects for s in self._codec.occurrences(o, window)]
        clipped = [
            TimeSpan(max(s.start, window.start), min(s.end, window.end)) for s in merge_spans(spans)
        ]
        return [s for s in clipped if s.start < s.end]

    # -- changes ---------------------------------------------------------------

    async def create(self, draft: BookingDraft, idempotency_key: str | None = None) -> Booking:
        """Create a booking; a repeated idempotency key returns the first result."""
        resource = self.resource(draft.resource_id)
        timezone = draft.timezone or resource.timezone
        _check_timezone(timezone)
        span = _checked_span(draft.start, draft.end)
        _check_title(draft.title)
        fingerprint = draft.fingerprint()
        async with self._repo.transaction() as tx:
            if idempotency_key is not None:
                earlier = await tx.idempotency(idempotency_key)
                if earlier is not None:
                    if earlier.fingerprint != fingerprint:
                        raise IdempotencyKeyReused(idempotency_key)
                    obj = await tx.get_by_id(earlier.booking_id)
                    if obj is None:  # pragma: no cover - the store keeps both together
                        raise NotFound("booking", earlier.booking_id)
                    return obj.booking
            await self._refuse_overlap(tx, resource.id, span, exclude_uid=None)
            now = self._clock()
            booking_id = self._new_id()
            booking = Booking(
                id=booking_id,
                resource_id=resource.id,
                uid=f"{booking_id}@{self._uid_domain}",
                title=draft.title.strip(),
                start=draft.start.astimezone(ZoneInfo(timezone)),
                end=draft.end.astimezone(ZoneInfo(timezone)),
                timezone=timezone,
                created=now,
                updated=now,
                description=draft.description,
                location=draft.location,
                attendees=draft.attendees,
            )
            await self._save(tx, booking, resource, previous=None)
            if idempotency_key is not None:
                await tx.remember_idempotency(
                    idempotency_key, IdempotencyRecord(fingerprint, booking_id)
                )
            await self._notify(tx, booking, "created")
            return booking

    async def reschedule(self, booking_id: str, changes: BookingChanges) -> Booking:
        """Move and/or edit a booking; SEQUENCE grows on every real change."""
        async with self._repo.transaction() as tx:
            previous = await _existing(tx, booking_id)
            old = previous.booking
            if old.status is BookingStatus.CANCELLED:
                raise InvalidBooking("status", "a cancelled booking cannot be changed")
            resource = self.resource(old.resource_id)
            timezone = changes.timezone or old.timezone
            _check_timezone(timezone)
            zone = ZoneInfo(timezone)
            start = (changes.start or old.start).astimezone(zone)
            end = (changes.end or old.end).astimezone(zone)
            span = _checked_span(start, end)
            if changes.title is not None:
                _check_title(changes.title)
            updated = replace(
                old,
                start=start,
                end=end,
                timezone=timezone,
                title=old.title if changes.title is None else changes.title.strip(),
                description=_pick(changes.description, old.description),
                location=_pick(changes.location, old.location),
            )
            if updated == old:
                return old
            if span != TimeSpan(old.start, old.end) and old.blocks_time:
                await self._refuse_overlap(tx, resource.id, span, exclude_uid=old.uid)
            updated = replace(updated, sequence=old.sequence + 1, updated=self._clock())
            await self._save(tx, updated, resource, previous=previous)
            await self._notify(tx, updated, "rescheduled" if changes.moves_time else "updated")
            return updated

    async def cancel(self, booking_id: str) -> Booking:
        """Cancel a booking: kept with STATUS:CANCELLED and SEQUENCE+1 (RFC 5546
        3.2.5), no longer blocking time. Cancelling twice changes nothing."""
        async with self._repo.transaction() as tx:
            previous = await _existing(tx, booking_id)
            old = previous.booking
            if old.status is BookingStatus.CANCELLED:
                return old
            cancelled = replace(
                old,
                status=BookingStatus.CANCELLED,
                sequence=old.sequence + 1,
                updated=self._clock(),
            )
            await self._save(tx, cancelled, self.resource(old.resource_id), previous=previous)
            await self._notify(tx, cancelled, "cancelled")
            return cancelled

    # -- helpers ---------------------------------------------------------------

    def _hits(self, obj: CalendarObject, window: TimeSpan) -> bool:
        if not obj.booking.recurring:
            return True  # the index span is exact for a single occurrence
        return bool(self._codec.occurrences(obj, window))

    async def _refuse_overlap(
        self, tx: WriteTransaction, resource_id: str, span: TimeSpan, exclude_uid: str | None
    ) -> None:
        candidates = await tx.in_span(resource_id, span, blocking_only=True)
        clashes = [
            occurrence
            for obj in candidates
            if obj.uid != exclude_uid
            for occurrence in self._codec.occurrences(obj, span)
        ]
        if clashes:
            raise BookingConflict(resource_id, merge_spans(clashes))

    async def _save(
        self,
        tx: WriteTransaction,
        booking: Booking,
        resource: Resource,
        previous: CalendarObject | None,
    ) -> None:
        ics = self._codec.render(booking, resource, previous.ics if previous else None)
        await tx.save(CalendarObject(booking=booking, ics=ics, span=_span_of(booking)))

    async def _notify(self, tx: WriteTransaction, booking: Booking, action: str) -> None:
        if not booking.attendees:
            return
        await tx.enqueue(
            OutboxEffect(
                kind=INVITATION,
                resource_id=booking.resource_id,
                booking_id=booking.id,
                payload={"action": action, "sequence": booking.sequence},
            )
        )


async def _existing(tx: ReadPort, booking_id: str) -> CalendarObject:
    obj = await tx.get_by_id(booking_id)
    if obj is None:
        raise NotFound("booking", booking_id)
    return obj


def _span_of(booking: Booking) -> TimeSpan:
    return TimeSpan(booking.start, booking.end).in_utc()


def _pick(new: str | None, old: str) -> str:
    return old if new is None else new


def _checked_span(start: datetime, end: datetime) -> TimeSpan:
    for name, value in (("start", start), ("end", end)):
        if value.tzinfo is None or value.utcoffset() is None:
            raise InvalidBooking(name, "needs a UTC offset or zone (naive times are ambiguous)")
    if end <= start:
        raise InvalidBooking("end", "must be after start")
    if end - start > MAX_BOOKING_LENGTH:
        raise InvalidBooking("end", f"a booking may last at most {MAX_BOOKING_LENGTH.days} days")
    return TimeSpan(start, end).in_utc()


def _check_window(window: TimeSpan) -> None:
    if window.end <= window.start:
        raise InvalidBooking("end", "must be after start")
    if window.end - window.start > MAX_QUERY_WINDOW:
        raise InvalidBooking("end", f"a query window may span at most {MAX_QUERY_WINDOW.days} days")


def _check_timezone(name: str) -> None:
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise InvalidBooking("timezone", f"unknown IANA timezone {name!r}") from None


def _check_title(title: str) -> None:
    if not title.strip():
        raise InvalidBooking("title", "must not be empty")
    if len(title) > 1000:
        raise InvalidBooking("title", "must be at most 1000 characters")
