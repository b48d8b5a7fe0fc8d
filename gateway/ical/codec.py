"""``ICalCodec``: a booking rendered as a stored calendar object, and the
occurrences of a stored object expanded with recurring_ical_events (through
``gateway.ical.expand.Loaded``, within the ``limits`` budget)."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from datetime import datetime, time
from functools import lru_cache
from typing import Any
from zoneinfo import ZoneInfo

from icalendar import Calendar, Component, Event, vCalAddress, vText

from gateway.core.calendar_import import CalendarFile
from gateway.core.errors import ExpansionLimit, RecurrenceLimit
from gateway.core.model import (
    Attendee,
    Booking,
    BookingStatus,
    CalendarObject,
    ParsedObject,
    PartStat,
    Resource,
    TimeSpan,
)
from gateway.ical import kept_answers, render_event, schedule_status, user_types
from gateway.ical.attendee_params import with_partstat
from gateway.ical.cache import _LRU
from gateway.ical.common import PRODID, _address, _as_list, _parse_calendar, _reason
from gateway.ical.limits import RecurrenceLimits
from gateway.ical.parse import parse_object
from gateway.ical.split import split_calendar
from gateway.ical.timezones import (
    _aware,
    _listed_years,
    _utc,
    _vtimezone,
    _vtimezone_bytes,
    _zone_key,
)

log = logging.getLogger(__name__)

_RECURRENCE_PROPERTIES = frozenset({"RRULE", "RDATE", "EXRULE", "EXDATE"})

_STATUS = render_event.STATUS


def _mailto(address: str) -> str:
    """The address as a matching key: e-mail addresses compare case-blind in practice."""
    return _address(address).lower()


# -- render ----------------------------------------------------------------------


def _tz_years(booking: Booking) -> tuple[int, int]:
    """The years a VTIMEZONE written for ``booking`` has to cover."""
    first = min(booking.start, booking.end).year - 1
    # A recurring object lasts longer than its first occurrence; without its
    # span at hand, cover a generous horizon instead.
    last = booking.start.year + 25 if booking.recurring else booking.end.year + 2
    return max(first, 1), min(last, 9999)


def _new_calendar() -> Calendar:
    calendar = Calendar()
    calendar.add("prodid", PRODID)
    calendar.add("version", "2.0")
    calendar.add("calscale", "GREGORIAN")
    return calendar


def _master_event(calendar: Calendar, uid: str) -> Event | None:
    """The VEVENT without RECURRENCE-ID (RFC 5545 3.8.4.4) for ``uid``."""
    events = [e for e in calendar.walk("VEVENT") if isinstance(e, Event)]
    same_uid = [e for e in events if str(e.get("UID", "")) == uid] or events
    for event in same_uid:
        if "RECURRENCE-ID" not in event:
            return event
    return same_uid[0] if same_uid else None


def _replace(component: Component, name: str, value: Any) -> None:
    component.pop(name, None)
    component.add(name, value)


def _set_text(component: Component, name: str, value: str) -> None:
    """Set a TEXT property; an unchanged one is left alone with its parameters
    (ALTREP, LANGUAGE), an empty one removed."""
    if not value:
        component.pop(name, None)
    elif str(component.get(name, "")) != value or isinstance(component.get(name), list):
        _replace(component, name, vText(value))


def _same_time(event: Event, booking: Booking, zone: ZoneInfo) -> bool:
    """Whether the event's DTSTART/DTEND (or DURATION, RFC 5545 3.8.2.5) already
    say what the booking says, in the booking's zone."""
    try:
        start, end = event.start, event.end
    except (KeyError, ValueError, TypeError, AttributeError):
        return False
    if _aware(start, zone) != booking.start or _aware(end, zone) != booking.end:
        return False
    if isinstance(start, datetime) and start.tzinfo is not None:
        # Same instant, but a change of zone must still show in the object.
        return _zone_key(start.tzinfo) == _zone_key(zone)
    return True


def _fix_until(event: Event, zone: ZoneInfo) -> None:
    """After DTSTART became a zoned (or UTC) DATE-TIME, UNTIL must be a UTC
    DATE-TIME (RFC 5545 3.3.10)."""
    for rrule in _as_list(event.get("RRULE", [])):
        untils = rrule.get("UNTIL")
        if not untils:
            continue
        until = untils[0]
        if isinstance(until, datetime):
            rrule["UNTIL"] = [_utc(_aware(until, zone))]
        else:  # a DATE: the whole day counts
            rrule["UNTIL"] = [_utc(datetime.combine(until, time(23, 59, 59), zone))]


