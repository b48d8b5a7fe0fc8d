"""Booking <-> iCalendar: the only module that knows icalendar.

Three jobs:

* ``ICalCodec.render`` writes a booking as a stored calendar object (RFC 5545,
  RFC 4791 4.1), updating an earlier object in place so that what the gateway
  does not model (VALARM, X- properties) survives;
* ``ICalCodec.occurrences`` expands recurrences with recurring_ical_events;
* ``render_feed`` builds the ICS feed of a resource, full or anonymous ("busy").

Feeds are rendered from the stored text rather than from parsed components:
parsing costs about a millisecond per object with icalendar, far too slow for
a feed of 10,000 events. Each object is first brought to canonical form
(CRLF, folded to 75 octets, RFC 5545 3.1); its VEVENT and VTIMEZONE blocks are
then cut out by their BEGIN/END lines and the per-object result is cached by
ETag. icalendar is still what unfolds, folds and parses content lines.
"""

from __future__ import annotations

import hashlib
import logging
import re
import threading
import warnings
from collections import OrderedDict
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from functools import lru_cache
from typing import Any, Generic, Literal, TypeVar, cast
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import recurring_ical_events
from icalendar import Calendar, Component, Event, Timezone, vCalAddress, vDuration, vText
from icalendar.parser import Contentline, Contentlines

from gateway.core.model import (
    FAR_FUTURE,
    Attendee,
    Booking,
    BookingStatus,
    CalendarObject,
    Resource,
    TimeSpan,
)

__all__ = ["PRODID", "FeedRenderer", "FeedView", "ICalCodec", "render_feed"]

log = logging.getLogger(__name__)

PRODID = "-//calgateway//calgateway 0.1//EN"

FeedView = Literal["full", "busy"]

_STATUS = {
    BookingStatus.CONFIRMED: "CONFIRMED",
    BookingStatus.TENTATIVE: "TENTATIVE",
    BookingStatus.CANCELLED: "CANCELLED",
}

# Names the tz database uses for UTC; a DATE-TIME in UTC is written with "Z" and
# needs no VTIMEZONE (RFC 5545 3.2.19).
_UTC_KEYS = frozenset({"UTC", "Etc/UTC", "Etc/Universal", "Etc/Zulu", "Universal", "Zulu"})

# Feeds are re-read by subscribers every few minutes anyway; RFC 7986 5.7 lets
# us say how often (X-PUBLISHED-TTL is the older Outlook spelling).
_REFRESH = timedelta(minutes=15)

_K = TypeVar("_K")
_V = TypeVar("_V")


class _LRU(Generic[_K, _V]):
    """A small bounded mapping that forgets the least recently used entry.

    Feeds may be rendered in a worker thread, hence the lock.
    """

    def __init__(self, size: int) -> None:
        self._size = size
        self._data: OrderedDict[_K, _V] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: _K) -> _V | None:
        with self._lock:
            value = self._data.get(key)
            if value is not None:
                self._data.move_to_end(key)
            return value

    def put(self, key: _K, value: _V) -> None:
        with self._lock:
            self._data[key] = value
            self._data.move_to_end(key)
            while len(self._data) > self._size:
                self._data.popitem(last=False)

    def __len__(self) -> int:
        return len(self._data)


# -- parsing helpers -------------------------------------------------------------

# icalendar's content-line API is untyped; these are its signatures.
_content_line: Callable[[str], Contentline] = Contentline
_line_to_ical = cast(Callable[[Contentline], bytes], Contentline.to_ical)
_parse_lines = cast(Callable[[str], Contentlines], Contentlines.from_ical)
_lines_to_ical = cast(Callable[[Contentlines], bytes], Contentlines.to_ical)


def _parse_calendar(text: str) -> Calendar:
    """The first VCALENDAR of ``text`` (a stored object holds exactly one)."""
    with warnings.catch_warnings():
        # icalendar warns when it guesses an Olson name from a "globally unique"
        # TZID (RFC 5545 3.2.19); the guess is what we want, the noise is not.
        warnings.simplefilter("ignore")
        parsed = Calendar.from_ical(text)
    if isinstance(parsed, list):  # pragma: no cover - only with multiple=True
        if not parsed:
            raise ValueError("no VCALENDAR")
        return parsed[0]
    return parsed


