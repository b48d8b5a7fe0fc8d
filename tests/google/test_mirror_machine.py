"""The Google mirror as a Hypothesis state machine, end to end.

Random interleavings of what happens to a two-way mirror are run against
the real gateway (``running_gateway``: ``create_app`` on a loopback port,
its outbox and sync workers) and the fake Google through
google-api-python-client, and after every step the issue's invariants
(issue 18, "The design change behind them") are checked:

1. convergence: after a settle with no faults, a second settle changes
   nothing (no writes to Google, no revision change);
2. nothing duplicated: each booking has at most one Google event (its
   deterministic id), each Google event at most one busy block, and none of
   the gateway's own events comes back as a busy block;
3. the gateway's bookings are never lost: a booking not cancelled through
   the gateway is in the gateway with the times the gateway last gave it,
   and Google has it as a confirmed event with those times (both resources
   push); one cancelled through the gateway has no live event left;
4. Google busy blocks always block: every live (confirmed, opaque) event of
   the person's own has a busy block with its span, and no block outlives
   its event;
5. no guest answer is overwritten: an answer a guest gave in Google is still
   there after any gateway write, and reaches the booking's PARTSTAT after a
   settle.

Invariants 2 and 5's first half hold at every moment and are checked after
every step; the others are checked by the ``settle`` rule (and a final full
settle in ``teardown``), since between settles the two sides may lag.

Steps: bookings through the API (create, reschedule, cancel) and CalDAV
(PUT, DELETE); a person in Google inserting, moving and deleting their own
events and moving or deleting the gateway's; a guest answering on an event
whose invitations go through Google; queued faults (429, 403 rate limits,
500, 503) for the next calls; 410 (expired sync tokens); lost push
notifications; a restart (the gateway stops and starts again on the same
database, key and port); and the workers run in part (outbox only, one
sync only) or fully (``settle``).

Hypothesis' rules are synchronous, so the machine owns a private event loop
(``asyncio.Runner``) in which the fake Google, the gateway and its workers
run; each example starts them afresh (new temporary directory, ports, SMTP
server) and ``teardown`` stops them and checks that no task is left behind.

Bounded: the default profile runs a few short programs (well under a
minute); ``CALGATEWAY_MACHINE=long`` selects many longer ones::

    CALGATEWAY_MACHINE=long .venv/bin/pytest -q -p no:randomly tests/google/test_mirror_machine.py
"""

from __future__ import annotations

import asyncio
import os
import tempfile
from collections import Counter
from collections.abc import Coroutine
from contextlib import AbstractAsyncContextManager, ExitStack
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar
from zoneinfo import ZoneInfo

import aiohttp
import hypothesis
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

from fake_google.calendar import FakeGoogle
from gateway.core.mirror import google_event_id, is_imported_uid
from gateway.web.keys import OUTBOX
from google_bridge.mapping import BOOKING_KEY, RESOURCE_KEY
from google_bridge.tokens import new_key
from tests.backends import Store
from tests.caldav.dav import event as ics_event
from tests.caldav.dav import put, request
from tests.conftest import API_TOKEN
from tests.google.harness import Gateway, at, gtime, running_gateway
from tests.smtp import smtp_server

T = TypeVar("T")

# Every wait of one step is bounded by this (a settle has its own bound).
STEP_TIMEOUT = 120.0

# anna: two-way, full details, her bookers are guests of the Google event
# (Google invites them and their answers come back); bob: two-way, anonymous.
RESOURCES = """\
  - id: anna
    name: Anna Schmidt
    email: anna@example.com
    invitations: {via: google}
  - id: bob
    name: Bob Jones
    email: bob@example.com
    google: {details: anonymous}
"""
CALENDARS = {"anna": "anna.google@example.com", "bob": "bob.google@example.com"}
GUEST = "zoe@example.com"

DAYS = st.integers(1, 3)
HOURS = st.integers(8, 15)
# Which booking or event a step acts on: an index into the candidates *at
# that moment*. Never a draw from a list that depends on the state: what the
# gateway and Google hold depends on timing (a push may or may not have run),
# and Hypothesis needs each step to draw the same way when it replays it.
PICK = st.integers(0, 2**16)
FAULTS = st.sampled_from(
    [
        (429, "rateLimitExceeded"),
        (403, "rateLimitExceeded"),
        (403, "userRateLimitExceeded"),
        (500, "backendError"),
        (503, "backendError"),
    ]
)

# (examples, steps per example) of each profile.
_PROFILES = {"default": (25, 30), "long": (200, 50)}
EXAMPLES, STEPS = _PROFILES[os.environ.get("CALGATEWAY_MACHINE", "default")]


