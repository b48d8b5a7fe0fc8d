"""Mapping between domain values and database columns.

Kept free of any driver so a later PostgreSQL backend can share it.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from gateway.core.model import (
    Attendee,
    Booking,
    BookingStatus,
    CalendarObject,
    Change,
    ChangeKind,
    FailedOutboxItem,
    ObjectEntry,
    Origin,
    OutboxEffect,
    OutboxItem,
    PartStat,
    StoredText,
    TimeSpan,
    default_href,
)
from gateway.core.ports import OutboxRecord
from gateway.core.query import QueriedObject

from . import outbox_codec

Params = tuple[Any, ...] | dict[str, Any]


class Row(Protocol):
    """What a driver row must offer: values by column name (sqlite3.Row, asyncpg Record)."""

    def __getitem__(self, key: str, /) -> Any: ...


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_SECOND = timedelta(seconds=1)

OBJECT_COLUMNS = (
    "resource_id",
    "uid",
    "booking_id",
    "title",
    "description",
    "location",
    "start_at",
    "end_at",
    "timezone",
    "created_at",
    "updated_at",
    "attendees",
    "status",
    "transparent",
    "origin",
    "sequence",
    "recurring",
    "ics",
    "etag",
    "span_start",
    "span_end",
    "revision",
    "href",
    "schedule_tag",
    "ics_size",
)


def _aware(value: datetime, what: str) -> datetime:
    # A naive datetime would be read as the server's local time by astimezone(),
    # silently shifting the booking; refuse it instead.
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"{what} must be timezone-aware, got {value!r}")
    return value


def epoch_floor(value: datetime) -> int:
    """Whole epoch seconds at or before ``value`` (exact integer arithmetic)."""
    return (_aware(value, "time") - _EPOCH) // _SECOND


def epoch_ceil(value: datetime) -> int:
    """Whole epoch seconds at or after ``value``.

    Span ends round up and starts round down so a sub-second span only ever
    widens (iCalendar DATE-TIME has whole seconds, so in practice nothing moves).
    """
    return -((_EPOCH - _aware(value, "time")) // _SECOND)


def from_epoch(seconds: int) -> datetime:
    return _EPOCH + timedelta(seconds=seconds)


def utc_text(value: datetime) -> str:
    """ISO-8601 in UTC with fixed microsecond precision: sorts correctly as text."""
    return _aware(value, "time").astimezone(UTC).isoformat(timespec="microseconds")


def from_utc_text(text: str) -> datetime:
    return datetime.fromisoformat(text).astimezone(UTC)


def _in_zone(text: str, zone: ZoneInfo | None) -> datetime:
    value = datetime.fromisoformat(text)
    # Without a usable zone the stored fixed offset still names the right instant.
    return value if zone is None else value.astimezone(zone)


def _zone(name: str) -> ZoneInfo | None:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        # A zone can vanish from tzdata or come from a foreign client; the object
        # must stay readable rather than break every query that touches it.
        return None


def encode_attendees(attendees: tuple[Attendee, ...]) -> str:
    return json.dumps([_attendee_item(a) for a in attendees], ensure_ascii=False)


# A condition on the objects table: the row's booking has attendees, as
# ``encode_attendees`` writes an empty tuple (``text_with_attendees``).
HAS_ATTENDEES = "attendees <> '[]'"


def _attendee_item(attendee: Attendee) -> dict[str, str]:
    item = {"email": attendee.email, "name": attendee.name, "partstat": attendee.partstat.value}
    # Only when known: rows written before answer times were kept have none.
    if attendee.answered_at is not None:
        item["answered_at"] = utc_text(attendee.answered_at)
    return item


def decode_attendees(text: str) -> tuple[Attendee, ...]:
    if text == "[]":  # most objects (what encode_attendees writes for none)
        return ()
    return tuple(
        Attendee(
            email=item["email"],
            name=item["name"],
            partstat=PartStat(item["partstat"]),
            answered_at=from_utc_text(item["answered_at"]) if "answered_at" in item else None,
        )
        for item in json.loads(text)
    )


def encode_object(obj: CalendarObject, revision: int) -> dict[str, Any]:
    """Column values for ``obj`` as named parameters (keys are ``OBJECT_COLUMNS``)."""
    booking = obj.booking
    return {
        "resource_id": booking.resource_id,
        "uid": booking.uid,
        "booking_id": booking.id,
        "title": booking.title,
        "description": booking.description,
        "location": booking.location,
        "start_at": _aware(booking.start, "start").isoformat(),
        "end_at": _aware(booking.end, "end").isoformat(),
        "timezone": booking.timezone,
        "created_at": utc_text(booking.created),
        "updated_at": utc_text(booking.updated),
        "attendees": encode_attendees(booking.attendees),
        "status": booking.status.value,
        "transparent": int(booking.transparent),
        "origin": booking.origin.value,
        "sequence": booking.sequence,
        "recurring": int(booking.recurring),
        "ics": obj.ics,
        "etag": obj.etag,
        "span_start": epoch_floor(obj.span.start),
        "span_end": epoch_ceil(obj.span.end),
        "revision": revision,
        "href": obj.href,
        "schedule_tag": obj.schedule_tag,
        # getcontentlength, kept so listings need not read every text.
        "ics_size": len(obj.ics.encode("utf-8")),
    }


def decode_object(row: Row) -> CalendarObject:
    zone = _zone(row["timezone"])
    booking = Booking(
        id=row["booking_id"],
        resource_id=row["resource_id"],
        uid=row["uid"],
        title=row["title"],
        start=_in_zone(row["start_at"], zone),
        end=_in_zone(row["end_at"], zone),
        timezone=row["timezone"],
        created=from_utc_text(row["created_at"]),
        updated=from_utc_text(row["updated_at"]),
        description=row["description"],
        location=row["location"],
        attendees=decode_attendees(row["attendees"]),
        status=BookingStatus(row["status"]),
        transparent=bool(row["transparent"]),
        origin=Origin(row["origin"]),
        sequence=row["sequence"],
        recurring=bool(row["recurring"]),
    )
    span = TimeSpan(from_epoch(row["span_start"]), from_epoch(row["span_end"]))
    return CalendarObject(
        booking=booking,
        ics=row["ics"],
        span=span,
        href=row["href"],
        schedule_tag=row["schedule_tag"],
    )


# By value, for ``decode_listed_object``: a dictionary lookup instead of an
# Enum call per row.
_STATUSES = {status.value: status for status in BookingStatus}
_ORIGINS = {origin.value: origin for origin in Origin}


def decode_listed_object(row: Row) -> CalendarObject:
    """``decode_object(row)``, equal to it, made for listings (a week's
    query, PROPFIND and sync with calendar-data, the feed), which decode a
    page of rows at a time: enums by lookup, positional construction, and
    the ETag the store wrote beside the text (``CalendarObject.stored``)
    rather than hashed again."""
    name = row["timezone"]
    zone = _zone(name)
    attendees = row["attendees"]
    origin = row["origin"]
    booking = Booking(
        row["booking_id"],
        row["resource_id"],
        row["uid"],
        row["title"],
        _in_zone(row["start_at"], zone),
        _in_zone(row["end_at"], zone),
        name,
        from_utc_text(row["created_at"]),
        from_utc_text(row["updated_at"]),
        row["description"],
        row["location"],
        () if attendees == "[]" else decode_attendees(attendees),
        _STATUSES.get(row["status"]) or BookingStatus(row["status"]),
        bool(row["transparent"]),
        _ORIGINS.get(origin) or Origin(origin),
        row["sequence"],
        bool(row["recurring"]),
    )
    return CalendarObject.stored(
        booking,
        row["ics"],
        TimeSpan(from_epoch(row["span_start"]), from_epoch(row["span_end"])),
        row["href"],
        row["schedule_tag"],
        row["etag"],
    )


QUERIED_COLUMNS = (
    "uid",
    "href",
    "ics",
    "etag",
    "schedule_tag",
    "span_start",
    "span_end",
    "recurring",
    "timezone",
    "updated_at",
)
"""The columns ``decode_queried_values`` takes, in its order."""


def decode_queried_values(values: Iterable[Any]) -> QueriedObject:
    """A calendar-query candidate from a row of ``QUERIED_COLUMNS`` read by
    position: ten columns instead of the whole booking, for each of the
    couple of hundred rows of a week's query."""
    uid, href, ics, etag, schedule_tag, span_start, span_end, recurring, zone, updated = values
    return QueriedObject(
        uid,
        # As ``CalendarObject`` fills them in.
        href or default_href(uid),
        ics,
        etag,
        schedule_tag or etag,
        TimeSpan(_EPOCH + timedelta(seconds=span_start), _EPOCH + timedelta(seconds=span_end)),
        bool(recurring),
        zone,
        from_utc_text(updated),
    )