@lru_cache(maxsize=512)
def _is_iana(tzid: str) -> bool:
    """Whether ``tzid`` names a zone of the tz database we can describe ourselves."""
    try:
        ZoneInfo(tzid)
        _vtimezone(tzid, 2000, 2001)  # and icalendar can write it
    except (ZoneInfoNotFoundError, ValueError, OSError):
        return False
    return True


@lru_cache(maxsize=256)
def _vtimezone(tzid: str, first_year: int, last_year: int) -> Timezone:
    """A VTIMEZONE for ``tzid`` from the tz database (RFC 5545 3.6.5).

    Only transitions between ``first_year`` and ``last_year`` are listed, which
    keeps objects small; icalendar notes that this is slow, hence the cache.
    Callers must not change the returned component.
    """
    generated = Timezone.from_tzid(
        tzid, first_date=date(first_year, 1, 1), last_date=date(last_year, 1, 1)
    )
    return _one_observance_per_transition(generated)


def _one_observance_per_transition(vtimezone: Timezone) -> Timezone:
    """The same zone with every transition its own STANDARD/DAYLIGHT part.

    icalendar lists later transitions as RDATEs of one observance, which RFC
    5545 3.6.5 allows, but vobject (and so Radicale) ignores those RDATEs and
    would put every summer after the first in winter time. A DTSTART per
    observance reads the same in every parser.
    """
    result = Timezone()
    for name, value in vtimezone.items():
        result[name] = value
    transitions: list[tuple[datetime, Component]] = []
    for observance in vtimezone.subcomponents:
        starts = [observance.decoded("DTSTART")]
        for rdate in _as_list(observance.get("RDATE", [])):
            starts.extend(v.dt for v in rdate.dts)
        for start in starts:
            part = type(observance)()
            part.add("DTSTART", start)
            for name, value in observance.items():
                if name not in ("DTSTART", "RDATE"):
                    part[name] = value
            transitions.append((start, part))
    transitions.sort(key=lambda t: t[0])
    for _, transition in transitions:
        result.add_component(transition)
    return result


@lru_cache(maxsize=256)
def _vtimezone_bytes(tzid: str, first_year: int, last_year: int) -> bytes:
    return bytes(_vtimezone(tzid, first_year, last_year).to_ical())


def _zone_key(tz: tzinfo | None) -> str | None:
    if tz is None:
        return None
    if tz is UTC:
        return "UTC"
    key = getattr(tz, "key", None)
    if isinstance(key, str):
        return "UTC" if key in _UTC_KEYS else key
    return None


def _aware(value: date | datetime, zone: ZoneInfo) -> datetime:
    """An instant for a DTSTART-like value. DATE and floating DATE-TIME values
    have no zone of their own; like RFC 4791 9.9 we read them in the zone of the
    calendar (here: the booking's)."""
    if isinstance(value, datetime):
        return value if value.tzinfo is not None else value.replace(tzinfo=zone)
    return datetime.combine(value, time(), zone)


def _utc(value: datetime) -> datetime:
    return value.astimezone(UTC)


def _mailto(address: str) -> str:
    address = address.strip()
    if address.lower().startswith("mailto:"):
        address = address[len("mailto:") :]
    return address.lower()


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


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


def _listed_years(vtimezone: Component) -> tuple[int, int] | None:
    """The years a VTIMEZONE lists transitions for, or None if its observances
    recur by RRULE (RFC 5545 3.6.5) and so hold for any year."""
    years: list[int] = []
    for observance in vtimezone.subcomponents:
        if "RRULE" in observance:
            return None
        for name in ("DTSTART", "RDATE"):
            for prop in _as_list(observance.get(name, [])):
                values = getattr(prop, "dts", [prop])
                years.extend(v.dt.year for v in values if isinstance(v.dt, date))
    return (min(years), max(years)) if years else None


