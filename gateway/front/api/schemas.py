"""JSON shapes of the booking API (requests are strict: unknown fields are errors)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Annotated, Literal

from pydantic import AfterValidator, AwareDatetime, BaseModel, ConfigDict, Field, StringConstraints
from pydantic_core import PydanticCustomError

from gateway.core.admin_actions import OutboxEntry
from gateway.core.calendar_import import ImportOutcome, ImportReport, ImportStatus
from gateway.core.instants import EARLIEST, LATEST, instant_problem
from gateway.core.invitations import CalendarLinks, ItipReply, ReplyOutcome
from gateway.core.mirror import (
    ConnectionStatus,
    Details,
    Direction,
    LogKind,
    SyncLogEntry,
    WarningReason,
)
from gateway.core.mirror_admin import IssuedInvite, ResourceStatus
from gateway.core.model import Attendee, Booking, BookingStatus, TimeSpan
from gateway.core.text import text_problem


def _refused(reason: str) -> PydanticCustomError:
    # The reason is the whole message (problems.py shows it after the field).
    return PydanticCustomError("refused", "{reason}", {"reason": reason})


def _carriable(value: str) -> str:
    """Text that calendar clients can carry (gateway.core.text)."""
    problem = text_problem(value)
    if problem is not None:
        raise _refused(problem)
    return value


def _in_range(value: datetime) -> datetime:
    problem = instant_problem(value)
    if problem is not None:
        raise _refused(problem)
    return value


def _sendable_address(value: str) -> str:
    # Invitations go out without SMTPUTF8 (RFC 6531), which every hop would
    # have to support: a non-ASCII address could never be delivered and
    # would only sit in the outbox. International domains have an ASCII
    # (xn--) form that works everywhere.
    if not value.isascii():
        raise _refused(
            "must be an ASCII address (this server sends mail without SMTPUTF8); "
            "write an international domain in its xn-- form"
        )
    problem = text_problem(value, one_line=True)
    if problem is not None:
        raise _refused(problem)
    return value


Text = Annotated[str, AfterValidator(_carriable)]
Title = Annotated[Text, StringConstraints(strip_whitespace=True, min_length=1, max_length=1000)]
LongText = Annotated[Text, StringConstraints(max_length=10_000)]
ShortText = Annotated[Text, StringConstraints(max_length=1000)]
Email = Annotated[
    str,
    StringConstraints(strip_whitespace=True, pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$"),
    AfterValidator(_sendable_address),
]
ZoneName = Annotated[Text, StringConstraints(min_length=1, max_length=64)]
Instant = Annotated[
    AwareDatetime,
    AfterValidator(_in_range),
    Field(
        description=f"ISO 8601 with an offset, in the years {EARLIEST.year} to {LATEST.year - 1}"
    ),
]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class BookerIn(_Strict):
    email: Email
    name: Annotated[Text, StringConstraints(strip_whitespace=True, max_length=200)] = ""


class BookingCreate(_Strict):
    resource: str = Field(description="Id of the resource to book")
    start: Instant = Field(description="ISO 8601 with an offset, e.g. 2026-12-01T09:00+01:00")
    end: Instant
    title: Title
    timezone: ZoneName | None = Field(
        default=None, description="IANA zone for display; defaults to the resource's"
    )
    description: LongText = ""
    location: ShortText = ""
    booker: BookerIn | None = None


class BookingPatch(_Strict):
    start: Instant | None = None
    end: Instant | None = None
    timezone: ZoneName | None = None
    title: Title | None = None
    description: LongText | None = None
    location: ShortText | None = None


class AttendeeOut(BaseModel):
    email: str
    name: str
    partstat: str

    @classmethod
    def of(cls, attendee: Attendee) -> AttendeeOut:
        # Built without validation: the fields are already of their types
        # (see ``BookingOut.of``).
        return cls.model_construct(
            email=attendee.email, name=attendee.name, partstat=attendee.partstat.value
        )


class CalendarLinksOut(BaseModel):
    """Ways for a booker to put the booking into their own calendar."""

    google: str = Field(description='Prefilled Google Calendar "add event" page')
    outlook: str = Field(description='Prefilled Outlook.com "new event" page')
    office365: str = Field(description='Prefilled Office 365 (work account) "new event" page')
    yahoo: str = Field(description='Prefilled Yahoo Calendar "add event" page')
    ics: str = Field(
        description="Signed download of the booking's invitation (.ics, iTIP METHOD:REQUEST, "
        "METHOD:CANCEL once cancelled); it always describes the booking as it is now"
    )

    @classmethod
    def of(cls, links: CalendarLinks) -> CalendarLinksOut:
        return cls(**links.as_dict())


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
    origin: Literal["api", "caldav", "google", "import"]
    booker: AttendeeOut | None
    attendees: list[AttendeeOut]
    created: datetime
    updated: datetime
    links: CalendarLinksOut | None = Field(
        description="Add-to-calendar links for the booker; null when the server has no "
        "invitations.link_key (nothing can be signed) and for cancelled bookings "
        "(nothing left to add)"
    )

    @classmethod
    def of(cls, booking: Booking, links: Callable[[Booking], CalendarLinks] | None) -> BookingOut:
        """The booking as the API shows it; ``links`` makes its calendar
        links (``LinkSigner.calendar_links``), None when no key is configured.

        Built without validation (``model_construct``): every field comes
        from a ``Booking``, already of the field's type, so validating again
        would only cost time on every answer (issue 17). The links are
        validated as before. ``tests/api/test_booking_out.py`` holds the
        JSON to that of the validated model."""
        attendees = [AttendeeOut.of(a) for a in booking.attendees]
        shown = None
        if links is not None and booking.status is not BookingStatus.CANCELLED:
            shown = CalendarLinksOut.of(links(booking))
        return cls.model_construct(
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
            links=shown,
        )


class BookingList(BaseModel):
    bookings: list[BookingOut]


class SpanOut(BaseModel):
    start: datetime
    end: datetime

    @classmethod
    def of(cls, span: TimeSpan) -> SpanOut:
        return cls(start=span.start.astimezone(UTC), end=span.end.astimezone(UTC))


class ImportOutcomeOut(BaseModel):
    uid: str = Field(description="The object's UID (empty for a component without one)")
    line: int = Field(description="Where the object's first component begins in the file")
    status: ImportStatus = Field(
        description="stored, updated (its UID held other content), unchanged (already "
        "there exactly so), or refused: double-booking, invalid, uid-conflict"
    )
    message: str = Field(description="Why it was refused, in words; empty when stored")
    conflicts: list[SpanOut] = Field(
        description="For a double booking: the busy time it overlaps (UTC)"
    )

    @classmethod
    def of(cls, outcome: ImportOutcome) -> ImportOutcomeOut:
        return cls(
            uid=outcome.uid,
            line=outcome.line,
            status=outcome.status,
            message=outcome.message,
            conflicts=[SpanOut.of(s) for s in outcome.conflicts],
        )


class ImportReportOut(BaseModel):
    resource: str
    dry_run: bool = Field(description="true: nothing was written, this is what would happen")
    counts: dict[str, int] = Field(description="Objects per status (every status named)")
    objects: list[ImportOutcomeOut] = Field(description="One per object, in file order")

    @classmethod
    def of(cls, report: ImportReport) -> ImportReportOut:
        return cls(
            resource=report.resource_id,
            dry_run=report.dry_run,
            counts=report.counts(),
            objects=[ImportOutcomeOut.of(o) for o in report.outcomes],
        )


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


def _utc(value: datetime | None) -> datetime | None:
    return value.astimezone(UTC) if value is not None else None


# -- Google mirror ---------------------------------------------------------------


class GoogleInviteOut(BaseModel):
    resource: str
    url: str = Field(
        description="One-time link to /google/connect/...: whoever opens it picks the "
        "Google calendar of this resource; treat it like a password"
    )
    expires: datetime = Field(description="The link stops working at this time (UTC)")
    mailed: bool = Field(
        description="true: queued as an e-mail to the resource's address (sent by the "
        "outbox worker); false: no mail is configured, hand the link over yourself"
    )

    @classmethod
    def of(cls, invite: IssuedInvite) -> GoogleInviteOut:
        return cls(
            resource=invite.resource_id,
            url=invite.url,
            expires=invite.expires.astimezone(UTC),
            mailed=invite.mailed,
        )


class SyncWarningOut(BaseModel):
    reason: WarningReason
    message: str
    paused_until: datetime | None = Field(
        description="Set while Google calls are paused (quota); null otherwise"
    )


class SyncStatusOut(BaseModel):
    resource: str
    direction: Direction = Field(description="The resource's mirror direction (settings)")
    details: Details = Field(description="What gateway -> Google shows (settings)")
    status: ConnectionStatus
    summary: str = Field(description="The status in words, for people")
    account: str | None = Field(description="The connected Google account, if any")
    calendar: str | None = Field(description="Name of the connected Google calendar")
    imported: int = Field(description="Events seen by the running or last full import")
    warning: SyncWarningOut | None = Field(description="Why the connection is stuck, if it is")
    last_sync: datetime | None
    last_sync_age_seconds: float | None = Field(
        description="Seconds since the last successful sync of the Google calendar "
        "(null: never synced); bookings look at Google first when it exceeds "
        "google.freshness_seconds"
    )
    connected_at: datetime | None

    @classmethod
    def of(cls, state: ResourceStatus, now: datetime) -> SyncStatusOut:
        c = state.connection
        warning = None
        if c.warning is not None:
            warning = SyncWarningOut(
                reason=c.warning,
                message=state.warning_message or "",
                paused_until=_utc(c.paused_until),
            )
        return cls(
            resource=state.resource_id,
            direction=state.policy.direction,
            details=state.policy.details,
            status=c.status,
            summary=state.summary,
            account=c.account or None,
            calendar=c.calendar_name or c.calendar_id or None,
            imported=c.imported,
            warning=warning,
            last_sync=_utc(c.last_sync_at),
            last_sync_age_seconds=(
                None if c.last_sync_at is None else round((now - c.last_sync_at).total_seconds(), 3)
            ),
            connected_at=_utc(c.connected_at),
        )


class SyncStatusList(BaseModel):
    resources: list[SyncStatusOut]


class SyncLogEntryOut(BaseModel):
    id: int
    at: datetime
    kind: LogKind
    message: str
    booking_id: str | None
    event_id: str | None = Field(description="The Google event concerned, if any")

    @classmethod
    def of(cls, entry: SyncLogEntry) -> SyncLogEntryOut:
        return cls(
            id=entry.id,
            at=entry.at.astimezone(UTC),
            kind=entry.kind,
            message=entry.message,
            booking_id=entry.booking_id or None,
            event_id=entry.event_id or None,
        )


class SyncLog(BaseModel):
    entries: list[SyncLogEntryOut] = Field(description="Newest first")
    next_before: int | None = Field(
        description="Pass as ?before= for the next (older) page; null on the last page"
    )


# -- the outbox, as the admin acts on it -----------------------------------------


class OutboxEntryOut(BaseModel):
    id: int
    kind: str = Field(description="The effect kind as stored (invitation, google_push, ...)")
    description: str = Field(description="What the item is, in words")
    resource_id: str
    booking_id: str | None
    state: Literal["pending", "sending", "failed"] = Field(
        description="sending: its effect started and has not reported back"
    )
    attempts: int = Field(description="Failed attempts so far")
    last_error: str | None
    created: datetime
    next_attempt: datetime | None = Field(
        description="When it runs next (pending items; null: as soon as a worker is free)"
    )
    failed_at: datetime | None = Field(description="When it was closed as failed (failed items)")

    @classmethod
    def of(cls, entry: OutboxEntry) -> OutboxEntryOut:
        return cls(
            id=entry.id,
            kind=entry.kind,
            description=entry.description,
            resource_id=entry.resource_id,
            booking_id=entry.booking_id,
            state=entry.state,
            attempts=entry.attempts,
            last_error=entry.last_error,
            created=entry.created.astimezone(UTC),
            next_attempt=entry.next_attempt.astimezone(UTC) if entry.next_attempt else None,
            failed_at=entry.failed_at.astimezone(UTC) if entry.failed_at else None,
        )


class OutboxList(BaseModel):
    entries: list[OutboxEntryOut] = Field(
        description="Undone items oldest first, then failed items newest first"
    )


class InvitationResent(BaseModel):
    attendees: list[str] = Field(
        description="The addresses the invitation is queued to again (those not declined)"
    )


# -- answers of bookers (iTIP REPLY) -------------------------------------------------


class ReplyResult(BaseModel):
    uid: str = Field(description="UID of the event the reply answers")
    attendee: str = Field(description="The replying attendee's e-mail address")
    partstat: str = Field(description="The answer (RFC 5545 PARTSTAT): ACCEPTED, DECLINED...")
    applied: bool = Field(
        description="true: the booking's attendee now has this answer (also when it had it "
        "already); false: the reply was logged and dropped"
    )
    reason: str = Field(
        description="Why (not): applied, unchanged, a stale SEQUENCE, an unknown UID, "
        "a cancelled booking..."
    )

    @classmethod
    def of(cls, reply: ItipReply, outcome: ReplyOutcome) -> ReplyResult:
        return cls(
            uid=reply.uid,
            attendee=reply.attendee_email,
            partstat=reply.partstat.value,
            applied=outcome.applied,
            reason=outcome.reason,
        )


class ReplyResults(BaseModel):
    replies: list[ReplyResult] = Field(description="One entry per REPLY, in message order")


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
