"""``reconcile`` as a Hypothesis state machine, on plain data.

``test_mirror_machine`` drives the whole gateway against the fake Google;
this one drives the mirror's one decision (``google_bridge.reconcile``)
alone, fast enough for many long programs. It holds

* a model of Google: events with etags, a change log behind sync tokens
  (a delta reports deleted events stripped to id and status), and 410s
  that forget deletions, as the Calendar API documents for
  "Synchronize resources efficiently";
* a model of the gateway: its bookings, busy blocks, the saved status
  (links) and the outbox of pushes;
* runners that only execute plans, as ``google_bridge.sync`` and ``.push``
  do: a page is committed whole or not at all (the sync token with the last
  page), writes back to Google go to the outbox, a push writes with the
  guests' answers Google holds (``mapping.keep_answers``) and may be taken
  by Google with its answer lost (a crash before the link is saved).

Steps interleave bookings, reschedules, cancellations and deletions in the
gateway; a person in Google creating, moving and deleting their own events
and editing or deleting the gateway's; a guest answering; 410s; syncs that
crash between pages; pushes that Google refuses or whose answer is lost.

After every step:

1. nothing is duplicated and none of the gateway's own events comes back as
   a busy block;
2. the gateway's bookings are never lost or changed by the mirror (only an
   attendee's answer is recorded);
3. no guest answer given in Google is overwritten by a gateway write;
4. after a sync completes, every busy event of the person's own in Google
   has its block with its span (Google busy time always blocks);
5. from this state, settling (syncs and pushes without faults) converges
   within a few rounds: then Google holds every live booking as the gateway
   has it and no cancelled one, the blocks are exactly Google's busy
   events, every answer reached its booking, and ``reconcile`` over a full
   listing plans nothing.

Bounded: the default profile runs 60 programs of up to 40 steps (a few
seconds); ``CALGATEWAY_MACHINE=long`` selects many longer ones::

    CALGATEWAY_MACHINE=long .venv/bin/pytest -q -p no:randomly \
        tests/google/test_reconcile_machine.py
"""

from __future__ import annotations

import copy
import os
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    Bundle,
    RuleBasedStateMachine,
    consumes,
    initialize,
    invariant,
    precondition,
    rule,
)

from gateway.core.mirror import (
    BusyBlock,
    Details,
    Direction,
    EventLink,
    InvitePath,
    LinkKind,
    LogKind,
    MirrorPolicy,
    google_event_id,
)
from gateway.core.model import Attendee, Booking, BookingStatus, PartStat
from google_bridge.mapping import busy_block, keep_answers, same_content
from google_bridge.reconcile import (
    Booked,
    GoogleView,
    Plan,
    Scope,
    event_body_of,
    own_booking_id,
    reconcile,
    vanished,
)

RES = "anna"
ZONE = "Europe/Berlin"
BERLIN = ZoneInfo(ZONE)
NOW = datetime(2026, 3, 10, 12, 0, tzinfo=UTC)
WINDOW_START = NOW - timedelta(days=30)
DAY = datetime(2026, 3, 12, 8, 0, tzinfo=BERLIN)
SLOTS = 8  # hour slots on one day
GUEST = "zoe@example.com"
ANSWERS = ("accepted", "declined", "tentative")
PARTSTAT = {
    "accepted": PartStat.ACCEPTED,
    "declined": PartStat.DECLINED,
    "tentative": PartStat.TENTATIVE,
}
SETTLE_ROUNDS = 4

Event = dict[str, Any]


def slot_time(slot: int) -> tuple[datetime, datetime]:
    start = DAY + timedelta(hours=slot)
    return start, start + timedelta(hours=1)


def google_time(value: datetime) -> dict[str, str]:
    return {"dateTime": value.isoformat(), "timeZone": ZONE}


# -- Google ------------------------------------------------------------------------


