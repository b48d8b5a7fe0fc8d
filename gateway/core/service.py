"""BookingService: every change to a calendar goes through here.

Each change is one store transaction holding the object, its index rows, the
revision bump, the change-log row and the outbox rows for its side effects
(DESIGN.md, data flow), so a crash loses nothing and duplicates nothing.
"""

from __future__ import annotations

import asyncio
import bisect
import logging
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from .answers import (
    ReplyTarget,
    answer_time,
    carry_answer_times,
    keeps_client_text,
    route_reply,
    superseded_reason,
    supersedes,
)
from .calendar_import import (
    DryRunWrites,
    ImportOutcome,
    ImportPiece,
    ImportReport,
    ImportStatus,
    Progress,
    import_href,
    outcome_of,
)
from .clock import utc_now as _utc_now
from .effects import (
    INVITATION,
    Change,
    ChangeOrigin,
    Effect,
    EffectPolicy,
    GooglePush,
    Invite,
    effects_of,
    schedules,
)
from .errors import (
    AmbiguousReply,
    BookingConflict,
    ExpansionLimit,
    GatewayError,
    IdempotencyKeyReused,
    ImportedObject,
    InvalidBooking,
    InvalidCalendarData,
    NotFound,
    PreconditionFailed,
    UidConflict,
)
from .freshness import FreshnessGuard, StaleRisk, claims_new_time
from .imports import ImportApplier
from .invitations import ItipReply, ReplyOutcome, mailbox, reply_applies, same_address
from .mirror import (
    ImportBatch,
    ImportResult,
    LogKind,
    MirrorPolicy,
    SyncLogEntry,
    google_event_id,
    is_imported_uid,
)
from .model import (
    FAR_FUTURE,
    Booking,
    BookingChanges,
    BookingDraft,
    BookingStatus,
    CalendarObject,
    Origin,
    OutboxEffect,
    ParsedObject,
    PartStat,
    Precondition,
    Resource,
    Scheduling,
    TimeSpan,
    merge_spans,
)
from .outbox_payloads import GooglePushPayload
from .ports import CalendarCodec, IdempotencyRecord, MirrorRepository, ReadPort, WriteTransaction
from .resource_invitations import (
    SCHEDULE_DELIVERED,
    Action,
    InvitableResource,
    ResourceReply,
    decide,
    invited_uid,
    is_invited_uid,
    requests_of,
)
from .schedule_status import PENDING
from .sequence import sequence_after
from .text import calendar_text_problem

_log = logging.getLogger("calgateway.replies")

__all__ = ["INVITATION", "BookingService"]  # INVITATION: gateway.core.effects, named here too

MAX_BOOKING_LENGTH = timedelta(days=31)
MAX_QUERY_WINDOW = timedelta(days=366)
# How far around now recurring objects are checked for double bookings.
CONFLICT_PAST = timedelta(days=366)
CONFLICT_HORIZON = timedelta(days=2 * 366)
# Objects of an import written per transaction: large enough that commits
# cost little, small enough that the write lock is never held for long.
IMPORT_BATCH = 200


def _new_id() -> str:
    return uuid.uuid4().hex