def _ensure_vtimezone(calendar: Calendar, booking: Booking) -> None:
    """RFC 5545 3.6.5: one VTIMEZONE per TZID used. Earlier ones are kept (a
    client's own definitions included); one is added for a new zone, and one
    that lists transitions only for other years is widened (a VTIMEZONE
    generated for a booking in 2026 would misplace it after a move to 2030)."""
    if _zone_key(ZoneInfo(booking.timezone)) == "UTC":
        return
    first, last = _tz_years(booking)
    for index, component in enumerate(calendar.subcomponents):
        if component.name != "VTIMEZONE" or str(component.get("TZID", "")) != booking.timezone:
            continue
        listed = _listed_years(component)
        if listed is None or (listed[0] <= booking.start.year and booking.end.year <= listed[1]):
            return
        years = (min(listed[0], first), max(listed[1] + 1, last))
        calendar.subcomponents[index] = _vtimezone(booking.timezone, *years)
        return
    # Before the first VEVENT, so that readers meet the zone before its use.
    index = next(
        (i for i, c in enumerate(calendar.subcomponents) if c.name != "VTIMEZONE"),
        len(calendar.subcomponents),
    )
    calendar.subcomponents.insert(index, _vtimezone(booking.timezone, first, last))


# -- occurrences ------------------------------------------------------------------


def _hits(span: TimeSpan, window: TimeSpan) -> bool:
    if span.start == span.end:
        # An instant counts when it lies in the half-open window (RFC 4791 9.9,
        # DURATION = 0 row).
        return window.start <= span.start < window.end
    return span.overlaps(window)


def _is(component: Component, name: str, value: str) -> bool:
    return str(component.get(name, "")).strip().upper() == value


# recurring_ical_events compares floating and DATE values with the window in
# its own way; expanding a little more and filtering ourselves keeps the result
# exact whatever the zone. 14 hours is the largest UTC offset in use.
_EXPANSION_MARGIN = timedelta(days=2)


# -- the codec ---------------------------------------------------------------------


class ICalCodec:
    """``gateway.core.ports.CalendarCodec`` with icalendar."""

    def __init__(self, *, cache_size: int = 256) -> None:
        # Parsing is the expensive part of expanding; objects are immutable for
        # a given ETag, so the expansion query can be kept.
        self._queries: _LRU[str, Any] = _LRU(cache_size)

    def render(self, booking: Booking, resource: Resource, previous_ics: str | None) -> str:
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
        _ensure_vtimezone(calendar, booking)
        return bytes(calendar.to_ical()).decode("utf-8")

    def occurrences(self, obj: CalendarObject, window: TimeSpan) -> Sequence[TimeSpan]:
        booking = obj.booking
        if not booking.recurring:
            span = TimeSpan(booking.start, booking.end).in_utc()
            return [span] if _hits(span, window) else []
        try:
            return self._expand(obj, window)
        except Exception as exc:
            # A stored object that cannot be expanded must not stop the
            # service; its first occurrence is what we know for sure.
            log.warning("cannot expand %s", booking.uid, exc_info=exc)
            span = TimeSpan(booking.start, booking.end).in_utc()
            return [span] if _hits(span, window) else []

    def _expand(self, obj: CalendarObject, window: TimeSpan) -> list[TimeSpan]:
        booking = obj.booking
        zone = ZoneInfo(booking.timezone)
        query = self._query(obj)
        spans: list[TimeSpan] = []
        for occurrence in query.between(
            window.start - _EXPANSION_MARGIN, window.end + _EXPANSION_MARGIN
        ):
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
            if _hits(span, window):
                spans.append(span)
        spans.sort(key=lambda s: (s.start, s.end))
        return spans

    def _query(self, obj: CalendarObject) -> Any:
        etag = obj.etag
        query = self._queries.get(etag)
        if query is None:
            query = recurring_ical_events.of(_parse_calendar(obj.ics))
            self._queries.put(etag, query)
        return query


# -- feeds -------------------------------------------------------------------------

# Components are cut out of canonical text (see the module docstring): a line
# that starts with BEGIN: or END: is always a real line, because a folded
# continuation starts with a space or tab (RFC 5545 3.1). Canonical text has
# these markers in upper case, so plain byte searches find them.
_ODD_MARKER = re.compile(rb"\n(?=[bBeE])(?!BEGIN:|END:)(?i:begin:|end:)")
_MARKER_LINE = re.compile(rb"^(?:begin|end):[^\r\n]*", re.M | re.I)
_LONE_CR = re.compile(r"\r(?!\n)")

