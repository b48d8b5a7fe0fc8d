"""Samples shared by the tests: request bodies of the HTTP tests and a
domain booking."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

from gateway.core.model import Attendee, Booking

SLOT: dict[str, Any] = {
    "resource": "anna",
    "start": "2026-12-01T09:00:00+01:00",
    "end": "2026-12-01T10:00:00+01:00",
    "title": "Haircut",
    "description": "Short back and sides",
    "location": "Chair 2",
    "booker": {"name": "Zoë Müller", "email": "zoe@example.com"},
}


def make_booking(**changes: Any) -> Booking:
    """Anna's one-hour haircut with Zoë as the booker; ``changes`` override fields."""
    berlin = ZoneInfo("Europe/Berlin")
    values: dict[str, Any] = {
        "id": "b1",
        "resource_id": "anna",
        "uid": "b1@gateway.test",
        "title": "Haircut",
        "start": datetime(2026, 12, 1, 9, tzinfo=berlin),
        "end": datetime(2026, 12, 1, 10, tzinfo=berlin),
        "timezone": "Europe/Berlin",
        "created": datetime(2026, 11, 1, 12, tzinfo=UTC),
        "updated": datetime(2026, 11, 2, 12, tzinfo=UTC),
        "description": "Short back and sides",
        "location": "Chair 2",
        "attendees": (Attendee("zoe@example.com", "Zoë Müller"),),
    }
    values.update(changes)
    return Booking(**values)
