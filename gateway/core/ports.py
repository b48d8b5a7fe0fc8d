"""Ports: what the core needs from storage and the iCalendar codec.

The store (``gateway.store``) and the codec (``gateway.ical``) implement these;
the core never imports them.

The store's ports are cut by job, each as narrow as its callers: object
reads (``ReadPort``), calendar collections, write transactions, the outbox
(``OutboxStore``, of which a mail handler sees ``OutboxJournal``), the
outbox report, the store's health, and the Google mirror's state. A caller
is typed against the port it uses, so a second backend, or a fake in a
test, implements only what that caller needs. ``Repository`` and
``MirrorRepository`` are the unions the composition root opens: both
backends implement all of it.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Callable, Collection, Mapping, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Protocol

from .mirror import Connection, EventLink, Invite, LinkKind, SyncLogEntry
from .model import (
    Booking,
    CalendarObject,
    Change,
    FailedOutboxItem,
    ObjectEntry,
    OutboxEffect,
    OutboxItem,
    ParsedObject,
    PartStat,
    Resource,
    StoredText,
    TimeSpan,
)
from .query import CompFilter, DataRequest, QueriedObject
from .schedule_freebusy import FreeBusyRequest

if TYPE_CHECKING:  # it reads ports itself (its dry run is a WriteTransaction)
    from .calendar_import import CalendarFile


@dataclass(frozen=True, slots=True)
class IdempotencyRecord:
    fingerprint: str
    booking_id: str


class ReadPort(Protocol):
    """Object reads, inside or outside a write transaction: the booking
    service, CalDAV GET and free-busy, invitation mail, the RSVP page."""

    async def get_by_id(self, booking_id: str) -> CalendarObject | None: ...

    async def get_by_uid(self, resource_id: str, uid: str) -> CalendarObject | None: ...

    async def with_uid(self, uid: str) -> list[CalendarObject]:
        """Every object with this UID, in any collection, oldest first: one at
        most, unless the database holds copies from before UIDs were unique
        across the gateway (schema version 5)."""
        ...

    async def get_by_href(self, resource_id: str, href: str) -> CalendarObject | None: ...

    async def in_span(
        self, resource_id: str, window: TimeSpan, *, blocking_only: bool = False
    ) -> list[CalendarObject]:
        """Objects whose indexed span overlaps ``window`` (candidates: recurring
        objects still need expanding). ``blocking_only`` leaves out cancelled and
        transparent objects."""
        ...


class WriteTransaction(ReadPort, Protocol):
    """One atomic unit of work. Writes serialise; on error nothing is kept."""

    async def save(self, obj: CalendarObject) -> int:
        """Insert or replace the object (by resource and UID; its href moves
        with it), update its index rows, clear a tombstone, bump the collection
        revision and log the change. Returns the new collection revision.
        Raises ``UidConflict`` (with ``resource_id``) when the object is new to
        its collection and another collection holds its UID: UIDs are unique
        across the gateway."""
        ...

    async def keep_answer_times(self, booking: Booking) -> None:
        """Store the attendees' answer times (``Attendee.answered_at``) of a
        booking whose object is otherwise unchanged: they are the gateway's
        own bookkeeping, not part of the calendar object, so nothing else is
        written (no revision, no change-log row)."""
        ...

    async def delete(self, resource_id: str, uid: str) -> int:
        """Remove the object, leave a tombstone, bump the revision, log the change."""
        ...

    async def enqueue(self, effect: OutboxEffect) -> None: ...

    async def idempotency(self, key: str) -> IdempotencyRecord | None: ...

    async def remember_idempotency(self, key: str, record: IdempotencyRecord) -> None: ...


class CalendarCollections(Protocol):
    """Calendar collections as CalDAV and the ICS feeds read them: listings
    (whole, or in pages from one snapshot), objects by name, the properties
    clients set, the revision behind ETags, ctags and sync tokens, and the
    change log behind sync-collection."""

    async def list_objects(self, resource_id: str) -> list[CalendarObject]: ...

    async def list_entries(self, resource_id: str) -> list[ObjectEntry]:
        """Every object's name, tag and size, without reading its text,
        oldest change first (by revision)."""
        ...

    def iter_entries(self, resource_id: str) -> AsyncGenerator[list[ObjectEntry]]:
        """``list_entries`` in pages, by name, all from one snapshot: memory
        stays bounded by a page however big the calendar. Close the iterator
        (``contextlib.aclosing``) if you stop early."""
        ...

    def iter_objects(self, resource_id: str) -> AsyncGenerator[list[CalendarObject]]:
        """Every object with its text, in pages, by name, from one snapshot
        (as ``iter_entries``)."""
        ...

    def iter_candidates(
        self, resource_id: str, window: TimeSpan | None
    ) -> AsyncGenerator[list[QueriedObject]]:
        """A calendar-query's candidates, as the query reads them: the objects
        ``in_span(window)`` finds, or with no window every object (by name),
        in pages from one snapshot (as ``iter_entries``): a window of years
        can hold the whole calendar."""
        ...

    async def stored_text(
        self, resource_id: str, href: str, *, with_text: bool = True
    ) -> StoredText | None:
        """The validators of the object with this name, and its text if
        ``with_text``: what GET answers, without building the booking."""
        ...

    async def text_with_attendees(self, resource_id: str, href: str) -> str | None:
        """The text of the object with this name if its booking has
        attendees (None: no such object, or nobody to tell): what a DELETE
        parses before its transaction, without building the booking."""
        ...

    async def get_many(self, resource_id: str, hrefs: Sequence[str]) -> list[QueriedObject]:
        """The objects of a collection with these names (missing ones left
        out), as a report answers them: their text and validators, not their
        bookings (a multiget of a hundred decodes no booking)."""
        ...

    async def collection_properties(self, resource_id: str) -> dict[str, str]:
        """Properties clients set on a collection (PROPPATCH), by Clark name."""
        ...

    async def set_collection_properties(
        self, resource_id: str, changes: Mapping[str, str | None]
    ) -> None:
        """Set (or, for None, remove) collection properties, all or none."""
        ...

    async def revision(self, resource_id: str) -> int:
        """Current collection revision (0 for a collection never written)."""
        ...

    async def changes_since(self, resource_id: str, revision: int) -> list[Change] | None:
        """Changes after ``revision``, oldest first, one per href (the latest);
        ``None`` if the log no longer reaches back that far, or ``revision`` is
        not one this collection has had."""
        ...


class CalendarStore(ReadPort, CalendarCollections, Protocol):
    """What CalDAV reads (``caldav_backend``): objects and their collections.
    Its object writes go through the booking service, not through this."""


class Transactions(Protocol):
    """Opening write transactions: every change to a calendar is made in one
    (by the booking service)."""

    def transaction(self) -> AbstractAsyncContextManager[WriteTransaction]: ...


class OutboxJournal(Protocol):
    """What the handler of an effect that must not happen twice unnoticed (an
    e-mail: ``gateway.mail``) records, each in a commit of its own (see
    ``gateway.core.outbox``)."""

    async def mark_outbox_sending(self, item_id: int) -> None:
        """Record, committed, that the item's effect starts now (a restart
        tells "maybe done" from "not done")."""
        ...

    async def complete_outbox(self, item_id: int, error: str | None = None) -> None:
        """Mark the item done (``error``: it failed for good, and why)."""
        ...


class OutboxStore(OutboxJournal, Protocol):
    """The outbox as its worker (``gateway.core.outbox.OutboxWorker``) drains
    it: claims under a lease, and each item's end (done, retried, deferred,
    failed for good). Items are queued by ``WriteTransaction.enqueue``, in the
    transaction of the change that causes them."""

    async def claim_outbox(
        self, now: datetime, limit: int, lease: timedelta | None = None
    ) -> list[OutboxItem]:
        """Due, undone outbox items, oldest first. With ``lease`` they are
        also marked not due until ``now + lease`` (claimed by this worker)."""
        ...

    async def fail_outbox(self, item_id: int, reason: str) -> None:
        """Close the item as failed for good after an attempt (counted): never
        run again, ``reason`` kept."""
        ...

    async def retry_outbox(self, item_id: int, error: str, next_attempt: datetime) -> None:
        """Count a failed attempt, keep ``error``, and make the item due again
        at ``next_attempt`` (its lease and sending mark cleared)."""
        ...

    async def defer_outbox(self, item_id: int, next_attempt: datetime, reason: str) -> None:
        """Put an item back for later without counting a failed attempt (the
        effect is waiting for something: a reconnect, a quota pause)."""
        ...

    async def next_outbox_due(self) -> datetime | None:
        """When the earliest undone item falls due; None when nothing is queued."""
        ...

    async def release_leases(self) -> int:
        """Void the leases of claimed, undone items whose holder is gone
        (every lease, where one process owns the store); returns how many."""
        ...


class OutboxReport(Protocol):
    """The outbox as the admin sees it: ``/healthz``, ``/metrics`` and
    ``calgateway outbox failed``."""

    async def outbox_counts(self) -> dict[str, int]:
        """``pending``, ``sending`` (of those, marked sending) and ``failed``."""
        ...

    async def pending_outbox(self) -> int:
        """How many items are not done yet."""
        ...

    async def failed_outbox(self, limit: int) -> list[FailedOutboxItem]:
        """Outbox items closed for good, newest first (``calgateway outbox failed``)."""
        ...


@dataclass(frozen=True, slots=True)
class OutboxRecord:
    """An outbox item as stored, for the admin (``OutboxAdmin``)."""

    id: int
    effect: OutboxEffect
    attempts: int
    created: datetime
    next_attempt: datetime | None  # None: due now (when not leased)
    last_error: str | None
    sending: bool  # marked sending: its effect started and has not reported back
    done: bool  # done, or closed as failed (then ``failed_at`` is set)
    failed_at: datetime | None


class OutboxAdmin(Protocol):
    """The outbox as an admin acts on it (``gateway.core.admin_actions``), and
    the server's secrets. Each write is one atomic conditional update, so an
    admin and a worker acting on the same item at once cannot both win."""

    async def outbox_records(
        self, state: str | None, limit: int, resource_ids: Collection[str] | None = None
    ) -> list[OutboxRecord]:
        """``pending``: undone items, oldest first; ``failed``: items closed as
        failed, newest first; None: the undone ones, then the failed ones.
        ``resource_ids``: only the items of these resources."""
        ...

    async def outbox_record(self, item_id: int) -> OutboxRecord | None:
        """The item, done or not; None when there is no such item."""
        ...

    async def reopen_outbox(self, item_id: int, now: datetime) -> OutboxRecord | None:
        """Make an undone item due at ``now`` (a lease held on it is kept), or
        reopen a failed one (undone, due at ``now``, attempts and last error
        kept); returns the item after. None when it does not exist or is done
        without having failed."""
        ...

    async def give_up_outbox(self, item_id: int, reason: str) -> OutboxRecord | None:
        """Close an undone item that is not marked sending as failed for good
        with ``reason``; returns the item after. None when the item is not in
        that state (any more)."""
        ...

    async def server_secret(self, name: str) -> bytes:
        """The 32 random bytes kept under ``name``, created at the first call
        (on any replica: concurrent first calls all get the same bytes)."""
        ...


class StoreHealth(Protocol):
    """The store itself: ``/healthz``'s write check, and closing at shutdown."""

    async def check_writable(self) -> None:
        """Prove with a small committed write that the storage takes writes;
        raises ``StorageFull`` when it is full."""
        ...

    async def close(self) -> None: ...


