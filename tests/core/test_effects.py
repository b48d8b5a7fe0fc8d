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
    effects_of,
    method_of,
)
from gateway.core.invitations import InvitationKind
from gateway.core.mirror import GOOGLE_PUSH, Direction
from gateway.core.model import (
    Attendee,
    Booking,
    BookingStatus,
    Origin,
    OutboxEffect,
    Override,
    PartStat,
    Recurrence,
    Scheduling,
)
from gateway.core.outbox_payloads import GooglePushPayload, InvitationPayload, InviteAction

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


# Zoë's address is a resource that accepts invitations: a CalDAV write's
# invitation to her is answered inside (gateway.core.resource_invitations),
# never mailed; the API's own bookings still mail her.
@pytest.mark.parametrize("kind", list(KINDS))
@pytest.mark.parametrize(
    ("origin", "expected"),
    [(ChangeOrigin.API, AS_ORGANIZER), (ChangeOrigin.CALDAV, ZOE_BY_CLIENT)],
)
def test_a_resource_answering_inside_is_not_mailed(
    kind: str, origin: ChangeOrigin, expected: dict[str, list[str]]
) -> None:
    policy = replace(MAIL_ON, answered_inside=("ZOE@example.com",))
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
            "anna", "b1", InvitationPayload(InviteAction.RESCHEDULED, 3, "zoe@example.com")
        ),
    ),
    (
        lambda: GooglePush("anna", "b1", "b1@gw", 3),
        OutboxEffect("anna", "b1", GooglePushPayload(uid="b1@gw", sequence=3)),
    ),
]


@pytest.mark.parametrize(("effect", "record"), RECORDS)
def test_each_effect_makes_the_record_its_handler_reads(
    effect: Callable[[], Effect], record: OutboxEffect
) -> None:
    assert effect().outbox() == record
    assert {INVITATION: InvitationPayload, GOOGLE_PUSH: GooglePushPayload}[record.kind] is type(
        record.payload
    )


def test_invitation_kind_and_the_actions() -> None:
    assert INVITATION == "invitation"
    methods = {action.value: method_of(action) for action in InviteAction}
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
    assert [_invitation(r).deleted for r in records] == [text, text]
    cancelled = replace(deleted, after=KINDS["cancel"][1])
    assert all(_invitation(e.outbox()).deleted == "" for e in effects_of(cancelled, MAIL_ON))


def _invitation(record: OutboxEffect) -> InvitationPayload:
    assert isinstance(record.payload, InvitationPayload)
    return record.payload


def test_a_change_needs_a_booking() -> None:
    with pytest.raises(ValueError, match="before or after"):
        Change(None, None, ChangeOrigin.API)


# -- one occurrence of a series (RFC 5546 3.2.5 with RECURRENCE-ID) --------------------

# Weekly on Tuesdays at 09:00 UTC; the texts before and after a change say
# which occurrences are excluded (EXDATE) or overridden.
WEEKLY = ("RRULE:FREQ=WEEKLY;COUNT=10",)
SECOND = "2026-12-15T09:00:00+00:00"
THIRD = "2026-12-22T09:00:00+00:00"


def _at(
    occurrence: str, hours: int = 0, status: BookingStatus = BookingStatus.CONFIRMED
) -> Override:
    start = datetime.fromisoformat(occurrence) + timedelta(hours=hours)
    return Override(occurrence, start, start + timedelta(hours=1), status)


def _series(*, exdates: tuple[str, ...] = (), overrides: tuple[Override, ...] = ()) -> Recurrence:
    return Recurrence(WEEKLY, frozenset(exdates), overrides)