def encode_payload(effect: OutboxEffect) -> str:
    return outbox_codec.encode_payload(effect.payload)


def decode_effect(row: Row) -> OutboxEffect:
    """An outbox row's effect, its payload checked against its kind's type."""
    return OutboxEffect(
        resource_id=row["resource_id"],
        booking_id=row["booking_id"],
        payload=outbox_codec.decode_payload(row["kind"], row["payload"]),
    )


# What a listing reads of each object (both backends select these), in the
# order ``decode_entry`` takes them.
ENTRY_COLUMNS = "href, uid, etag, updated_at, revision, schedule_tag, ics_size AS size"


def decode_entry(values: Iterable[Any]) -> ObjectEntry:
    """A listing row of ``ENTRY_COLUMNS``, read by position: a PROPFIND of
    10,000 members decodes 10,000 rows, and a sqlite3.Row finds a column by
    name by comparing it with each one's."""
    href, uid, etag, updated_at, revision, schedule_tag, size = values
    return ObjectEntry(href, uid, etag, updated_at, size, revision, schedule_tag)


# The columns ``decode_stored_text`` reads, with and without the text: a GET
# reads a handful of columns of one row instead of decoding its booking.
STORED_TEXT_COLUMNS = "etag, schedule_tag, updated_at"
STORED_TEXT_COLUMNS_WITH_TEXT = STORED_TEXT_COLUMNS + ", ics"


