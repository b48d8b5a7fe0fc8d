"""The admin actions service (``gateway.core.admin_actions``) on a real
store (each backend): who a resent invitation goes to, what is refused and
why, and the console's session key."""

from __future__ import annotations

from typing import Any

import pytest

from gateway.core.admin_actions import ActionRefused, AdminActions
from gateway.core.errors import NotFound
from gateway.core.model import Attendee, BookingStatus, PartStat
from gateway.core.outbox_payloads import InvitationPayload
from gateway.core.ports import MirrorRepository
from tests.store.contract import make_object, save

ANA = Attendee("ana@example.com", "Ana", PartStat.ACCEPTED)
BO = Attendee("bo@example.com", "Bo", PartStat.DECLINED)
CY = Attendee("cy@example.com", "Cy")


def actions(repo: MirrorRepository, *, invitations: bool = True) -> AdminActions:
    return AdminActions(repo, {}, invitations=invitations)


async def test_resend_goes_to_every_attendee_who_has_not_declined(
    repo: MirrorRepository,
) -> None:
    await save(repo, make_object("u1", attendees=(ANA, BO, CY), sequence=3))
    woken: list[str] = []
    service = actions(repo)
    service.on_queued(lambda: woken.append("wake"))
    sent = await service.resend_invitation("id-anna-u1", "admin")
    assert sent == ("ana@example.com", "cy@example.com")
    queued = await repo.outbox_records("pending", 10)
    assert [(r.effect.kind, r.effect.booking_id) for r in queued] == [
        ("invitation", "id-anna-u1")
    ] * 2
    payloads = [r.effect.payload for r in queued]
    assert all(isinstance(p, InvitationPayload) for p in payloads)
    assert [p.attendee for p in payloads if isinstance(p, InvitationPayload)] == list(sent)
    # The current SEQUENCE: the mailer sends what the booking is now.
    assert {p.sequence for p in payloads if isinstance(p, InvitationPayload)} == {3}
    assert woken == ["wake"]
    entries = await service.outbox()
    assert entries[0].description == (
        "Invitation sent again e-mail to ana@example.com for 'Booking u1' (Tue 10 Mar 2026 10:00)"
    )


@pytest.mark.parametrize(
    ("fields", "reason"),
    [
        ({"attendees": ()}, "has no attendee to invite"),
        ({"attendees": (BO,)}, "every attendee of booking 'id-anna-u1' has declined"),
        (
            {"attendees": (ANA,), "status": BookingStatus.CANCELLED},
            "booking 'id-anna-u1' is cancelled",
        ),
    ],
)
async def test_resend_refusals_say_why_and_queue_nothing(
    repo: MirrorRepository, fields: dict[str, Any], reason: str
) -> None:
    await save(repo, make_object("u1", **fields))
    with pytest.raises(ActionRefused, match=reason):
        await actions(repo).resend_invitation("id-anna-u1", "admin")
    assert await repo.outbox_records(None, 10) == []


async def test_resend_refused_without_mail_and_unknown_bookings_are_not_found(
    repo: MirrorRepository,
) -> None:
    await save(repo, make_object("u1", attendees=(ANA,)))
    with pytest.raises(ActionRefused, match="invitations are off"):
        await actions(repo, invitations=False).resend_invitation("id-anna-u1", "admin")
    with pytest.raises(NotFound):
        await actions(repo).resend_invitation("nope", "admin")
    assert await repo.outbox_records(None, 10) == []


async def test_an_item_being_sent_cannot_be_given_up(repo: MirrorRepository) -> None:
    await save(repo, make_object("u1", attendees=(ANA,)))
    service = actions(repo)
    await service.resend_invitation("id-anna-u1", "admin")
    (entry,) = await service.outbox()
    await repo.mark_outbox_sending(entry.id)
    assert (await service.outbox_entry(entry.id)).state == "sending"
    with pytest.raises(ActionRefused, match="being sent right now"):
        await service.give_up_outbox(entry.id, "admin")
    await repo.complete_outbox(entry.id)
    with pytest.raises(NotFound):
        await service.outbox_entry(entry.id)  # done items are not kept for the admin
    assert await service.outbox_resource(entry.id) == "anna"
    with pytest.raises(ActionRefused, match="done already"):
        await service.give_up_outbox(entry.id, "admin")


async def test_every_service_on_one_database_has_the_same_session_key(
    repo: MirrorRepository,
) -> None:
    first = await actions(repo).session_key()
    assert len(first) == 32
    assert await actions(repo).session_key() == first
