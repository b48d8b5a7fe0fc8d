"""Which changes raise SEQUENCE (RFC 5546 2.1.4): ``gateway.core.sequence``
as a table, and the effects table agreeing with it."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from gateway.core.effects import Change, ChangeOrigin, EffectPolicy, Invite, effects_of
from gateway.core.model import Attendee, Booking, BookingStatus, PartStat, Scheduling
from gateway.core.schedule_status import INVALID_USER, NOT_DELIVERED, refusal_code
from gateway.core.sequence import raises_sequence, sequence_after

START = datetime(2030, 12, 3, 9, 0, tzinfo=UTC)
BEFORE = Booking(
    id="b1",
    resource_id="anna",
    uid="haircut@app",
    title="Haircut",
    start=START,
    end=START + timedelta(hours=1),
    timezone="UTC",
    created=START,
    updated=START,
    attendees=(Attendee("zoe@example.com"),),
    sequence=3,
)
HOUR = timedelta(hours=1)

# name: (after, recurrence texts changed, raises SEQUENCE)
CHANGES: dict[str, tuple[Booking, bool, bool]] = {
    "moved": (replace(BEFORE, start=START + HOUR, end=START + 2 * HOUR), False, True),
    "longer (DTEND or DURATION)": (replace(BEFORE, end=START + 2 * HOUR), False, True),
    "cancelled (STATUS)": (replace(BEFORE, status=BookingStatus.CANCELLED), False, True),
    "tentative (STATUS)": (replace(BEFORE, status=BookingStatus.TENTATIVE), False, True),
    "made a series": (replace(BEFORE, recurring=True), True, True),
    "another RRULE/RDATE/EXDATE": (replace(BEFORE, recurring=True), True, True),
    "retitled": (replace(BEFORE, title="Haircut and colour"), False, False),
    "described": (replace(BEFORE, description="bring photos"), False, False),
    "relocated": (replace(BEFORE, location="Room 2"), False, False),
    "an answer (PARTSTAT)": (
        replace(BEFORE, attendees=(Attendee("zoe@example.com", partstat=PartStat.ACCEPTED),)),
        False,
        False,
    ),
    "nothing": (BEFORE, False, False),
}


@pytest.mark.parametrize("name", CHANGES)
def test_which_changes_raise_sequence(name: str) -> None:
    after, recurrence, raises = CHANGES[name]
    before = replace(BEFORE, recurring=True) if name == "another RRULE/RDATE/EXDATE" else BEFORE
    assert raises_sequence(before, after, recurrence_changed=recurrence) is raises


@pytest.mark.parametrize(
    ("client_sequence", "significant", "stored"),
    [
        (3, True, 4),  # the client kept it: the server raises it
        (2, True, 4),  # the client lowered it: still above the stored one
        (4, True, 4),  # the client raised it: its own
        (7, True, 7),
        (3, False, 3),  # a minor change keeps it
        (5, False, 5),  # a client may raise it for any change
        (1, False, 3),  # never lowered: the attendees' apps would ignore it
    ],
)
def test_the_sequence_stored(client_sequence: int, significant: bool, stored: int) -> None:
    after = replace(BEFORE, sequence=client_sequence)
    if significant:
        after = replace(after, start=START + HOUR, end=START + 2 * HOUR)
    assert sequence_after(BEFORE, after, recurrence_changed=False) == stored


def test_a_series_rule_change_raises_it_though_nothing_else_differs() -> None:
    series = replace(BEFORE, recurring=True)
    assert sequence_after(series, series, recurrence_changed=True) == 4
    assert sequence_after(series, series, recurrence_changed=False) == 3


@pytest.mark.parametrize("name", CHANGES)
def test_every_change_that_raises_sequence_is_told_to_the_attendees(name: str) -> None:
    """effects_of agrees: what raises SEQUENCE is an update to everyone kept
    (with the SEQUENCE the service wrote), and so is a minor visible change."""
    after, recurrence, raises = CHANGES[name]
    before = replace(BEFORE, recurring=True) if name == "another RRULE/RDATE/EXDATE" else BEFORE
    after = replace(after, sequence=sequence_after(before, after, recurrence_changed=recurrence))
    policy = EffectPolicy(organizers=("anna@example.com",))
    scheduling = Scheduling(organizer="anna@example.com")
    told = effects_of(Change(before, after, ChangeOrigin.CALDAV, scheduling), policy)
    invites = [e for e in told if isinstance(e, Invite)]
    seen = name not in ("nothing", "an answer (PARTSTAT)")
    assert bool(invites) is seen
    assert all(i.sequence == (4 if raises else 3) for i in invites)


@pytest.mark.parametrize(
    ("smtp_code", "unwritable", "status"),
    [
        (550, False, INVALID_USER),  # mailbox unavailable
        (551, False, INVALID_USER),  # user not local
        (553, False, INVALID_USER),  # mailbox name not allowed
        (554, False, NOT_DELIVERED),  # transaction failed
        (552, False, NOT_DELIVERED),  # too big
        (535, False, NOT_DELIVERED),  # our own login refused
        (None, True, INVALID_USER),  # an address no message can carry
        (None, False, NOT_DELIVERED),
    ],
)
def test_the_status_of_a_refused_invitation(
    smtp_code: int | None, unwritable: bool, status: str
) -> None:
    assert refusal_code(smtp_code, unwritable=unwritable) == status
