"""``ICalQueryEngine``: CalDAV queries on stored objects (the
``CalendarQuerying`` port): filters (RFC 4791 9.7), the calendar-data a query
returns (9.6), free-busy (7.10) and the calendar-timezone property (5.2.2).

Parsing costs about a millisecond per object, so:

* the filter nearly every client sends (VCALENDAR > VEVENT > time-range) is
  answered for a non-recurring object from its index span, without parsing;
  ``expand.event_span`` computes that span the same way as the store's index;
* filters that only ask which components an object holds ("all events",
  "all tasks"), or that need a component the object lacks, are answered from
  its BEGIN lines;
* a text search whose text occurs nowhere in an object's text is answered
  without parsing it (``filters.text_rules_out`` says when that is sound);
* free-busy takes non-recurring objects from their span as well;
* parsed objects are kept in an LRU by ETag (and zone), so a repeated query,
  or the calendar-data of objects a query just matched, does not parse again;
* so are the answers of parsed objects to each filter: every client of a
  calendar polls the same weeks, and a recurring object is expanded once
  for a filter, not once per query.
* a query takes ``matcher(filter)`` once and calls it per object: what
  depends on the filter alone (its plain window, its hash as a cache key) is
  worked out once. It reads its objects as ``QueriedObject`` (text, ETag,
  span, zone, recurring flag), not whole bookings.

Expanding one object may take up to ``limits.expansion_seconds``; past the
``limits`` its answer is ``ExpansionLimit`` (the caller reports it for that
object), never a shortened one. Callers run these methods off the event
loop; each object is expanded by one thread at a time.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

from icalendar import Calendar, Component, vBroken, vDDDTypes

from gateway.core.errors import ExpansionLimit, RecurrenceLimit
from gateway.core.model import BookingStatus, CalendarObject, TimeSpan
from gateway.core.query import CompFilter, DataRequest, QueriedObject, TimeRange
from gateway.core.schedule_freebusy import FreeBusyRequest
from gateway.ical.cache import _LRU
from gateway.ical.common import PRODID, _parse_calendar, _reason
from gateway.ical.expand import (
    RECURRING,
    Instance,
    Loaded,
    aware,
    event_span,
    instance_start,
    overlaps,
)
from gateway.ical.filters import (
    answer_from_names,
    comp_matches,
    component_names,
    text_rules_out,
)
from gateway.ical.freebusy import Busy, Reply
from gateway.ical.freebusy import render as render_freebusy
from gateway.ical.limits import RecurrenceLimits
from gateway.ical.schedule_freebusy import parse_freebusy_request
from gateway.ical.timezones import _vtimezone_bytes

log = logging.getLogger(__name__)

# RFC 5545 3.8.5: what defines a recurrence set; an expanded instance has none.
_RECURRENCE_PROPS = frozenset({"RRULE", "RDATE", "EXDATE", "EXRULE"})
# X-WR-TIMEZONE would make some readers move the UTC times of an expanded
# answer (RFC 4791 9.6.5 wants no reference to zones left).
_ZONE_HINTS = frozenset({"X-WR-TIMEZONE"})
# The years the calendar-timezone VTIMEZONE lists transitions for: from 1970
# (older local times are rare in bookings) to this many years ahead.
_ZONE_YEARS_AHEAD = 30


def _utc_value(value: Any, zone: ZoneInfo) -> Any:
    """A DATE-TIME value in UTC ("date with UTC time", RFC 5545 3.3.5 form 2);
    floating values are read in ``zone``. DATE values have no zone to refer
    to and stay as they are."""
    if isinstance(value, list):
        return [_utc_value(v, zone) for v in value]
    if isinstance(value, vBroken):
        # Kept as sent (a year-0000 DTSTAMP, RFC 5545 3.3.5): no time to convert.
        return value
    moment = getattr(value, "dt", None)
    if not isinstance(moment, datetime):
        return value
    return vDDDTypes(aware(moment, zone))


def _zone_name(obj: CalendarObject | QueriedObject) -> str:
    """The zone floating and all-day times of the object count in."""
    return obj.timezone if isinstance(obj, QueriedObject) else obj.booking.timezone


def _recurring(obj: CalendarObject | QueriedObject) -> bool:
    return obj.recurring if isinstance(obj, QueriedObject) else obj.booking.recurring


class _FilterKey:
    """A filter as part of a cache key, hashed once: a filter is a tree of
    tuples, hashed again at every lookup otherwise."""

    __slots__ = ("_hash", "query")

    def __init__(self, query: CompFilter) -> None:
        self.query = query
        self._hash = hash(query)

    def __hash__(self) -> int:
        return self._hash

    def __eq__(self, other: object) -> bool:
        return isinstance(other, _FilterKey) and (
            other is self or (other._hash == self._hash and other.query == self.query)
        )


def _status_is(component: Component, name: str, value: str) -> bool:
    return str(component.get(name, "")).strip().upper() == value


class ICalQueryEngine:
    """``gateway.core.ports.CalendarQuerying`` with icalendar and recurring_ical_events.

    ``cache_size`` is how many parsed objects are kept (by ETag); ``clock``
    gives DTSTAMP of free-busy answers and the years of calendar-timezone;
    ``limits`` (the ``limits`` settings) bound each object's expansion.
    """

    def __init__(
        self,
        *,
        cache_size: int = 512,
        clock: Callable[[], datetime] | None = None,
        limits: RecurrenceLimits | None = None,
    ) -> None:
        self._loaded: _LRU[tuple[str, str], Loaded] = _LRU(cache_size)
        # An object's answer depends on its text (ETag), zone and the filter
        # alone; an answer past the limits (an error) is not kept.
        self._answers: _LRU[tuple[str, str, _FilterKey], bool] = _LRU(8 * cache_size)
        self._clock = clock or (lambda: datetime.now(UTC))
        self._limits = limits or RecurrenceLimits()

    # -- parsing -----------------------------------------------------------------

    def _load(self, obj: CalendarObject | QueriedObject) -> Loaded:
        zone = _zone_name(obj)
        key = (obj.etag, zone)
        loaded = self._loaded.get(key)
        if loaded is None:
            try:
                calendar = _parse_calendar(obj.ics)
            except RecurrenceLimit as exc:
                # Stored before the limits: a VTIMEZONE icalendar cannot read.
                raise ExpansionLimit(obj.uid, exc.message) from exc
            loaded = Loaded(calendar, ZoneInfo(zone), self._limits)
            self._loaded.put(key, loaded)
        return loaded

    # -- RFC 4791 9.7 ------------------------------------------------------------

    def matches(self, obj: CalendarObject | QueriedObject, query: CompFilter) -> bool:
        return self.matcher(query)(obj)

    def matcher(self, query: CompFilter) -> Callable[[CalendarObject | QueriedObject], bool]:
        key = _FilterKey(query)
        known = self._known_matcher(query, key)

        def match(obj: CalendarObject | QueriedObject) -> bool:
            answer = known(obj)
            return self._parsed_matches(obj, query, key) if answer is None else answer

        return match

    def known_matcher(
        self, query: CompFilter
    ) -> Callable[[CalendarObject | QueriedObject], bool | None]:
        return self._known_matcher(query, _FilterKey(query))

    def _known_matcher(
        self, query: CompFilter, key: _FilterKey
    ) -> Callable[[CalendarObject | QueriedObject], bool | None]:
        # What depends on the filter alone is worked out here, once a query.
        window = query.plain_time_range()
        answers = self._answers

        def known(obj: CalendarObject | QueriedObject) -> bool | None:
            if window is not None and not _recurring(obj):
                # The index span of a single event is exactly its RFC 4791 9.9
                # span (see ``expand.event_span``), so no parsing is needed.
                return obj.span.meets(window)
            # An answer kept for this text (ETag), zone and filter.
            return answers.get((obj.etag, _zone_name(obj), key))

        return known

    def _parsed_matches(
        self, obj: CalendarObject | QueriedObject, query: CompFilter, filter_key: _FilterKey
    ) -> bool:
        # ``matcher`` found no answer kept for this text, zone and filter
        # (``_known_matcher``).
        key = (obj.etag, _zone_name(obj), filter_key)
        decided = answer_from_names(query, component_names(obj.ics))
        if decided is not None:
            return decided
        if text_rules_out(query, obj.ics):
            return False
        try:
            loaded = self._load(obj)
        except ExpansionLimit:
            raise
        except Exception as exc:
            # Stored objects were validated; one that still cannot be read
            # must not fail the whole report.
            log.warning("cannot read stored object %s: %s", obj.uid, _reason(exc))
            return False
        with loaded.session(obj.uid):
            answer = comp_matches(loaded, query)
        self._answers.put(key, answer)
        return answer

    # -- RFC 4791 9.6 ------------------------------------------------------------

    def calendar_data(self, obj: CalendarObject | QueriedObject, request: DataRequest) -> str:
        try:
            if request.expand is not None:
                return self._expanded(obj, request.expand)
            if request.limit_recurrence_set is not None and _recurring(obj):
                return self._limited(obj, request.limit_recurrence_set)
        except ExpansionLimit:
            raise
        except Exception as exc:
            # As with ``matches``: one unreadable stored object is returned as
            # stored rather than failing the whole report.
            log.warning("cannot shape the data of stored object %s: %s", obj.uid, _reason(exc))
        return obj.ics

    def _shell(self, original: Calendar, skip: frozenset[str] = frozenset()) -> Calendar:
        """A VCALENDAR with the original's calendar properties."""
        calendar = Calendar()
        for name, value in original.items():
            if name not in skip:
                calendar[name] = value
        return calendar

    def _expanded(self, obj: CalendarObject | QueriedObject, time_range: TimeRange) -> str:
        """RFC 4791 9.6.5: one component per instance overlapping the range
        (by the time-range rules of 9.9), no recurrence properties, no
        VTIMEZONE, DATE-TIME values in UTC.

        Every instance of a recurrence set carries its RECURRENCE-ID (9.6.5
        only demands it from the second on; having it on the first too tells
        clients which instance it is). A single component is no recurrence
        instance and gets none. An object with no instance in the range comes
        back as a VCALENDAR without components: 9.6.5 allows only instances
        that intersect the range, and inventing one would misreport the event.
        """
        loaded = self._load(obj)
        window = time_range.as_span()
        calendar = self._shell(loaded.calendar, _ZONE_HINTS)
        found: list[Instance] = []
        with loaded.session(obj.uid):
            for name in RECURRING:
                found.extend(
                    instance
                    for instance in loaded.instances(name, window)
                    if overlaps(instance, loaded.zone, window)
                )
        found.sort(key=lambda instance: instance_start(instance, loaded.zone))
        for instance in found:
            calendar.add_component(self._in_utc(instance, loaded.zone))
        return bytes(calendar.to_ical()).decode("utf-8")

    def _in_utc(self, instance: Instance, zone: ZoneInfo) -> Component:
        source = instance.component
        component = type(source)()
        for name, value in source.items():
            if name in _RECURRENCE_PROPS:
                continue
            if name == "RECURRENCE-ID" and not instance.recurring:
                continue
            component[name] = _utc_value(value, zone)
        # Shared with the stored component (VALARM): serialised, never changed.
        component.subcomponents = list(source.subcomponents)
        return component

    def _limited(self, obj: CalendarObject | QueriedObject, time_range: TimeRange) -> str:
        """RFC 4791 9.6.6: the master components as stored, and of the
        overridden instances only those that overlap the range.

        An override is kept as well when the instance it replaces would have
        overlapped the range (an instance moved out of the range), or when it
        is RANGE=THISANDFUTURE before the range's end: without it, a client
        expanding what it got would show an instance that is not there."""
        loaded = self._load(obj)
        window = time_range.as_span()
        calendar = self._shell(loaded.calendar)
        with loaded.session(obj.uid):
            for component in loaded.calendar.subcomponents:
                is_override = component.name in RECURRING and "RECURRENCE-ID" in component
                if is_override and not self._override_relevant(loaded, component, window):
                    continue
                calendar.add_component(component)
        return bytes(calendar.to_ical()).decode("utf-8")

    def _override_relevant(self, loaded: Loaded, override: Component, window: TimeSpan) -> bool:
        if overlaps(Instance(override, override, recurring=True), loaded.zone, window):
            return True
        prop: Any = override["RECURRENCE-ID"]
        replaced = aware(prop.dt, loaded.zone)
        if str(prop.params.get("RANGE", "")).upper() == "THISANDFUTURE":
            return replaced < window.end
        master = loaded.sets(str(override.name)).get(str(override.get("UID", "")))
        length = None
        if master is not None and master.master is not None and override.name == "VEVENT":
            span = event_span(master.master, loaded.zone)
            length = span.end - span.start if span is not None else None
        slot = TimeSpan(replaced, replaced + length) if length else TimeSpan(replaced, replaced)
        return slot.meets(window)

    # -- RFC 4791 7.10 -----------------------------------------------------------

    def freebusy(self, objects: Sequence[CalendarObject], window: TimeSpan) -> str:
        window = window.in_utc()
        return render_freebusy(self._busy(objects, window), window, self._clock())

    def freebusy_request(self, text: str) -> FreeBusyRequest:
        return parse_freebusy_request(text)

    def freebusy_reply(
        self, objects: Sequence[CalendarObject], request: FreeBusyRequest, attendee: str
    ) -> str:
        window = request.window.in_utc()
        reply = Reply(request.uid, request.organizer, attendee)
        return render_freebusy(self._busy(objects, window), window, self._clock(), reply)

    def _busy(self, objects: Sequence[CalendarObject], window: TimeSpan) -> list[Busy]:
        busy: list[Busy] = []
        for obj in objects:
            booking = obj.booking
            if not booking.blocks_time:
                continue  # RFC 4791 7.10: cancelled and transparent events are free
            tentative = booking.status is BookingStatus.TENTATIVE
            if not booking.recurring:
                busy.append(Busy(obj.span, tentative))
                continue
            busy.extend(self._recurring_busy(obj, window))
        return busy

    def _recurring_busy(self, obj: CalendarObject, window: TimeSpan) -> list[Busy]:
        try:
            loaded = self._load(obj)
        except ExpansionLimit:
            raise
        except Exception as exc:
            log.warning("cannot read stored object %s: %s", obj.uid, _reason(exc))
            return [Busy(obj.span, obj.booking.status is BookingStatus.TENTATIVE)]
        with loaded.session(obj.uid):
            return self._busy_instances(loaded, window)

    def _busy_instances(self, loaded: Loaded, window: TimeSpan) -> list[Busy]:
        found: list[Busy] = []
        for instance in loaded.instances("VEVENT", window):
            component = instance.component
            # An overridden instance may be cancelled or transparent on its own
            # (RFC 5545 3.8.1.11, 3.8.2.7) or only tentative.
            if _status_is(component, "STATUS", "CANCELLED"):
                continue
            if _status_is(component, "TRANSP", "TRANSPARENT"):
                continue
            span = event_span(component, loaded.zone)
            if span is not None and span.meets(window):
                found.append(Busy(span, _status_is(component, "STATUS", "TENTATIVE")))
        return found

    # -- RFC 4791 5.2.2 ----------------------------------------------------------

    def timezone_calendar(self, timezone: str) -> str:
        """A VCALENDAR with the zone's VTIMEZONE; raises ``ValueError`` for a
        name that is no IANA zone."""
        try:
            ZoneInfo(timezone)
        except Exception as exc:
            raise ValueError(f"{timezone!r} is not a time zone") from exc
        last = min(self._clock().year + _ZONE_YEARS_AHEAD, 2200)
        vtimezone = _vtimezone_bytes(timezone, 1970, last)
        head = (
            f"BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:{PRODID}\r\nCALSCALE:GREGORIAN\r\n"
        ).encode()
        return (head + vtimezone + b"END:VCALENDAR\r\n").decode("utf-8")