class BookingService:
    def __init__(
        self,
        repository: MirrorRepository,
        codec: CalendarCodec,
        resources: Mapping[str, Resource],
        *,
        uid_domain: str,
        mirror: Mapping[str, MirrorPolicy] | None = None,
        invitations: bool = True,
        implicit_scheduling: Mapping[str, bool] | None = None,
        organizer_address: str | None = None,
        accept_invitations: Mapping[str, bool] | None = None,
        clock: Callable[[], datetime] = _utc_now,
        new_id: Callable[[], str] = _new_id,
    ) -> None:
        self._repo = repository
        self._codec = codec
        self._resources = dict(resources)
        self._uid_domain = uid_domain
        self._mirror = dict(mirror or {})
        # False when no mail is configured: nothing would ever send them.
        self._invitations = invitations
        # resource id -> whether CalDAV writes invite attendees (RFC 6638),
        # on unless turned off.
        self._implicit = dict(implicit_scheduling or {})
        # The address invitations name as ORGANIZER (mail.from_address): an
        # object organized by it is the gateway's too.
        self._organizer_address = organizer_address
        # resource id -> whether it answers CalDAV invitations itself (off
        # unless turned on; gateway.core.resource_invitations).
        self._accepting = tuple(
            InvitableResource(r.id, r.email)
            for r in self._resources.values()
            if (accept_invitations or {}).get(r.id, False)
        )
        self._clock = clock
        self._new_id = new_id
        self._changed: list[Callable[[], None]] = []
        self._freshness: FreshnessGuard | None = None

    def look_at_google_first(self, guard: FreshnessGuard | None) -> None:
        """Before a booking claims time on a resource that imports from
        Google, bring its busy time up to date (``gateway.core.freshness``).
        None (no Google section, ``freshness_seconds: 0``): never."""
        self._freshness = guard

    async def _fresh_look(self, resource_id: str) -> StaleRisk | None:
        """Before the transaction: nothing is written when the booking is
        refused (``BusyTimeUnverified``), and no write lock waits on Google."""
        if self._freshness is None:
            return None
        return await self._freshness.ensure(resource_id)

    async def _made_before(self, idempotency_key: str | None) -> bool:
        """Whether a create with this key was already done: its retry needs no
        fresh look at Google (it answers as the first time, even when Google
        is late). Asked only when there is a look to spare."""
        if self._freshness is None or idempotency_key is None:
            return False
        async with self._repo.transaction() as tx:
            return await tx.idempotency(idempotency_key) is not None

    def on_change(self, callback: Callable[[], None]) -> None:
        """Call ``callback`` after every committed change that queued side
        effects (the outbox worker's wake-up)."""
        self._changed.append(callback)

    def _committed(self) -> None:
        for callback in self._changed:
            callback()

    def mirror_policy(self, resource_id: str) -> MirrorPolicy:
        return self._mirror.get(resource_id, MirrorPolicy())

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
        found = [o.booking for o in objects if await self._hits(o, window)]
        return sorted(found, key=lambda b: (b.start, b.id))

    async def busy(self, resource_id: str, window: TimeSpan) -> list[TimeSpan]:
        """Merged busy intervals of a resource, clipped to ``window``."""
        self.resource(resource_id)
        _check_window(window)
        objects = await self._repo.in_span(resource_id, window, blocking_only=True)
        spans = [s for o in objects for s in await self._occurrences(o, window)]
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
        risk = None
        if not await self._made_before(idempotency_key):
            risk = await self._fresh_look(resource.id)
        async with self._repo.transaction() as tx:
            if idempotency_key is not None:
                earlier = await tx.idempotency(idempotency_key)
                if earlier is not None:
                    # The digest only where a key asks for it (issue 17).
                    if earlier.fingerprint != draft.fingerprint():
                        raise IdempotencyKeyReused(idempotency_key)
                    obj = await tx.get_by_id(earlier.booking_id)
                    if obj is None:  # pragma: no cover - the store keeps both together
                        raise NotFound("booking", earlier.booking_id)
                    return obj.booking
            await self._refuse_overlap(tx, resource.id, [span], exclude_uid=None)
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
                    idempotency_key, IdempotencyRecord(draft.fingerprint(), booking_id)
                )
            queued = await self._queue(tx, Change(None, booking, ChangeOrigin.API), minted=True)
            if risk is not None:
                await tx.log(risk.log_entry(booking.id, now))
        if queued:
            # Nothing queued, nothing for the outbox worker to look at.
            self._committed()
        if risk is not None:
            risk.warn(booking.id)
        return booking

    async def reschedule(self, booking_id: str, changes: BookingChanges) -> Booking:
        """Move and/or edit a booking; SEQUENCE grows on every real change."""
        risk = None
        # Read before the transaction only for the look at Google (no write
        # lock waits on Google); without one the transaction's read is enough.
        current = await self._repo.get_by_id(booking_id) if self._freshness is not None else None
        if current is not None and _moves(current.booking, changes):
            risk = await self._fresh_look(current.resource_id)
        async with self._repo.transaction() as tx:
            previous = await _existing(tx, booking_id)
            old = previous.booking
            _refuse_imported(previous)
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
                await self._refuse_overlap(tx, resource.id, [span], exclude_uid=old.uid)
            if updated.start != old.start or updated.end != old.end:
                # A moved appointment is a new question to the booker: their
                # earlier answer was about the old time (a change of DTSTART
                # or DTEND is "significant" in iTIP practice), so it is asked
                # again with the REQUEST that announces the move.
                updated = replace(
                    updated,
                    attendees=tuple(
                        replace(a, partstat=PartStat.NEEDS_ACTION) for a in updated.attendees
                    ),
                )
            updated = replace(updated, sequence=old.sequence + 1, updated=self._clock())
            updated = carry_answer_times(old, updated)  # a new SEQUENCE asks again
            await self._save(tx, updated, resource, previous=previous)
            await self._queue(tx, Change(old, updated, ChangeOrigin.API))
            if risk is not None:
                await tx.log(risk.log_entry(updated.id, updated.updated))
        self._committed()
        if risk is not None:
            risk.warn(updated.id)
        return updated

    async def cancel(self, booking_id: str) -> Booking:
        """Cancel a booking: kept with STATUS:CANCELLED and SEQUENCE+1 (RFC 5546
        3.2.5), no longer blocking time. Cancelling twice changes nothing."""
        async with self._repo.transaction() as tx:
            previous = await _existing(tx, booking_id)
            old = previous.booking
            _refuse_imported(previous)
            if old.status is BookingStatus.CANCELLED:
                return old
            cancelled = replace(
                old,
                status=BookingStatus.CANCELLED,
                sequence=old.sequence + 1,
                updated=self._clock(),
            )
            await self._save(tx, cancelled, self.resource(old.resource_id), previous=previous)
            await self._queue(tx, Change(old, cancelled, ChangeOrigin.API))
        self._committed()
        return cancelled

    # -- calendar objects (CalDAV) -----------------------------------------------

    async def put_object(
        self, resource_id: str, href: str, ics: str, condition: Precondition
    ) -> tuple[CalendarObject, bool]:
        """Store a client's calendar object under ``href`` exactly as sent
        (RFC 4791 5.3.2); returns it and whether it is new.

        Raises ``InvalidCalendarData`` (not a valid object resource),
        ``PreconditionFailed``, ``UidConflict`` and ``BookingConflict``. The
        object is parsed before the transaction: parsing is the slow part and
        must not hold the write lock."""
        resource = self.resource(resource_id)
        # Off the event loop: a bounded series is expanded whole (up to
        # limits.expansion_seconds).
        parsed = await asyncio.to_thread(self._codec.parse, ics, resource.timezone)
        risk = None
        # The object before, read outside the lock only for what needs it
        # there: the look at Google, and a series whose attendees may have
        # been told (both sides recurring, ``_series_told``). Otherwise the
        # transaction's own read below is the only one.
        current = (
            await self._repo.get_by_href(resource_id, href)
            if self._freshness is not None or parsed.recurring
            else None
        )
        if self._freshness is not None and claims_new_time(parsed, current, ics):
            risk = await self._fresh_look(resource_id)
        # The series before the change (which occurrences its attendees were
        # told of), read here: parsing must not hold the write lock. Most
        # writes have nobody to tell, and then no parse (nor thread) at all.
        before_scheduling = (
            await asyncio.to_thread(self._series_before, current, parsed, resource)
            if _series_told(current, parsed)
            else None
        )
        async with self._repo.transaction() as tx:
            previous = await tx.get_by_href(resource_id, href)
            if previous is not None and (current is None or current.ics != previous.ics):
                before_scheduling = self._series_before(previous, parsed, resource)
            if not condition.holds(
                previous.etag if previous else None, previous.schedule_tag if previous else None
            ):
                raise PreconditionFailed(_precondition_message(href, previous, condition))
            if previous is not None and condition.keeps_server_changes(
                previous.etag, previous.schedule_tag
            ):
                # RFC 6638 3.2.10: the answers that came in since the client
                # read the object stay. Parsed again in the transaction, so
                # no answer can come in between; rare (a schedule tag sent
                # after an answer), so the lock is held longer only then.
                kept = self._codec.keep_server_answers(previous.ics, ics)
                if kept != ics:
                    ics = kept
                    parsed = self._codec.parse(ics, resource.timezone)
            obj, written, queued = await self._store_object(
                tx, resource, href, ics, parsed, previous, before_scheduling=before_scheduling
            )
            if written:
                # Resources it invites answer, in this transaction.
                before = previous.booking if previous else None
                answered = await self._answer_invitations(tx, before, obj, parsed.scheduling)
                obj = answered or obj
            if risk is not None and written:
                await tx.log(risk.log_entry(obj.booking.id, obj.booking.updated))
        if queued or (written and self._accepting):
            # Nothing queued (a plain event), nothing for the outbox worker
            # to look at: its claim is a write transaction of its own. (A
            # resource answering an invitation may queue too: woken then.)
            self._committed()
        if risk is not None and written:
            risk.warn(obj.booking.id)
        return obj, previous is None

    async def _store_object(
        self,
        tx: WriteTransaction,
        resource: Resource,
        href: str,
        ics: str,
        parsed: ParsedObject,
        previous: CalendarObject | None,
        *,
        origin: Origin = Origin.CALDAV,
        over: bool = False,
        before_scheduling: Scheduling | None = None,
    ) -> tuple[CalendarObject, bool, int]:
        """The checks and the write of a calendar object stored as sent (a
        CalDAV PUT, one object of an import): ``previous`` is what ``href``
        holds now (``before_scheduling``: what its text says, when read,
        ``_series_before``). Returns the object, whether anything was
        written, and how many effects it queued.
        Raises before writing anything when the object is refused."""
        if previous is not None:
            _refuse_imported(previous)
        if previous is not None and previous.uid != parsed.uid:
            # A new UID would make this a different object (and booking)
            # under an old name; clients delete and create instead.
            raise UidConflict(
                previous.uid,
                href,
                f"the object {href!r} has UID {previous.uid!r}; delete it to store "
                f"UID {parsed.uid!r} under this name",
            )
        if previous is None:
            holder = await tx.get_by_uid(resource.id, parsed.uid)
            if holder is not None:
                raise UidConflict(parsed.uid, holder.href)
            if is_imported_uid(parsed.uid):
                raise UidConflict(
                    parsed.uid,
                    "",
                    f"UID {parsed.uid!r} has the form reserved for busy blocks imported "
                    "from Google Calendar; give the event another UID",
                )
            if is_invited_uid(parsed.uid):
                raise UidConflict(
                    parsed.uid,
                    "",
                    f"UID {parsed.uid!r} has the form reserved for resources' bookings "
                    "made by invitation; give the event another UID",
                )
        if previous is not None and previous.ics == ics:
            return previous, False, 0  # a repeated PUT changes nothing
        now = self._clock()
        booking = parsed.booking(
            id=previous.booking.id if previous else self._new_id(),
            resource_id=resource.id,
            created=previous.booking.created if previous else now,
            updated=now,
            origin=previous.booking.origin if previous else origin,
        )
        booking = carry_answer_times(previous.booking if previous else None, booking)
        change = Change(
            previous.booking if previous else None,
            booking,
            ChangeOrigin.IMPORT if origin is Origin.IMPORT else ChangeOrigin.CALDAV,
            scheduling=parsed.scheduling,
            over=over,
            before_scheduling=before_scheduling,
        )
        # A new object's booking id was made just now: no Google link names it.
        policy = await self._effect_policy(booking, minted=previous is None)
        effects = effects_of(change, policy)
        if schedules(change, policy):
            booking, ics, effects = self._as_scheduled(change, policy, previous, ics, parsed)
            if previous is not None and previous.ics == ics:
                return previous, False, 0  # the same PUT again, with the server's values
        obj = CalendarObject(booking=booking, ics=ics, span=parsed.span, href=href)
        await self._refuse_double_booking(tx, obj, previous)
        await tx.save(obj)
        for effect in effects:
            await tx.enqueue(effect.outbox())
        return obj, True, len(effects)

    def _as_scheduled(
        self,
        change: Change,
        policy: EffectPolicy,
        previous: CalendarObject | None,
        ics: str,
        parsed: ParsedObject,
    ) -> tuple[Booking, str, tuple[Effect, ...]]:
        """A CalDAV write the gateway schedules, as stored: the booking, its
        text and its effects. SEQUENCE is raised for a significant change
        the client did not raise it for (RFC 5546 2.1.4, the rule is
        ``gateway.core.sequence``); SCHEDULE-STATUS is the server's (RFC
        6638 3.2.9): 1.0 for each attendee this change sends a message, the
        stored value for the other attendees it schedules, and what the
        client wrote only for those it left to the client (SCHEDULE-AGENT)."""
        after = change.after
        assert after is not None  # a write, not a delete
        if previous is not None and (after.attendees or previous.booking.attendees):
            before = previous.booking
            # The series as the texts say (RRULE/RDATE/EXDATE and the
            # overridden occurrences); the master's lines where the text
            # before could not be read.
            recurrence_changed = before.recurring and after.recurring
            if change.before_scheduling is not None:
                recurrence_changed = recurrence_changed and (
                    change.before_scheduling.recurrence != parsed.scheduling.recurrence
                )
            else:
                recurrence_changed = recurrence_changed and self._codec.recurrence(
                    previous
                ) != self._codec.recurrence(replace(previous, booking=after, ics=ics))
            sequence = sequence_after(before, after, recurrence_changed=recurrence_changed)
            if sequence != after.sequence:
                after = replace(after, sequence=sequence)
                ics = self._codec.with_sequence(ics, sequence)
                change = replace(change, after=after)
        effects = effects_of(change, policy)
        told = [e.attendee for e in effects if isinstance(e, Invite)]
        earlier = self._codec.schedule_statuses(previous.ics) if previous else {}
        by_client = parsed.scheduling.by_client
        codes: dict[str, str | None] = {}
        for attendee in after.attendees:
            if any(same_address(attendee.email, c) for c in by_client):
                continue  # the client's to schedule, and its status to write
            if any(same_address(attendee.email, t) for t in told):
                codes[attendee.email] = PENDING
            else:
                # None: a status the client wrote is not the client's to write.
                codes[attendee.email] = earlier.get(mailbox(attendee.email))
        return after, self._codec.with_schedule_status(ics, codes), effects

    async def delete_object(self, resource_id: str, href: str, condition: Precondition) -> None:
        """Remove a calendar object (CalDAV DELETE); raises ``NotFound`` and
        ``PreconditionFailed``."""
        resource = self.resource(resource_id)
        # Read before the transaction: parsing must not hold the write lock.
        # Only the text of an object with attendees is parsed, so only that
        # is read (most objects have nobody to tell: one column, no booking).
        seen = await self._repo.text_with_attendees(resource_id, href)
        scheduling = (
            await asyncio.to_thread(self._scheduling_in, seen, resource)
            if seen is not None
            else None
        )
        async with self._repo.transaction() as tx:
            previous = await tx.get_by_href(resource_id, href)
            if previous is None:
                raise NotFound("calendar object", href)
            if not condition.holds(previous.etag, previous.schedule_tag):
                raise PreconditionFailed(_precondition_message(href, previous, condition))
            _refuse_imported(previous)
            if seen is None or seen != previous.ics:  # changed in between, or nobody to tell
                scheduling = self._scheduling_of(previous, resource)
            await tx.delete(resource_id, previous.uid)
            change = Change(
                previous.booking,
                None,
                ChangeOrigin.CALDAV,
                scheduling=scheduling,
                deleted_text=previous.ics,
            )
            queued = await self._queue(tx, change)
            # Resources it invited let their bookings go, in this transaction.
            await self._answer_invitations(tx, previous.booking, None, scheduling)
        if queued or self._accepting:  # as in put_object
            self._committed()

    async def record_schedule_status(
        self, booking_id: str, attendee: str, sequence: int, code: str
    ) -> bool:
        """Write back how sending an attendee's invitation went: their
        ATTENDEE's SCHEDULE-STATUS becomes ``code`` (RFC 6638 3.2.9,
        ``gateway.core.schedule_status``). Only while the object is still at
        ``sequence`` (a newer change has queued its own message and status)
        and only where the server set a status when it queued the message;
        a deleted object is left alone. A write like any other (new ETag,
        sync revision) that causes nothing and keeps the schedule tag (RFC
        6638 3.2.10: not the organizer's change). Returns whether it wrote."""
        async with self._repo.transaction() as tx:
            obj = await tx.get_by_id(booking_id)
            if obj is None or obj.booking.sequence != sequence:
                return False
            if self._codec.schedule_statuses(obj.ics).get(mailbox(attendee)) in (None, code):
                return False
            ics = self._codec.with_schedule_status(obj.ics, {attendee: code})
            if ics == obj.ics:
                return False
            await tx.save(replace(obj, ics=ics))
        return True

    async def import_calendar(
        self,
        resource_id: str,
        text: str,
        *,
        dry_run: bool = False,
        progress: Progress | None = None,
        max_object_bytes: int | None = None,
    ) -> ImportReport:
        """Import a calendar file (an export, any size) into a resource's
        calendar: one object per UID, each taking the steps of a CalDAV PUT
        of it (valid data, a UID of its own, no double booking) and stored as
        the file wrote it. An object whose UID the calendar already holds
        replaces it (unchanged when identical), so a second run of the same
        file changes nothing. Nothing is mailed; bookings that end after now
        are queued for Google like a CalDAV PUT's, earlier ones are not.

        Objects are written in batches of ``IMPORT_BATCH``, one transaction
        each; ``progress`` hears after each batch. A dry run takes the same
        steps over ``DryRunWrites`` and writes nothing. An object larger
        than ``max_object_bytes`` (what a CalDAV PUT may send) is refused.
        Raises ``UnsplittableFile`` when the file has no calendar structure."""
        resource = self.resource(resource_id)
        calendar = self._codec.split(text)
        outcomes = [
            ImportOutcome("", u.line, ImportStatus.INVALID, u.message) for u in calendar.unplaced
        ]
        pieces = calendar.pieces
        dry = DryRunWrites(self._repo) if dry_run else None
        for first in range(0, len(pieces), IMPORT_BATCH):
            batch = pieces[first : first + IMPORT_BATCH]
            # Parsing is most of an import's time: an object already stored
            # exactly so (a second run) needs none.
            reads = dry if dry is not None else self._repo
            stored = [await reads.get_by_uid(resource.id, piece.uid) for piece in batch]
            unparsed = [
                piece
                for piece, obj in zip(batch, stored, strict=True)
                if obj is None or obj.ics != piece.ics
            ]
            parsed = await asyncio.to_thread(
                _parse_each, self._codec, unparsed, resource.timezone, max_object_bytes
            )
            if dry is not None:
                outcomes += await self._import_batch(dry, resource, batch, parsed)
            else:
                async with self._repo.transaction() as tx:
                    outcomes += await self._import_batch(tx, resource, batch, parsed)
                self._committed()
            if progress is not None:
                progress(first + len(batch), len(pieces))
        outcomes.sort(key=lambda outcome: outcome.line)
        return ImportReport(resource.id, dry_run, tuple(outcomes))

    async def _import_batch(
        self,
        tx: WriteTransaction,
        resource: Resource,
        batch: Sequence[ImportPiece],
        parsed: Mapping[ImportPiece, ParsedObject | InvalidCalendarData],
    ) -> list[ImportOutcome]:
        """Store each piece of ``batch`` (parsed, or not parsed when it was
        stored exactly so just before) through ``tx``; the outcome of each."""
        outcomes = []
        now = self._clock()
        for piece in batch:
            try:
                result = parsed.get(piece)
                if result is None:
                    stored = await tx.get_by_uid(resource.id, piece.uid)
                    if stored is not None and stored.ics == piece.ics:
                        outcomes.append(
                            ImportOutcome(stored.uid, piece.line, ImportStatus.UNCHANGED)
                        )
                        continue
                    # Changed since it was compared: parse it now after all.
                    result = _parse_each(self._codec, [piece], resource.timezone, None)[piece]
                if isinstance(result, InvalidCalendarData):
                    raise result
                previous = await tx.get_by_uid(resource.id, result.uid)
                href = previous.href if previous else import_href(result.uid)
                if previous is None and await tx.get_by_href(resource.id, href) is not None:
                    href = import_href(result.uid, taken=True)
                obj, written, _ = await self._store_object(
                    tx,
                    resource,
                    href,
                    piece.ics,
                    result,
                    previous,
                    origin=Origin.IMPORT,
                    over=result.span.end <= now,
                )
            except (
                InvalidCalendarData,
                UidConflict,
                BookingConflict,
                ImportedObject,
                ExpansionLimit,
            ) as error:
                outcomes.append(_refused(piece, error))
            else:
                status = (
                    ImportStatus.UNCHANGED
                    if not written
                    else ImportStatus.UPDATED
                    if previous
                    else ImportStatus.STORED
                )
                outcomes.append(ImportOutcome(obj.uid, piece.line, status))
        return outcomes

    async def apply_import(self, batch: ImportBatch, calendar_id: str) -> ImportResult:
        """Commit one page of Google changes (busy blocks, their links, the
        sync token) in one transaction; see ``gateway.core.imports``."""
        resource = self.resource(batch.resource_id)
        applier = ImportApplier(self._codec, resource, self._clock, self._new_id)
        async with self._repo.transaction() as tx:
            result = await applier.apply(tx, batch, calendar_id)
            for booking_id in batch.repush:
                # force: write even though our last write is unchanged; it
                # is Google's copy that changed.
                repush = GooglePushPayload(reason="edited in Google", force=True)
                await tx.enqueue(OutboxEffect(resource.id, booking_id, repush))
        if batch.repush:
            self._committed()
        return result

    async def push_all(self, resource_id: str, since: datetime) -> int:
        """Queue a Google push for every booking of a resource still to come
        after ``since`` (a newly connected calendar gets the existing bookings)."""
        resource = self.resource(resource_id)
        if not self.mirror_policy(resource.id).direction.pushes:
            return 0
        objects = await self._repo.in_span(resource.id, TimeSpan(since, FAR_FUTURE))
        async with self._repo.transaction() as tx:
            queued = 0
            for obj in objects:
                booking = obj.booking
                if booking.origin is not Origin.GOOGLE and booking.blocks_time:
                    push = GooglePush(
                        booking.resource_id, booking.id, booking.uid, booking.sequence
                    )
                    await tx.enqueue(push.outbox())
                    queued += 1
        self._committed()
        return queued

    async def _refuse_double_booking(
        self, tx: WriteTransaction, obj: CalendarObject, previous: CalendarObject | None
    ) -> None:
        """Refuse time the object newly claims if it overlaps other busy time.

        Only newly claimed occurrences are checked, so editing the title of a
        series that already overlaps something (a busy block imported later,
        say) still works. Recurring objects are checked within
        ``CONFLICT_PAST`` before and ``CONFLICT_HORIZON`` after now: an
        unbounded series has no last occurrence to check up to."""
        if not obj.booking.blocks_time:
            return  # TRANSP:TRANSPARENT or cancelled (RFC 5545 3.8.2.7)
        window = obj.span
        if obj.booking.recurring or (previous is not None and previous.booking.recurring):
            now = self._clock()
            start = max(window.start, now - CONFLICT_PAST)
            end = min(window.end, now + CONFLICT_HORIZON)
            if end <= start:
                return
            window = TimeSpan(start, end)
        claimed = list(await self._occurrences(obj, window))
        if previous is not None and previous.booking.blocks_time:
            held = set(await self._occurrences(previous, window))
            claimed = [span for span in claimed if span not in held]
        await self._refuse_overlap(tx, obj.resource_id, claimed, exclude_uid=obj.uid)

    # -- helpers ---------------------------------------------------------------

    async def _hits(self, obj: CalendarObject, window: TimeSpan) -> bool:
        if not obj.booking.recurring:
            return True  # the index span is exact for a single occurrence
        return bool(await self._occurrences(obj, window))

    async def _occurrences(self, obj: CalendarObject, window: TimeSpan) -> Sequence[TimeSpan]:
        """The codec's occurrences; a recurring object is expanded in a worker
        thread (it may take up to the codec's limits, and /healthz must go on
        answering meanwhile). Raises ``ExpansionLimit`` past those limits."""
        if not obj.booking.recurring:
            return self._codec.occurrences(obj, window)
        return await asyncio.to_thread(self._codec.occurrences, obj, window)

    async def _refuse_overlap(
        self,
        tx: WriteTransaction,
        resource_id: str,
        claimed: Sequence[TimeSpan],
        exclude_uid: str | None,
    ) -> None:
        """Raise ``BookingConflict`` if busy time of the resource (other than
        the object ``exclude_uid`` itself) overlaps any ``claimed`` span."""
        # Zero-length spans block nothing (half-open overlap).
        wanted = merge_spans(s for s in claimed if s.start < s.end)
        if not wanted:
            return
        window = TimeSpan(wanted[0].start, wanted[-1].end)
        starts = [s.start for s in wanted]
        candidates = await tx.in_span(resource_id, window, blocking_only=True)
        clashes = [
            occurrence
            for obj in candidates
            if obj.uid != exclude_uid
            for occurrence in await self._occurrences(obj, window)
            if _overlaps_any(occurrence, wanted, starts)
        ]
        if clashes:
            raise BookingConflict(resource_id, merge_spans(clashes))

    async def _save(
        self,
        tx: WriteTransaction,
        booking: Booking,
        resource: Resource,
        previous: CalendarObject | None,
        *,
        keep_schedule_tag: bool = False,
    ) -> None:
        """Render and store ``booking``. A change of the gateway as organizer
        gets a new schedule tag (RFC 6638 3.2.10); ``keep_schedule_tag``: a
        change only the server made (an answer), which keeps it."""
        ics = self._codec.render(booking, resource, previous.ics if previous else None)
        span = _span_of(booking)
        if booking.recurring:
            # The index must cover every occurrence, not just the first.
            span = self._codec.parse(ics, resource.timezone).span
        await tx.save(
            CalendarObject(
                booking=booking,
                ics=ics,
                span=span,
                href=previous.href if previous else "",
                schedule_tag=previous.schedule_tag if previous and keep_schedule_tag else "",
            )
        )

    async def _queue(self, tx: WriteTransaction, change: Change, *, minted: bool = False) -> int:
        """Queue what ``change`` causes (``gateway.core.effects`` decides it)
        in its transaction; returns how many effects. ``minted``: the
        booking's id was made in this transaction."""
        effects = effects_of(change, await self._effect_policy(change.booking, minted=minted))
        for effect in effects:
            await tx.enqueue(effect.outbox())
        return len(effects)

    async def _effect_policy(self, booking: Booking, *, minted: bool = False) -> EffectPolicy:
        resource = self.resource(booking.resource_id)
        direction = self.mirror_policy(booking.resource_id).direction
        in_google = False
        # A link names a booking id; none can name an id made just now.
        if not direction.pushes and booking.origin is not Origin.GOOGLE and not minted:
            # Read outside the transaction: links are written by the pusher
            # only, for resources that pushed (not this one since the change).
            link = await self._repo.get_link(booking.resource_id, google_event_id(booking.id))
            in_google = link is not None
        organizers: tuple[str, ...] = (resource.email,)
        if self._organizer_address is not None:
            organizers += (self._organizer_address,)
        return EffectPolicy(
            direction=direction,
            in_google=in_google,
            invitations=self._invitations,
            implicit_scheduling=self._implicit.get(resource.id, True),
            organizers=organizers,
            answered_inside=tuple(r.email for r in self._accepting if r.id != resource.id),
        )

    def _series_before(
        self, previous: CalendarObject | None, parsed: ParsedObject, resource: Resource
    ) -> Scheduling | None:
        """What the stored text of a series being changed says (its
        cancelled and overridden occurrences, ``Change.before_scheduling``);
        None when nobody could be told of an occurrence: no series before or
        after, no attendees, or a text that no longer parses."""
        if previous is None or not _series_told(previous, parsed):
            return None
        try:
            return self._codec.parse(previous.ics, resource.timezone).scheduling
        except GatewayError:
            return None

    def _scheduling_of(self, obj: CalendarObject | None, resource: Resource) -> Scheduling | None:
        """What a stored object's text says about who schedules it (None: no
        object, or one with nobody to tell)."""
        if obj is None or not _has_attendees(obj):
            return None
        return self._scheduling_in(obj.ics, resource)

    def _scheduling_in(self, ics: str, resource: Resource) -> Scheduling | None:
        """``_scheduling_of`` a stored text whose booking has attendees."""
        try:
            return self._codec.parse(ics, resource.timezone).scheduling
        except GatewayError:
            # Stored under laxer limits, say: deleted all the same, and
            # nobody is told on the gateway's behalf.
            return None

    # -- resources booked by invitation (gateway.core.resource_invitations) ------

    async def _answer_invitations(
        self,
        tx: WriteTransaction,
        before: Booking | None,
        after: CalendarObject | None,
        scheduling: Scheduling | None,
    ) -> CalendarObject | None:
        """Carry out what resources that accept invitations decide about an
        organizer's change (``after`` None: deleted): book, move or free
        their own bookings, write their answers into the organizer's object
        (returned as stored) and queue the REPLYs to an external organizer."""
        if not self._accepting:
            return after
        source = after.booking if after is not None else before
        if source is None:
            return after
        addresses = {r.email.casefold() for r in self._accepting}
        types: Mapping[str, str] = {}
        if after is not None and any(a.email.casefold() in addresses for a in source.attendees):
            types = self._codec.calendar_user_types(after.ics)
        gateway_addresses = [r.email for r in self._resources.values()]
        if self._organizer_address is not None:
            gateway_addresses.append(self._organizer_address)
        requests = requests_of(
            before,
            after.booking if after is not None else None,
            self._accepting,
            organizer=scheduling.organizer if scheduling else "",
            gateway_addresses=gateway_addresses,
            by_client=scheduling.by_client if scheduling else (),
            calendar_user_types=types,
        )
        uid = invited_uid(source.id)
        answered = after
        for request in requests:
            resource = self.resource(request.resource.id)
            held = await tx.get_by_uid(resource.id, uid)
            clashes: list[TimeSpan] = []
            if request.span is not None and not request.refusal:
                try:
                    await self._refuse_overlap(tx, resource.id, [request.span], exclude_uid=uid)
                except BookingConflict as conflict:
                    clashes = conflict.conflicts
            decision = decide(request, held.span if held is not None else None, clashes)
            if decision.action is Action.FREE and held is not None:
                await tx.delete(resource.id, uid)
                await self._queue(tx, Change(held.booking, None, ChangeOrigin.CALDAV))
            elif decision.action in (Action.BOOK, Action.MOVE):
                await self._hold(tx, resource, uid, source, held)
            if decision.partstat is None or answered is None:
                continue
            email = next(
                a.email for a in answered.booking.attendees if same_address(a.email, resource.email)
            )
            ics = self._codec.answered(answered.ics, email, decision.partstat)
            ics = self._codec.with_schedule_status(ics, {email: SCHEDULE_DELIVERED})
            attendees = tuple(
                replace(a, partstat=decision.partstat) if a.email == email else a
                for a in answered.booking.attendees
            )
            # A change the server makes: the schedule tag stays (replace).
            answered = replace(
                answered, ics=ics, booking=replace(answered.booking, attendees=attendees)
            )
            if decision.reply and self._invitations:  # no mail, no REPLY
                reply = ResourceReply(
                    resource.id,
                    source.id,
                    source.uid,
                    source.sequence,
                    request.reply_to,
                    email,
                    decision.partstat,
                    decision.statuses,
                    source.title,
                    request.span or TimeSpan(source.start, source.end),
                )
                await tx.enqueue(reply.outbox())
        if answered is not None and answered is not after:
            await tx.save(answered)
        return answered

    async def _hold(
        self,
        tx: WriteTransaction,
        resource: Resource,
        uid: str,
        source: Booking,
        held: CalendarObject | None,
    ) -> None:
        """The resource's own booking for the organizer's ``source``, made or
        brought in line with it (a CalDAV booking of the resource as far as
        its feed, free-busy and Google mirror are concerned)."""
        now = self._clock()
        booking = Booking(
            id=held.booking.id if held is not None else self._new_id(),
            resource_id=resource.id,
            uid=uid,
            title=source.title,
            start=source.start,
            end=source.end,
            timezone=source.timezone,
            created=held.booking.created if held is not None else now,
            updated=now,
            description=source.description,
            location=source.location,
            origin=Origin.CALDAV,
            sequence=held.booking.sequence + 1 if held is not None else 0,
        )
        unchanged = held is not None and booking == replace(
            held.booking, updated=now, sequence=booking.sequence
        )
        if unchanged:
            return  # nothing it shows has changed
        await self._save(tx, booking, resource, previous=held)
        await self._queue(tx, Change(held.booking if held else None, booking, ChangeOrigin.CALDAV))

    # -- answers from bookers -----------------------------------------------------

    async def reply_target(self, reply: ItipReply) -> CalendarObject | None:
        """The calendar object an iTIP REPLY answers (None: no booking has its
        UID); raises ``AmbiguousReply`` when several bookings hold the UID and
        nothing in the reply tells them apart (``gateway.core.answers``)."""
        candidates = await self._repo.with_uid(reply.uid)
        targets = [
            ReplyTarget(obj.booking, self._resources[obj.resource_id].email)
            for obj in candidates
            if obj.resource_id in self._resources
        ]
        routing = route_reply(reply, targets)
        if routing.ambiguous:
            _log.warning(
                "answer refused: its UID is ambiguous",
                extra={
                    "uid": reply.uid,
                    "attendee": reply.attendee_email,
                    "organizer": reply.organizer_email,
                    "bookings": [o.booking.id for o in candidates],
                },
            )
            raise AmbiguousReply(reply.uid, routing.reason)
        if routing.booking is None:
            return None
        return next(o for o in candidates if o.booking.id == routing.booking.id)

    async def apply_reply(
        self, reply: ItipReply, via: str, booking_id: str | None = None
    ) -> ReplyOutcome:
        """An attendee's answer (iTIP REPLY by e-mail, a signed link, ...):
        their PARTSTAT changes when the reply names the booking's UID, one of
        its attendees and its current SEQUENCE (RFC 5546 3.2.3, 2.1.5) and was
        given no earlier than the answer stored (``gateway.core.answers``);
        anything else is logged in the resource's log and dropped. An answer
        changes no SEQUENCE (it is not the organizer's change).

        ``booking_id``: the booking the answer was sent for (a signed link
        names it); without it the reply is routed by UID and ORGANIZER, and
        one whose UID several bookings hold without telling which is refused."""
        if booking_id is None:
            try:
                found = await self.reply_target(reply)
            except AmbiguousReply as exc:  # logged by reply_target
                return ReplyOutcome(False, str(exc))
            if found is None:
                return ReplyOutcome(False, f"no booking has UID {reply.uid!r}")
            booking_id = found.booking.id
        async with self._repo.transaction() as tx:
            obj = await tx.get_by_id(booking_id)
            if obj is None or obj.resource_id not in self._resources:
                return ReplyOutcome(False, f"no booking has UID {reply.uid!r}")
            resource = self.resource(obj.resource_id)
            booking = obj.booking
            now = self._clock()
            applies, why = reply_applies(booking, reply)
            given_at = answer_time(reply.dtstamp, now)
            current = next(
                (a for a in booking.attendees if same_address(a.email, reply.attendee_email)),
                None,
            )
            if applies and current is not None and not supersedes(current, given_at):
                applies, why = False, superseded_reason(current, given_at)
            if not applies:
                await tx.log(
                    SyncLogEntry(
                        resource.id,
                        LogKind.INFO,
                        f"answer from {reply.attendee_email} ({via}) ignored: {why}",
                        now,
                        booking_id=booking.id,
                    )
                )
                return ReplyOutcome(False, why, booking)
            attendees = tuple(
                replace(a, partstat=reply.partstat, answered_at=given_at)
                if same_address(a.email, reply.attendee_email)
                else a
                for a in booking.attendees
            )
            if attendees == booking.attendees:  # the same answer, given again
                # Its newer time is kept all the same: an answer given in
                # between must lose against it. The object is unchanged.
                unchanged = replace(booking, attendees=attendees)
                await tx.keep_answer_times(unchanged)
                return ReplyOutcome(True, "unchanged", unchanged)
            updated = replace(booking, attendees=attendees, updated=now)
            if keeps_client_text(booking):
                # The app's own lines stay as it wrote them, and its
                # schedule tag with them (replace keeps it).
                assert current is not None  # reply_applies names an attendee
                ics = self._codec.answered(obj.ics, current.email, reply.partstat)
                await tx.save(replace(obj, booking=updated, ics=ics))
            else:
                await self._save(tx, updated, resource, previous=obj, keep_schedule_tag=True)
            await tx.log(
                SyncLogEntry(
                    resource.id,
                    LogKind.INFO,
                    f"{reply.attendee_email} answered {reply.partstat.value} to "
                    f"{booking.title!r} ({via})",
                    now,
                    booking_id=booking.id,
                )
            )
            await self._queue(tx, Change(booking, updated, ChangeOrigin.REPLY))
        self._committed()
        return ReplyOutcome(True, "applied", updated)


