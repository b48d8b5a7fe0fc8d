"""Booking a resource by inviting it: what the gateway does when a calendar
object written over CalDAV names a resource's address as an ATTENDEE.

Issue 16 item 4. A resource that accepts invitations (its setting
``accept_invitations``, off unless turned on) answers such an invitation
itself, as a room's mailbox does in a groupware server: the gateway holds
the time in the resource's calendar with an object of its own and answers
for the resource. Pure rules, in two steps, so that the store is asked only
what the rules need (the tables are in
``tests/core/test_resource_invitations.py``):

``requests_of(before, after, ...)``: which resources an organizer's change
concerns and what it asks of each: to hold a span (it is invited, the
object is not cancelled), or to let go (it was invited and is no longer:
taken off, the object cancelled or deleted). Not concerned: a resource that
does not accept invitations (its address stays an ordinary attendee, which
implicit scheduling may mail), the calendar's own resource, and an attendee
marked SCHEDULE-AGENT=CLIENT or NONE (RFC 6638 7.1: the client schedules
it). A request the resource cannot take carries the reason: a recurring
object (one booking holds one span here; RFC 5546 3.6 "3.14 Unsupported
capability") or a calendar user type other than ROOM, INDIVIDUAL or none
("3.1 Invalid property parameter", CUTYPE, RFC 5545 3.2.3).

``decide(request, held, clashes)``: given the resource's own booking for
this object (``held``, None when it holds none) and the busy time of the
resource overlapping the span asked for (other than that booking; the
double-booking rule of ``BookingService``), what to do:
  - let go: free the booking held, answer nothing (RFC 5546 3.2.5: nobody
    replies to a CANCEL);
  - a reason to refuse: DECLINED with it, and free what was held;
  - busy: DECLINED, "4.0;Event conflict. Date-time is busy." (RFC 5546
    3.6) naming each conflicting span, and free what was held (the old
    time is not what the organizer asks for any more);
  - free: book it, or move the booking held; ACCEPTED, "2.0;Success".
An answer is written into the organizer's stored copy (PARTSTAT, and
SCHEDULE-STATUS 1.2 "delivered", RFC 6638 3.2.9 and 7.3), and mailed as an
iMIP REPLY (``ResourceReply``) only to an organizer outside the gateway,
and only when the organizer's copy did not already say it, or the time or
SEQUENCE changed (a new question, RFC 5546 2.1.4).

The resource's booking has the UID ``invited_uid(organizer's booking id)``:
derived, so an update finds it again, and of a reserved form
(``is_invited_uid``) that no client may store, so it never collides with a
client's object in that calendar.

Not here: running the decisions (``BookingService``), the REPLY's text
(``gateway.ical.itip_reply``) and its mail (``gateway.mail.resource_replies``).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum

from .invitations import same_address
from .model import Booking, BookingStatus, OutboxEffect, PartStat, TimeSpan, merge_spans
from .outbox_payloads import OutboxKind, ResourceReplyPayload

RESOURCE_REPLY = OutboxKind.RESOURCE_REPLY.value
"""Outbox kind: a resource's iMIP REPLY to an external organizer."""

SCHEDULE_DELIVERED = "1.2"  # RFC 6638 3.2.9 / RFC 5546 3.6: delivered
ACCEPTED_STATUS = "2.0;Success"
BUSY_STATUS = "4.0;Event conflict. Date-time is busy."
RECURRING_STATUS = "3.14;Unsupported capability;RRULE"
# Calendar user types a resource answers for (RFC 5545 3.2.3; "" = none,
# which means INDIVIDUAL).
BOOKABLE_TYPES = frozenset({"", "INDIVIDUAL", "ROOM"})

_INVITED_PREFIX = "invited-"
_INVITED_SUFFIX = "@invitations.calgateway"


def invited_uid(organizer_booking_id: str) -> str:
    """The UID of a resource's booking made for the organizer's booking."""
    return f"{_INVITED_PREFIX}{organizer_booking_id}{_INVITED_SUFFIX}"


def is_invited_uid(uid: str) -> bool:
    """Whether ``uid`` has the form of ``invited_uid``: reserved, so that no
    client can take the UID a resource's booking will get."""
    return uid.startswith(_INVITED_PREFIX) and uid.endswith(_INVITED_SUFFIX)


@dataclass(frozen=True, slots=True)
class InvitableResource:
    """A resource that accepts invitations: its id and address."""

    id: str
    email: str


@dataclass(frozen=True, slots=True)
class Request:
    """What an organizer's change asks of one resource. ``span`` None: let
    go. ``refusal``: a REQUEST-STATUS the resource must decline with.
    ``written``: the PARTSTAT the organizer's object gives the resource
    (None when it does not name it). ``news``: the object is new to the
    resource, or its time or SEQUENCE changed. ``reply_to``: the organizer
    to mail the answer to ("" when inside the gateway or unknown)."""

    resource: InvitableResource
    span: TimeSpan | None
    refusal: str = ""
    written: PartStat | None = None
    news: bool = True
    reply_to: str = ""


class Action(StrEnum):
    NOTHING = "nothing"
    BOOK = "book"  # a booking of its own, newly
    MOVE = "move"  # the booking held, brought in line with the object
    FREE = "free"  # the booking held, deleted