@dataclass
class Google:
    """Events by id (deleted ones kept as cancelled until a 410 forgets
    them), and the change log a sync token points into."""

    events: dict[str, Event] = field(default_factory=dict)
    log: list[str] = field(default_factory=list)
    oldest_token: int = 0  # older tokens answer 410 fullSyncRequired
    etags: int = 0

    def touch(self, event: Event) -> None:
        self.etags += 1
        event["etag"] = f'"{self.etags}"'
        self.events[event["id"]] = event
        self.log.append(event["id"])

    def delta(self, token: int) -> list[Event] | None:
        """What changed since ``token``, or None (410)."""
        if token < self.oldest_token:
            return None
        changed = list(dict.fromkeys(self.log[token:]))
        return [self.as_listed(self.events[e]) for e in changed if e in self.events]

    def listing(self) -> list[Event]:
        """A full ``events.list``: deleted events left out (showDeleted false)."""
        return [
            copy.deepcopy(event)
            for _, event in sorted(self.events.items())
            if event.get("status") != "cancelled"
        ]

    @staticmethod
    def as_listed(event: Event) -> Event:
        if event.get("status") == "cancelled":
            # Deleted events come stripped to hardly more than their id.
            return {"id": event["id"], "status": "cancelled", "etag": event["etag"]}
        return copy.deepcopy(event)

    def expire_tokens(self) -> None:
        """410: every sync token is gone, and so is Google's memory of what
        was deleted (a full sync can only see what is still there)."""
        self.oldest_token = len(self.log)
        self.events = {e: ev for e, ev in self.events.items() if ev.get("status") != "cancelled"}

    def live(self, event_id: str) -> Event | None:
        event = self.events.get(event_id)
        return event if event is not None and event.get("status") != "cancelled" else None


# -- the gateway ---------------------------------------------------------------------


@dataclass
class Gateway:
    bookings: dict[str, Booking] = field(default_factory=dict)  # deleted ones removed
    blocks: dict[str, BusyBlock] = field(default_factory=dict)  # by Google event id
    status: dict[str, EventLink] = field(default_factory=dict)
    outbox: dict[str, bool] = field(default_factory=dict)  # booking id -> Google changed it
    token: int | None = None
    conflicts: set[str] = field(default_factory=set)  # bookings a conflict was logged for


@dataclass
class World:
    google: Google = field(default_factory=Google)
    gateway: Gateway = field(default_factory=Gateway)
    policy: MirrorPolicy = field(
        default_factory=lambda: MirrorPolicy(Direction.TWO_WAY, Details.FULL, InvitePath.GOOGLE)
    )

    @property
    def scope(self) -> Scope:
        return Scope(RES, self.policy, WINDOW_START, NOW)


def commit(gateway: Gateway, plan: Plan) -> None:
    """The gateway half of a plan, in one transaction (``ImportApplier``)."""
    assert not plan.expand, "the model has no recurring events"
    for block in plan.upserts:
        gateway.blocks[block.event_id] = block
    for event_id in plan.removals:
        gateway.blocks.pop(event_id, None)
    for event_id, link in plan.status.items():
        if link is None:
            gateway.status.pop(event_id, None)
        elif link.kind is LinkKind.IMPORTED and not link.booking_id:
            gateway.status[event_id] = replace(link, booking_id=f"blk-{event_id}")
        else:
            gateway.status[event_id] = link
    for response in plan.responses:
        booking = gateway.bookings[response.booking_id]
        attendees = tuple(
            replace(a, partstat=PartStat(response.partstat))
            if a.email.lower() == response.email
            else a
            for a in booking.attendees
        )
        gateway.bookings[response.booking_id] = replace(booking, attendees=attendees)
    for booking_id in [w.booking_id for w in plan.writes] + [d.booking_id for d in plan.deletes]:
        gateway.outbox[booking_id] = True  # written back: Google's copy differs
    gateway.conflicts |= {note.booking_id for note in plan.notes if note.kind is LogKind.CONFLICT}


def sync(world: World, crash_before_page: int | None = None) -> bool:
    """``google_bridge.sync``: a delta, or after a 410 a full listing in two
    pages. Returns whether it completed."""
    google, gateway = world.google, world.gateway
    pages: list[tuple[list[Event], frozenset[str] | None]]
    delta = google.delta(gateway.token) if gateway.token is not None else None
    if delta is not None:
        pages = [(delta, None)]
    else:
        listing = google.listing()
        half = len(listing) // 2
        listed = frozenset(e["id"] for e in listing)
        pages = [(listing[:half], None), (listing[half:], listed)]
    end_token = len(google.log)
    for number, (items, listed) in enumerate(pages):
        if number == crash_before_page:
            return False  # killed: this page's transaction never committed
        met = items if listed is None else [*items, *vanished(gateway.status, listed)]
        own = {b for b in (own_booking_id(e, gateway.status) for e in met) if b is not None}
        plan = reconcile(
            gateway.status,
            {b: Booked(gateway.bookings.get(b)) for b in own},
            GoogleView(items, ZONE, listed),
            world.scope,
        )
        commit(gateway, plan)
    gateway.token = end_token
    return True