class Repository(
    ReadPort,
    CalendarCollections,
    Transactions,
    OutboxStore,
    OutboxReport,
    OutboxAdmin,
    StoreHealth,
    Protocol,
):
    """A whole calendar store: exactly the union of the job ports above, and
    nothing of its own (``tests/store/test_ports.py`` holds it to that). The
    composition root opens one and hands each caller the narrowest port it
    uses."""


class MirrorReads(Protocol):
    """Reads of the Google mirror's state, inside or outside a transaction:
    the freshness guard, the Google invitation path, ``MirrorStore``."""

    async def get_connection(self, resource_id: str) -> Connection | None: ...

    async def connections(self) -> list[Connection]: ...

    async def connection_by_channel(self, channel_id: str) -> Connection | None: ...

    async def connection_by_account(self, account: str) -> Connection | None:
        """The connected resource using this Google account, if any."""
        ...

    async def get_link(self, resource_id: str, event_id: str) -> EventLink | None: ...

    async def links(
        self, resource_id: str, kind: LinkKind | None = None, series_id: str | None = None
    ) -> list[EventLink]: ...

    async def get_invite(self, token_hash: str) -> Invite | None: ...

    async def invite_by_state(self, state: str) -> Invite | None: ...

    async def sync_log(
        self, resource_id: str, limit: int = 100, before: int | None = None
    ) -> list[SyncLogEntry]:
        """Newest first; ``before`` pages back from an entry id."""
        ...