# What the busy view keeps of a VEVENT: its time and recurrence (RFC 5545
# 3.8.2, 3.8.5, 3.8.4.4; EXRULE from RFC 2445 still limits the set).
_BUSY_KEEP = frozenset(
    {"DTSTART", "DTEND", "DURATION", "RRULE", "RDATE", "EXDATE", "EXRULE", "RECURRENCE-ID"}
)
# The properties that may carry TZID (RFC 5545 3.2.19) and which we can rewrite.
_ZONED = frozenset({"DTSTART", "DTEND", "DUE", "RECURRENCE-ID", "EXDATE", "RDATE"})


def _canonical(text: str) -> bytes:
    """``text`` as CRLF-terminated lines of at most 75 octets (RFC 5545 3.1)
    with BEGIN/END in upper case.

    Objects the gateway wrote already are; others are unfolded and refolded
    by icalendar's content-line code.
    """
    data = text.encode("utf-8")
    crlf = data.count(b"\r\n")
    if (
        data.count(b"\n") == crlf
        and data.count(b"\r") == crlf
        and data.endswith(b"\r\n")
        and max(map(len, data.split(b"\r\n"))) <= 75
        and _ODD_MARKER.search(data) is None
    ):
        return data
    # A lone CR is no line break in iCalendar; drop it so it cannot become one.
    data = _lines_to_ical(_parse_lines(_LONE_CR.sub("", text)))
    # Component names are case-insensitive (RFC 5545 2.1).
    return _MARKER_LINE.sub(lambda m: m.group(0).upper(), data)


def _blocks(data: bytes, name: bytes) -> list[bytes]:
    """The ``name`` components of canonical ``data``, each from BEGIN to END."""
    begin = b"\nBEGIN:" + name + b"\r\n"
    end = b"\nEND:" + name + b"\r\n"
    found: list[bytes] = []
    position = 0
    while (first := data.find(begin, position)) >= 0:
        last = data.find(end, first + len(begin))
        if last < 0:
            break
        found.append(data[first + 1 : last + len(end)])
        # The next block's marker starts with this block's final line break.
        position = last + len(end) - 1
    return found


def _unfold(block: bytes) -> bytes:
    return block.replace(b"\r\n ", b"").replace(b"\r\n\t", b"")


def _lines_with(unfolded: bytes, needle: bytes) -> Iterator[str]:
    """The lines of ``unfolded`` that contain ``needle`` (lower case) anywhere."""
    lowered = unfolded.lower()  # bytes.lower() keeps offsets: ASCII only
    position = lowered.find(needle)
    while position >= 0:
        # (+ 1: a needle may start with the line break that opens its line)
        first = unfolded.rfind(b"\n", 0, position + 1) + 1
        last = unfolded.find(b"\r\n", position)
        if last < 0:
            last = len(unfolded)
        yield unfolded[first:last].decode("utf-8")
        position = lowered.find(needle, last)


def _fold(line: str) -> str:
    if len(line) <= 75 and line.isascii():
        return line
    return _line_to_ical(_content_line(line)).decode("utf-8")


def _split(line: str) -> tuple[str, str]:
    """A content line's parameters part and its value.

    Parameter values holding ":" must be quoted (RFC 5545 3.1), so without a
    quote the first colon ends the parameters.
    """
    end = _content_line(line).value_separator_index() if '"' in line else line.find(":")
    if end < 0:
        return line, ""
    return line[:end], line[end + 1 :]


def _name(line: str) -> str:
    return line.partition(":")[0].partition(";")[0].upper()


@lru_cache(maxsize=2048)
def _tzid_in_head(head: str) -> str | None:
    """The TZID parameter of a property's name-and-parameters part."""
    try:
        params = _content_line(head + ":").parts()[1]
    except ValueError:
        return None
    tzid = params.get("TZID")
    return tzid if isinstance(tzid, str) and tzid else None


def _tzid_of(line: str) -> str | None:
    # The cache works on the parameters part only ("DTSTART;TZID=Europe/Berlin"),
    # which repeats a lot.
    head, _ = _split(line)
    return _tzid_in_head(head) if ";" in head else None


@lru_cache(maxsize=2048)
def _text_value(line: str) -> str:
    """The unescaped value of a TEXT property line (RFC 5545 3.3.11)."""
    if "\\" not in line and '"' not in line:
        return line.partition(":")[2]  # nothing escaped, nothing quoted
    try:
        return str(_content_line(line).parts()[2])
    except ValueError:
        return ""


