"""JSON shapes of the booking API (requests are strict: unknown fields are errors)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, StringConstraints

from gateway.core.model import Attendee, Booking, TimeSpan

Title = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=1000)]
LongText = Annotated[str, StringConstraints(max_length=10_000)]
Email = Annotated[
    str, StringConstraints(strip_whitespace=True, pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
]
ZoneName = Annotated[str, StringConstraints(min_length=1, max_length=64)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class BookerIn(_Strict):
    email: Email
    name: Annotated[str, StringConstraints(strip_whitespace=True, max_length=200)] = ""


class BookingCreate(_Strict):
    resource: str = Field(description="Id of the resource to book")
    start: AwareDatetime = Field(description="ISO 8601 with an offset, e.g. 2026-12-01T09:00+01:00")
    end: AwareDatetime
    title: Title
    timezone: ZoneName | None = Field(
        default=None, description="IANA zone for display; defaults to the resource's"
    )
    description: LongText = ""
    location: Annotated[str, StringConstraints(max_length=1000)] = ""
    booker: BookerIn | None = None


class BookingPatch(_Strict):
    start: AwareDatetime | None = None
    end: AwareDatetime | None = None
    timezone: ZoneName | None = None
    title: Title | None = None
    description: LongText | None = None
    location: Annotated[str, StringConstraints(max_length=1000)] | None = None


class AttendeeOut(BaseModel):
    email: str
    name: str
    partstat: str

    @classmethod
    def of(cls, attendee: Attendee) -> AttendeeOut:
        return cls(email=attendee.email, name=attendee.name, partstat=attendee.partstat.value)


class BookingOut(BaseModel):
    id: str
    resource: str
    uid: str
    title: str
    description: str
    location: str
    start: datetime
    end: datetime
    timezone: str
    status: Literal["confirmed", "tentative", "cancelled"]
    sequence: int
    origin: Literal["api", "caldav", "google"]
    booker: AttendeeOut | None
    attendees: list[AttendeeOut]
    created: datetime
    updated: datetime

    @classmethod
    def of(cls, booking: Booking) -> BookingOut:
        attendees = [AttendeeOut.of(a) for a in booking.attendees]
        return cls(
            id=booking.id,
            resource=booking.resource_id,
            uid=booking.uid,
            title=booking.title,
            description=booking.description,
            location=booking.location,
            start=booking.start,
            end=booking.end,
            timezone=booking.timezone,
            status=booking.status.value,
            sequence=booking.sequence,
            origin=booking.origin.value,
            booker=attendees[0] if attendees else None,
            attendees=attendees,
            created=booking.created,
            updated=booking.updated,
        )


class BookingList(BaseModel):
    bookings: list[BookingOut]


class SpanOut(BaseModel):
    start: datetime
    end: datetime

    @classmethod
    def of(cls, span: TimeSpan) -> SpanOut:
        return cls(start=span.start.astimezone(UTC), end=span.end.astimezone(UTC))


class Availability(BaseModel):
    resource: str
    start: datetime
    end: datetime
    busy: list[SpanOut] = Field(description="Merged busy intervals (UTC), clipped to the window")


class ResourceOut(BaseModel):
    id: str
    name: str
    timezone: str
    writable: bool


class ResourceList(BaseModel):
    resources: list[ResourceOut]


class FieldError(BaseModel):
    field: str
    message: str


class Problem(BaseModel):
    """RFC 9457 problem details."""

    type: str = "about:blank"
    title: str
    status: int
    detail: str
    errors: list[FieldError] = []
    conflicts: list[SpanOut] = []
