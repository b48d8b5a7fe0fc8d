"""What a committed change causes: the one place that decides it.

``effects_of(change, policy)`` looks at a booking before and after a change,
where the change came from and the resource's policy, and returns the side
effects as typed values; ``BookingService`` only queues each one's
``outbox()`` record in the change's transaction. The idea is sabre/vobject's
iTIP broker (``ITip/Broker.php``, messages derived from the old and the new
object), done more simply: one booking, one organizer.

The rules (a reader finds each in ``tests/core/test_effects.py``):

Google
  - A change that came from Google, or of a busy block imported from it,
    is never written back: that would be an echo of Google's own change.
  - Anything else is pushed while the resource mirrors to Google, and
    afterwards for bookings that have an event there (``pushes_booking``).
  - An imported booking already over when imported is not pushed.

Invitations (iMIP, RFC 6047), only while mail is configured for the resource
  - An API change is the gateway's own: the gateway is the organizer.
  - A CalDAV write (RFC 6638 implicit scheduling) is treated like the API's
    only when implicit scheduling is on for the resource and the object's
    ORGANIZER is an address of the gateway (the resource's, or the mail
    sender's the gateway writes into invitations); an attendee marked
    SCHEDULE-AGENT=CLIENT or NONE is left out (RFC 6638 7.1: the client, or
    nobody, schedules that one). So is an attendee that is a resource
    accepting invitations (``answered_inside``): the gateway answers for it
    in the write's transaction (``gateway.core.resource_invitations``).
  - An answer (REPLY) changes an attendee's PARTSTAT: nobody is invited.
  - Imports and Google changes mail nobody.
  - Create: a REQUEST to every attendee. Delete or cancel: a CANCEL to every
    attendee (RFC 5546 3.2.5), none if it was cancelled already. An
    attendee added gets a REQUEST, one removed a CANCEL. The attendees kept
    get an update only for a change they can see (RFC 5546 2.1.4: time,
    title, place, status, or a SEQUENCE the client raised); a move is told
    as "rescheduled", anything else as "updated".
  - One occurrence of a series cancelled (a new EXDATE, or an overridden
    occurrence with STATUS:CANCELLED; known when the text before the change
    is, ``Change.before_scheduling``): a CANCEL naming that occurrence
    (RECURRENCE-ID, RFC 5546 3.2.5) to each attendee kept, one per
    occurrence; the SEQUENCE raised with it asks for no update besides. An
    overridden occurrence added or changed otherwise (moved: "rescheduled";
    its status, or one un-cancelled: "updated") is an update of the series
    (RFC 5546 3.2.2, the master with its overrides).

Not here: who may make a change, the SEQUENCE the service writes (the API
bumps it on every change; a CalDAV client writes its own), and how each
effect is carried out (``gateway.mail``, ``google_bridge``).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import datetime
from enum import StrEnum

from .invitations import InvitationKind, same_address
from .mirror import Direction, pushes_booking
from .model import (
    Attendee,
    Booking,
    BookingStatus,
    Origin,
    OutboxEffect,
    Override,
    Recurrence,
    Scheduling,
)
from .outbox_payloads import GooglePushPayload, InvitationPayload, InviteAction, OutboxKind
from .sequence import details_changed, raises_sequence

INVITATION = OutboxKind.INVITATION.value
"""Outbox kind: tell the booker (created / rescheduled / cancelled)."""


class ChangeOrigin(StrEnum):
    """Who made a change (not the same as a booking's ``Origin``: an answer
    by e-mail changes an API booking)."""

    API = "api"
    CALDAV = "caldav"
    GOOGLE = "google"
    REPLY = "reply"
    IMPORT = "import"


@dataclass(frozen=True, slots=True)
class Change:
    """A committed change of one booking: ``before`` is None for a create,
    ``after`` None for a delete. ``scheduling`` is what the object's text
    says about who schedules it (a CalDAV write: the text written, or for a
    delete the text deleted); None where the gateway wrote the text itself.
    ``over``: the booking had ended before the change (an import of the
    past). ``deleted_text``: a deleted object's text, which its CANCELs
    describe (nothing else holds it once the delete commits).
    ``before_scheduling``: what the text before the change said (its
    series: which occurrences were cancelled or overridden); None when not
    read, and then no single occurrence is told apart."""

    before: Booking | None
    after: Booking | None
    origin: ChangeOrigin
    scheduling: Scheduling | None = None
    over: bool = False
    deleted_text: str = ""
    before_scheduling: Scheduling | None = None

    def __post_init__(self) -> None:
        if self.before is None and self.after is None:
            raise ValueError("a change needs a booking before or after it")

    @property
    def booking(self) -> Booking:
        """The booking as it is now, or as it was before a delete."""
        booking = self.after or self.before
        assert booking is not None  # __post_init__
        return booking


@dataclass(frozen=True, slots=True)
class EffectPolicy:
    """What the resource's settings say about side effects.

    ``direction``: its Google mirror's direction; ``in_google``:
    the booking has an event in Google (asked only when it does not push);
    ``invitations``: mail is configured; ``implicit_scheduling``: CalDAV
    writes invite attendees (RFC 6638); ``organizers``: the addresses that
    make the gateway an object's ORGANIZER; ``answered_inside``: addresses
    of resources that answer a CalDAV write's invitation themselves
    (``gateway.core.resource_invitations``): delivered inside, never mailed."""

    direction: Direction = Direction.OFF
    in_google: bool = False
    invitations: bool = True
    implicit_scheduling: bool = True
    organizers: tuple[str, ...] = ()
    answered_inside: tuple[str, ...] = ()


def method_of(action: InviteAction) -> InvitationKind:
    """The iTIP method a message for ``action`` has (RFC 5546 1.4)."""
    if action is InviteAction.CANCELLED:
        return InvitationKind.CANCEL
    return InvitationKind.REQUEST


@dataclass(frozen=True, slots=True)
class GooglePush:
    """Bring the booking's Google event in line with the booking (the pusher
    reads the booking when it runs: a deleted one deletes its event)."""

    resource_id: str
    booking_id: str
    uid: str
    sequence: int

    def outbox(self) -> OutboxEffect:
        return OutboxEffect(
            self.resource_id,
            self.booking_id,
            GooglePushPayload(uid=self.uid, sequence=self.sequence),
        )


@dataclass(frozen=True, slots=True)
class Invite:
    """One iMIP message to one attendee: one outbox item each, so that a mail
    server refusing one address neither holds up nor repeats the others.
    ``deleted``: the text of a deleted object (its CANCEL's only source);
    ``by``: who asked for a resend; ``recurrence_id``: the one occurrence a
    CANCEL is about ("" for the whole object)."""

    resource_id: str
    booking_id: str
    attendee: str
    action: InviteAction
    sequence: int
    deleted: str = ""
    by: str = ""
    recurrence_id: str = ""

    def outbox(self) -> OutboxEffect:
        return OutboxEffect(
            self.resource_id,
            self.booking_id,
            InvitationPayload(
                self.action,
                self.sequence,
                self.attendee,
                self.deleted,
                self.by,
                recurrence_id=self.recurrence_id,
            ),
        )


Effect = GooglePush | Invite


def effects_of(change: Change, policy: EffectPolicy) -> tuple[Effect, ...]:
    """The side effects of ``change`` (see the module docstring), invitations
    first, in attendee order."""
    return (*_invitations(change, policy), *_google(change, policy))


def _google(change: Change, policy: EffectPolicy) -> tuple[GooglePush, ...]:
    booking = change.booking
    if change.origin is ChangeOrigin.GOOGLE or booking.origin is Origin.GOOGLE:
        return ()  # an echo
    if change.origin is ChangeOrigin.IMPORT and change.over:
        return ()
    if not pushes_booking(policy.direction, in_google=policy.in_google):
        return ()
    return (GooglePush(booking.resource_id, booking.id, booking.uid, booking.sequence),)


def schedules(change: Change, policy: EffectPolicy) -> bool:
    """Whether the gateway sends this change's iTIP messages (and so sets
    the object's SCHEDULE-STATUS and SEQUENCE, RFC 6638 3.2.9)."""
    return policy.invitations and _gateway_schedules(change, policy)


def _invitations(change: Change, policy: EffectPolicy) -> list[Invite]:
    if not schedules(change, policy):
        return []
    before, after = change.before, change.after
    skipped: tuple[str, ...] = tuple(change.scheduling.by_client) if change.scheduling else ()
    if change.origin is ChangeOrigin.CALDAV:
        # Booked (or declined) by the resource itself, in the same transaction.
        skipped += policy.answered_inside
    booking = change.booking
    deleted = change.deleted_text if after is None else ""

    def invite(attendees: Iterable[Attendee], action: InviteAction) -> list[Invite]:
        return [
            Invite(booking.resource_id, booking.id, a.email, action, booking.sequence, deleted)
            for a in attendees
            if not any(same_address(a.email, s) for s in skipped)
        ]

    if before is None or _cancelled(before):
        if after is None or _cancelled(after):
            return []  # nothing told before, nothing to tell now
        return invite(after.attendees, InviteAction.CREATED)
    if after is None or _cancelled(after):
        # Whoever was invited, or is named in the cancelled object, hears it.
        told = _union(before.attendees, after.attendees if after else ())
        return invite(told, InviteAction.CANCELLED)
    removed = [a for a in before.attendees if not _holds(after.attendees, a)]
    added = [a for a in after.attendees if not _holds(before.attendees, a)]
    kept = [a for a in after.attendees if _holds(before.attendees, a)]
    result = invite(removed, InviteAction.CANCELLED) + invite(added, InviteAction.CREATED)
    series = _series_change(change)
    if _moved(before, after) or series.moved:
        result += invite(kept, InviteAction.RESCHEDULED)
    elif series.changed or _significant(before, after, raised_for=series.cancelled):
        result += invite(kept, InviteAction.UPDATED)
    for occurrence in series.cancelled:
        result += [
            replace(i, recurrence_id=occurrence) for i in invite(kept, InviteAction.CANCELLED)
        ]
    return result


def _gateway_schedules(change: Change, policy: EffectPolicy) -> bool:
    """Whether the gateway sends this change's iTIP messages."""
    if change.origin is ChangeOrigin.API:
        return True
    if change.origin is not ChangeOrigin.CALDAV or not policy.implicit_scheduling:
        return False  # answers, imports and Google changes invite nobody
    organizer = change.scheduling.organizer if change.scheduling else ""
    return bool(organizer) and any(same_address(organizer, o) for o in policy.organizers)


def _cancelled(booking: Booking) -> bool:
    return booking.status is BookingStatus.CANCELLED


def _holds(attendees: Iterable[Attendee], attendee: Attendee) -> bool:
    return any(same_address(a.email, attendee.email) for a in attendees)


def _union(first: Iterable[Attendee], second: Iterable[Attendee]) -> list[Attendee]:
    result = list(first)
    result += [a for a in second if not _holds(result, a)]
    return result


def _moved(before: Booking, after: Booking) -> bool:
    return (before.start, before.end) != (after.start, after.end)


def _significant(before: Booking, after: Booking, *, raised_for: tuple[str, ...]) -> bool:
    """A change an attendee can see in their calendar (RFC 5546 2.1.4:
    ``gateway.core.sequence`` says which of them raise SEQUENCE), or one the
    organizer's client judged so by raising SEQUENCE. An answer's PARTSTAT,
    the organizer's alarms or the stamp of the last change are not. (A
    change of the recurrence rule alone is seen through the SEQUENCE the
    service raises for it; one raised with occurrences cancelled,
    ``raised_for``, is theirs: their CANCELs tell it.)"""
    return (
        raises_sequence(before, after, recurrence_changed=False)
        or details_changed(before, after)
        or (after.sequence > before.sequence and not raised_for)
    )


@dataclass(frozen=True, slots=True)
class _SeriesChange:
    """How a series' occurrences changed: ``cancelled`` the occurrences
    newly cancelled (RECURRENCE-ID text, sorted); ``moved``: an overridden
    occurrence got another time; ``changed``: another change of the series
    an attendee sees (an override added, its status, a cancellation
    undone, the rules)."""

    cancelled: tuple[str, ...] = ()
    moved: bool = False
    changed: bool = False


def _series_change(change: Change) -> _SeriesChange:
    if change.before_scheduling is None or change.scheduling is None:
        return _SeriesChange()  # the text before is unknown: nothing told apart
    old = change.before_scheduling.recurrence
    new = change.scheduling.recurrence
    if old == new:
        return _SeriesChange()
    was_cancelled = _cancelled_occurrences(old)
    cancelled = _cancelled_occurrences(new)
    old_kept = {
        o.recurrence_id: o for o in old.overrides if o.status is not BookingStatus.CANCELLED
    }
    new_kept = {
        o.recurrence_id: o for o in new.overrides if o.status is not BookingStatus.CANCELLED
    }
    moved = any(
        (o.start, o.end) != (old_kept[rid].start, old_kept[rid].end)
        for rid, o in new_kept.items()
        if rid in old_kept
    ) or any(_override_moved(o) for rid, o in new_kept.items() if rid not in old_kept)
    changed = (
        old.rules != new.rules
        or bool(was_cancelled - cancelled)
        or any(old_kept.get(rid) != o for rid, o in new_kept.items())
    )
    return _SeriesChange(tuple(sorted(cancelled - was_cancelled)), moved, changed)


def _cancelled_occurrences(recurrence: Recurrence) -> frozenset[str]:
    return recurrence.exdates | {
        o.recurrence_id for o in recurrence.overrides if o.status is BookingStatus.CANCELLED
    }


def _override_moved(override: Override) -> bool:
    """Whether a new override starts elsewhere than the occurrence it
    replaces (a DATE occurrence: unknown here, told as an update)."""
    if "T" not in override.recurrence_id:
        return False
    return datetime.fromisoformat(override.recurrence_id) != override.start