def decode_stored_text(row: Row, *, with_text: bool) -> StoredText:
    """A row of ``STORED_TEXT_COLUMNS`` (``..._WITH_TEXT`` if ``with_text``)."""
    return StoredText(
        etag=row["etag"],
        schedule_tag=row["schedule_tag"],
        updated=from_utc_text(row["updated_at"]),
        ics=row["ics"] if with_text else None,
    )


def decode_change(row: Row) -> Change:
    return Change(
        revision=row["revision"],
        uid=row["uid"],
        kind=ChangeKind(row["kind"]),
        href=row["href"],
    )


def decode_outbox_item(row: Row) -> OutboxItem:
    return OutboxItem(
        id=row["id"],
        effect=decode_effect(row),
        attempts=row["attempts"],
        created=from_utc_text(row["created_at"]),
        maybe_done=row["sending_since"] is not None,
    )


def decode_outbox_record(row: Row) -> OutboxRecord:
    """An outbox row, done or not, as the admin sees it (``OutboxAdmin``)."""
    next_attempt = row["next_attempt_at"]
    failed_at = row["failed_at"]
    return OutboxRecord(
        id=int(row["id"]),
        effect=decode_effect(row),
        attempts=int(row["attempts"]),
        created=from_utc_text(row["created_at"]),
        next_attempt=from_utc_text(next_attempt) if next_attempt else None,
        last_error=row["last_error"],
        sending=row["sending_since"] is not None,
        done=row["done_at"] is not None,
        failed_at=from_utc_text(failed_at) if failed_at else None,
    )


def decode_failed_outbox_item(row: Row) -> FailedOutboxItem:
    return FailedOutboxItem(
        id=int(row["id"]),
        kind=str(row["kind"]),
        resource_id=str(row["resource_id"]),
        booking_id=str(row["booking_id"]),
        failed=from_utc_text(str(row["failed_at"])),
        reason=str(row["last_error"] or ""),
    )
