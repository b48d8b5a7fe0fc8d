"""The Google mirror's one decision, for both directions: ``reconcile``.

Given

* the saved status (``EventLink`` by Google event id: what each side looked
  like at the last successful sync: the etag Google showed, the digest of
  what we wrote or imported),
* the gateway's bookings concerned (``Booked``: the bookings met on Google's
  events, or the one booking a queued push is about), and
* what is known of Google now (``GoogleView``: a delta, a page of a full
  listing, the last page of one, or nothing),

it returns a ``Plan``: busy blocks to write or remove in the gateway, series
to expand, events to write to or delete from Google, guests' answers to
record, conflicts to log, and the new status (``Plan.status``). It is pure
(no I/O, no clock reads: ``Scope`` carries the moment); the runners only
execute plans (``sync``: Google -> gateway, ``push``: gateway -> Google;
``ImportApplier`` commits the gateway half). ``reconcile_series`` decides the
instances of one expanded recurring event the same way. Like vdirsyncer's
sync, each side's change is known by comparing it with the saved status,
and the rule for a change on both sides is fixed below.

Rules:

* The gateway owns its bookings. Our own events (our booking id in
  ``extendedProperties.private``, ``own_booking_id``) are never imported.
  If Google still shows what we wrote, a change notice is the echo of our own
  write: only its etag is remembered. If Google shows something else (seen
  in a delta, or missing from a full listing: ``vanished``), the booking
  wins: it is written back, with the guests' answers Google holds kept
  (``mapping.keep_answers``), and if the gateway had nothing unsent (its
  booking is what we last wrote), a person changed or deleted it in Google:
  a conflict is logged. The same rule holds on the incremental and the full
  path.
* Guests' answers on our events become the booking's PARTSTAT; a write
  never sends an answer the gateway did not read from Google.
* A booking not met on Google's side is pushed when its body differs from
  the digest last written (or Google's copy is known to differ), deleted
  when cancelled or gone (also without a link: a write may have reached
  Google unrecorded); an imported block is never pushed back. Our event met
  live on Google's side for a booking cancelled or deleted here is deleted
  again.
* Google's other events become busy blocks (``mapping.busy_block``): a
  block whose digest equals the saved one is left alone; cancelled, free,
  declined and non-busy ones remove their block; a recurring event is
  expanded within the import horizon; a complete listing removes what it no
  longer shows (``unlisted``). Single events that ended before the import
  window are skipped.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from gateway.core.mirror import (
    AttendeeResponse,
    BusyBlock,
    EventLink,
    InvitePath,
    LinkKind,
    LogKind,
    MirrorPolicy,
    SyncLogEntry,
    google_event_id,
)
from gateway.core.model import Booking, BookingStatus, Origin

from .mapping import (
    booking_id_in,
    busy_block,
    digest,
    event_body,
    responses,
    same_content,
    without_guests,
)


@dataclass(frozen=True, slots=True)
class Booked:
    """One of the gateway's bookings, as the decision needs it."""

    booking: Booking | None  # None: deleted in the gateway
    recurrence: tuple[str, ...] = ()  # RRULE/EXDATE/RDATE lines of a series
    # Guests (lower-case) who get an imported copy and so are not listed on
    # the event (``push.guests_with_copies``).
    guests_with_copies: frozenset[str] = frozenset()
    # Another resource's booking, written into a calendar this one took over:
    # not ours to keep, so its event is met like any other (busy time) until
    # its removal (``MirrorAdmin._hand_over``) arrives.
    foreign: bool = False


@dataclass(frozen=True, slots=True)
class GoogleView:
    """What is known of Google's side now."""

    events: Sequence[Mapping[str, Any]] = ()  # a delta or a page of a listing
    zone: str = "UTC"  # the calendar's time zone (events.list timeZone)
    # The last page of a complete listing: every event id Google listed.
    listed: frozenset[str] | None = None
    # Bookings whose Google copy an earlier sync saw changed there: written
    # even if our last write looks current.
    differs: frozenset[str] = frozenset()


@dataclass(frozen=True, slots=True)
class Scope:
    """The resource, its settings and the moment (never read from a clock)."""

    resource_id: str
    policy: MirrorPolicy
    window_start: datetime  # the import horizon's past edge
    now: datetime


@dataclass(frozen=True, slots=True)
class GoogleWrite:
    """Insert or update one of our events. ``fresh_read``: Google's copy
    changed since our last write; read it first (its etag, its guests'
    answers) instead of a blind update."""

    booking_id: str
    event_id: str
    body: Mapping[str, Any]
    fresh_read: bool = False