def _series_told(previous: CalendarObject | None, parsed: ParsedObject) -> bool:
    """Whether anybody could have been told of an occurrence of the series
    ``previous`` is, which ``parsed`` changes (``_series_before``): a series
    before and after, with attendees."""
    if previous is None or not (previous.booking.recurring and parsed.recurring):
        return False
    return bool(previous.booking.attendees or parsed.attendees)


def _has_attendees(obj: CalendarObject | None) -> bool:
    """Whether a stored object has anybody to tell (``_scheduling_of``)."""
    return obj is not None and bool(obj.booking.attendees)


def _refuse_imported(obj: CalendarObject) -> None:
    if obj.booking.origin is Origin.GOOGLE:
        raise ImportedObject(obj.href)


async def _existing(tx: ReadPort, booking_id: str) -> CalendarObject:
    obj = await tx.get_by_id(booking_id)
    if obj is None:
        raise NotFound("booking", booking_id)
    return obj


def _overlaps_any(span: TimeSpan, disjoint: list[TimeSpan], starts: list[datetime]) -> bool:
    """Whether ``span`` overlaps one of ``disjoint`` (sorted, merged; ``starts``
    their start times): only the last span starting before ``span`` ends can."""
    if span.start >= span.end:
        return False
    index = bisect.bisect_left(starts, span.end) - 1
    return index >= 0 and disjoint[index].end > span.start