@dataclass(frozen=True, slots=True)
class Decision:
    """What to do with the resource's booking and what it answers (None: no
    answer); ``statuses``: the REPLY's REQUEST-STATUS values; ``reply``:
    whether the answer is mailed to ``Request.reply_to``."""

    action: Action
    partstat: PartStat | None = None
    statuses: tuple[str, ...] = ()
    reply: bool = False


def requests_of(
    before: Booking | None,
    after: Booking | None,
    accepting: Sequence[InvitableResource],
    *,
    organizer: str,
    gateway_addresses: Iterable[str],
    by_client: Iterable[str] = (),
    calendar_user_types: Mapping[str, str] | None = None,
) -> tuple[Request, ...]:
    """What the change from ``before`` to ``after`` (None: created / deleted)
    of an organizer's object asks of each resource in ``accepting`` (see the
    module docstring). ``organizer``: the object's ORGANIZER address;
    ``gateway_addresses``: the addresses that are the gateway's (resources',
    the mail sender's); ``calendar_user_types``: attendee address -> CUTYPE
    as written (upper case)."""
    booking = after or before
    if booking is None:
        return ()
    types = {k.casefold(): v.upper() for k, v in (calendar_user_types or {}).items()}
    skipped = list(by_client)
    internal = not organizer or any(same_address(organizer, a) for a in gateway_addresses)
    live = after is not None and after.status is not BookingStatus.CANCELLED
    requests = []
    for resource in accepting:
        if resource.id == booking.resource_id:
            continue  # the object is in its own calendar already
        if any(same_address(resource.email, s) for s in skipped):
            continue
        invited = live and after is not None and _names(after, resource.email)
        was = before is not None and _names(before, resource.email)
        if not invited:
            if was:
                requests.append(Request(resource, None, news=False))
            continue
        assert after is not None  # invited
        refusal = ""
        cutype = types.get(resource.email.casefold(), "")
        if after.recurring:
            refusal = RECURRING_STATUS
        elif cutype not in BOOKABLE_TYPES:
            refusal = f"3.1;Invalid property parameter;CUTYPE={cutype}"
        news = (
            before is None
            or before.status is BookingStatus.CANCELLED
            or not was
            or (before.start, before.end) != (after.start, after.end)
            or after.sequence > before.sequence
        )
        requests.append(
            Request(
                resource,
                TimeSpan(after.start, after.end).in_utc(),
                refusal=refusal,
                written=_partstat(after, resource.email),
                news=news,
                reply_to="" if internal else organizer,
            )
        )
    return tuple(requests)


def decide(request: Request, held: TimeSpan | None, clashes: Sequence[TimeSpan]) -> Decision:
    """What the resource does about ``request`` (see the module docstring):
    ``held`` is the span of its booking for this object (None: none),
    ``clashes`` its other busy time overlapping the span asked for."""
    free_held = Action.FREE if held is not None else Action.NOTHING
    if request.span is None:
        return Decision(free_held)
    if request.refusal:
        return _answer(request, free_held, PartStat.DECLINED, (request.refusal,))
    if clashes:
        statuses = tuple(f"{BUSY_STATUS};{_period(s)}" for s in merge_spans(clashes))
        return _answer(request, free_held, PartStat.DECLINED, statuses)
    action = Action.BOOK if held is None else Action.MOVE
    return _answer(request, action, PartStat.ACCEPTED, (ACCEPTED_STATUS,))


def _answer(
    request: Request, action: Action, partstat: PartStat, statuses: tuple[str, ...]
) -> Decision:
    told = request.written is partstat and not request.news
    return Decision(action, partstat, statuses, reply=bool(request.reply_to) and not told)


@dataclass(frozen=True, slots=True)
class ResourceReply:
    """The iMIP REPLY (RFC 5546 3.2.3) a resource sends the organizer of an
    object that invited it; everything the message says travels with it,
    so the mail describes the answer given even after later changes."""

    resource_id: str
    booking_id: str  # the organizer's booking
    uid: str
    sequence: int
    organizer: str
    attendee: str
    partstat: PartStat
    statuses: tuple[str, ...]
    title: str
    span: TimeSpan

    def outbox(self) -> OutboxEffect:
        span = self.span.in_utc()
        return OutboxEffect(
            self.resource_id,
            self.booking_id,
            ResourceReplyPayload(
                uid=self.uid,
                sequence=self.sequence,
                organizer=self.organizer,
                attendee=self.attendee,
                partstat=self.partstat.value,
                statuses=self.statuses,
                title=self.title,
                start=span.start.isoformat(),
                end=span.end.isoformat(),
            ),
        )


def _names(booking: Booking, address: str) -> bool:
    return any(same_address(a.email, address) for a in booking.attendees)


def _partstat(booking: Booking, address: str) -> PartStat | None:
    return next((a.partstat for a in booking.attendees if same_address(a.email, address)), None)


def _period(span: TimeSpan) -> str:
    """An RFC 5545 3.3.9 PERIOD in UTC, e.g. 20301203T090000Z/20301203T100000Z."""
    utc = span.in_utc()
    return f"{utc.start:%Y%m%dT%H%M%SZ}/{utc.end:%Y%m%dT%H%M%SZ}"