@dataclass(frozen=True, slots=True)
class GoogleDelete:
    booking_id: str
    event_id: str


@dataclass(slots=True)
class Plan:
    # Google -> gateway
    upserts: list[BusyBlock] = field(default_factory=list)
    removals: list[str] = field(default_factory=list)  # event ids of blocks
    expand: list[Mapping[str, Any]] = field(default_factory=list)  # series masters
    responses: list[AttendeeResponse] = field(default_factory=list)
    # gateway -> Google
    writes: list[GoogleWrite] = field(default_factory=list)
    deletes: list[GoogleDelete] = field(default_factory=list)
    copy_to_guests: list[str] = field(default_factory=list)  # booking ids
    # both
    notes: list[SyncLogEntry] = field(default_factory=list)
    # The new status, by event id (None: forgotten). What only the execution
    # can know is filled in by the runner: the etag Google answers a write
    # with, the booking id a new busy block gets.
    status: dict[str, EventLink | None] = field(default_factory=dict)
    seen: set[str] = field(default_factory=set)  # event ids met (full sync bookkeeping)

    @property
    def changes_nothing(self) -> bool:
        return not (
            self.upserts
            or self.removals
            or self.expand
            or self.responses
            or self.writes
            or self.deletes
            or self.copy_to_guests
            or self.notes
            or self.status
        )


def own_booking_id(event: Mapping[str, Any], links: Mapping[str, EventLink]) -> str | None:
    """The booking id of an event the gateway wrote: the one rule of what is
    "our own event". It is in the event's private extended properties, or,
    for a deleted event that comes back stripped of them, in our link."""
    booking_id = booking_id_in(event)
    link = links.get(str(event.get("id", "")))
    if booking_id is None and link is not None and link.kind is LinkKind.PUSHED:
        return link.booking_id
    return booking_id


def block_digest(block: BusyBlock) -> str:
    """What a busy block was imported as, kept in its link's status."""
    text = "|".join(
        (
            block.span.start.isoformat(),
            block.span.end.isoformat(),
            block.timezone,
            str(block.all_day),
            str(block.tentative),
            block.series_id,
        )
    )
    return hashlib.sha256(text.encode()).hexdigest()[:32]


def event_body_of(booked: Booked, link: EventLink | None, policy: MirrorPolicy) -> dict[str, Any]:
    """What we would write for a booking now: the detail level it was first
    pushed with (a settings change applies to new events only), without the
    guests who have their own imported copy (Google would show it to them
    twice)."""
    assert booked.booking is not None
    details = link.details if link is not None else policy.details
    body = event_body(booked.booking, details, list(booked.recurrence))
    return without_guests(body, set(booked.guests_with_copies))


def vanished(links: Mapping[str, EventLink], listed: frozenset[str]) -> list[dict[str, Any]]:
    """Our own events a complete listing (a full sync) did not show.

    A full ``events.list`` leaves deleted events out (showDeleted defaults to
    false, and after a 410 Google may have forgotten the deletion): an own
    event missing from it was deleted in Google. Each is returned as the
    cancelled event an incremental sync would have reported, so that one
    rule (``_own_event``) decides both paths."""
    return [
        {"id": event_id, "status": "cancelled"}
        for event_id, link in sorted(links.items())
        if link.kind is LinkKind.PUSHED and event_id not in listed
    ]


def unlisted(links: Mapping[str, EventLink], listed: frozenset[str]) -> tuple[list[str], list[str]]:
    """The busy blocks and series a complete listing no longer shows: (event
    ids of single blocks, series ids) to remove. An instance goes with its
    series (instances are not listed, their series is)."""
    removals: list[str] = []
    series: list[str] = []
    for event_id, link in sorted(links.items()):
        if link.kind is LinkKind.SERIES and event_id not in listed:
            series.append(event_id)
        elif (
            link.kind is LinkKind.IMPORTED
            and event_id not in listed
            and link.series_id not in listed
        ):
            removals.append(event_id)
    return removals, series


