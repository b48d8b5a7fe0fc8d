"""Big calendars for load tests and benchmarks, written straight through the
booking service into the settings' database before a server starts (much
faster than one HTTP request per event)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from gateway.admin import domain_resources, open_repository
from gateway.core.model import BookingDraft
from gateway.core.service import BookingService
from gateway.ical import ICalCodec
from gateway.settings import Settings

# Far from "now", so that the bookings the tests make by API never collide.
FIRST_SLOT = datetime(2031, 1, 6, 8, tzinfo=UTC)


async def fill_calendar(
    settings: Settings, resource_id: str, count: int, *, first: datetime = FIRST_SLOT
) -> None:
    """``count`` one-hour bookings of ``resource_id``, back to back from
    ``first``, with no booker (nothing is queued for mail)."""
    repository = await open_repository(settings)
    try:
        service = BookingService(
            repository,
            ICalCodec(),
            domain_resources(settings),
            uid_domain="load.test",
            invitations=False,
        )
        for n in range(count):
            start = first + timedelta(hours=n)
            draft = BookingDraft(
                resource_id=resource_id,
                title=f"Booking {n}",
                start=start,
                end=start + timedelta(hours=1),
                description="Loaded for a test",
            )
            await service.create(draft)
    finally:
        await repository.close()
