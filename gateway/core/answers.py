"""Which booking an attendee's answer is for, and whether it is the newest.

Two decisions, both pure (no I/O; ``BookingService.apply_reply`` executes
them):

* ``route_reply``: an iTIP REPLY names its event by UID (RFC 5546 3.2.3).
  UIDs are unique across the gateway for every object stored since schema
  version 5, but a database may still hold copies of one UID in two
  calendars from before. A reply is then sent to the copy whose resource is
  the reply's ORGANIZER, else to the only one that invited the replying
  attendee; when neither tells the copies apart it is refused, never applied
  to the first match. The gateway's own sender address, which its
  invitations name as ORGANIZER, is every calendar's and tells nothing
  apart. An answer through a signed link needs none of this: the link names
  the booking by its id.
* ``supersedes``: answers are ordered by the time the booker gave them, the
  newest wins. For an iTIP REPLY that time is its DTSTAMP (RFC 5545 3.8.7.2:
  in an object with a METHOD, when that instance was created, i.e. when the
  attendee's client wrote the answer); for a click on a signed link it is
  the click. A link signed before a later answer is not "older" than it: the
  link records the question, the click the answer. So a late e-mail written
  before a click does not overturn the click, and a click after a reply does
  overturn that reply (the booker changed their mind). No answer counts as
  given after the gateway received it (``answer_time``): a DTSTAMP in the
  future (a wrong clock, or a forged reply) would otherwise outrank every
  later answer. Answers are only compared within one SEQUENCE: an answer to
  an older SEQUENCE is stale anyway (RFC 5546 2.1.5, ``reply_applies``), and
  a new SEQUENCE starts without answer times (``carry_answer_times``).

Not here: whether the reply names an attendee and the current SEQUENCE
(``gateway.core.invitations.reply_applies``), reading replies (``gateway.ical``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime

from .invitations import ItipReply, same_address
from .model import Attendee, Booking, Origin


@dataclass(frozen=True, slots=True)
class ReplyTarget:
    """A booking holding the reply's UID and the address of its resource
    (what the booking's own ORGANIZER is, RFC 5545 3.8.4.3)."""

    booking: Booking
    organizer: str


@dataclass(frozen=True, slots=True)
class Routing:
    """Where a reply goes: ``booking`` (None: nowhere) and why."""

    booking: Booking | None
    reason: str
    ambiguous: bool = False


def route_reply(reply: ItipReply, targets: Sequence[ReplyTarget]) -> Routing:
    """The booking ``reply`` answers among the ``targets`` holding its UID."""
    if not targets:
        return Routing(None, f"no booking has UID {reply.uid!r}")
    if len(targets) == 1:
        return Routing(targets[0].booking, "the only booking with this UID")
    narrowing: tuple[tuple[str, Callable[[ReplyTarget], bool]], ...] = (
        ("by its ORGANIZER", lambda t: _organized_by(t, reply.organizer_email)),
        ("by its attendee", lambda t: _invites(t.booking, reply.attendee_email)),
    )
    pool = list(targets)
    for how, keeps in narrowing:
        kept = [t for t in pool if keeps(t)]
        if len(kept) == 1:
            return Routing(kept[0].booking, f"UID shared by {len(targets)} bookings, chosen {how}")
        # A test no candidate passes tells them no further apart.
        pool = kept or pool
    return Routing(
        None,
        f"UID {reply.uid!r} is held by {len(targets)} bookings (stored before UIDs were "
        "unique) and neither the reply's ORGANIZER nor its attendee tells which one it "
        "answers",
        ambiguous=True,
    )


def _organized_by(target: ReplyTarget, organizer: str | None) -> bool:
    return organizer is not None and same_address(target.organizer, organizer)


def _invites(booking: Booking, email: str) -> bool:
    return any(same_address(a.email, email) for a in booking.attendees)


def answer_time(given: datetime, received: datetime) -> datetime:
    """When an answer counts as given: its own time (DTSTAMP, or the click),
    but never later than the gateway received it."""
    return min(given, received)


def supersedes(current: Attendee, given_at: datetime) -> bool:
    """Whether an answer given at ``given_at`` replaces the attendee's stored
    one. An answer without a time (stored before times were kept, or set by
    the organizer) is older than any; at the same instant the later arrival
    wins, as nothing says it is older."""
    return current.answered_at is None or given_at >= current.answered_at


def superseded_reason(current: Attendee, given_at: datetime) -> str:
    return (
        f"superseded: {current.email} gave a newer answer ({current.partstat.value} at "
        f"{_iso(current.answered_at)}) than this one (given at {_iso(given_at)})"
    )


def carry_answer_times(previous: Booking | None, updated: Booking) -> Booking:
    """``updated`` with each attendee's answer time kept from ``previous``
    where it still belongs to the same answer: same attendee, same PARTSTAT,
    same SEQUENCE. Any other answer has no time the gateway knows (a client
    or the organizer set it), and a new SEQUENCE asks the question again."""
    if previous is None or previous.sequence != updated.sequence:
        return replace(
            updated, attendees=tuple(replace(a, answered_at=None) for a in updated.attendees)
        )
    kept = []
    for attendee in updated.attendees:
        before = next(
            (a for a in previous.attendees if same_address(a.email, attendee.email)), None
        )
        same_answer = before is not None and before.partstat is attendee.partstat
        answered_at = before.answered_at if before is not None and same_answer else None
        kept.append(replace(attendee, answered_at=answered_at))
    return replace(updated, attendees=tuple(kept))


def keeps_client_text(booking: Booking) -> bool:
    """Whether an answer to ``booking`` edits only the attendee's PARTSTAT in
    the stored text (``CalendarCodec.answered``) instead of rendering the
    object again: a calendar app's object is stored as the app wrote it
    (RFC 4791 5.3.2) and must come back so on its next sync, with its own
    ORGANIZER, X- properties, alarms and overrides; the gateway's own text
    (an API booking) is rendered as every change of it is."""
    return booking.origin is not Origin.API


def _iso(value: datetime | None) -> str:
    return "unknown" if value is None else value.isoformat(timespec="seconds")