def _token_value(line: str) -> str:
    return _split(line)[1].strip().upper()


def _opaque_uid(resource_id: str, uid: str) -> str:
    digest = hashlib.sha256(f"{resource_id}\x00{uid}".encode()).hexdigest()
    return f"{digest[:40]}@busy.calgateway"


@dataclass(frozen=True, slots=True)
class _Fragment:
    """What one stored object contributes to a feed."""

    body: bytes
    tzids: frozenset[str]
    """TZIDs the body references; each has a tz-database zone or a stored one."""
    vtimezones: Mapping[str, bytes]
    """The object's own VTIMEZONEs for TZIDs that are not tz-database names."""


@dataclass(slots=True)
class _BusyEvent:
    lines: list[str]
    uid: str
    recurrence_id: str | None
    hidden: bool
    has_start: bool


def _busy_event(unfolded: bytes) -> _BusyEvent:
    lines: list[str] = []
    uid = ""
    recurrence_id: str | None = None
    hidden = False
    has_start = False
    depth = 0
    # Skip BEGIN:VEVENT and END:VEVENT (and the empty string after the last CRLF).
    for line in unfolded.decode("utf-8").split("\r\n")[1:-2]:
        name = _name(line)
        if name == "BEGIN":
            depth += 1
        elif name == "END":
            depth -= 1
        elif depth:
            continue  # VALARM and other subcomponents are left out
        elif name in _BUSY_KEEP:
            lines.append(line)
            has_start = has_start or name == "DTSTART"
            if name == "RECURRENCE-ID":
                recurrence_id = line
        elif name == "UID":
            uid = _text_value(line)
        elif name == "TRANSP":
            # RFC 5545 3.8.2.7: a transparent event does not make time busy.
            hidden = hidden or _token_value(line) == "TRANSPARENT"
        elif name == "STATUS":
            hidden = hidden or _token_value(line) == "CANCELLED"
    return _BusyEvent(lines, uid, recurrence_id, hidden, has_start)


def _exdate_for(recurrence_id: str) -> str | None:
    """An EXDATE that removes the instance an override replaced, so that a
    hidden override does not let the series show the instance after all."""
    head, value = _split(recurrence_id)
    if "RANGE=" in head.upper():
        return None  # THISANDFUTURE cannot be expressed as EXDATE
    return "EXDATE" + head[len("RECURRENCE-ID") :] + ":" + value


def _to_utc(value: Any, zone: ZoneInfo) -> Any:
    if isinstance(value, tuple):  # a PERIOD (RFC 5545 3.3.9)
        start, end = value
        return (_to_utc(start, zone), _to_utc(end, zone))
    if isinstance(value, datetime):
        return _utc(_aware(value, zone))
    return value


def _zones_to_utc(text: str, unknown: frozenset[str], zone: ZoneInfo) -> str:
    """Rewrite values whose TZID has no definition as UTC (RFC 5545 3.3.5 form 2).

    icalendar already resolves Windows names and "globally unique" TZIDs; what
    it cannot resolve stays floating and is read in the booking's zone.
    """
    calendar = _parse_calendar(text)
    for event in calendar.walk("VEVENT"):
        for component in event.walk():
            for name in list(component.keys()):
                values = _as_list(component[name])
                if not any(getattr(v, "params", {}).get("TZID") in unknown for v in values):
                    continue
                component.pop(name)
                if name.upper() not in _ZONED:
                    continue  # nothing we know how to rewrite: leave it out
                for value in values:
                    params = {k: str(v) for k, v in value.params.items() if k.upper() != "TZID"}
                    if hasattr(value, "dts"):  # RDATE, EXDATE: lists of values
                        new: Any = [_to_utc(v.dt, zone) for v in value.dts]
                    else:
                        new = _to_utc(value.dt, zone)
                    component.add(name, new, parameters=params)
    return bytes(calendar.to_ical()).decode("utf-8")


