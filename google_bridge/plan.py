"""The mirror's decisions, made before anything is written, in both
directions.

Like vdirsyncer's sync, deciding is kept apart from doing, and every rule
here is pure (no I/O, no clock reads), testable on plain data:

* ``plan_page`` (Google -> gateway) looks at a page of ``events.list`` and
  the saved links and returns what to change: busy blocks to write or
  remove, series to expand, our own events to write back, answers to record;
  ``vanished`` turns what a complete listing left out into the same input;
* ``plan_push`` (gateway -> Google) says what bringing one booking's event
  in line takes: nothing, write this body, or delete;
* ``own_booking_id`` is the one rule of which events are the gateway's own.

The runners (``sync``, ``push``) only execute plans, and recover from
transport answers (409 on a retried insert, 404, 412) as Google documents.
Merging the two directions into one reconcile over the saved status of
both sides is the next step (issue 18).

Rules:

* Our own events (our booking id in ``extendedProperties.private``) are
  never imported. If Google still shows what we last wrote, the change is the
  echo of our own write: nothing to do but remember its etag. If a person
  changed or deleted it in Google, the gateway's booking wins: the conflict
  is logged and the booking written back. Guests' answers on it are kept
  (``responses``).
* A recurring event (``recurrence`` set) is expanded with ``events.instances``
  within the import horizon; its changed or cancelled instances come as
  events with ``recurringEventId`` and are handled like single events.
* Cancelled, free (transparent), declined and non-busy event types remove
  their block; single events that ended before the import window are
  skipped.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

from gateway.core.mirror import (
    AttendeeResponse,
    BusyBlock,
    Details,
    EventLink,
    InvitePath,
    LinkKind,
    LogKind,
    MirrorPolicy,
    SyncLogEntry,
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
class OwnEvent:
    """What the planner needs of one of our bookings met on Google."""

    booking: Booking | None  # None: deleted in the gateway (its push is queued)
    body: Mapping[str, Any] | None  # what we would write now
    # Written by another resource, whose calendar this was before a takeover:
    # not ours to keep, so the event is met like any other (busy time) until
    # its removal (``MirrorAdmin._hand_over``) arrives.
    foreign: bool = False


@dataclass(slots=True)
class PagePlan:
    upserts: list[BusyBlock] = field(default_factory=list)
    removals: list[str] = field(default_factory=list)
    expand: list[Mapping[str, Any]] = field(default_factory=list)  # master events
    series_removals: list[str] = field(default_factory=list)
    repush: list[str] = field(default_factory=list)
    responses: list[AttendeeResponse] = field(default_factory=list)
    notes: list[SyncLogEntry] = field(default_factory=list)
    echo_etags: list[tuple[str, str]] = field(default_factory=list)
    seen: set[str] = field(default_factory=set)


def own_booking_id(event: Mapping[str, Any], links: Mapping[str, EventLink]) -> str | None:
    """The booking id of an event the gateway wrote: the one rule of what is
    "our own event". It is in the event's private extended properties, or,
    for a deleted event that comes back stripped of them, in our link."""
    booking_id = booking_id_in(event)
    link = links.get(str(event.get("id", "")))
    if booking_id is None and link is not None and link.kind is LinkKind.PUSHED:
        return link.booking_id
    return booking_id


class PushKind(StrEnum):
    NOTHING = "nothing"  # Google has exactly this already, or nothing is ours
    WRITE = "write"  # insert or update the event to ``body``
    DELETE = "delete"  # remove the event the gateway wrote


@dataclass(frozen=True, slots=True)
class PushPlan:
    kind: PushKind
    body: Mapping[str, Any] | None = None
    digest: str = ""
    details: Details | None = None
    # google_import: bring the guests' imported copies in line as well.
    copy_to_guests: bool = False


def plan_push(
    booking: Booking | None,
    link: EventLink | None,
    policy: MirrorPolicy,
    *,
    recurrence: Sequence[str] = (),
    guests_with_copies: frozenset[str] = frozenset(),
    force: bool = False,
) -> PushPlan:
    """What bringing a booking's Google event in line with the booking as
    it is now takes (pure; the pusher only executes it). ``booking`` None:
    deleted in the gateway. ``force``: write even if our last write looks
    current (it was changed in Google). Guests with an imported copy are not
    listed on the event (Google would put it in their calendar twice)."""
    copies = booking is not None and policy.invitations is InvitePath.GOOGLE_IMPORT
    if booking is not None and booking.origin is Origin.GOOGLE:
        return PushPlan(PushKind.NOTHING)  # an imported busy block: it came from Google
    if booking is None or booking.status is BookingStatus.CANCELLED:
        ours = link is not None and link.kind is LinkKind.PUSHED
        return PushPlan(PushKind.DELETE if ours else PushKind.NOTHING, copy_to_guests=copies)
    details = link.details if link is not None else policy.details
    body = without_guests(event_body(booking, details, recurrence), set(guests_with_copies))
    written = digest(body)
    if link is not None and link.digest == written and not force:
        return PushPlan(PushKind.NOTHING, copy_to_guests=copies)
    return PushPlan(PushKind.WRITE, body, written, details, copy_to_guests=copies)


def vanished(links: Mapping[str, EventLink], listed: set[str]) -> list[dict[str, Any]]:
    """Our own events a complete listing (a full sync) did not show.

    A full ``events.list`` leaves deleted events out (showDeleted defaults to
    false, and after a 410 Google may have forgotten the deletion): an own
    event missing from it was deleted in Google. Each is returned as the
    cancelled event an incremental sync would have reported, so that one
    rule (``_plan_own``) decides both paths."""
    return [
        {"id": event_id, "status": "cancelled"}
        for event_id, link in sorted(links.items())
        if link.kind is LinkKind.PUSHED and event_id not in listed
    ]


def unlisted(links: Mapping[str, EventLink], listed: set[str]) -> tuple[list[str], list[str]]:
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


def plan_page(
    items: Sequence[Mapping[str, Any]],
    *,
    resource_id: str,
    calendar_zone: str,
    links: Mapping[str, EventLink],
    own: Mapping[str, OwnEvent],
    window_start: datetime,
    now: datetime,
    import_foreign: bool = True,
    listed: set[str] | None = None,
) -> PagePlan:
    """``import_foreign`` False (direction to_google): only our own events
    are looked at; the calendar's other events stay in Google. ``listed``:
    on the last page of a full listing, every event id Google listed; what
    the saved links know and Google no longer lists was deleted there while
    the sync token was invalid (our own events: ``vanished``; busy blocks
    and series: removed, ``unlisted``)."""
    plan = PagePlan()
    if listed is not None:
        items = [*items, *vanished(links, listed)]
    for event in items:
        event_id = str(event.get("id", ""))
        if not event_id:
            continue
        plan.seen.add(event_id)
        link = links.get(event_id)
        booking_id = own_booking_id(event, links)
        mine = own.get(booking_id) if booking_id is not None else None
        if booking_id is not None and not (mine is not None and mine.foreign):
            _plan_own(plan, event, booking_id, mine, link, resource_id, now)
            continue
        series = links.get(str(event.get("recurringEventId") or ""))
        if series is not None and series.kind is LinkKind.PUSHED:
            # One occurrence of our own recurring booking, changed or deleted
            # in Google. It is never a busy block; the series is not written
            # back (that would not undo an exception in Google), so a person
            # is told instead.
            plan.notes.append(
                SyncLogEntry(
                    resource_id,
                    LogKind.CONFLICT,
                    "an occurrence of a recurring booking was "
                    f"{'deleted' if event.get('status') == 'cancelled' else 'changed'} in "
                    "Google Calendar; the gateway still holds it as booked",
                    now,
                    booking_id=series.booking_id,
                    event_id=event_id,
                )
            )
            continue
        if not import_foreign:
            continue
        if event.get("recurrence"):
            if event.get("status") == "cancelled":
                plan.series_removals.append(event_id)
            elif link is None or link.etag != event.get("etag") or link.kind is not LinkKind.SERIES:
                plan.expand.append(event)
            continue
        if event.get("status") == "cancelled" and not event.get("recurringEventId"):
            # Deleted events come stripped to id and status, so a deleted
            # series is known by its link, not by its recurrence.
            if link is not None and link.kind is LinkKind.SERIES:
                plan.series_removals.append(event_id)
            elif link is not None:
                plan.removals.append(event_id)
            continue
        block = busy_block(event, calendar_zone)
        if block is None:
            if event_id in links or event.get("recurringEventId"):
                plan.removals.append(event_id)
            continue
        if block.span.end < window_start and event_id not in links:
            continue  # long past: not worth a block
        plan.upserts.append(block)
    if listed is not None:
        removals, series_removals = unlisted(links, listed)
        plan.removals += [e for e in removals if e not in plan.removals]
        plan.series_removals += [e for e in series_removals if e not in plan.series_removals]
    return plan


def _plan_own(
    plan: PagePlan,
    event: Mapping[str, Any],
    booking_id: str,
    own: OwnEvent | None,
    link: EventLink | None,
    resource_id: str,
    now: datetime,
) -> None:
    event_id = str(event["id"])
    etag = str(event.get("etag", ""))
    if own is None or own.booking is None or own.body is None:
        return  # deleted here; the queued push deletes it there
    booking = own.booking
    if booking.status is BookingStatus.CANCELLED:
        return  # the queued push deletes it
    for email, partstat in responses(event, booking):
        plan.responses.append(AttendeeResponse(booking_id, email, partstat))
    deleted = event.get("status") == "cancelled"
    if not deleted and link is not None and link.kind is LinkKind.PUSHED and link.etag == etag:
        return  # exactly our last write (a newer push may still be queued)
    if same_content(event, own.body):
        plan.echo_etags.append((event_id, etag))
        return
    what = "deleted" if deleted else "changed"
    plan.repush.append(booking_id)
    plan.notes.append(
        SyncLogEntry(
            resource_id,
            LogKind.CONFLICT,
            f"the booking {booking.title!r} was {what} in Google Calendar; the gateway's "
            "booking is kept and written back (change bookings in the gateway)",
            now,
            booking_id=booking_id,
            event_id=event_id,
        )
    )