class MirrorTransaction(WriteTransaction, MirrorReads, Protocol):
    """A write transaction that also holds the mirror's state, so a page of
    Google changes commits together with its sync token (DESIGN.md)."""

    async def save_connection(self, connection: Connection) -> None: ...

    async def save_link(self, link: EventLink) -> None: ...

    async def delete_link(self, resource_id: str, event_id: str) -> None: ...

    async def save_invite(self, invite: Invite) -> None: ...

    async def log(self, entry: SyncLogEntry) -> None: ...

    async def revoke_invites(self, resource_id: str, at: datetime) -> None:
        """Mark the resource's unused invitations used: their links stop working."""
        ...

    async def release_outbox(self, resource_id: str) -> None:
        """Make the resource's deferred outbox items due now (after a reconnect)."""
        ...


class MirrorStore(MirrorReads, Protocol):
    """The Google mirror's state (``google_bridge``, ``MirrorAdmin``): its
    reads, transactions that also hold it, and the right to sync a calendar."""

    def transaction(self) -> AbstractAsyncContextManager[MirrorTransaction]: ...

    def sync_turn(self, resource_id: str) -> AbstractAsyncContextManager[bool]:
        """The right to sync the resource's Google calendar, for the block:
        True when this process has it, False when another process on the
        same database is syncing that calendar now (sync later). A store
        one process owns (SQLite) always says True."""
        ...