def _set_times(event: Event, booking: Booking, zone: ZoneInfo) -> None:
    if _same_time(event, booking, zone):
        # Left as written: a cancellation must not turn an all-day series
        # into a timed one, nor DURATION into DTEND.
        return
    for name in ("DTSTART", "DTEND", "DURATION"):
        event.pop(name, None)
    # RFC 5545 3.2.19: a zoned DATE-TIME carries TZID; icalendar writes the
    # zone's key as TZID and UTC as a "Z" value without TZID. DTEND has the
    # value type of DTSTART (3.8.2.2), so both are rewritten together.
    event.add("DTSTART", booking.start.astimezone(zone))
    event.add("DTEND", booking.end.astimezone(zone))
    _fix_until(event, zone)


def _organizer(resource: Resource, previous: Any) -> vCalAddress:
    organizer = vCalAddress(f"mailto:{resource.email}")
    if isinstance(previous, vCalAddress) and _mailto(previous) == _mailto(resource.email):
        # Keep what clients put there (SCHEDULE-AGENT, SENT-BY...).
        organizer.params.update(previous.params)
    organizer.params["CN"] = resource.name
    return organizer


def _attendee(attendee: Attendee, previous: vCalAddress | None) -> vCalAddress:
    address = vCalAddress(f"mailto:{attendee.email}")
    if previous is not None:
        address.params.update(previous.params)
    if attendee.name:
        address.params["CN"] = attendee.name
    # RFC 5545 3.2.16/3.2.12/3.2.17: bookers are required, asked to reply.
    address.params.setdefault("ROLE", "REQ-PARTICIPANT")
    address.params["PARTSTAT"] = attendee.partstat.value
    address.params.setdefault("RSVP", "TRUE")
    return address


def _set_people(event: Event, booking: Booking, resource: Resource) -> None:
    _replace(event, "ORGANIZER", _organizer(resource, event.get("ORGANIZER")))
    previous = {
        _mailto(a): a for a in _as_list(event.get("ATTENDEE", [])) if isinstance(a, vCalAddress)
    }
    event.pop("ATTENDEE", None)
    for attendee in booking.attendees:
        event.add("ATTENDEE", _attendee(attendee, previous.get(_mailto(attendee.email))))


def _apply(event: Event, booking: Booking, resource: Resource) -> None:
    zone = ZoneInfo(booking.timezone)
    _replace(event, "UID", booking.uid)
    # RFC 5545 3.8.7.2: without METHOD, DTSTAMP is when the object was last
    # revised; RFC 5545 3.8.7.1/3.8.7.3 want UTC for all three.
    _replace(event, "DTSTAMP", _utc(booking.updated))
    _replace(event, "CREATED", _utc(booking.created))
    _replace(event, "LAST-MODIFIED", _utc(booking.updated))
    _replace(event, "SEQUENCE", booking.sequence)
    _set_times(event, booking, zone)
    _set_text(event, "SUMMARY", booking.title)
    _set_text(event, "DESCRIPTION", booking.description)
    _set_text(event, "LOCATION", booking.location)
    _replace(event, "STATUS", _STATUS[booking.status])
    _replace(event, "TRANSP", "TRANSPARENT" if booking.transparent else "OPAQUE")
    _set_people(event, booking, resource)


# A VTIMEZONE the codec put into a calendar: the component and the arguments
# of ``_vtimezone`` that made it (its text is ``_vtimezone_bytes`` of them).
_Generated = tuple[Component, tuple[str, int, int]]


def _zone_years(booking: Booking) -> tuple[str, int, int] | None:
    """The zone and years of the VTIMEZONE ``booking`` needs; None in UTC,
    which is written with "Z" (RFC 5545 3.2.19)."""
    if _zone_key(ZoneInfo(booking.timezone)) == "UTC":
        return None
    return (booking.timezone, *_tz_years(booking))


def _ensure_vtimezone(calendar: Calendar, booking: Booking) -> _Generated | None:
    """RFC 5545 3.6.5: one VTIMEZONE per TZID used. Earlier ones are kept (a
    client's own definitions included); one is added for a new zone, and one
    that lists transitions only for other years is widened (a VTIMEZONE
    generated for a booking in 2026 would misplace it after a move to 2030).
    Returns the VTIMEZONE it added or widened, if any."""
    wanted = _zone_years(booking)
    if wanted is None:
        return None
    _, first, last = wanted
    for index, component in enumerate(calendar.subcomponents):
        if component.name != "VTIMEZONE" or str(component.get("TZID", "")) != booking.timezone:
            continue
        listed = _listed_years(component)
        if listed is None or (listed[0] <= booking.start.year and booking.end.year <= listed[1]):
            return None
        key = (booking.timezone, min(listed[0], first), max(listed[1] + 1, last))
        calendar.subcomponents[index] = widened = _vtimezone(*key)
        return widened, key
    # Before the first VEVENT, so that readers meet the zone before its use.
    index = next(
        (i for i, c in enumerate(calendar.subcomponents) if c.name != "VTIMEZONE"),
        len(calendar.subcomponents),
    )
    calendar.subcomponents.insert(index, added := _vtimezone(*wanted))
    return added, wanted


