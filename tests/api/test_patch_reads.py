"""What a PATCH of a booking reads before its write transaction
(``BookingService.reschedule``): the booking is read there only for the look
at Google's busy time (``gateway.core.freshness``), which must not hold the
write lock. Without Google, the one read outside the transaction is the
handler's (whether the caller may see and change the booking)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from gateway.web.keys import REPOSITORY
from tests.conftest import ClientWith
from tests.samples import SLOT


async def test_a_patch_without_google_reads_the_booking_once_before_its_transaction(
    client_with: ClientWith, api_headers: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # No mail: the outbox would read the booking to send its invitation.
    client = await client_with(mail=False)
    made = await client.post("/api/v1/bookings", json=SLOT, headers=api_headers)
    booking = await made.json()
    repo = client.app[REPOSITORY]
    read: Callable[[str], Awaitable[Any]] = repo.get_by_id
    seen: list[str] = []

    async def counted(booking_id: str) -> Any:
        seen.append(booking_id)
        return await read(booking_id)

    monkeypatch.setattr(repo, "get_by_id", counted)
    moved = await client.patch(
        f"/api/v1/bookings/{booking['id']}",
        json={"start": "2026-12-01T11:00:00+01:00", "end": "2026-12-01T12:00:00+01:00"},
        headers=api_headers,
    )
    assert moved.status == 200
    assert (await moved.json())["sequence"] == 1
    assert seen == [booking["id"]]
