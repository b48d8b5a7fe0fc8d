"""The two decisions about an attendee's answer (``gateway.core.answers``),
as tables: which booking a reply is for, and whether it is the newest."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from gateway.core.answers import (
    ReplyTarget,
    answer_time,
    carry_answer_times,
    route_reply,
    supersedes,
)
from gateway.core.invitations import ItipReply
from gateway.core.mirror import imported_uid, is_imported_uid
from gateway.core.model import Attendee, Booking, PartStat

T0 = datetime(2026, 12, 1, 9, tzinfo=UTC)
H = timedelta(hours=1)
ZOE = "zoe@example.com"


def booking(resource: str, *attendees: str, sequence: int = 0) -> Booking:
    return Booking(
        id=f"id-{resource}",
        resource_id=resource,
        uid="shared@gateway.test",
        title="Haircut",
        start=T0,
        end=T0 + H,
        timezone="UTC",
        created=T0,
        updated=T0,
        attendees=tuple(Attendee(a) for a in attendees),
        sequence=sequence,
    )


ANNA = ReplyTarget(booking("anna", ZOE), "anna@example.com")
BOB = ReplyTarget(booking("bob", ZOE), "bob@example.com")
BOB_WITHOUT_ZOE = ReplyTarget(booking("bob", "max@example.com"), "bob@example.com")
ROOM = ReplyTarget(booking("room", ZOE), "room@example.com")


def reply(organizer: str | None, attendee: str = ZOE) -> ItipReply:
    return ItipReply(
        uid="shared@gateway.test",
        attendee_email=attendee,
        partstat=PartStat.ACCEPTED,
        sequence=0,
        dtstamp=T0,
        organizer_email=organizer,
    )


@pytest.mark.parametrize(
    ("targets", "organizer", "attendee", "routed"),
    [
        # No booking, one booking: UIDs unique since schema 5, nothing to choose.
        ((), "anna@example.com", ZOE, None),
        ((ANNA,), None, ZOE, "anna"),
        ((ANNA,), "someone@else.org", ZOE, "anna"),
        # Copies from before: the ORGANIZER names the resource ...
        ((ANNA, BOB), "bob@example.com", ZOE, "bob"),
        ((ANNA, BOB), "BOB@Example.COM", ZOE, "bob"),
        ((BOB, ANNA), "anna@example.com", ZOE, "anna"),
        ((ANNA, BOB, ROOM), "room@example.com", ZOE, "room"),
        # ... or only one of them invited the attendee ...
        ((ANNA, BOB_WITHOUT_ZOE), None, ZOE, "anna"),
        ((ANNA, BOB_WITHOUT_ZOE), "bookings@gateway.test", ZOE, "anna"),
        # ... else it is refused, never sent to the first match.
        ((ANNA, BOB), None, ZOE, "ambiguous"),
        ((ANNA, BOB), "bookings@gateway.test", ZOE, "ambiguous"),
        ((ANNA, BOB, ROOM), None, ZOE, "ambiguous"),
        ((ANNA, BOB), None, "stranger@example.com", "ambiguous"),
        # The ORGANIZER decides before the attendee does.
        ((ANNA, BOB_WITHOUT_ZOE), "bob@example.com", ZOE, "bob"),
    ],
)
def test_a_reply_is_routed_by_organizer_then_attendee_or_refused(
    targets: tuple[ReplyTarget, ...], organizer: str | None, attendee: str, routed: str | None
) -> None:
    routing = route_reply(reply(organizer, attendee), targets)
    if routed == "ambiguous":
        assert routing.booking is None
        assert routing.ambiguous
        assert "neither the reply's ORGANIZER nor its attendee" in routing.reason
    elif routed is None:
        assert routing.booking is None
        assert not routing.ambiguous
        assert "no booking has UID" in routing.reason
    else:
        assert routing.booking is not None
        assert routing.booking.resource_id == routed
        assert not routing.ambiguous


ANSWERED = T0 + 2 * H


@pytest.mark.parametrize(
    ("stored_at", "given_at", "newest"),
    [
        (None, T0, True),  # no time known: any answer is newer
        (ANSWERED, ANSWERED + timedelta(seconds=1), True),
        (ANSWERED, ANSWERED, True),  # the same instant: the later arrival wins
        (ANSWERED, ANSWERED - timedelta(seconds=1), False),  # a late e-mail
        (ANSWERED, T0, False),
    ],
)
def test_the_newest_answer_wins(
    stored_at: datetime | None, given_at: datetime, newest: bool
) -> None:
    current = Attendee(ZOE, partstat=PartStat.DECLINED, answered_at=stored_at)
    assert supersedes(current, given_at) is newest


@pytest.mark.parametrize(
    ("given", "received", "counts"),
    [
        # A REPLY's DTSTAMP, a click's instant: the time the booker answered.
        (T0, T0 + H, T0),
        (T0 + H, T0 + H, T0 + H),
        # A DTSTAMP in the future (a wrong clock, a forgery) would outrank
        # every answer after it: it counts as given when it arrived.
        (T0 + 1000 * H, T0 + H, T0 + H),
    ],
)
def test_no_answer_counts_as_given_after_it_arrived(
    given: datetime, received: datetime, counts: datetime
) -> None:
    assert answer_time(given, received) == counts


def answered(partstat: PartStat, at: datetime | None, email: str = ZOE) -> Attendee:
    return Attendee(email, partstat=partstat, answered_at=at)


@pytest.mark.parametrize(
    ("before", "after", "sequence", "kept"),
    [
        # Same SEQUENCE, same answer: its time stays.
        (answered(PartStat.ACCEPTED, ANSWERED), answered(PartStat.ACCEPTED, None), 0, ANSWERED),
        (
            answered(PartStat.ACCEPTED, ANSWERED),
            answered(PartStat.ACCEPTED, None, "ZOE@example.com"),
            0,
            ANSWERED,
        ),
        # The client (organizer) changed the answer: its time is unknown.
        (answered(PartStat.ACCEPTED, ANSWERED), answered(PartStat.DECLINED, None), 0, None),
        # A new SEQUENCE asks again: no earlier answer time counts.
        (answered(PartStat.ACCEPTED, ANSWERED), answered(PartStat.ACCEPTED, None), 1, None),
        (answered(PartStat.ACCEPTED, ANSWERED), answered(PartStat.ACCEPTED, ANSWERED), 1, None),
        # A new attendee has given no answer yet.
        (
            answered(PartStat.ACCEPTED, ANSWERED, "max@example.com"),
            answered(PartStat.ACCEPTED, None),
            0,
            None,
        ),
    ],
)
def test_answer_times_are_kept_only_for_the_same_answer_to_the_same_sequence(
    before: Attendee, after: Attendee, sequence: int, kept: datetime | None
) -> None:
    previous = replace(booking("anna"), attendees=(before,))
    updated = replace(booking("anna"), attendees=(after,), sequence=sequence)
    (attendee,) = carry_answer_times(previous, updated).attendees
    assert attendee.answered_at == kept
    assert attendee.partstat is after.partstat


def test_a_new_object_has_no_answer_times() -> None:
    new = replace(booking("anna"), attendees=(answered(PartStat.ACCEPTED, ANSWERED),))
    assert carry_answer_times(None, new).attendees[0].answered_at is None


@pytest.mark.parametrize(
    ("uid", "reserved"),
    [
        (imported_uid("anna", "abc123"), True),
        (imported_uid("bob", "x_y-z"), True),
        ("google-abc@anna.calgateway", True),
        ("3f2a9c@gateway.test", False),  # what the API makes
        ("google-abc@example.com", False),
        ("abc@anna.calgateway", False),
    ],
)
def test_the_uids_of_imported_busy_blocks_are_recognised(uid: str, reserved: bool) -> None:
    assert is_imported_uid(uid) is reserved