class FeedRenderer:
    """Renders ICS feeds; keeps each object's contribution by ETag and view."""

    def __init__(self, *, cache_size: int = 25_000) -> None:
        self._fragments: _LRU[tuple[object, ...], _Fragment] = _LRU(cache_size)

    def render(
        self, resource: Resource, objects: Sequence[CalendarObject], view: FeedView
    ) -> bytes:
        if view not in ("full", "busy"):
            raise ValueError(f"unknown feed view {view!r}")
        included = [o for o in objects if o.booking.status is not BookingStatus.CANCELLED]
        fragments = [self._fragment(resource, o, view) for o in included]
        parts = [_feed_head(resource)]
        parts.extend(_feed_timezones(included, fragments))
        parts.extend(f.body for f in fragments)
        parts.append(b"END:VCALENDAR\r\n")
        return b"".join(parts)

    def _fragment(self, resource: Resource, obj: CalendarObject, view: FeedView) -> _Fragment:
        booking = obj.booking
        # Everything the fragment depends on besides the text (which the ETag
        # stands for): busy UIDs hash the resource id, DTSTAMP is the update
        # time, times without a zone are read in the booking's zone.
        key = (obj.etag, view, resource.id, booking.timezone, booking.updated)
        fragment = self._fragments.get(key)
        if fragment is None:
            fragment = _build_fragment(resource, obj, view, obj.ics)
            self._fragments.put(key, fragment)
        return fragment


def _build_fragment(
    resource: Resource, obj: CalendarObject, view: FeedView, text: str, *, final: bool = False
) -> _Fragment:
    """Cut the object's VEVENTs for ``view`` and note the zones they need."""
    data = _canonical(text)
    stored: dict[str, bytes] = {}
    for block in _blocks(data, b"VTIMEZONE"):
        for line in _lines_with(_unfold(block), b"\ntzid"):
            if _name(line) == "TZID":
                stored.setdefault(_text_value(line), block)
                break
    events = _blocks(data, b"VEVENT")
    if view == "full":
        body, tzids = _full_body(events)
    else:
        body, tzids = _busy_body(resource, obj.booking, events)
    unknown = frozenset(t for t in tzids if not _is_iana(t) and t not in stored)
    if not unknown:
        return _Fragment(body, frozenset(tzids), {t: stored[t] for t in tzids if not _is_iana(t)})
    if not final:
        # A TZID neither the tz database nor the object defines would make
        # the feed invalid (RFC 5545 3.2.19); such values become UTC.
        try:
            converted = _zones_to_utc(data.decode("utf-8"), unknown, ZoneInfo(obj.booking.timezone))
        except Exception as exc:  # icalendar rejects some input with assert
            log.warning("cannot convert times of %s to UTC", obj.uid, exc_info=exc)
        else:
            return _build_fragment(resource, obj, view, converted, final=True)
    # Last resort: an event that cannot be placed in time is left out rather
    # than make the whole feed unreadable.
    if view == "full":
        body, tzids = _full_body(events, drop=unknown)
    else:
        body, tzids = _busy_body(resource, obj.booking, events, drop=unknown)
    return _Fragment(body, frozenset(tzids), {t: stored[t] for t in tzids if not _is_iana(t)})


def _full_body(
    events: Iterable[bytes], drop: frozenset[str] = frozenset()
) -> tuple[bytes, set[str]]:
    """The VEVENTs as stored (overrides, VALARMs and X- properties included),
    without those that use a TZID in ``drop``."""
    kept: list[bytes] = []
    tzids: set[str] = set()
    for block in events:
        unfolded = _unfold(block)
        lowered = unfolded.lower()
        # RFC 5546 3.2.1: a published VEVENT has a DTSTART; without one there
        # is nothing to show.
        if b"\ndtstart:" not in lowered and b"\ndtstart;" not in lowered:
            continue
        used = {t for t in map(_tzid_of, _lines_with(unfolded, b";tzid=")) if t is not None}
        if used & drop:
            continue
        kept.append(block)
        tzids |= used
    return b"".join(kept), tzids


