"""Bookings as Google events, and Google events as busy blocks.

Gateway -> Google writes ``full`` details (title, description, location,
attendees) or ``anonymous`` ones (only the span, titled "Busy"); our booking
id rides in ``extendedProperties.private`` so our own events are known when
they come back in a sync (echo suppression). Google -> gateway keeps only the
span of an event: it is always anonymous.

Event resource fields: Calendar API v3 "Events" reference.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from gateway.core.instants import instant_problem
from gateway.core.mirror import BusyBlock, Details, google_event_id
from gateway.core.model import Booking, BookingStatus, PartStat, TimeSpan
from gateway.core.text import first_forbidden_character

BOOKING_KEY = "calgatewayBookingId"
RESOURCE_KEY = "calgatewayResource"
COPY_KEY = "calgatewayCopyOf"
BUSY = "Busy"

# Google attendee responseStatus <-> RFC 5545 PARTSTAT.
_PARTSTAT = {
    "needsAction": PartStat.NEEDS_ACTION,
    "accepted": PartStat.ACCEPTED,
    "declined": PartStat.DECLINED,
    "tentative": PartStat.TENTATIVE,
}
_RESPONSE = {value: key for key, value in _PARTSTAT.items()}

# Event types that do not make the owner busy (Calendar API eventType).
_NOT_BUSY_TYPES = frozenset({"workingLocation", "birthday", "fromGmail"})


def _is_midnight(value: datetime) -> bool:
    return value.time() == time(0, 0) and value.tzinfo is not None


def _time_field(value: datetime, zone: str, all_day: bool) -> dict[str, str]:
    if all_day:
        return {"date": value.date().isoformat()}
    return {"dateTime": value.isoformat(), "timeZone": zone}


def event_body(
    booking: Booking,
    details: Details,
    recurrence: Sequence[str] = (),
) -> dict[str, Any]:
    """The Google event a booking should be (without id-independent extras)."""
    zone = ZoneInfo(booking.timezone)
    start, end = booking.start.astimezone(zone), booking.end.astimezone(zone)
    # Whole days in the booking's zone read as an all-day event, which is how
    # CalDAV's DATE values arrive here.
    all_day = _is_midnight(start) and _is_midnight(end) and end > start
    body: dict[str, Any] = {
        "id": google_event_id(booking.id),
        "start": _time_field(start, booking.timezone, all_day),
        "end": _time_field(end, booking.timezone, all_day),
        "status": "tentative" if booking.status is BookingStatus.TENTATIVE else "confirmed",
        "transparency": "transparent" if booking.transparent else "opaque",
        "extendedProperties": {
            "private": {BOOKING_KEY: booking.id, RESOURCE_KEY: booking.resource_id}
        },
    }
    if recurrence:
        body["recurrence"] = list(recurrence)
    if details is Details.ANONYMOUS:
        # Nothing but the span: no title, description, location or guests.
        body["summary"] = BUSY
        body["visibility"] = "private"
        return body
    body["summary"] = booking.title
    if booking.description:
        body["description"] = booking.description
    if booking.location:
        body["location"] = booking.location
    if booking.attendees:
        # No responseStatus: a guest's answer is theirs, given in Google (or
        # elsewhere); a new guest starts as needsAction, Google's default, and
        # an update carries what Google holds (``keep_answers``).
        body["attendees"] = [
            {"email": a.email, **({"displayName": a.name} if a.name else {})}
            for a in booking.attendees
        ]
    return body


def without_guests(body: Mapping[str, Any], emails: set[str]) -> dict[str, Any]:
    """``body`` without the guests whose (lower-case) address is in ``emails``."""
    out = dict(body)
    if "attendees" in body and emails:
        kept = [a for a in body["attendees"] if str(a["email"]).lower() not in emails]
        if kept:
            out["attendees"] = kept
        else:
            out.pop("attendees")
    return out


# What a guest writes on their own attendee entry (Events reference).
_GUESTS_OWN = ("responseStatus", "comment", "additionalGuests")


def keep_answers(body: Mapping[str, Any], current: Mapping[str, Any]) -> dict[str, Any]:
    """``body`` with each guest's answer as Google's ``current`` copy holds
    it. Events: update replaces the whole event, so an update must carry the
    answers or they are lost; the gateway never writes an answer it did not
    read from Google (a guest missing from Google is new: needsAction)."""
    theirs = {
        str(a.get("email", "")).lower(): a for a in current.get("attendees") or [] if a.get("email")
    }
    out = dict(body)
    if "attendees" in body:
        out["attendees"] = [
            {
                **attendee,
                **{
                    key: theirs[str(attendee["email"]).lower()][key]
                    for key in _GUESTS_OWN
                    if key in theirs.get(str(attendee["email"]).lower(), {})
                },
            }
            for attendee in body["attendees"]
        ]
    return out


def copy_body(booking: Booking, organizer_name: str, organizer_email: str) -> dict[str, Any]:
    """The copy of a booking imported into a guest's own calendar (Events:
    import): the whole booking, since the guest is in it; its iCalUID is the
    booking's UID, so the next import updates this copy."""
    body = event_body(booking, Details.FULL)
    body.pop("id")
    body.pop("extendedProperties")
    body.pop("attendees", None)
    body["iCalUID"] = booking.uid
    if booking.status is BookingStatus.CANCELLED:
        body["status"] = "cancelled"
    if organizer_email:
        body["organizer"] = {"email": organizer_email, "displayName": organizer_name}
    body["extendedProperties"] = {"private": {COPY_KEY: booking.id}}
    return body


