"""The ICS feed of a resource, full or anonymous ("busy").

Feeds are rendered from the stored text rather than from parsed components:
parsing costs about a millisecond per object with icalendar, far too slow for
a feed of 10,000 events. Each object is first brought to canonical form
(CRLF, folded to 75 octets, RFC 5545 3.1); its VEVENT and VTIMEZONE blocks are
then cut out by their BEGIN/END lines and the per-object result is cached by
ETag. icalendar is still what unfolds, folds and parses content lines.

Stored text may hold characters no input accepts any more (from before the
rule, or put in the database by hand): NUL, ESC, VT and the other C0 controls
but TAB, CR and LF, lone surrogates, U+FFFE and U+FFFF. RFC 5545 3.3.11
(TSAFE-CHAR) and 3.1 keep CONTROL out of TEXT values and parameters, and
calendar apps choke on them, so the feed shows each as U+FFFD, by the one
rule in ``gateway.core.text`` (``xml_safe``: the same characters). That
happens once per cached fragment, before the text is folded; clean text
costs one regular-expression search on a cache miss. Only the feed is
mended: the stored object and a CalDAV GET of it stay as they are.
"""

from __future__ import annotations

import hashlib
import logging
import sys
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import lru_cache
from types import MappingProxyType
from typing import Any, Literal
from zoneinfo import ZoneInfo

from icalendar import Calendar, vDuration, vText

from gateway.core.model import (
    FAR_FUTURE,
    Booking,
    BookingStatus,
    CalendarObject,
    Resource,
)
from gateway.core.text import xml_safe
from gateway.ical.cache import _LRU
from gateway.ical.common import PRODID, _as_list, _parse_calendar, _reason
from gateway.ical.lines import (
    _blocks,
    _canonical,
    _fold,
    _lines_with,
    _name,
    _split,
    _text_value,
    _token_value,
    _tzid_of,
    _unfold,
)
from gateway.ical.timezones import _aware, _is_iana, _utc, _vtimezone_bytes

log = logging.getLogger(__name__)

FeedView = Literal["full", "busy"]

# Feeds are re-read by subscribers every few minutes anyway; RFC 7986 5.7 lets
# us say how often (X-PUBLISHED-TTL is the older Outlook spelling).
_REFRESH = timedelta(minutes=15)

# What the busy view keeps of a VEVENT: its time and recurrence (RFC 5545
# 3.8.2, 3.8.5, 3.8.4.4; EXRULE from RFC 2445 still limits the set).
_BUSY_KEEP = frozenset(
    {"DTSTART", "DTEND", "DURATION", "RRULE", "RDATE", "EXDATE", "EXRULE", "RECURRENCE-ID"}
)
# The properties that may carry TZID (RFC 5545 3.2.19) and which we can rewrite.
_ZONED = frozenset({"DTSTART", "DTEND", "DUE", "RECURRENCE-ID", "EXDATE", "RDATE"})


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

    def __init__(self, *, cache_size: int = 25_000, cache_bytes: int = 16 * 1024 * 1024) -> None:
        # A fragment is as big as its object's events: the count alone would
        # let 25,000 events with long descriptions take hundreds of MiB, so
        # the text kept is bounded too (for events of a few hundred bytes,
        # most, the count binds first).
        self._fragments: _LRU[tuple[object, ...], _Fragment] = _LRU(
            cache_size, budget=cache_bytes, weight=_fragment_bytes
        )

    def render(
        self, resource: Resource, objects: Sequence[CalendarObject], view: FeedView
    ) -> bytes:
        builder = self.builder(resource, view)
        builder.add(objects)
        return builder.finish()

    def builder(self, resource: Resource, view: FeedView) -> FeedBuilder:
        """A feed to be given its objects a page at a time."""
        if view not in ("full", "busy"):
            raise ValueError(f"unknown feed view {view!r}")
        return FeedBuilder(self, resource, view)

    def fragment(self, resource: Resource, obj: CalendarObject, view: FeedView) -> _Fragment:
        """What ``obj`` adds to a feed, from the cache when it has not changed."""
        booking = obj.booking
        # Everything the fragment depends on besides the text (which the ETag
        # stands for): busy UIDs hash the resource id, DTSTAMP is the update
        # time, times without a zone are read in the booking's zone.
        key = (obj.etag, view, resource.id, booking.timezone, booking.updated)
        fragment = self._fragments.get(key)
        if fragment is None:
            # Characters calendar apps cannot carry become U+FFFD here, once
            # per fragment, before folding (the replacement is 3 octets).
            fragment = _build_fragment(resource, obj, view, xml_safe(obj.ics))
            # The kept key shares one copy of the zone name: each row read
            # brings its own, 10,000 copies for a feed of 10,000 objects.
            kept = (obj.etag, view, resource.id, sys.intern(booking.timezone), booking.updated)
            self._fragments.put(kept, fragment)
        return fragment