def push(world: World, booking_id: str, fault: str | None = None) -> None:
    """``google_bridge.push``: execute the plan for one queued booking.
    ``fault``: "refused" (Google answered 5xx; the item waits) or "lost"
    (Google took the write, the gateway died before saving the link)."""
    google, gateway = world.google, world.gateway
    changed_there = gateway.outbox[booking_id]
    event_id = google_event_id(booking_id)
    link = gateway.status.get(event_id)
    plan = reconcile(
        {event_id: link} if link is not None else {},
        {booking_id: Booked(gateway.bookings.get(booking_id))},
        GoogleView(differs=frozenset({booking_id}) if changed_there else frozenset()),
        world.scope,
    )
    assert not (plan.upserts or plan.removals or plan.responses), "a push imports nothing"
    if fault == "refused":
        return
    for delete in plan.deletes:
        current = google.live(delete.event_id)
        if current is not None:
            google.touch({**current, "status": "cancelled"})
    for write in plan.writes:
        current = google.events.get(write.event_id)
        # Insert, or update with the answers Google holds (push._write).
        event = keep_answers(write.body, current or {})
        event["id"] = write.event_id
        google.touch(copy.deepcopy(event))
        new = plan.status[write.event_id]
        assert new is not None
        if fault == "lost":
            return
        plan.status[write.event_id] = replace(new, etag=google.events[write.event_id]["etag"])
    if fault == "lost":
        return  # a delete taken by Google, the gateway dead before noting it
    commit(gateway, replace(plan, writes=[], deletes=[]))
    del gateway.outbox[booking_id]


def settle(world: World) -> int:
    """Syncs and pushes without faults until a round changes nothing;
    returns the rounds it took (SETTLE_ROUNDS + 1: it did not converge)."""
    for rounds in range(1, SETTLE_ROUNDS + 2):
        before = copy.deepcopy((world.gateway, world.google.events))
        sync(world)
        for booking_id in sorted(world.gateway.outbox):
            push(world, booking_id)
        after = (world.gateway, world.google.events)
        if _same_apart_from_token(before, after):
            return rounds
    return SETTLE_ROUNDS + 1


def _same_apart_from_token(before: tuple[Gateway, Any], after: tuple[Gateway, Any]) -> bool:
    return replace(before[0], token=None) == replace(after[0], token=None) and (
        before[1] == after[1]
    )


def busy_in_google(world: World) -> dict[str, BusyBlock]:
    """The person's own busy events in Google, as blocks."""
    blocks = {}
    for event_id, event in world.google.events.items():
        if own_booking_id(event, {}) is not None:
            continue
        block = busy_block(event, ZONE)
        if block is not None:
            blocks[event_id] = block
    return blocks


# -- the machine ---------------------------------------------------------------------