def reconcile(
    status: Mapping[str, EventLink],
    bookings: Mapping[str, Booked],
    google: GoogleView,
    scope: Scope,
) -> Plan:
    """The plan that brings both sides in line (see the module docstring)."""
    plan = Plan()
    items = list(google.events)
    if google.listed is not None:
        items += vanished(status, google.listed)
    met: set[str] = set()
    for event in items:
        event_id = str(event.get("id", ""))
        if not event_id:
            continue
        plan.seen.add(event_id)
        booking_id = own_booking_id(event, status)
        booked = bookings.get(booking_id) if booking_id is not None else None
        if booking_id is not None and not (booked is not None and booked.foreign):
            met.add(booking_id)
            _own_event(plan, event, booking_id, booked, status, scope)
        else:
            master = status.get(str(event.get("recurringEventId") or ""))
            if master is not None and master.kind is LinkKind.PUSHED:
                met.add(master.booking_id)  # an occurrence of our own series
            _foreign_event(plan, event, status, google.zone, scope)
    if google.listed is not None:
        removals, series_ids = unlisted(status, google.listed)
        for event_id in removals:
            _remove_block(plan, event_id)
        for series_id in series_ids:
            _remove_series(plan, series_id, status)
    for booking_id, booked in sorted(bookings.items()):
        if booking_id not in met and not booked.foreign:
            _push(plan, booking_id, booked, status, scope, google.differs)
    return plan


def reconcile_series(
    resource_id: str,
    master: Mapping[str, Any],
    instances: Sequence[Mapping[str, Any]],
    zone: str,
    expanded_until: datetime,
    status: Mapping[str, EventLink],
) -> Plan:
    """The instances of one recurring Google event within the import
    horizon (``events.instances``) replace whatever was imported for it: new
    or moved instances are written, the ones no longer there removed, and
    the series' status remembers its etag and how far it was expanded."""
    plan = Plan()
    series_id = str(master["id"])
    keep: set[str] = set()
    for instance in instances:
        block = busy_block(instance, zone, series_id)
        if block is None:
            continue
        keep.add(block.event_id)
        _upsert_block(plan, resource_id, replace(block, series_id=series_id), instance, status)
    for event_id, link in sorted(status.items()):
        if link.kind is LinkKind.IMPORTED and link.series_id == series_id and event_id not in keep:
            _remove_block(plan, event_id)
    plan.status[series_id] = EventLink(
        resource_id=resource_id,
        event_id=series_id,
        kind=LinkKind.SERIES,
        etag=str(master.get("etag", "")),
        series_id=series_id,
        expanded_until=expanded_until,
    )
    return plan


# -- Google -> gateway -----------------------------------------------------------


def _foreign_event(
    plan: Plan,
    event: Mapping[str, Any],
    status: Mapping[str, EventLink],
    zone: str,
    scope: Scope,
) -> None:
    event_id = str(event["id"])
    link = status.get(event_id)
    series = status.get(str(event.get("recurringEventId") or ""))
    if series is not None and series.kind is LinkKind.PUSHED:
        # One occurrence of our own recurring booking, changed or deleted in
        # Google. It is never a busy block; the series is not written back
        # (that would not undo an exception in Google), so a person is told.
        what = "deleted" if event.get("status") == "cancelled" else "changed"
        plan.notes.append(
            SyncLogEntry(
                scope.resource_id,
                LogKind.CONFLICT,
                f"an occurrence of a recurring booking was {what} in Google Calendar; "
                "the gateway still holds it as booked",
                scope.now,
                booking_id=series.booking_id,
                event_id=event_id,
            )
        )
        return
    if not scope.policy.direction.pulls:
        return  # to_google: the calendar's other events stay in Google only
    if event.get("recurrence"):
        if event.get("status") == "cancelled":
            _remove_series(plan, event_id, status)
        elif link is None or link.etag != event.get("etag") or link.kind is not LinkKind.SERIES:
            plan.expand.append(event)
        return
    if event.get("status") == "cancelled" and not event.get("recurringEventId"):
        # Deleted events come stripped to id and status, so a deleted series
        # is known by its link, not by its recurrence.
        if link is not None and link.kind is LinkKind.SERIES:
            _remove_series(plan, event_id, status)
        elif link is not None:
            _remove_block(plan, event_id)
        return
    block = busy_block(event, zone)
    if block is None:
        if link is not None or event.get("recurringEventId"):
            _remove_block(plan, event_id)
        return
    if block.span.end < scope.window_start and link is None:
        return  # long past: not worth a block
    _upsert_block(plan, scope.resource_id, block, event, status)


def _upsert_block(
    plan: Plan,
    resource_id: str,
    block: BusyBlock,
    event: Mapping[str, Any],
    status: Mapping[str, EventLink],
) -> None:
    link = status.get(block.event_id)
    made = block_digest(block)
    if link is not None and link.kind is LinkKind.IMPORTED and link.digest == made:
        return  # imported exactly so already
    plan.upserts.append(block)
    plan.status[block.event_id] = EventLink(
        resource_id=resource_id,
        event_id=block.event_id,
        kind=LinkKind.IMPORTED,
        booking_id=link.booking_id if link is not None else "",
        etag=str(event.get("etag", "")),
        digest=made,
        series_id=block.series_id,
    )


