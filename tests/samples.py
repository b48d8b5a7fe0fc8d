"""Request bodies shared by the HTTP tests."""

from __future__ import annotations

from typing import Any

SLOT: dict[str, Any] = {
    "resource": "anna",
    "start": "2026-12-01T09:00:00+01:00",
    "end": "2026-12-01T10:00:00+01:00",
    "title": "Haircut",
    "description": "Short back and sides",
    "location": "Chair 2",
    "booker": {"name": "Zoë Müller", "email": "zoe@example.com"},
}