def _fragment_bytes(fragment: _Fragment) -> int:
    return len(fragment.body) + sum(map(len, fragment.vtimezones.values()))


class FeedBuilder:
    """One feed put together from pages of objects. Between pages it keeps
    only the fragments (the cache holds them anyway) and the span of years,
    so a big calendar never has all its objects in memory at once."""

    def __init__(self, renderer: FeedRenderer, resource: Resource, view: FeedView) -> None:
        self._renderer = renderer
        self._resource = resource
        self._view: FeedView = view
        self._fragments: list[_Fragment] = []
        self._years = _Years()

    @property
    def count(self) -> int:
        """Objects in the feed so far (cancelled ones are left out)."""
        return len(self._fragments)

    def add(self, objects: Iterable[CalendarObject]) -> None:
        for obj in objects:
            if obj.booking.status is BookingStatus.CANCELLED:
                continue
            self._fragments.append(self._renderer.fragment(self._resource, obj, self._view))
            self._years.add(obj)

    def parts(self) -> Iterator[bytes]:
        """The feed's bytes in order, for a caller that passes them on (or
        compresses them) without the whole body in memory at once."""
        yield _feed_head(self._resource)
        yield from _feed_timezones(self._fragments, self._years.range())
        for fragment in self._fragments:
            yield fragment.body
        yield b"END:VCALENDAR\r\n"

    def finish(self) -> bytes:
        return b"".join(self.parts())


_NO_ZONES: Mapping[str, bytes] = MappingProxyType({})


@lru_cache(maxsize=1024)
def _zone_set(tzids: tuple[str, ...]) -> frozenset[str]:
    """One shared set per combination of zones (most objects use none or the
    same one): the cache holds up to 25,000 fragments."""
    return frozenset(tzids)


def _fragment_of(body: bytes, tzids: set[str], stored: Mapping[str, bytes]) -> _Fragment:
    own = {t: stored[t] for t in tzids if not _is_iana(t)}
    return _Fragment(body, _zone_set(tuple(sorted(tzids))), own or _NO_ZONES)


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
        return _fragment_of(body, tzids, stored)
    if not final:
        # A TZID neither the tz database nor the object defines would make
        # the feed invalid (RFC 5545 3.2.19); such values become UTC.
        try:
            converted = _zones_to_utc(data.decode("utf-8"), unknown, ZoneInfo(obj.booking.timezone))
        except Exception as exc:  # icalendar rejects some input with assert
            log.warning("cannot convert times of %s to UTC: %s", obj.uid, _reason(exc))
        else:
            return _build_fragment(resource, obj, view, converted, final=True)
    # Last resort: an event that cannot be placed in time is left out rather
    # than make the whole feed unreadable.
    if view == "full":
        body, tzids = _full_body(events, drop=unknown)
    else:
        body, tzids = _busy_body(resource, obj.booking, events, drop=unknown)
    return _fragment_of(body, tzids, stored)


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


@dataclass(slots=True)
class _Years:
    """The years the feed's VTIMEZONEs must cover, object by object."""

    first: int | None = None
    last: int | None = None

    def add(self, obj: CalendarObject) -> None:
        start, end = obj.span.start, obj.span.end
        # An unbounded recurrence ends at FAR_FUTURE; cover a long stretch.
        last_year = start.year + 30 if end >= FAR_FUTURE else end.year
        self.first = start.year if self.first is None else min(self.first, start.year)
        self.last = last_year if self.last is None else max(self.last, last_year)

    def range(self) -> tuple[int, int] | None:
        if self.first is None or self.last is None:
            return None
        # A year on either side: local times near New Year, and RECURRENCE-ID
        # or EXDATE values just outside the indexed span.
        first, last = self.first, self.last
        return max(first - 1, 1970), min(max(last + 2, first + 1), 2200)


def _feed_timezones(
    fragments: Sequence[_Fragment], years: tuple[int, int] | None
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


def feed_builder(resource: Resource, view: FeedView) -> FeedBuilder:
    """``render_feed`` for objects that come a page at a time."""
    return _RENDERER.builder(resource, view)