@dataclass
class Booked:
    """What the gateway was told about one of its bookings."""

    id: str
    resource: str
    uid: str
    start: datetime
    end: datetime
    guest: bool
    cancelled: bool = False
    answer: str | None = None  # the guest's last answer in Google
    answer_in_google: bool = False  # still on Google's copy (not deleted there)


def instant(field: dict[str, Any]) -> datetime:
    """An event's start or end (timed events only here) as an aware instant."""
    value = datetime.fromisoformat(str(field["dateTime"]).replace("Z", "+00:00"))
    if value.tzinfo is None:
        value = value.replace(tzinfo=ZoneInfo(str(field.get("timeZone") or "UTC")))
    return value


def is_ours(event: dict[str, Any]) -> bool:
    private = (event.get("extendedProperties") or {}).get("private") or {}
    return BOOKING_KEY in private


class MirrorMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.runner = asyncio.Runner()
        self.closing = ExitStack()
        self.bookings: dict[str, Booked] = {}
        # Resources whose sync token Google dropped since the machine last
        # ran a sync itself: only to report what the examples covered.
        self.dead_tokens: set[str] = set()
        self.gateway: Gateway | None = None
        self.started: AbstractAsyncContextManager[Gateway] | None = None
        self.dav: aiohttp.ClientSession | None = None
        try:
            self.tmp = Path(self.closing.enter_context(tempfile.TemporaryDirectory()))
            self.mail = self.closing.enter_context(smtp_server())
            self.key = new_key()
            self.fake_started = FakeGoogle.running(allow_http_webhooks=True)
            self.fake = self.run(self.fake_started.__aenter__())
            self.port: int | None = None
            self.run(self._start())
            for resource, calendar in CALENDARS.items():
                self.run(self.gw.connect(resource, calendar))
            # Notifications start lost: then the gateway syncs only when a
            # step says so, and Google-side changes pile up between syncs
            # (a 410 meeting a deletion, an answer meeting a reschedule).
            # ``notifications`` turns them on and off.
            self.fake.drop_notifications = True
        except BaseException:
            self._close()
            raise

    # -- the loop and the gateway's life ----------------------------------------------

    def run(self, work: Coroutine[Any, Any, T]) -> T:
        async def bounded() -> T:
            async with asyncio.timeout(STEP_TIMEOUT):
                return await work

        return self.runner.run(bounded())

    @property
    def gw(self) -> Gateway:
        assert self.gateway is not None
        return self.gateway

    async def _start(self) -> None:
        # SQLite only: a Hypothesis state machine makes its own folder per
        # example, outside pytest's fixtures; the runs it would add on
        # PostgreSQL cost more than this whole folder's other [postgres]
        # tests, whose syncs, restarts and 410s cover that backend.
        self.started = running_gateway(
            self.tmp,
            Store.sqlite(self.tmp / "gateway.sqlite3"),
            self.fake,
            self.mail,
            key=self.key,
            port=self.port,
            resources=RESOURCES,
        )
        self.gateway = await self.started.__aenter__()
        self.port = self.gateway.port
        self.gateway.calendars.update(CALENDARS)
        self.dav = aiohttp.ClientSession(base_url=self.gateway.url)

    async def _stop(self) -> None:
        if self.dav is not None:
            await self.dav.close()
            self.dav = None
        if self.started is not None:
            started, self.started, self.gateway = self.started, None, None
            await started.__aexit__(None, None, None)

    def _close(self) -> None:
        try:
            self.run(self._stop())
            if getattr(self, "fake_started", None) is not None:
                self.run(self.fake_started.__aexit__(None, None, None))

            async def leftovers() -> list[asyncio.Task[Any]]:
                current = asyncio.current_task()
                return [t for t in asyncio.all_tasks() if t is not current and not t.done()]

            left = self.runner.run(leftovers())
            assert not left, f"tasks left running after the example: {left}"
        finally:
            self.runner.close()
            self.closing.close()

    def teardown(self) -> None:
        try:
            if self.gateway is not None:
                self.run(self._full_settle())
                self.run(self._check_settled())
        finally:
            self._close()

    # -- helpers ------------------------------------------------------------------------

    async def _call(self, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        async with self.gw.http.request(
            method,
            f"{self.gw.url}/api/v1{path}",
            json=body,
            headers={"Authorization": f"Bearer {API_TOKEN}"},
        ) as response:
            data = await response.json(content_type=None) if response.status != 204 else None
            assert response.status < 500, (method, path, response.status, data)
            return response.status, data

    def live(self, resource: str | None = None) -> list[Booked]:
        return [
            b
            for b in self.bookings.values()
            if not b.cancelled and (resource is None or b.resource == resource)
        ]

    def google_event(self, booking: Booked) -> dict[str, Any] | None:
        try:
            return self.fake.event(CALENDARS[booking.resource], google_event_id(booking.id))
        except KeyError:
            return None

    def person_events(self, resource: str) -> list[dict[str, Any]]:
        """The person's own live events (not the gateway's), by id."""
        return sorted(
            (e for e in self.fake.events(CALENDARS[resource]) if not is_ours(e)),
            key=lambda e: str(e["id"]),
        )

    async def _full_settle(self) -> None:
        """Settle with whatever faults are queued, then without any, until
        the outbox is empty (items waiting for a retry are made due)."""
        gw = self.gw
        await gw.settle()
        # A round whose sync failed on a fault changes nothing, so the
        # harness calls it settled: settle again without faults.
        self.fake.faults.clear()
        await gw.settle()
        for _ in range(5):
            if await gw.repo.pending_outbox() == 0:
                break
            async with gw.repo.transaction() as tx:
                for resource in CALENDARS:
                    await tx.release_outbox(resource)
            await gw.settle()
        assert await gw.repo.pending_outbox() == 0, "the outbox did not drain without faults"

    async def _check_settled(self) -> None:
        gw = self.gw
        # 1. convergence: a second settle writes nothing and changes nothing.
        revisions = [await gw.repo.revision(r) for r in CALENDARS]
        writes = gw.fake_writes()
        await gw.settle()
        assert [await gw.repo.revision(r) for r in CALENDARS] == revisions, "not converged"
        assert gw.fake_writes() == writes, "a settled mirror still writes to Google"
        # 3. the gateway's bookings are never lost.
        for booked in self.bookings.values():
            obj = await gw.repo.get_by_id(booked.id)
            event = self.google_event(booked)
            if booked.cancelled:
                assert obj is None or obj.booking.status.value == "cancelled", booked
                assert event is None or event["status"] == "cancelled", (booked, event)
                continue
            assert obj is not None, f"booking lost in the gateway: {booked}"
            assert obj.booking.status.value == "confirmed", (booked, obj.booking)
            assert (obj.booking.start, obj.booking.end) == (booked.start, booked.end), booked
            assert event is not None, f"booking missing in Google: {booked}"
            assert event["status"] == "confirmed", (booked, event)
            assert (instant(event["start"]), instant(event["end"])) == (
                booked.start,
                booked.end,
            ), (booked, event)
            # 5. an answer given in Google reaches the booking.
            if booked.answer is not None:
                (attendee,) = obj.booking.attendees
                assert attendee.partstat.value == booked.answer.upper(), (booked, attendee)
        # 4. Google busy blocks always block, and only while their event lives.
        for resource in CALENDARS:
            wanted = {
                str(e["id"]): (instant(e["start"]), instant(e["end"]))
                for e in self.person_events(resource)
                if e.get("status", "confirmed") == "confirmed"
                and e.get("transparency", "opaque") == "opaque"
            }
            blocks = {
                _event_of(b.booking.uid, resource): (b.booking.start, b.booking.end)
                for b in await gw.busy_blocks(resource)
            }
            assert blocks == wanted, (resource, blocks, wanted)

    def _answer(self, status: str) -> str:
        return {"accepted": "ACCEPTED", "declined": "DECLINED", "tentative": "TENTATIVE"}[status]

    # -- invariants at every step -------------------------------------------------------

    @invariant()
    def nothing_duplicated(self) -> None:
        if self.gateway is None:
            return
        own_ids = {google_event_id(b.id) for b in self.bookings.values()}
        for resource, calendar in CALENDARS.items():
            ours = [e for e in self.fake.events(calendar) if is_ours(e)]
            private = [e["extendedProperties"]["private"] for e in ours]
            counts = Counter(p[BOOKING_KEY] for p in private)
            assert all(n == 1 for n in counts.values()), counts
            for event, props in zip(ours, private, strict=True):
                assert event["id"] == google_event_id(props[BOOKING_KEY]), event
                assert props[RESOURCE_KEY] == resource, event
            blocks = self.run(self.gw.busy_blocks(resource))
            events = Counter(_event_of(b.booking.uid, resource) for b in blocks)
            assert all(n == 1 for n in events.values()), events
            assert not set(events) & own_ids, "a gateway event came back as a busy block"

    @invariant()
    def answers_stay_in_google(self) -> None:
        if self.gateway is None:
            return
        for booked in self.live():
            if booked.answer is None or not booked.answer_in_google:
                continue
            event = self.google_event(booked)
            assert event is not None
            (guest,) = event["attendees"]
            assert guest["responseStatus"] == booked.answer, (booked, event)

    # -- the gateway's side -------------------------------------------------------------

    @rule(resource=st.sampled_from(sorted(CALENDARS)), day=DAYS, hour=HOURS)
    def book(self, resource: str, day: int, hour: int) -> None:
        start, end = at(day, hour), at(day, hour + 1)
        body: dict[str, Any] = {
            "resource": resource,
            "start": start.isoformat(),
            "end": end.isoformat(),
            "title": f"Booking {len(self.bookings)}",
        }
        guest = resource == "anna"  # anna's bookers are guests in Google
        if guest:
            body["booker"] = {"name": "Zoë", "email": GUEST}
        status, data = self.run(self._call("POST", "/bookings", body))
        assert status in (201, 409), (status, data)
        if status == 201:
            self.bookings[data["id"]] = Booked(data["id"], resource, data["uid"], start, end, guest)

    @rule(pick=PICK, day=DAYS, hour=HOURS)
    def reschedule(self, pick: int, day: int, hour: int) -> None:
        booked = chosen(self.live(), pick)
        if booked is None:
            return
        start, end = at(day, hour), at(day, hour + 1)
        body = {"start": start.isoformat(), "end": end.isoformat()}
        status, answer = self.run(self._call("PATCH", f"/bookings/{booked.id}", body))
        assert status in (200, 409), (status, answer)
        if status == 200 and (start, end) != (booked.start, booked.end):
            booked.start, booked.end = start, end
            if not booked.answer_in_google:
                # The gateway asks again after a move (NEEDS-ACTION) and
                # Google no longer holds the old answer to bring back.
                booked.answer = None

    @rule(pick=PICK)
    def cancel(self, pick: int) -> None:
        booked = chosen(self.live(), pick)
        if booked is None:
            return
        status, answer = self.run(self._call("DELETE", f"/bookings/{booked.id}"))
        assert status == 200, (status, answer)
        booked.cancelled = True

    @rule(
        delete=st.booleans(),
        pick=PICK,
        resource=st.sampled_from(sorted(CALENDARS)),
        day=DAYS,
        hour=HOURS,
    )
    def caldav(self, delete: bool, pick: int, resource: str, day: int, hour: int) -> None:
        """A CalDAV client creates a booking (PUT) or deletes one (DELETE)."""
        if delete:
            self._caldav_delete(pick)
        else:
            self._caldav_put(resource, day, hour)

    def _caldav_put(self, resource: str, day: int, hour: int) -> None:
        uid = f"dav-{len(self.bookings)}-{day}-{hour}"
        start, end = at(day, hour), at(day, hour + 1)

        def utc(value: datetime) -> str:
            return value.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")

        async def go() -> None:
            assert self.dav is not None
            answer = await put(
                self.dav,  # type: ignore[arg-type]
                f"/dav/calendars/{resource}/{uid}.ics",
                ics_event(uid, utc(start), utc(end), summary="By CalDAV"),
            )
            assert answer.status in (201, 403, 409), (answer.status, answer.body)
            if answer.status != 201:
                return
            obj = await self.gw.repo.get_by_uid(resource, uid)
            assert obj is not None
            self.bookings[obj.booking.id] = Booked(
                obj.booking.id, resource, uid, start, end, guest=False
            )

        self.run(go())

    def _caldav_delete(self, pick: int) -> None:
        booked = chosen(self.live(), pick)
        if booked is None:
            return

        async def go() -> None:
            assert self.dav is not None
            obj = await self.gw.repo.get_by_id(booked.id)
            assert obj is not None and obj.href, booked
            answer = await request(
                self.dav,  # type: ignore[arg-type]
                "DELETE",
                f"/dav/calendars/{booked.resource}/{obj.href}",
            )
            assert answer.status == 204, (answer.status, answer.body)

        self.run(go())
        booked.cancelled = True

    # -- a person in Google -------------------------------------------------------------

    @rule(resource=st.sampled_from(sorted(CALENDARS)), day=DAYS, hour=HOURS)
    def person_inserts(self, resource: str, day: int, hour: int) -> None:
        self.fake.user_insert(
            CALENDARS[resource], {"summary": "Private", **gtime(at(day, hour), at(day, hour + 1))}
        )

    @rule(
        delete=st.booleans(),
        pick=PICK,
        resource=st.sampled_from(sorted(CALENDARS)),
        day=DAYS,
        hour=HOURS,
    )
    def person_changes_own(
        self, delete: bool, pick: int, resource: str, day: int, hour: int
    ) -> None:
        """The person moves or deletes one of their own events."""
        event = chosen(self.person_events(resource), pick)
        if event is None:
            return
        if delete:
            self.fake.user_delete(CALENDARS[resource], event["id"])
        else:
            self.fake.user_update(
                CALENDARS[resource], event["id"], gtime(at(day, hour), at(day, hour + 1))
            )

    def _in_google(self) -> list[Booked]:
        return [
            b
            for b in self.live()
            if (event := self.google_event(b)) is not None and event["status"] != "cancelled"
        ]

    @rule(delete=st.booleans(), pick=PICK, day=DAYS, hour=HOURS)
    def person_changes_gateway_event(self, delete: bool, pick: int, day: int, hour: int) -> None:
        """The person moves or deletes one of the gateway's events in Google."""
        if delete:
            self._person_deletes_gateway_event(pick)
            return
        booked = chosen(self._in_google(), pick)
        if booked is None:
            return
        self.fake.user_update(
            CALENDARS[booked.resource],
            google_event_id(booked.id),
            {"summary": "Moved in Google", **gtime(at(day, hour), at(day, hour + 1))},
        )

    def _person_deletes_gateway_event(self, pick: int) -> None:
        booked = chosen(self._in_google(), pick)
        if booked is None:
            return
        self.fake.user_delete(CALENDARS[booked.resource], google_event_id(booked.id))
        if booked.resource in self.dead_tokens:
            hypothesis.event("a gateway event deleted in Google while the sync token was dead")
        if booked.answer is not None:
            # The answer goes with the event; it counts only if the gateway
            # had already heard it.
            booked.answer_in_google = False
            obj = self.run(self.gw.repo.get_by_id(booked.id))
            assert obj is not None
            if obj.booking.attendees[0].partstat.value != self._answer(booked.answer):
                booked.answer = None

    def _answerable(self) -> list[Booked]:
        return [
            b
            for b in self._in_google()
            if b.guest and (self.google_event(b) or {}).get("attendees")
        ]

    @rule(pick=PICK, answer=st.sampled_from(["accepted", "declined", "tentative"]))
    def guest_answers(self, pick: int, answer: str) -> None:
        booked = chosen(self._answerable(), pick)
        if booked is None:
            return
        event = self.google_event(booked)
        assert event is not None
        (guest,) = event["attendees"]
        self.fake.user_update(
            CALENDARS[booked.resource],
            event["id"],
            {"attendees": [{**guest, "responseStatus": answer}]},
        )
        booked.answer, booked.answer_in_google = answer, True

    # -- Google's troubles --------------------------------------------------------------

    @rule(fault=FAULTS, count=st.integers(1, 4))
    def google_fails_next_calls(self, fault: tuple[int, str], count: int) -> None:
        self.fake.fail_next(count, *fault)

    @rule(resource=st.sampled_from(sorted(CALENDARS)))
    def sync_token_expires(self, resource: str) -> None:
        self.fake.expire_sync_tokens(CALENDARS[resource])
        self.dead_tokens.add(resource)

    @rule(delivered=st.booleans())
    def notifications(self, delivered: bool) -> None:
        self.fake.drop_notifications = not delivered

    @rule()
    def restart(self) -> None:
        self.run(self._stop())
        self.run(self._start())

    # -- the workers --------------------------------------------------------------------

    @rule(part=st.sampled_from(["outbox", *sorted(CALENDARS)]))
    def workers_run(self, part: str) -> None:
        """Part of a settle: the outbox only, or one resource's sync only."""
        if part == "outbox":
            self.run(self.gw.app[OUTBOX].settle())
        else:
            self.run(self.gw.bridge.worker.sync_now(part))
            self.dead_tokens.discard(part)

    @rule()
    def settle(self) -> None:
        self.run(self._full_settle())
        self.run(self._check_settled())
        self.dead_tokens.clear()


def chosen(candidates: list[T], pick: int) -> T | None:
    """The ``pick``-th candidate (modulo), None if there is none."""
    return candidates[pick % len(candidates)] if candidates else None


def _event_of(uid: str, resource: str) -> str:
    """The Google event id of a busy block (``imported_uid``)."""
    assert is_imported_uid(uid), uid
    return uid.removeprefix("google-").removesuffix(f"@{resource}.calgateway")


MirrorMachine.TestCase.settings = settings(
    # The default profile runs the same programs every time (CI must not
    # change its mind between runs); the long one explores.
    derandomize=os.environ.get("CALGATEWAY_MACHINE", "default") == "default",
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
    max_examples=EXAMPLES,
    stateful_step_count=STEPS,
)
TestMirrorMachine = MirrorMachine.TestCase