def _busy_body(
    resource: Resource,
    booking: Booking,
    events: Iterable[bytes],
    drop: frozenset[str] = frozenset(),
) -> tuple[bytes, set[str]]:
    """Each VEVENT reduced to its time, as "Busy" under an opaque UID; those
    that use a TZID in ``drop`` are left out."""
    parsed = [
        e
        for e in (_busy_event(_unfold(block)) for block in events)
        if e.has_start and not drop.intersection(filter(None, map(_tzid_of, e.lines)))
    ]
    masters = [e for e in parsed if e.recurrence_id is None and not e.hidden]
    for override in parsed:
        if override.recurrence_id is None or not override.hidden:
            continue
        exdate = _exdate_for(override.recurrence_id)
        for master in masters:
            if exdate is not None and master.uid == override.uid:
                master.lines.append(exdate)
    # RFC 5545 3.8.7.2: DTSTAMP is a UTC DATE-TIME (3.3.5, form 2).
    stamp = "DTSTAMP:" + _utc(booking.updated).strftime("%Y%m%dT%H%M%SZ")
    out: list[str] = []
    tzids: set[str] = set()
    for event in parsed:
        if event.hidden:
            continue
        out.append("BEGIN:VEVENT\r\n")
        out.append(f"UID:{_opaque_uid(resource.id, event.uid or booking.uid)}\r\n")
        out.append(stamp + "\r\n")
        for line in event.lines:
            out.append(_fold(line) + "\r\n")
            tzid = _tzid_of(line)
            if tzid is not None:
                tzids.add(tzid)
        out.append("SUMMARY:Busy\r\nTRANSP:OPAQUE\r\nCLASS:PRIVATE\r\nEND:VEVENT\r\n")
    return "".join(out).encode("utf-8"), tzids


def _feed_head(resource: Resource) -> bytes:
    calendar = Calendar()
    calendar.add("version", "2.0")
    calendar.add("prodid", PRODID)
    calendar.add("calscale", "GREGORIAN")
    # RFC 5546 3.2.1: a published calendar that nobody replies to.
    calendar.add("method", "PUBLISH")
    # RFC 7986 5.1 NAME; X-WR-CALNAME is what most clients read. Both TEXT.
    calendar.add("name", vText(resource.name))
    calendar.add("x-wr-calname", vText(resource.name))
    calendar.add("x-wr-timezone", vText(resource.timezone))
    calendar.add("refresh-interval", _REFRESH, parameters={"VALUE": "DURATION"})
    calendar.add("x-published-ttl", vDuration(_REFRESH))
    head = bytes(calendar.to_ical())
    end = b"END:VCALENDAR\r\n"
    assert head.endswith(end)
    return head[: -len(end)]


def _feed_years(objects: Iterable[CalendarObject]) -> tuple[int, int] | None:
    """The years the feed's VTIMEZONEs must cover."""
    first: int | None = None
    last: int | None = None
    for obj in objects:
        start, end = obj.span.start, obj.span.end
        # An unbounded recurrence ends at FAR_FUTURE; cover a long stretch.
        last_year = start.year + 30 if end >= FAR_FUTURE else end.year
        first = start.year if first is None else min(first, start.year)
        last = last_year if last is None else max(last, last_year)
    if first is None or last is None:
        return None
    # A year on either side: local times near New Year, and RECURRENCE-ID or
    # EXDATE values just outside the indexed span.
    return max(first - 1, 1970), min(max(last + 2, first + 1), 2200)


def _feed_timezones(
    objects: Sequence[CalendarObject], fragments: Sequence[_Fragment]
) -> Iterator[bytes]:
    """Exactly one VTIMEZONE per TZID the feed uses (RFC 5545 3.6.5).

    tz-database zones are generated for the feed's whole range: objects carry
    VTIMEZONEs cut to their own dates, and the first object's would misplace
    the others. Other TZIDs (Outlook's "W. Europe Standard Time") can only be
    described by the object that used them.
    """
    seen: set[str] = set()
    iana: set[str] = set()
    custom: dict[str, bytes] = {}
    for fragment in fragments:
        for tzid in fragment.tzids:
            if tzid in seen:
                continue
            seen.add(tzid)
            if _is_iana(tzid):
                iana.add(tzid)
            else:
                custom[tzid] = fragment.vtimezones[tzid]
    years = _feed_years(objects)
    if iana and years is not None:
        for tzid in sorted(iana):
            yield _vtimezone_bytes(tzid, *years)
    for tzid in sorted(custom):
        yield custom[tzid]


_RENDERER = FeedRenderer()


def render_feed(resource: Resource, objects: Sequence[CalendarObject], view: FeedView) -> bytes:
    """The ICS feed of ``resource``: one VCALENDAR, UTF-8, CRLF, folded.

    ``full`` has every VEVENT as stored; ``busy`` only when the resource is
    busy, under opaque UIDs. Cancelled bookings are left out of both.
    """
    return _RENDERER.render(resource, objects, view)