class MirrorRepository(MirrorStore, Repository, Protocol):
    """A calendar store that also keeps the Google mirror (both backends
    are): the union of ``Repository`` and ``MirrorStore``, nothing of its own."""


class CalendarCodec(Protocol):
    """Booking <-> iCalendar (implemented by ``gateway.ical``)."""

    def render(self, booking: Booking, resource: Resource, previous_ics: str | None) -> str:
        """A VCALENDAR holding the booking. With ``previous_ics`` the earlier
        object is updated in place so properties the gateway does not model
        (VALARM, X- properties) survive."""
        ...

    def answered(self, ics: str, email: str, partstat: PartStat) -> str:
        """``ics`` with the attendee ``email``'s PARTSTAT set to ``partstat``
        in every event of the object, and nothing else changed: a calendar
        app's text gets an answer without being rewritten."""
        ...

    def parse(self, ics: str, default_timezone: str) -> ParsedObject:
        """Validate a client's calendar object and read its fields; raises
        ``InvalidCalendarData``. Floating and all-day times are read in
        ``default_timezone`` (RFC 4791 9.9)."""
        ...

    def occurrences(self, obj: CalendarObject, window: TimeSpan) -> Sequence[TimeSpan]:
        """The object's occurrences that overlap ``window`` (recurrences expanded)."""
        ...

    def split(self, text: str) -> CalendarFile:
        """A calendar file cut into calendar objects, one per UID, each as the
        file wrote it; raises ``UnsplittableFile``."""
        ...

    def recurrence(self, obj: CalendarObject) -> tuple[str, ...]:
        """The recurrence rule lines of a recurring object (RRULE, RDATE,
        EXRULE, EXDATE as content lines); empty for a single occurrence."""
        ...

    def keep_server_answers(self, stored: str, written: str) -> str:
        """``written`` (an organizer's new text of the object ``stored`` is)
        with the attendees' PARTSTAT and SCHEDULE-STATUS of ``stored`` where
        the organizer asked nothing new of them (RFC 6638 3.2.10); the same
        text when there is nothing to keep."""
        ...

    def with_schedule_status(self, ics: str, codes: Mapping[str, str | None]) -> str:
        """``ics`` with SCHEDULE-STATUS (RFC 6638 3.2.9) set on the ATTENDEE
        of each address in ``codes`` (removed where None), the rest of the
        text kept as written."""
        ...

    def schedule_statuses(self, ics: str) -> Mapping[str, str]:
        """The SCHEDULE-STATUS of each attendee that carries one, by mailbox."""
        ...

    def with_sequence(self, ics: str, sequence: int) -> str:
        """``ics`` with SEQUENCE raised to ``sequence``, the rest as written."""
        ...

    def calendar_user_types(self, ics: str) -> Mapping[str, str]:
        """Each attendee's CUTYPE (RFC 5545 3.2.3), upper case and "" when
        none, by case-folded address."""
        ...