def digest(body: Mapping[str, Any]) -> str:
    """What was last written, to skip a push that would change nothing."""
    return hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()[:32]


def booking_id_in(event: Mapping[str, Any]) -> str | None:
    """Our booking id if this is an event the gateway wrote."""
    private = (event.get("extendedProperties") or {}).get("private") or {}
    value = private.get(BOOKING_KEY)
    return str(value) if value else None


def _parse_time(field: Mapping[str, Any], fallback_zone: str) -> tuple[datetime, str, bool]:
    """(aware time, IANA zone, all-day?) of an event's start or end."""
    zone_name = str(field.get("timeZone") or fallback_zone)
    try:
        zone = ZoneInfo(zone_name)
    except (ZoneInfoNotFoundError, ValueError):
        zone_name, zone = "UTC", ZoneInfo("UTC")
    if "dateTime" in field:
        value = datetime.fromisoformat(str(field["dateTime"]).replace("Z", "+00:00"))
        if value.tzinfo is None:
            value = value.replace(tzinfo=zone)
        return value.astimezone(zone), zone_name, False
    day = date.fromisoformat(str(field["date"]))
    # An all-day event covers the whole day in the calendar's zone.
    return datetime.combine(day, time(0, 0), zone), zone_name, True


def busy_block(
    event: Mapping[str, Any], calendar_zone: str, series_id: str = ""
) -> BusyBlock | None:
    """The busy block of a Google event, or None when it does not make the
    calendar's owner busy (cancelled, free, declined by the owner)."""
    if event.get("status") == "cancelled":
        return None
    if event.get("transparency") == "transparent":
        return None
    if event.get("eventType") in _NOT_BUSY_TYPES:
        return None
    for attendee in event.get("attendees") or []:
        if attendee.get("self") and attendee.get("responseStatus") == "declined":
            return None
    if "start" not in event or "end" not in event:
        return None
    # The id becomes the block's UID and name, served in CalDAV's XML: one
    # that XML or a content line cannot carry (Google's are base32hex; a
    # Google-compatible service may differ) is no event we can keep.
    if first_forbidden_character(str(event.get("id", "")), one_line=True) is not None:
        return None
    try:
        start, zone, all_day = _parse_time(event["start"], calendar_zone)
        end, _, _ = _parse_time(event["end"], zone)
    except (KeyError, ValueError, TypeError, OverflowError):
        return None
    if instant_problem(start) is not None or instant_problem(end) is not None:
        return None  # year 1 or 9999: shifting it would overflow
    if end < start:
        return None
    if end == start and all_day:
        end = start + timedelta(days=1)
    if not all_day:
        # A timed block is kept in UTC: it shows at the same instant in every
        # client, and its object needs no VTIMEZONE (rendering one per block
        # was most of the cost of importing a large calendar).
        start, end, zone = start.astimezone(UTC), end.astimezone(UTC), "UTC"
    return BusyBlock(
        event_id=str(event["id"]),
        span=TimeSpan(start, end),
        timezone=zone,
        all_day=all_day,
        tentative=event.get("status") == "tentative",
        series_id=series_id or str(event.get("recurringEventId") or ""),
    )


def _instant(field: Mapping[str, Any] | None) -> str:
    if not field:
        return ""
    if "dateTime" in field:
        value = datetime.fromisoformat(str(field["dateTime"]).replace("Z", "+00:00"))
        return value.isoformat() if value.tzinfo is None else str(value.timestamp())
    return str(field.get("date", ""))


def same_content(event: Mapping[str, Any], body: Mapping[str, Any]) -> bool:
    """Whether Google's event still says what we last wrote, ignoring what
    Google adds (etag, updated, htmlLink, ...) and the guests' answers: then
    a change notice about it is our own write coming back (an echo)."""
    if event.get("status") == "cancelled":
        return False
    for key in ("summary", "description", "location"):
        if (event.get(key) or "") != (body.get(key) or ""):
            return False
    if (event.get("transparency") or "opaque") != body.get("transparency", "opaque"):
        return False
    if (event.get("status") or "confirmed") != body.get("status", "confirmed"):
        return False
    if _instant(event.get("start")) != _instant(body.get("start")):
        return False
    if _instant(event.get("end")) != _instant(body.get("end")):
        return False
    theirs = sorted(str(a.get("email", "")).lower() for a in event.get("attendees") or [])
    ours = sorted(str(a.get("email", "")).lower() for a in body.get("attendees") or [])
    return theirs == ours


def responses(event: Mapping[str, Any], booking: Booking) -> list[tuple[str, str]]:
    """(email, PARTSTAT) of the booking's attendees whose Google answer
    differs from what the booking holds."""
    held = {a.email.lower(): a.partstat for a in booking.attendees}
    changed = []
    for attendee in event.get("attendees") or []:
        email = str(attendee.get("email", "")).lower()
        answer = _PARTSTAT.get(str(attendee.get("responseStatus", "")))
        if (
            email in held
            and answer is not None
            and answer is not PartStat.NEEDS_ACTION
            and held[email] is not answer
        ):
            changed.append((email, answer.value))
    return changed
