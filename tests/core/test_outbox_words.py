"""What an outbox item is, in words (``gateway.core.outbox_words``), as a
table: every kind the gateway queues, with the payload its queuer writes."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from gateway.core import mirror
from gateway.core.outbox_payloads import (
    GooglePushPayload,
    GoogleRemovePayload,
    InvitationPayload,
    InviteAction,
    MailPayload,
    OutboxKind,
    Payload,
    ResourceReplyPayload,
    StopChannelPayload,
    UnreadablePayload,
    kind_of,
)
from gateway.core.outbox_words import BookingGlance, describe, when

HAIRCUT = BookingGlance(
    title="Haircut", start=datetime(2026, 12, 8, 8, 0, tzinfo=UTC), timezone="Europe/Berlin"
)

HAIRCUT_AT = "'Haircut' (Tue 8 Dec 2026 09:00)"
ANA = "ana@example.com"

CASES: list[tuple[Payload, BookingGlance | None, str]] = [
    (
        InvitationPayload(InviteAction.CREATED, 0, ANA),
        HAIRCUT,
        f"Invitation e-mail to ana@example.com for {HAIRCUT_AT}",
    ),
    (
        InvitationPayload(InviteAction.RESCHEDULED, 2, ANA),
        HAIRCUT,
        f"Updated invitation e-mail to ana@example.com for {HAIRCUT_AT}",
    ),
    (
        InvitationPayload(InviteAction.CANCELLED, 3, ANA),
        HAIRCUT,
        f"Cancellation e-mail to ana@example.com for {HAIRCUT_AT}",
    ),
    (
        InvitationPayload(InviteAction.RESENT, 1, "bo@example.com", by="admin"),
        HAIRCUT,
        f"Invitation sent again e-mail to bo@example.com for {HAIRCUT_AT}",
    ),
    (
        InvitationPayload(InviteAction.CREATED, 0, ANA),
        None,
        "Invitation e-mail to ana@example.com for a booking that no longer exists",
    ),
    (
        InvitationPayload(InviteAction.CREATED, 0, ""),
        HAIRCUT,
        f"Invitation e-mail to an attendee for {HAIRCUT_AT}",
    ),
    (
        GooglePushPayload(uid="u1", sequence=0),
        HAIRCUT,
        f"Copy of {HAIRCUT_AT} to Google Calendar",
    ),
    (
        GooglePushPayload(uid="u1"),
        BookingGlance(title="  ", start=HAIRCUT.start, timezone="America/New_York"),
        "Copy of 'Booking' (Tue 8 Dec 2026 03:00) to Google Calendar",
    ),
    (
        GooglePushPayload(reason="edited in Google", force=True),
        None,
        "Copy of a booking that no longer exists to Google Calendar",
    ),
    (
        GoogleRemovePayload("cal@group.calendar.google.com", "ev1"),
        None,
        "Removal of event ev1 from Google calendar cal@group.calendar.google.com "
        "(after a takeover)",
    ),
    (
        StopChannelPayload("ch-1", "r", "sealed-secret"),
        None,
        "Stop of Google push-notification channel ch-1",
    ),
    (
        MailPayload("anna@example.com", subject="Connect your Google Calendar", text="..."),
        None,
        "Notice e-mail to anna@example.com: 'Connect your Google Calendar'",
    ),
    (
        ResourceReplyPayload(
            "m@app.example",
            0,
            "boss@elsewhere.example",
            "room1@example.com",
            "ACCEPTED",
            ("2.0;Success",),
            "Planning",
            "2030-12-03T09:00:00+00:00",
            "2030-12-03T10:00:00+00:00",
        ),
        None,
        "Reply (accepted) of room1@example.com to boss@elsewhere.example",
    ),
    (
        UnreadablePayload("teleport", "{}", "unknown outbox kind 'teleport'"),
        HAIRCUT,
        "Unreadable item of kind 'teleport' (unknown outbox kind 'teleport')",
    ),
]


@pytest.mark.parametrize(("payload", "booking", "words"), CASES)
def test_words(payload: Payload, booking: BookingGlance | None, words: str) -> None:
    assert describe(payload, booking) == words
    assert "secret" not in words


def test_every_kind_the_gateway_queues_has_words() -> None:
    described = {kind_of(payload) for payload, *_ in CASES}
    assert {kind.value for kind in OutboxKind} <= described


def test_when_falls_back_to_the_stored_instant_for_an_unknown_zone() -> None:
    assert when(datetime(2026, 12, 8, 8, 0, tzinfo=UTC), "Mars/Olympus") == "Tue 8 Dec 2026 08:00"


def test_every_notice_has_words() -> None:
    values = {"url": "https://x/secret"}
    for notice in mirror.Notice:
        words = describe(MailPayload("anna@example.com", notice=notice.value, values=values), None)
        assert words.endswith(" e-mail to anna@example.com")
        assert not words.startswith("Notice") and "secret" not in words
    assert describe(MailPayload("anna@example.com", notice="new"), None) == (
        "Notice e-mail to anna@example.com"
    )