# name -> (the series before, after, the booking after, what the attendees hear)
# "cancelled:ana@2026-12-15T09:00:00+00:00" is a CANCEL of that occurrence.
OCCURRENCES: dict[str, tuple[Recurrence, Recurrence, Booking, list[str]]] = {
    "EXDATE added (the client raised SEQUENCE)": (
        _series(),
        _series(exdates=(SECOND,)),
        _later(SERIES, sequence=2),
        [f"cancelled:ana@{SECOND}", f"cancelled:zoe@{SECOND}"],
    ),
    "two EXDATEs added, SEQUENCE kept": (
        _series(),
        _series(exdates=(THIRD, SECOND)),
        _later(SERIES),
        [f"cancelled:{p}@{o}" for o in (SECOND, THIRD) for p in ("ana", "zoe")],
    ),
    "an override with STATUS:CANCELLED added": (
        _series(),
        _series(overrides=(_at(SECOND, status=BookingStatus.CANCELLED),)),
        _later(SERIES, sequence=2),
        [f"cancelled:ana@{SECOND}", f"cancelled:zoe@{SECOND}"],
    ),
    "a moved occurrence cancelled": (
        _series(overrides=(_at(SECOND, hours=5),)),
        _series(overrides=(_at(SECOND, hours=5, status=BookingStatus.CANCELLED),)),
        _later(SERIES, sequence=2),
        [f"cancelled:ana@{SECOND}", f"cancelled:zoe@{SECOND}"],
    ),
    "an excluded occurrence also overridden as cancelled: told already": (
        _series(exdates=(SECOND,)),
        _series(exdates=(SECOND,), overrides=(_at(SECOND, status=BookingStatus.CANCELLED),)),
        _later(SERIES),
        [],
    ),
    "an EXDATE added with a new title: the CANCEL and an update": (
        _series(),
        _series(exdates=(SECOND,)),
        _later(SERIES, title="Haircut and colour"),
        ["updated:ana", "updated:zoe", f"cancelled:ana@{SECOND}", f"cancelled:zoe@{SECOND}"],
    ),
    "an occurrence moved (override added)": (
        _series(),
        _series(overrides=(_at(SECOND, hours=5),)),
        _later(SERIES, sequence=2),
        ["rescheduled:ana", "rescheduled:zoe"],
    ),
    "a moved occurrence moved again": (
        _series(overrides=(_at(SECOND, hours=5),)),
        _series(overrides=(_at(SECOND, hours=6),)),
        _later(SERIES),
        ["rescheduled:ana", "rescheduled:zoe"],
    ),
    "an override at the same time, tentative": (
        _series(),
        _series(overrides=(_at(SECOND, status=BookingStatus.TENTATIVE),)),
        _later(SERIES),
        ["updated:ana", "updated:zoe"],
    ),
    "a cancelled occurrence brought back": (
        _series(exdates=(SECOND,)),
        _series(),
        _later(SERIES, sequence=2),
        ["updated:ana", "updated:zoe"],
    ),
    "nothing of the series changed": (
        _series(exdates=(SECOND,)),
        _series(exdates=(SECOND,)),
        _later(SERIES),
        [],
    ),
}


def _occurrence_words(effects: tuple[Effect, ...]) -> list[str]:
    return [
        w + (f"@{e.recurrence_id}" if isinstance(e, Invite) and e.recurrence_id else "")
        for w, e in zip(_words(effects), effects, strict=True)
    ]


def _series_change(
    name: str, by_client: frozenset[str] = frozenset(), known: bool = True
) -> Change:
    before, after, booking, _ = OCCURRENCES[name]
    return Change(
        SERIES,
        booking,
        ChangeOrigin.CALDAV,
        scheduling=Scheduling(RESOURCE, by_client, after),
        before_scheduling=Scheduling(RESOURCE, by_client, before) if known else None,
    )


@pytest.mark.parametrize("name", list(OCCURRENCES))
def test_an_occurrence_cancelled_or_changed(name: str) -> None:
    expected = OCCURRENCES[name][3]
    assert _occurrence_words(effects_of(_series_change(name), MAIL_ON)) == expected


@pytest.mark.parametrize("name", list(OCCURRENCES))
def test_occurrences_of_a_client_scheduled_attendee_are_left_to_the_client(name: str) -> None:
    change = _series_change(name, by_client=frozenset({"zoe@example.com"}))
    expected = [w for w in OCCURRENCES[name][3] if not w.split("@")[0].endswith(":zoe")]
    assert _occurrence_words(effects_of(change, MAIL_ON)) == expected


@pytest.mark.parametrize("name", list(OCCURRENCES))
def test_occurrences_with_implicit_scheduling_off_tell_nobody(name: str) -> None:
    policy = replace(MAIL_ON, implicit_scheduling=False)
    assert effects_of(_series_change(name), policy) == ()


def test_the_text_before_unknown_tells_an_update_of_the_series() -> None:
    change = _series_change("EXDATE added (the client raised SEQUENCE)", known=False)
    assert _occurrence_words(effects_of(change, MAIL_ON)) == ["updated:ana", "updated:zoe"]


def test_an_attendee_added_with_an_occurrence_cancelled_is_invited_to_the_rest() -> None:
    change = replace(
        _series_change("EXDATE added (the client raised SEQUENCE)"),
        after=_later(SERIES, sequence=2, attendees=(ANA, ZOE, MAX)),
    )
    assert _occurrence_words(effects_of(change, MAIL_ON)) == [
        "created:max",
        f"cancelled:ana@{SECOND}",
        f"cancelled:zoe@{SECOND}",
    ]


def test_an_occurrences_cancel_carries_its_recurrence_id_into_the_outbox() -> None:
    (first, *_) = effects_of(_series_change("EXDATE added (the client raised SEQUENCE)"), MAIL_ON)
    record = first.outbox()
    assert record.payload == InvitationPayload(
        InviteAction.CANCELLED, 2, "ana@example.com", recurrence_id=SECOND
    )