_END = b"END:VCALENDAR\r\n"


def _to_ical(calendar: Calendar, generated: _Generated | None) -> bytes:
    """``calendar.to_ical()``, with the text of the VTIMEZONE the codec put in
    taken from ``_vtimezone_bytes`` instead of written again (most of a new
    object's lines are that VTIMEZONE, the same for every booking in its zone
    and years).

    Byte for byte the same: icalendar writes a component as its BEGIN line,
    its properties, each subcomponent as that subcomponent's own ``to_ical``
    would, and its END line, every line ending in CRLF; and the cached bytes
    are ``to_ical`` of the very (immutable, shared) component put in."""
    if generated is None:
        return bytes(calendar.to_ical())
    inserted, key = generated
    parts = calendar.subcomponents
    calendar.subcomponents = []
    try:
        shell = bytes(calendar.to_ical())
    finally:
        calendar.subcomponents = parts
    if not shell.endswith(_END):  # pragma: no cover - an icalendar change
        return bytes(calendar.to_ical())
    body = b"".join(
        _vtimezone_bytes(*key) if part is inserted else bytes(part.to_ical()) for part in parts
    )
    return shell[: -len(_END)] + body + _END


def _calendar(
    booking: Booking, resource: Resource, previous_ics: str | None
) -> tuple[Calendar, _Generated | None]:
    """The calendar holding ``booking``, written over ``previous_ics`` (the
    stored text) if any, and the VTIMEZONE the codec put into it."""
    if previous_ics is None:
        calendar = _new_calendar()
        event = Event()
        calendar.add_component(event)
    else:
        calendar = _parse_calendar(previous_ics)
        # RFC 4791 4.1: stored calendar objects carry no METHOD.
        calendar.pop("METHOD", None)
        _replace(calendar, "PRODID", PRODID)
        _replace(calendar, "VERSION", "2.0")
        if "CALSCALE" not in calendar:
            calendar.add("calscale", "GREGORIAN")
        found = _master_event(calendar, booking.uid)
        if found is None:
            event = Event()
            calendar.add_component(event)
        else:
            event = found
    _apply(event, booking, resource)
    if booking.status is BookingStatus.CANCELLED:
        # Cancelling the booking cancels the whole series, overridden
        # instances included (RFC 5546 3.2.5).
        for other in calendar.walk("VEVENT"):
            if other is not event and str(other.get("UID", "")) == booking.uid:
                _replace(other, "STATUS", "CANCELLED")
    return calendar, _ensure_vtimezone(calendar, booking)


@lru_cache(maxsize=1)
def _new_head() -> bytes:
    """The lines of a new object before its first component (the same for
    every object: ``_new_calendar`` takes no argument)."""
    return bytes(_new_calendar().to_ical())[: -len(_END)]


def _new_object(event: bytes, booking: Booking) -> bytes:
    """The text ``_calendar`` gives a new object, for its ``event``'s text:
    ``_new_head``, the VTIMEZONE ``_ensure_vtimezone`` would add (the first
    component), the event and the END line (see ``_to_ical`` on why this is
    what icalendar writes)."""
    key = _zone_years(booking)
    zone = b"" if key is None else _vtimezone_bytes(*key)
    return _new_head() + zone + event + _END


def _new_event(booking: Booking, resource: Resource) -> bytes:
    """The VEVENT of a new object: written directly by ``render_event``, or
    by icalendar where that writer does not vouch for the same bytes."""
    written = render_event.new_event(booking, resource)
    if written is not None:
        return written
    event = Event()
    _apply(event, booking, resource)
    return bytes(event.to_ical())


# -- occurrences ------------------------------------------------------------------


def _is(component: Component, name: str, value: str) -> bool:
    return str(component.get(name, "")).strip().upper() == value


# -- the codec ---------------------------------------------------------------------


