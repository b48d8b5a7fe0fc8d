"""The rule set of ``gateway.core.effects``: what each change causes, as
tables. Every origin x every kind of change x the policies; an effect is
written as text: ``created:zoe`` is an invitation REQUEST to zoe@example.com
telling of a new booking, ``cancelled:ana`` a CANCEL, ``push`` a write to
Google. Pure: no store, no mail."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from gateway.core.effects import (
    INVITATION,
    Change,
    ChangeOrigin,
    Effect,
    EffectPolicy,
    GooglePush,
    Invite,
    InviteAction,
    effects_of,
)
from gateway.core.invitations import InvitationKind
from gateway.core.mirror import GOOGLE_PUSH, Direction
from gateway.core.model import (
    Attendee,
    Booking,
    BookingStatus,
    Origin,
    OutboxEffect,
    PartStat,
    Scheduling,
)

RESOURCE = "anna@shop.example"
SENDER = "bookings@shop.example"
START = datetime(2026, 12, 8, 9, 0, tzinfo=UTC)
ANA = Attendee("ana@example.com", "Ana")
ZOE = Attendee("zoe@example.com", "Zoë")
MAX = Attendee("max@example.com", "Max")

BOOKING = Booking(
    id="b1",
    resource_id="anna",
    uid="b1@gw",
    title="Haircut",
    start=START,
    end=START + timedelta(hours=1),
    timezone="UTC",
    created=START,
    updated=START,
    attendees=(ANA, ZOE),
    sequence=1,
)
SERIES = replace(BOOKING, recurring=True)


def _later(b: Booking, **fields: object) -> Booking:
    # The service bumps SEQUENCE on API changes; a CalDAV client may or may not.
    return replace(b, updated=b.updated + timedelta(minutes=5), **fields)  # type: ignore[arg-type]


# Each kind of change: (before, after).
KINDS: dict[str, tuple[Booking | None, Booking | None]] = {
    "create": (None, BOOKING),
    "move": (
        BOOKING,
        _later(BOOKING, start=START + timedelta(hours=2), end=START + timedelta(hours=3)),
    ),
    "retitle": (BOOKING, _later(BOOKING, title="Haircut and colour")),
    "add attendee": (BOOKING, _later(BOOKING, attendees=(ANA, ZOE, MAX))),
    "remove attendee": (BOOKING, _later(BOOKING, attendees=(ANA,))),
    "cancel": (BOOKING, _later(BOOKING, status=BookingStatus.CANCELLED, sequence=2)),
    # One occurrence of a series cancelled (EXDATE): the first one and the
    # fields stay, the organizer's client raises SEQUENCE (RFC 5546 2.1.4).
    "cancel one occurrence": (SERIES, _later(SERIES, sequence=2)),
    "delete": (BOOKING, None),
    # Not the organizer's change: an attendee's PARTSTAT.
    "answer": (BOOKING, _later(BOOKING, attendees=(replace(ANA, partstat=PartStat.ACCEPTED), ZOE))),
    # What a calendar app writes when only its own alarm changed.
    "alarm only": (BOOKING, _later(BOOKING)),
}

# What the gateway sends when it is the organizer (the API; a CalDAV write
# organized by the resource with implicit scheduling on).
AS_ORGANIZER: dict[str, list[str]] = {
    "create": ["created:ana", "created:zoe"],
    "move": ["rescheduled:ana", "rescheduled:zoe"],
    "retitle": ["updated:ana", "updated:zoe"],
    "add attendee": ["created:max"],
    "remove attendee": ["cancelled:zoe"],
    "cancel": ["cancelled:ana", "cancelled:zoe"],
    "cancel one occurrence": ["updated:ana", "updated:zoe"],
    "delete": ["cancelled:ana", "cancelled:zoe"],
    "answer": [],
    "alarm only": [],
}
NOBODY: dict[str, list[str]] = {kind: [] for kind in KINDS}
# Zoë's client schedules her itself (SCHEDULE-AGENT=CLIENT, RFC 6638 7.1).
ZOE_BY_CLIENT = {
    kind: [e for e in mails if not e.endswith(":zoe")] for kind, mails in AS_ORGANIZER.items()
}

BY_RESOURCE = Scheduling(organizer=RESOURCE)
# (origin, what the object's text says) -> the invitations of each kind.
INVITATIONS: list[tuple[str, ChangeOrigin, Scheduling | None, dict[str, list[str]]]] = [
    ("API: the gateway organizes", ChangeOrigin.API, None, AS_ORGANIZER),
    ("CalDAV, ORGANIZER the resource", ChangeOrigin.CALDAV, BY_RESOURCE, AS_ORGANIZER),
    (
        "CalDAV, ORGANIZER the gateway's sender, any case",
        ChangeOrigin.CALDAV,
        Scheduling(organizer="Bookings@Shop.Example"),
        AS_ORGANIZER,
    ),
    (
        "CalDAV, Zoë SCHEDULE-AGENT=CLIENT",
        ChangeOrigin.CALDAV,
        Scheduling(organizer=RESOURCE, by_client=frozenset({"ZOE@example.com"})),
        ZOE_BY_CLIENT,
    ),
    (
        "CalDAV, somebody else organizes (their client invites)",
        ChangeOrigin.CALDAV,
        Scheduling(organizer="boss@elsewhere.example"),
        NOBODY,
    ),
    ("CalDAV, no ORGANIZER (not a meeting)", ChangeOrigin.CALDAV, Scheduling(), NOBODY),
    ("CalDAV, text unknown", ChangeOrigin.CALDAV, None, NOBODY),
    ("an answer (REPLY)", ChangeOrigin.REPLY, BY_RESOURCE, NOBODY),
    ("an import", ChangeOrigin.IMPORT, BY_RESOURCE, NOBODY),
    ("Google", ChangeOrigin.GOOGLE, BY_RESOURCE, NOBODY),
]

MAIL_ON = EffectPolicy(organizers=(RESOURCE, SENDER))


def _words(effects: tuple[Effect, ...]) -> list[str]:
    words = []
    for effect in effects:
        if isinstance(effect, Invite):
            words.append(f"{effect.action.value}:{effect.attendee.split('@')[0].lower()}")
        else:
            words.append("push")
    return words


def _change(kind: str, origin: ChangeOrigin, scheduling: Scheduling | None) -> Change:
    before, after = KINDS[kind]
    return Change(before, after, origin, scheduling=scheduling)


@pytest.mark.parametrize("kind", list(KINDS))
@pytest.mark.parametrize(
    ("origin", "scheduling", "expected"),
    [row[1:] for row in INVITATIONS],
    ids=[row[0] for row in INVITATIONS],
)
def test_who_is_told_of_each_change(
    kind: str,
    origin: ChangeOrigin,
    scheduling: Scheduling | None,
    expected: dict[str, list[str]],
) -> None:
    assert _words(effects_of(_change(kind, origin, scheduling), MAIL_ON)) == expected[kind]


@pytest.mark.parametrize("kind", list(KINDS))
@pytest.mark.parametrize(("origin", "scheduling"), [row[1:3] for row in INVITATIONS])
def test_without_mail_nobody_is_told(
    kind: str, origin: ChangeOrigin, scheduling: Scheduling | None
) -> None:
    policy = replace(MAIL_ON, invitations=False)
    assert _words(effects_of(_change(kind, origin, scheduling), policy)) == []


@pytest.mark.parametrize("kind", list(KINDS))
@pytest.mark.parametrize(
    ("origin", "expected"),
    [(ChangeOrigin.API, AS_ORGANIZER), (ChangeOrigin.CALDAV, NOBODY)],
)
def test_implicit_scheduling_off_leaves_calendar_apps_to_invite(
    kind: str, origin: ChangeOrigin, expected: dict[str, list[str]]
) -> None:
    policy = replace(MAIL_ON, implicit_scheduling=False)
    assert _words(effects_of(_change(kind, origin, BY_RESOURCE), policy)) == expected[kind]


# (origin, direction, the booking has a Google event) -> pushed?
PUSHES = [
    (ChangeOrigin.API, Direction.OFF, False, False),
    (ChangeOrigin.API, Direction.TO_GOOGLE, False, True),
    (ChangeOrigin.API, Direction.TWO_WAY, False, True),
    (ChangeOrigin.API, Direction.FROM_GOOGLE, False, False),
    # Mirroring stopped: the events already written follow their booking.
    (ChangeOrigin.API, Direction.OFF, True, True),
    (ChangeOrigin.CALDAV, Direction.TO_GOOGLE, False, True),
    (ChangeOrigin.CALDAV, Direction.OFF, False, False),
    (ChangeOrigin.REPLY, Direction.TWO_WAY, False, True),
    (ChangeOrigin.IMPORT, Direction.TO_GOOGLE, False, True),
    # Google's own change is never written back: an echo.
    (ChangeOrigin.GOOGLE, Direction.TWO_WAY, False, False),
    (ChangeOrigin.GOOGLE, Direction.OFF, True, False),
]


@pytest.mark.parametrize("kind", list(KINDS))
@pytest.mark.parametrize(("origin", "direction", "in_google", "pushed"), PUSHES)
def test_which_changes_go_to_google(
    kind: str, origin: ChangeOrigin, direction: Direction, in_google: bool, pushed: bool
) -> None:
    policy = replace(MAIL_ON, direction=direction, in_google=in_google, invitations=False)
    words = _words(effects_of(_change(kind, origin, BY_RESOURCE), policy))
    assert words == (["push"] if pushed else [])


def test_a_busy_block_from_google_is_never_pushed_back_whoever_changes_it() -> None:
    block = replace(BOOKING, origin=Origin.GOOGLE, attendees=())
    policy = replace(MAIL_ON, direction=Direction.TWO_WAY)
    for origin in ChangeOrigin:
        assert effects_of(Change(block, None, origin), policy) == ()


def test_an_import_of_the_past_goes_nowhere() -> None:
    policy = replace(MAIL_ON, direction=Direction.TO_GOOGLE)
    past = Change(None, BOOKING, ChangeOrigin.IMPORT, scheduling=BY_RESOURCE, over=True)
    assert effects_of(past, policy) == ()
    coming = replace(past, over=False)
    assert _words(effects_of(coming, policy)) == ["push"]


def test_a_cancelled_booking_revived_or_cancelled_again() -> None:
    cancelled = replace(BOOKING, status=BookingStatus.CANCELLED)
    again = Change(cancelled, _later(cancelled, title="x"), ChangeOrigin.API)
    assert _words(effects_of(again, MAIL_ON)) == []
    deleted = Change(cancelled, None, ChangeOrigin.CALDAV, scheduling=BY_RESOURCE)
    assert _words(effects_of(deleted, MAIL_ON)) == []
    revived = Change(cancelled, BOOKING, ChangeOrigin.CALDAV, scheduling=BY_RESOURCE)
    assert _words(effects_of(revived, MAIL_ON)) == ["created:ana", "created:zoe"]
    born_cancelled = Change(None, cancelled, ChangeOrigin.CALDAV, scheduling=BY_RESOURCE)
    assert _words(effects_of(born_cancelled, MAIL_ON)) == []


def test_cancelled_with_an_attendee_removed_tells_both() -> None:
    after = _later(BOOKING, status=BookingStatus.CANCELLED, attendees=(ANA,))
    change = Change(BOOKING, after, ChangeOrigin.CALDAV, scheduling=BY_RESOURCE)
    assert _words(effects_of(change, MAIL_ON)) == ["cancelled:ana", "cancelled:zoe"]


# The outbox records are those the handlers read (kinds and payloads).
RECORDS: list[tuple[Callable[[], Effect], OutboxEffect]] = [
    (
        lambda: Invite("anna", "b1", "zoe@example.com", InviteAction.RESCHEDULED, 3),
        OutboxEffect(
            INVITATION,
            "anna",
            "b1",
            {"action": "rescheduled", "sequence": 3, "attendee": "zoe@example.com"},
        ),
    ),
    (
        lambda: GooglePush("anna", "b1", "b1@gw", 3),
        OutboxEffect(GOOGLE_PUSH, "anna", "b1", {"uid": "b1@gw", "sequence": 3}),
    ),
]


@pytest.mark.parametrize(("effect", "record"), RECORDS)
def test_each_effect_makes_the_record_its_handler_reads(
    effect: Callable[[], Effect], record: OutboxEffect
) -> None:
    assert effect().outbox() == record


def test_invitation_kind_and_the_actions() -> None:
    assert INVITATION == "invitation"
    methods = {action.value: action.method for action in InviteAction}
    assert methods == {
        "created": InvitationKind.REQUEST,
        "rescheduled": InvitationKind.REQUEST,
        "updated": InvitationKind.REQUEST,
        "cancelled": InvitationKind.CANCEL,
        "resent": InvitationKind.REQUEST,
    }


def test_a_deletes_cancels_carry_the_deleted_text_and_nothing_else_does() -> None:
    text = "BEGIN:VCALENDAR...END:VCALENDAR"
    deleted = Change(BOOKING, None, ChangeOrigin.CALDAV, scheduling=BY_RESOURCE, deleted_text=text)
    records = [e.outbox() for e in effects_of(deleted, MAIL_ON)]
    assert [r.payload["deleted"] for r in records] == [text, text]
    cancelled = replace(deleted, after=KINDS["cancel"][1])
    assert all("deleted" not in e.outbox().payload for e in effects_of(cancelled, MAIL_ON))


def test_a_change_needs_a_booking() -> None:
    with pytest.raises(ValueError, match="before or after"):
        Change(None, None, ChangeOrigin.API)