def _precondition_message(
    href: str, current: CalendarObject | None, condition: Precondition
) -> str:
    if current is None:
        return f"there is no calendar object {href!r}"
    if condition.if_schedule_tag_match not in (None, current.schedule_tag):
        return (
            f"the calendar object {href!r} was changed by its organizer since "
            f"(If-Schedule-Tag-Match: its schedule tag is now {current.schedule_tag})"
        )
    return f"the calendar object {href!r} has changed (its entity tag is now {current.etag})"


def _span_of(booking: Booking) -> TimeSpan:
    return TimeSpan(booking.start, booking.end).in_utc()


def _moves(booking: Booking, changes: BookingChanges) -> bool:
    """Whether a reschedule claims time the booking did not hold."""
    if not booking.blocks_time:
        return False
    start, end = changes.start or booking.start, changes.end or booking.end
    return start != booking.start or end != booking.end


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


def _parse_each(
    codec: CalendarCodec,
    pieces: Sequence[ImportPiece],
    timezone: str,
    max_bytes: int | None,
) -> dict[ImportPiece, ParsedObject | InvalidCalendarData]:
    """Each piece parsed, or the reason it is not a valid object (run in a
    worker thread: parsing is the slow part of an import)."""
    results: dict[ImportPiece, ParsedObject | InvalidCalendarData] = {}
    for piece in pieces:
        size = len(piece.ics.encode("utf-8", "surrogatepass"))
        if max_bytes is not None and size > max_bytes:
            # The calendar's CALDAV:max-resource-size (RFC 4791 5.2.5): no
            # client could PUT it, so no import stores it either.
            results[piece] = InvalidCalendarData(
                "max-resource-size",
                f"the object is {size} bytes; a calendar object may be at most {max_bytes}",
            )
            continue
        # What a CalDAV PUT refuses before parsing (characters XML cannot
        # carry), refused here too.
        problem = calendar_text_problem(piece.ics)
        if problem is not None:
            results[piece] = InvalidCalendarData("valid-calendar-data", problem)
            continue
        try:
            results[piece] = codec.parse(piece.ics, timezone)
        except InvalidCalendarData as error:
            results[piece] = error
    return results


def _refused(piece: ImportPiece, error: GatewayError) -> ImportOutcome:
    outcome = outcome_of(piece, error)
    assert outcome is not None, error
    return outcome