class ICalCodec:
    """``gateway.core.ports.CalendarCodec`` with icalendar.

    ``limits`` (the ``limits`` settings) bound what ``parse`` accepts and
    what ``occurrences`` may spend on one object; expanding an object can
    take up to ``limits.expansion_seconds``, so callers run it off the event
    loop."""

    def __init__(self, *, cache_size: int = 256, limits: RecurrenceLimits | None = None) -> None:
        # Parsing is the expensive part of expanding; objects are immutable for
        # a given ETag, so the parsed object (with its expansion) can be kept.
        self._loaded: _LRU[str, Any] = _LRU(cache_size)
        self._limits = limits or RecurrenceLimits()

    def render(self, booking: Booking, resource: Resource, previous_ics: str | None) -> str:
        if previous_ics is None:
            # A new object: only its VEVENT differs from booking to booking.
            return _new_object(_new_event(booking, resource), booking).decode("utf-8")
        return _to_ical(*_calendar(booking, resource, previous_ics)).decode("utf-8")

    def answered(self, ics: str, email: str, partstat: PartStat) -> str:
        return with_partstat(ics, email, partstat.value)

    def parse(self, ics: str, default_timezone: str) -> ParsedObject:
        """Validate a client's calendar object (CalDAV PUT) and read its fields;
        raises ``InvalidCalendarData`` (see ``gateway.ical.parse``)."""
        return parse_object(ics, default_timezone, self._limits)

    def recurrence(self, obj: CalendarObject) -> tuple[str, ...]:
        """The master VEVENT's RRULE, RDATE, EXRULE and EXDATE content lines
        (unfolded), as other calendars (Google's ``recurrence``) take them."""
        if not obj.booking.recurring:
            return ()
        try:
            event = _master_event(_parse_calendar(obj.ics), obj.uid)
        except ValueError:
            return ()
        if event is None:
            return ()
        lines = []
        for line in event.content_lines():
            name = line.split(":", 1)[0].split(";", 1)[0].upper()
            if name in _RECURRENCE_PROPERTIES:
                lines.append(str(line))
        return tuple(lines)

    def split(self, text: str) -> CalendarFile:
        return split_calendar(text)

    def keep_server_answers(self, stored: str, written: str) -> str:
        return kept_answers.keep_server_answers(stored, written)

    def with_schedule_status(self, ics: str, codes: Mapping[str, str | None]) -> str:
        return schedule_status.with_schedule_status(ics, codes)

    def schedule_statuses(self, ics: str) -> Mapping[str, str]:
        return schedule_status.schedule_statuses(ics)

    def with_sequence(self, ics: str, sequence: int) -> str:
        return schedule_status.with_sequence(ics, sequence)

    def calendar_user_types(self, ics: str) -> Mapping[str, str]:
        return user_types.calendar_user_types(ics)

    def occurrences(self, obj: CalendarObject, window: TimeSpan) -> Sequence[TimeSpan]:
        """Raises ``ExpansionLimit`` when the object cannot be expanded over
        ``window`` within ``limits``: callers must not guess."""
        booking = obj.booking
        if not booking.recurring:
            span = TimeSpan(booking.start, booking.end).in_utc()
            return [span] if span.meets(window) else []
        try:
            return self._expand(obj, window)
        except ExpansionLimit:
            raise
        except RecurrenceLimit as exc:
            # Stored before the limits: a VTIMEZONE icalendar cannot read.
            raise ExpansionLimit(obj.uid, exc.message) from exc
        except Exception as exc:
            # A stored object that cannot be expanded must not stop the
            # service; its first occurrence is what we know for sure. The
            # parsed object is dropped: dateutil may be left half-iterated.
            self._loaded.pop(obj.etag)
            log.warning("cannot expand %s: %s", booking.uid, _reason(exc))
            span = TimeSpan(booking.start, booking.end).in_utc()
            return [span] if span.meets(window) else []

    def _expand(self, obj: CalendarObject, window: TimeSpan) -> list[TimeSpan]:
        # Imported here: expand uses this module's helpers.
        from gateway.ical.expand import Loaded

        booking = obj.booking
        zone = ZoneInfo(booking.timezone)
        loaded = self._loaded.get(obj.etag)
        if loaded is None:
            loaded = Loaded(_parse_calendar(obj.ics), zone, self._limits)
            self._loaded.put(obj.etag, loaded)
        spans: list[TimeSpan] = []
        with loaded.session(obj.uid):
            for instance in loaded.instances("VEVENT", window):
                # recurring_ical_events' copy: an Event with start and end.
                occurrence: Any = instance.component
                # The booking's own status and transparency are the caller's
                # business (single bookings are returned whatever they are); an
                # instance that deviates from the series does not occur / block.
                if _is(occurrence, "STATUS", "CANCELLED") and booking.blocks_time:
                    continue
                if _is(occurrence, "TRANSP", "TRANSPARENT") and not booking.transparent:
                    continue
                start = _aware(occurrence.start, zone)
                end = max(_aware(occurrence.end, zone), start)
                span = TimeSpan(start, end).in_utc()
                if span.meets(window):
                    spans.append(span)
        spans.sort(key=lambda s: (s.start, s.end))
        return spans
