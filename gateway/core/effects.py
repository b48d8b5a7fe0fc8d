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
    nobody, schedules that one).
  - An answer (REPLY) changes an attendee's PARTSTAT: nobody is invited.
  - Imports and Google changes mail nobody.
  - Create: a REQUEST to every attendee. Delete or cancel: a CANCEL to every
    attendee (RFC 5546 3.2.5), none if it was cancelled already. An
    attendee added gets a REQUEST, one removed a CANCEL. The attendees kept
    get an update only for a change they can see (RFC 5546 2.1.4: time,
    title, place, status, or a SEQUENCE the client raised); a move is told
    as "rescheduled", anything else as "updated".

Not here: who may make a change, the SEQUENCE the service writes (the API
bumps it on every change; a CalDAV client writes its own), and how each
effect is carried out (``gateway.mail``, ``google_bridge``).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum

from .invitations import InvitationKind, same_address
from .mirror import GOOGLE_PUSH, Direction, pushes_booking
from .model import Attendee, Booking, BookingStatus, Origin, OutboxEffect, Scheduling

INVITATION = "invitation"
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
    describe (nothing else holds it once the delete commits)."""

    before: Booking | None
    after: Booking | None
    origin: ChangeOrigin
    scheduling: Scheduling | None = None
    over: bool = False
    deleted_text: str = ""

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
    make the gateway an object's ORGANIZER."""

    direction: Direction = Direction.OFF
    in_google: bool = False
    invitations: bool = True
    implicit_scheduling: bool = True
    organizers: tuple[str, ...] = ()


class InviteAction(StrEnum):
    """Why an attendee gets a message; the value is the outbox payload's
    ``action`` (``gateway.core.outbox_words`` words it)."""

    CREATED = "created"
    RESCHEDULED = "rescheduled"
    UPDATED = "updated"
    CANCELLED = "cancelled"
    # An admin's "send the invitation again" (gateway.core.admin_actions):
    # no change, the same REQUEST in a message of its own.
    RESENT = "resent"

    @property
    def method(self) -> InvitationKind:
        """The iTIP method the message has (RFC 5546 1.4)."""
        if self is InviteAction.CANCELLED:
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
            kind=GOOGLE_PUSH,
            resource_id=self.resource_id,
            booking_id=self.booking_id,
            payload={"uid": self.uid, "sequence": self.sequence},
        )


@dataclass(frozen=True, slots=True)
class Invite:
    """One iMIP message to one attendee: one outbox item each, so that a mail
    server refusing one address neither holds up nor repeats the others.
    ``deleted``: the text of a deleted object (its CANCEL's only source);
    ``by``: who asked for a resend."""

    resource_id: str
    booking_id: str
    attendee: str
    action: InviteAction
    sequence: int
    deleted: str = ""
    by: str = ""

    def outbox(self) -> OutboxEffect:
        payload: dict[str, object] = {
            "action": self.action.value,
            "sequence": self.sequence,
            "attendee": self.attendee,
        }
        if self.deleted:
            payload["deleted"] = self.deleted
        if self.by:
            payload["by"] = self.by
        return OutboxEffect(
            kind=INVITATION,
            resource_id=self.resource_id,
            booking_id=self.booking_id,
            payload=payload,
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


def _invitations(change: Change, policy: EffectPolicy) -> list[Invite]:
    if not policy.invitations or not _gateway_schedules(change, policy):
        return []
    before, after = change.before, change.after
    skipped = change.scheduling.by_client if change.scheduling else frozenset()
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
    if _moved(before, after):
        result += invite(kept, InviteAction.RESCHEDULED)
    elif _significant(before, after):
        result += invite(kept, InviteAction.UPDATED)
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


def _significant(before: Booking, after: Booking) -> bool:
    """A change an attendee can see in their calendar (RFC 5546 2.1.4), or
    one the organizer's client judged so by raising SEQUENCE. An answer's
    PARTSTAT, the organizer's alarms or the stamp of the last change are not."""

    def seen(b: Booking) -> tuple[object, ...]:
        return (b.title, b.description, b.location, b.status, b.timezone, b.recurring)

    return seen(before) != seen(after) or after.sequence > before.sequence
