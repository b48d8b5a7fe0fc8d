"""What an outbox item is, in words (``gateway.core.outbox_words``), as a
table: every kind the gateway queues, with the payload its queuer writes."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from gateway.core import mirror, service
from gateway.core.outbox_words import BookingGlance, describe, when

HAIRCUT = BookingGlance(
    title="Haircut", start=datetime(2026, 12, 8, 8, 0, tzinfo=UTC), timezone="Europe/Berlin"
)

CASES: list[tuple[str, dict[str, Any], BookingGlance | None, str]] = [
    (
        "invitation",
        {"action": "created", "sequence": 0, "attendee": "ana@example.com"},
        HAIRCUT,
        "Invitation e-mail to ana@example.com for 'Haircut' (Tue 8 Dec 2026 09:00)",
    ),
    (
        "invitation",
        {"action": "rescheduled", "sequence": 2, "attendee": "ana@example.com"},
        HAIRCUT,
        "Updated invitation e-mail to ana@example.com for 'Haircut' (Tue 8 Dec 2026 09:00)",
    ),
    (
        "invitation",
        {"action": "cancelled", "sequence": 3, "attendee": "ana@example.com"},
        HAIRCUT,
        "Cancellation e-mail to ana@example.com for 'Haircut' (Tue 8 Dec 2026 09:00)",
    ),
    (
        "invitation",
        {"action": "resent", "sequence": 1, "attendee": "bo@example.com", "by": "admin"},
        HAIRCUT,
        "Invitation sent again e-mail to bo@example.com for 'Haircut' (Tue 8 Dec 2026 09:00)",
    ),
    (
        "invitation",
        {"action": "created", "attendee": "ana@example.com"},
        None,
        "Invitation e-mail to ana@example.com for a booking that no longer exists",
    ),
    (
        "invitation",
        {},
        HAIRCUT,
        "Invitation e-mail to an attendee for 'Haircut' (Tue 8 Dec 2026 09:00)",
    ),
    (
        "google_push",
        {"uid": "u1", "sequence": 0},
        HAIRCUT,
        "Copy of 'Haircut' (Tue 8 Dec 2026 09:00) to Google Calendar",
    ),
    (
        "google_push",
        {"uid": "u1"},
        BookingGlance(title="  ", start=HAIRCUT.start, timezone="America/New_York"),
        "Copy of 'Booking' (Tue 8 Dec 2026 03:00) to Google Calendar",
    ),
    (
        "google_push",
        {"uid": "u1"},
        None,
        "Copy of a booking that no longer exists to Google Calendar",
    ),
    (
        "google_remove",
        {"calendar_id": "cal@group.calendar.google.com", "event_id": "ev1"},
        None,
        "Removal of event ev1 from Google calendar cal@group.calendar.google.com "
        "(after a takeover)",
    ),
    (
        "google_stop_channel",
        {"channel_id": "ch-1", "channel_resource": "r", "refresh_token": "sealed"},
        None,
        "Stop of Google push-notification channel ch-1",
    ),
    (
        "mail",
        {"to": "anna@example.com", "subject": "Connect your Google Calendar", "text": "..."},
        None,
        "Notice e-mail to anna@example.com: 'Connect your Google Calendar'",
    ),
    ("mail", {}, None, "Notice e-mail to the resource"),
    ("teleport", {"x": 1}, HAIRCUT, "Effect of kind 'teleport'"),
]


@pytest.mark.parametrize(("kind", "payload", "booking", "words"), CASES)
def test_words(
    kind: str, payload: dict[str, Any], booking: BookingGlance | None, words: str
) -> None:
    assert describe(kind, payload, booking) == words


def test_every_kind_the_gateway_queues_has_words() -> None:
    kinds = {
        service.INVITATION,
        mirror.GOOGLE_PUSH,
        mirror.GOOGLE_REMOVE,
        mirror.GOOGLE_STOP_CHANNEL,
        mirror.MAIL,
    }
    described = {kind for kind, *_ in CASES}
    assert kinds <= described
    assert all(not describe(kind, {}, None).startswith("Effect of kind") for kind in kinds)


def test_no_secret_of_a_payload_is_shown() -> None:
    words = describe(
        "google_stop_channel", {"channel_id": "c", "refresh_token": "sealed-secret"}, None
    )
    assert "sealed-secret" not in words


def test_when_falls_back_to_the_stored_instant_for_an_unknown_zone() -> None:
    assert when(datetime(2026, 12, 8, 8, 0, tzinfo=UTC), "Mars/Olympus") == "Tue 8 Dec 2026 08:00"


def test_every_notice_has_words() -> None:
    payload = {"to": "anna@example.com", "notice": "", "values": {"url": "https://x/secret"}}
    for notice in mirror.Notice:
        words = describe(mirror.MAIL, {**payload, "notice": notice.value}, None)
        assert words.endswith(" e-mail to anna@example.com")
        assert not words.startswith("Notice") and "secret" not in words
    assert describe(mirror.MAIL, {**payload, "notice": "new"}, None) == (
        "Notice e-mail to anna@example.com"
    )