class ReconcileMachine(RuleBasedStateMachine):
    own = Bundle("own")
    theirs = Bundle("theirs")

    def __init__(self) -> None:
        super().__init__()
        self.world = World()
        self.truth: dict[str, Booking] = {}  # what the gateway's own rules made
        self.answers: dict[str, str] = {}  # booking id -> the guest's standing answer
        self.tampered: set[str] = set()  # our events a person changed or deleted in Google
        self.made = 0

    @initialize(details=st.sampled_from(list(Details)))
    def choose_details(self, details: Details) -> None:
        self.world.policy = replace(self.world.policy, details=details)
        sync(self.world)  # connected: the first full import

    # -- the gateway --------------------------------------------------------------

    def _queue(self, booking: Booking | None, booking_id: str) -> None:
        gateway = self.world.gateway
        if booking is None:
            gateway.bookings.pop(booking_id, None)
            self.truth.pop(booking_id, None)
        else:
            gateway.bookings[booking_id] = booking
            self.truth[booking_id] = booking
        gateway.outbox.setdefault(booking_id, False)

    @rule(target=own, slot=st.integers(0, SLOTS - 1), guest=st.booleans())
    def book(self, slot: int, guest: bool) -> str:
        self.made += 1
        booking_id = f"booking{self.made}"
        start, end = slot_time(slot)
        booking = Booking(
            id=booking_id,
            resource_id=RES,
            uid=f"{booking_id}@gateway.test",
            title=f"Appointment {self.made}",
            start=start,
            end=end,
            timezone=ZONE,
            created=NOW,
            updated=NOW,
            attendees=(Attendee(GUEST),) if guest else (),
        )
        self._queue(booking, booking_id)
        return booking_id

    @rule(booking_id=own, slot=st.integers(0, SLOTS - 1))
    def reschedule(self, booking_id: str, slot: int) -> None:
        booking = self.world.gateway.bookings.get(booking_id)
        if booking is None or booking.status is BookingStatus.CANCELLED:
            return
        start, end = slot_time(slot)
        self._queue(
            replace(booking, start=start, end=end, sequence=booking.sequence + 1), booking_id
        )

    @rule(booking_id=own)
    def retitle(self, booking_id: str) -> None:
        booking = self.world.gateway.bookings.get(booking_id)
        if booking is None or booking.status is BookingStatus.CANCELLED:
            return
        self._queue(replace(booking, title=booking.title + "!"), booking_id)

    @rule(booking_id=consumes(own), delete=st.booleans())
    def cancel(self, booking_id: str, delete: bool) -> None:
        booking = self.world.gateway.bookings.get(booking_id)
        if booking is None:
            return
        cancelled = None if delete else replace(booking, status=BookingStatus.CANCELLED)
        self._queue(cancelled, booking_id)
        self.answers.pop(booking_id, None)

    # -- a person and a guest in Google ------------------------------------------------

    @rule(target=theirs, slot=st.integers(0, SLOTS - 1), free=st.booleans())
    def person_creates(self, slot: int, free: bool) -> str:
        self.made += 1
        start, end = slot_time(slot)
        event: Event = {
            "id": f"theirs{self.made}",
            "summary": "Dentist",
            "start": google_time(start),
            "end": google_time(end),
            "status": "confirmed",
            "transparency": "transparent" if free else "opaque",
        }
        self.world.google.touch(event)
        return str(event["id"])

    @rule(event_id=theirs, slot=st.integers(0, SLOTS - 1))
    def person_moves(self, event_id: str, slot: int) -> None:
        event = self.world.google.live(event_id)
        if event is None:
            return
        start, end = slot_time(slot)
        self.world.google.touch({**event, "start": google_time(start), "end": google_time(end)})

    @rule(event_id=consumes(theirs))
    def person_deletes(self, event_id: str) -> None:
        event = self.world.google.live(event_id)
        if event is not None:
            self.world.google.touch({**event, "status": "cancelled"})

    @rule(booking_id=own, slot=st.integers(0, SLOTS - 1))
    def person_moves_ours(self, booking_id: str, slot: int) -> None:
        event = self.world.google.live(google_event_id(booking_id))
        if event is None:
            return
        start, end = slot_time(slot)
        self.world.google.touch({**event, "start": google_time(start), "end": google_time(end)})
        self.tampered.add(booking_id)

    @rule(booking_id=own)
    def person_deletes_ours(self, booking_id: str) -> None:
        event = self.world.google.live(google_event_id(booking_id))
        if event is not None:
            self.world.google.touch({**event, "status": "cancelled"})
            self.tampered.add(booking_id)
            self.answers.pop(booking_id, None)  # the answer went with the event

    @rule(booking_id=own, answer=st.sampled_from(ANSWERS))
    def guest_answers(self, booking_id: str, answer: str) -> None:
        event = self.world.google.live(google_event_id(booking_id))
        if event is None or not event.get("attendees"):
            return
        attendees = [
            {**a, "responseStatus": answer} if a["email"] == GUEST else a
            for a in event["attendees"]
        ]
        self.world.google.touch({**copy.deepcopy(event), "attendees": attendees})
        self.answers[booking_id] = answer

    @rule()
    def tokens_expire(self) -> None:
        self.world.google.expire_tokens()

    # -- the runners ---------------------------------------------------------------------

    @rule(crash_before_page=st.one_of(st.none(), st.integers(0, 1)))
    def run_sync(self, crash_before_page: int | None) -> None:
        if sync(self.world, crash_before_page):
            # 4. a completed sync leaves every busy event of Google's blocking.
            blocks = self.world.gateway.blocks
            for event_id, block in busy_in_google(self.world).items():
                assert event_id in blocks, f"{event_id} busy in Google but not blocked"
                assert blocks[event_id].span == block.span

    @precondition(lambda self: bool(self.world.gateway.outbox))
    @rule(data=st.data(), fault=st.sampled_from([None, None, "refused", "lost"]))
    def run_push(self, data: st.DataObject, fault: str | None) -> None:
        booking_id = data.draw(st.sampled_from(sorted(self.world.gateway.outbox)))
        push(self.world, booking_id, fault)

    # -- invariants ----------------------------------------------------------------------

    @invariant()
    def nothing_duplicated_and_ours_never_imported(self) -> None:
        ours = {google_event_id(b) for b in self.truth} | {
            google_event_id(f"booking{n}") for n in range(self.made + 1)
        }
        assert not ours & set(self.world.gateway.blocks), "our own event came back as a block"
        for event_id, link in self.world.gateway.status.items():
            if link.kind is LinkKind.PUSHED:
                assert event_id == google_event_id(link.booking_id)

    @invariant()
    def conflicts_only_where_a_person_changed_our_event(self) -> None:
        """A conflict tells the admin a person changed a booking in Google:
        never for our own writes coming back, answers, or crashes."""
        assert self.world.gateway.conflicts <= self.tampered

    @invariant()
    def bookings_never_lost(self) -> None:
        held = self.world.gateway.bookings
        assert set(held) == set(self.truth)
        for booking_id, booking in self.truth.items():
            # The mirror records answers and nothing else.
            assert replace(held[booking_id], attendees=booking.attendees) == booking

    @invariant()
    def no_answer_overwritten(self) -> None:
        for booking_id, answer in self.answers.items():
            event = self.world.google.live(google_event_id(booking_id))
            if event is None:
                continue
            given = {a["email"]: a.get("responseStatus") for a in event.get("attendees") or []}
            if GUEST in given:
                assert given[GUEST] == answer, f"{booking_id}: the guest's {answer} overwritten"

    @invariant()
    def settling_converges(self) -> None:
        world = copy.deepcopy(self.world)
        rounds = settle(world)
        assert rounds <= SETTLE_ROUNDS, "syncs and pushes never came to rest"
        google, gateway = world.google, world.gateway
        assert gateway.conflicts <= self.tampered
        for booking_id, booking in gateway.bookings.items():
            event = google.live(google_event_id(booking_id))
            if booking.status is BookingStatus.CANCELLED:
                assert event is None, f"{booking_id} cancelled but live in Google"
                continue
            link = gateway.status.get(google_event_id(booking_id))
            assert event is not None and link is not None, f"{booking_id} missing from Google"
            assert same_content(event, event_body_of(Booked(booking), link, world.policy))
            if booking_id in self.answers and booking.attendees:
                (guest,) = booking.attendees
                assert guest.partstat is PARTSTAT[self.answers[booking_id]]
        for booking_id in set(self.truth) ^ set(gateway.bookings):
            raise AssertionError(f"settling lost or made {booking_id}")
        deleted = {
            event_id
            for event_id, event in google.events.items()
            if own_booking_id(event, {}) not in gateway.bookings
            and own_booking_id(event, {}) is not None
        }
        assert all(google.live(e) is None for e in deleted), "a deleted booking lives on in Google"
        assert gateway.blocks == busy_in_google(world)
        listed = frozenset(e["id"] for e in google.listing())
        own = {
            b
            for b in (
                own_booking_id(e, gateway.status)
                for e in [*google.listing(), *vanished(gateway.status, listed)]
            )
            if b is not None
        }
        again = reconcile(
            gateway.status,
            {b: Booked(gateway.bookings.get(b)) for b in own},
            GoogleView(google.listing(), ZONE, listed),
            world.scope,
        )
        assert again.changes_nothing, f"a full listing after settling still plans {again}"


_LONG = os.environ.get("CALGATEWAY_MACHINE") == "long"
ReconcileMachine.TestCase.settings = settings(
    max_examples=2000 if _LONG else 300,
    stateful_step_count=80 if _LONG else 50,
    deadline=None,
    derandomize=not _LONG,
    suppress_health_check=[HealthCheck.too_slow],
)
TestReconcileMachine = ReconcileMachine.TestCase