def _remove_block(plan: Plan, event_id: str) -> None:
    if event_id not in plan.removals:
        plan.removals.append(event_id)
    plan.status[event_id] = None


def _remove_series(plan: Plan, series_id: str, status: Mapping[str, EventLink]) -> None:
    """A series goes with every instance imported for it."""
    for event_id, link in sorted(status.items()):
        if link.kind is LinkKind.IMPORTED and link.series_id == series_id:
            _remove_block(plan, event_id)
    plan.status[series_id] = None


def _own_event(
    plan: Plan,
    event: Mapping[str, Any],
    booking_id: str,
    booked: Booked | None,
    status: Mapping[str, EventLink],
    scope: Scope,
) -> None:
    event_id = str(event["id"])
    etag = str(event.get("etag", ""))
    deleted = event.get("status") == "cancelled"
    if booked is None:
        return  # not given: nothing known of the booking, nothing decided
    booking = booked.booking
    if booking is None or booking.status is BookingStatus.CANCELLED:
        # Cancelled or deleted here, still live there: the push queued with
        # the cancellation may have run before this event reached Google (a
        # write Google took while the gateway died), so delete it again.
        if not deleted:
            plan.deletes.append(GoogleDelete(booking_id, event_id))
        return
    for email, partstat in responses(event, booking):
        plan.responses.append(AttendeeResponse(booking_id, email, partstat))
    link = status.get(event_id)
    if not deleted and link is not None and link.kind is LinkKind.PUSHED and link.etag == etag:
        return  # exactly our last write (a newer push may still be queued)
    body = event_body_of(booked, link, scope.policy)
    if same_content(event, body):
        # Our own write coming back: remember its etag (and, if the link was
        # lost in a crash after the insert, the link itself).
        plan.status[event_id] = (
            replace(link, etag=etag)
            if link is not None
            else EventLink(
                resource_id=scope.resource_id,
                event_id=event_id,
                kind=LinkKind.PUSHED,
                booking_id=booking_id,
                etag=etag,
                details=scope.policy.details,
                digest=digest(body),
            )
        )
        return
    plan.writes.append(GoogleWrite(booking_id, event_id, body, fresh_read=True))
    if link is None or link.digest != digest(body):
        # The gateway has a change Google has not been sent yet (its push is
        # queued, or a write Google took went unrecorded): Google showing
        # something else is no proof that a person changed it, and the write
        # brings it in line either way. No conflict to report.
        return
    what = "deleted" if deleted else "changed"
    plan.notes.append(
        SyncLogEntry(
            scope.resource_id,
            LogKind.CONFLICT,
            f"the booking {booking.title!r} was {what} in Google Calendar; the gateway's "
            "booking is kept and written back (change bookings in the gateway)",
            scope.now,
            booking_id=booking_id,
            event_id=event_id,
        )
    )


# -- gateway -> Google -----------------------------------------------------------


def _push(
    plan: Plan,
    booking_id: str,
    booked: Booked,
    status: Mapping[str, EventLink],
    scope: Scope,
    differs: frozenset[str],
) -> None:
    """Bring a booking's Google event in line with the booking as it is now."""
    booking = booked.booking
    event_id = google_event_id(booking_id)
    link = status.get(event_id)
    if booking is not None and booking.origin is Origin.GOOGLE:
        return  # an imported busy block: it came from Google
    if booking is not None and scope.policy.invitations is InvitePath.GOOGLE_IMPORT:
        plan.copy_to_guests.append(booking_id)
    if booking is None or booking.status is BookingStatus.CANCELLED:
        # Deleted even without a link: a write Google took while the gateway
        # died left an event no link knows (its id is the booking's, so it is
        # found; an event that is not there answers 404, as good as done).
        plan.deletes.append(GoogleDelete(booking_id, event_id))
        if link is not None:
            plan.status[event_id] = None
        return
    body = event_body_of(booked, link, scope.policy)
    written = digest(body)
    changed_there = booking_id in differs
    if link is not None and link.digest == written and not changed_there:
        return
    plan.writes.append(GoogleWrite(booking_id, event_id, body, fresh_read=changed_there))
    plan.status[event_id] = EventLink(
        resource_id=scope.resource_id,
        event_id=event_id,
        kind=LinkKind.PUSHED,
        booking_id=booking_id,
        etag=link.etag if link is not None else "",  # the runner sets Google's answer
        details=link.details if link is not None else scope.policy.details,
        digest=written,
    )
