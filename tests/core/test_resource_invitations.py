"""The rules of ``gateway.core.resource_invitations`` as tables: which
resources an organizer's change concerns and what it asks of each, then
what a resource does (book, move, free) and answers, given its own booking
and its busy time. Pure: no store, no mail."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from gateway.core.model import Attendee, Booking, BookingStatus, PartStat, TimeSpan
from gateway.core.outbox_payloads import OutboxKind, ResourceReplyPayload
from gateway.core.resource_invitations import (
    ACCEPTED_STATUS,
    BUSY_STATUS,
    RECURRING_STATUS,
    Action,
    Decision,
    InvitableResource,
    Request,
    ResourceReply,
    decide,
    invited_uid,
    is_invited_uid,
    requests_of,
)

START = datetime(2030, 12, 3, 9, 0, tzinfo=UTC)
HOUR = timedelta(hours=1)
ROOM = InvitableResource("room", "room@shop.example")
BEN = InvitableResource("ben", "ben@shop.example")
ANNA = InvitableResource("anna", "anna@shop.example")  # the calendar written into
ZOE = Attendee("zoe@example.com")
ROOM_ASKED = Attendee("Room@Shop.Example")  # any case
OUTSIDE = "boss@elsewhere.example"
GATEWAY = ("anna@shop.example", "room@shop.example", "ben@shop.example", "bookings@shop.example")

MEETING = Booking(
    id="m1",
    resource_id="anna",
    uid="meeting@app.example",
    title="Planning",
    start=START,
    end=START + HOUR,
    timezone="UTC",
    created=START,
    updated=START,
    attendees=(ZOE, ROOM_ASKED),
)
SPAN = TimeSpan(START, START + HOUR)
MOVED_SPAN = TimeSpan(START + 2 * HOUR, START + 3 * HOUR)
MOVED = replace(MEETING, start=MOVED_SPAN.start, end=MOVED_SPAN.end, sequence=1)
WITHOUT_ROOM = replace(MEETING, attendees=(ZOE,))
CANCELLED = replace(MEETING, status=BookingStatus.CANCELLED, sequence=1)
SERIES = replace(MEETING, recurring=True)
ACCEPTED_IN_COPY = replace(
    MEETING, attendees=(ZOE, replace(ROOM_ASKED, partstat=PartStat.ACCEPTED))
)


def _words(requests: tuple[Request, ...]) -> list[str]:
    """``room:hold 09-10`` / ``room:let go`` / ``room:refuse 3.14``, and
    ``reply``/``news`` flags."""
    words = []
    for r in requests:
        if r.span is None:
            what = "let go"
        elif r.refusal:
            what = f"refuse {r.refusal.split(';')[0]}"
        else:
            what = f"hold {r.span.start:%H}-{r.span.end:%H}"
        flags = "".join(
            f" +{flag}" for flag, on in (("news", r.news), ("reply", bool(r.reply_to))) if on
        )
        words.append(f"{r.resource.id}:{what}{flags}")
    return words


# (name, before, after, organizer, CUTYPEs, by client) -> the requests.
REQUESTS: list[tuple[str, Booking | None, Booking | None, str, dict[str, str], list[str]]] = [
    ("created, room invited", None, MEETING, ANNA.email, {}, ["room:hold 09-10 +news"]),
    (
        "created by an outside organizer: a reply is due",
        None,
        MEETING,
        OUTSIDE,
        {},
        ["room:hold 09-10 +news +reply"],
    ),
    ("created, no ORGANIZER: nobody to reply to", None, MEETING, "", {}, ["room:hold 09-10 +news"]),
    ("created, room not invited", None, WITHOUT_ROOM, ANNA.email, {}, []),
    ("moved", MEETING, MOVED, OUTSIDE, {}, ["room:hold 11-12 +news +reply"]),
    (
        "retitled only: no news",
        MEETING,
        replace(MEETING, title="Plan"),
        OUTSIDE,
        {},
        ["room:hold 09-10 +reply"],
    ),
    (
        "SEQUENCE raised: news",
        MEETING,
        replace(MEETING, sequence=1),
        OUTSIDE,
        {},
        ["room:hold 09-10 +news +reply"],
    ),
    ("room added", WITHOUT_ROOM, MEETING, OUTSIDE, {}, ["room:hold 09-10 +news +reply"]),
    ("room taken off", MEETING, WITHOUT_ROOM, OUTSIDE, {}, ["room:let go"]),
    ("cancelled", MEETING, CANCELLED, OUTSIDE, {}, ["room:let go"]),
    ("deleted", MEETING, None, OUTSIDE, {}, ["room:let go"]),
    ("revived after a cancel", CANCELLED, MEETING, ANNA.email, {}, ["room:hold 09-10 +news"]),
    ("deleted, room never invited", WITHOUT_ROOM, None, OUTSIDE, {}, []),
    (
        "CUTYPE=ROOM",
        None,
        MEETING,
        ANNA.email,
        {"room@shop.example": "ROOM"},
        ["room:hold 09-10 +news"],
    ),
    (
        "CUTYPE=INDIVIDUAL",
        None,
        MEETING,
        ANNA.email,
        {"room@shop.example": "INDIVIDUAL"},
        ["room:hold 09-10 +news"],
    ),
    (
        "CUTYPE=GROUP",
        None,
        MEETING,
        ANNA.email,
        {"room@shop.example": "GROUP"},
        ["room:refuse 3.1 +news"],
    ),
    ("recurring", None, SERIES, ANNA.email, {}, ["room:refuse 3.14 +news"]),
    ("SCHEDULE-AGENT=CLIENT for the room", None, MEETING, ANNA.email, {}, ["ROOM@shop.example"]),
    ("in the room's own calendar", None, replace(MEETING, resource_id="room"), OUTSIDE, {}, []),
]


@pytest.mark.parametrize(
    ("before", "after", "organizer", "types", "expected"),
    [row[1:] for row in REQUESTS],
    ids=[row[0] for row in REQUESTS],
)
def test_what_a_change_asks_of_each_resource(
    before: Booking | None,
    after: Booking | None,
    organizer: str,
    types: dict[str, str],
    expected: list[str],
) -> None:
    by_client = [e for e in expected if "@" in e]
    requests = requests_of(
        before,
        after,
        (ANNA, ROOM, BEN),
        organizer=organizer,
        gateway_addresses=GATEWAY,
        by_client=by_client,
        calendar_user_types=types,
    )
    assert _words(requests) == ([] if by_client else expected)


def test_a_resource_that_does_not_accept_invitations_is_not_concerned() -> None:
    assert requests_of(None, MEETING, (BEN,), organizer=OUTSIDE, gateway_addresses=GATEWAY) == ()


def test_the_request_knows_what_the_organizers_copy_says() -> None:
    (request,) = requests_of(
        MEETING, ACCEPTED_IN_COPY, (ROOM,), organizer=OUTSIDE, gateway_addresses=GATEWAY
    )
    assert request.written is PartStat.ACCEPTED
    assert request.reply_to == OUTSIDE


ASK = Request(ROOM, SPAN, written=PartStat.NEEDS_ACTION, news=True, reply_to=OUTSIDE)
ASKED_INSIDE = replace(ASK, reply_to="")
ALREADY_TOLD = replace(ASK, written=PartStat.ACCEPTED, news=False)
LET_GO = Request(ROOM, None, news=False)
BUSY = [TimeSpan(START + HOUR / 2, START + 2 * HOUR)]
ACCEPT = (ACCEPTED_STATUS,)
BUSY_WORDS = (f"{BUSY_STATUS};20301203T093000Z/20301203T110000Z",)

# (name, request, held, clashes) -> decision
DECISIONS: list[tuple[str, Request, TimeSpan | None, list[TimeSpan], Decision]] = [
    ("free: book", ASK, None, [], Decision(Action.BOOK, PartStat.ACCEPTED, ACCEPT, True)),
    (
        "free, inside: no mail",
        ASKED_INSIDE,
        None,
        [],
        Decision(Action.BOOK, PartStat.ACCEPTED, ACCEPT),
    ),
    ("held, moved: move", ASK, SPAN, [], Decision(Action.MOVE, PartStat.ACCEPTED, ACCEPT, True)),
    (
        "held, the copy says ACCEPTED, nothing new: no second reply",
        ALREADY_TOLD,
        SPAN,
        [],
        Decision(Action.MOVE, PartStat.ACCEPTED, ACCEPT, False),
    ),
    (
        "busy: decline",
        ASK,
        None,
        BUSY,
        Decision(Action.NOTHING, PartStat.DECLINED, BUSY_WORDS, True),
    ),
    (
        "moved onto busy time: decline and free the old time",
        ASK,
        SPAN,
        BUSY,
        Decision(Action.FREE, PartStat.DECLINED, BUSY_WORDS, True),
    ),
    (
        "recurring: decline",
        replace(ASK, refusal=RECURRING_STATUS),
        None,
        [],
        Decision(Action.NOTHING, PartStat.DECLINED, (RECURRING_STATUS,), True),
    ),
    ("let go, held: free, no answer", LET_GO, SPAN, [], Decision(Action.FREE)),
    ("let go, nothing held", LET_GO, None, [], Decision(Action.NOTHING)),
]


@pytest.mark.parametrize(
    ("request_", "held", "clashes", "expected"),
    [row[1:] for row in DECISIONS],
    ids=[row[0] for row in DECISIONS],
)
def test_what_a_resource_does_and_answers(
    request_: Request, held: TimeSpan | None, clashes: list[TimeSpan], expected: Decision
) -> None:
    assert decide(request_, held, clashes) == expected


def test_the_resources_booking_has_a_reserved_uid_of_its_own() -> None:
    uid = invited_uid("m1")
    assert is_invited_uid(uid)
    assert uid != invited_uid("m2")
    assert not is_invited_uid("meeting@app.example")
    assert not is_invited_uid("invited-m1@app.example")


def test_the_reply_is_one_typed_outbox_record() -> None:
    reply = ResourceReply(
        "room",
        "m1",
        "meeting@app.example",
        2,
        OUTSIDE,
        "room@shop.example",
        PartStat.DECLINED,
        BUSY_WORDS,
        "Planning",
        SPAN,
    )
    record = reply.outbox()
    assert record.kind == OutboxKind.RESOURCE_REPLY.value
    assert (record.resource_id, record.booking_id) == ("room", "m1")
    assert record.payload == ResourceReplyPayload(
        uid="meeting@app.example",
        sequence=2,
        organizer=OUTSIDE,
        attendee="room@shop.example",
        partstat="DECLINED",
        statuses=BUSY_WORDS,
        title="Planning",
        start="2030-12-03T09:00:00+00:00",
        end="2030-12-03T10:00:00+00:00",
    )