class CalendarQuerying(Protocol):
    """Evaluating CalDAV queries on stored objects (implemented by ``gateway.ical``)."""

    def matches(self, obj: CalendarObject | QueriedObject, query: CompFilter) -> bool:
        """Whether the object satisfies the filter (RFC 4791 9.7, time ranges
        per 9.9 with recurrences expanded). Floating and all-day times count
        in the timezone of the object's booking."""
        ...

    def matcher(self, query: CompFilter) -> Callable[[CalendarObject | QueriedObject], bool]:
        """``matches`` for one filter and many objects: what depends on the
        filter alone is worked out once."""
        ...

    def known_matcher(
        self, query: CompFilter
    ) -> Callable[[CalendarObject | QueriedObject], bool | None]:
        """``matcher``'s answer where it needs no parsing nor expanding (a
        single event under a plain time range, or an answer already worked
        out for this text, zone and filter); None where it would."""
        ...

    def calendar_data(self, obj: CalendarObject | QueriedObject, request: DataRequest) -> str:
        """The object's text as a query answer returns it (RFC 4791 9.6): as
        stored, expanded (9.6.5) or with the recurrence set limited (9.6.6)."""
        ...

    def freebusy(self, objects: Sequence[CalendarObject], window: TimeSpan) -> str:
        """A VCALENDAR with one VFREEBUSY for ``window`` (RFC 4791 7.10): the
        merged busy periods of the objects' occurrences, FBTYPE=BUSY or
        BUSY-TENTATIVE; cancelled and transparent objects left out."""
        ...

    def freebusy_request(self, text: str) -> FreeBusyRequest:
        """The free-busy request a scheduling client POSTs to its outbox
        (RFC 6638 5, RFC 5546 3.3.2); ``InvalidCalendarData`` naming the
        RFC 6638 precondition it fails."""
        ...

    def freebusy_reply(
        self, objects: Sequence[CalendarObject], request: FreeBusyRequest, attendee: str
    ) -> str:
        """The iTIP REPLY (METHOD:REPLY, one VFREEBUSY) for ``attendee``: the
        busy periods of ``objects`` in the request's span, as ``freebusy``."""
        ...

    def timezone_calendar(self, timezone: str) -> str:
        """A VCALENDAR holding the VTIMEZONE of an IANA zone (the
        CALDAV:calendar-timezone property, RFC 4791 5.2.2)."""
        ...
