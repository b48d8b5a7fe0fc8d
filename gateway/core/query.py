"""Calendar queries: the filter tree of a CalDAV calendar-query (RFC 4791 9.7)
and what a client asks to get back of each matched object (RFC 4791 9.6).

Plain values, no parsing: ``caldav_backend`` builds them from XML and
``gateway.ical`` evaluates them against stored iCalendar text, through the
``CalendarQuerying`` port.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import NamedTuple

from .model import FAR_FUTURE, CalendarObject, TimeSpan

# The earliest time a time-range can name; an open start means "since ever".
BEGINNING_OF_TIME = datetime(1, 1, 2, tzinfo=FAR_FUTURE.tzinfo)


class Collation(StrEnum):
    """Text comparison rules (RFC 4790) a text-match may name (RFC 4791 7.5)."""

    ASCII_CASEMAP = "i;ascii-casemap"  # the default (RFC 4791 9.7.5)
    OCTET = "i;octet"
    UNICODE_CASEMAP = "i;unicode-casemap"  # RFC 5051, sent by Apple clients


class MatchType(StrEnum):
    """RFC 4791 only knows substring ("contains"); RFC 6638-era clients and
    CardDAV (RFC 6352 10.5.4) add the others, which cost nothing to support."""

    CONTAINS = "contains"
    EQUALS = "equals"
    STARTS_WITH = "starts-with"
    ENDS_WITH = "ends-with"


@dataclass(frozen=True, slots=True)
class TimeRange:
    """RFC 4791 9.9: start and/or end, both UTC; a missing bound is open."""

    start: datetime | None = None
    end: datetime | None = None

    def __post_init__(self) -> None:
        for value in (self.start, self.end):
            if value is not None and value.utcoffset() is None:
                raise ValueError("time-range bounds must be timezone-aware")
        if self.start is not None and self.end is not None and self.end <= self.start:
            raise ValueError("time-range end must be after its start")

    def as_span(self) -> TimeSpan:
        """The range as a closed-open span, open ends widened to the extremes."""
        return TimeSpan(self.start or BEGINNING_OF_TIME, self.end or FAR_FUTURE)


@dataclass(frozen=True, slots=True)
class TextMatch:
    """RFC 4791 9.7.5: substring match (by default), optionally negated."""

    text: str
    collation: Collation = Collation.ASCII_CASEMAP
    negate: bool = False
    match_type: MatchType = MatchType.CONTAINS


@dataclass(frozen=True, slots=True)
class ParamFilter:
    """RFC 4791 9.7.3: a property parameter is absent, present, or matches."""

    name: str
    is_not_defined: bool = False
    text_match: TextMatch | None = None


@dataclass(frozen=True, slots=True)
class PropFilter:
    """RFC 4791 9.7.2: a property is absent, present, in a time range, or
    matches text; all parameter filters must hold as well."""

    name: str
    is_not_defined: bool = False
    time_range: TimeRange | None = None
    text_match: TextMatch | None = None
    param_filters: tuple[ParamFilter, ...] = ()


@dataclass(frozen=True, slots=True)
class CompFilter:
    """RFC 4791 9.7.1: a component is absent, or present and (optionally)
    overlapping a time range, with every nested filter holding (they AND)."""

    name: str
    is_not_defined: bool = False
    time_range: TimeRange | None = None
    prop_filters: tuple[PropFilter, ...] = ()
    comp_filters: tuple[CompFilter, ...] = ()

    def index_window(self) -> TimeSpan | None:
        """The time window the store's index may narrow candidates to, or None
        when the filter does not bound time (every object is a candidate).

        Only a time-range on a VEVENT directly inside the VCALENDAR filter
        bounds a VEVENT-only collection: the index holds each object's first
        start to last end, so objects outside the window cannot match."""
        if self.name.upper() != "VCALENDAR" or self.is_not_defined:
            return None
        windows = [
            child.time_range.as_span()
            for child in self.comp_filters
            if child.name.upper() == "VEVENT"
            and not child.is_not_defined
            and child.time_range is not None
        ]
        if not windows:
            return None
        # Nested filters AND together, so the narrowest window bounds them all.
        start = max(w.start for w in windows)
        end = min(w.end for w in windows)
        return TimeSpan(start, end) if start < end else TimeSpan(start, start)

    def plain_time_range(self) -> TimeSpan | None:
        """The window of a plain time-range filter (``is_plain_time_range``),
        else None: what a query computes once for all its objects."""
        if not self.is_plain_time_range():
            return None
        time_range = self.comp_filters[0].time_range
        assert time_range is not None
        return time_range.as_span()

    def is_plain_time_range(self) -> bool:
        """True for the filter nearly every client sends (VCALENDAR > VEVENT >
        time-range and nothing else): for a non-recurring object the index
        answer is then exact and the object need not be parsed."""
        if self.name.upper() != "VCALENDAR" or self.is_not_defined or self.prop_filters:
            return False
        if self.time_range is not None or len(self.comp_filters) != 1:
            return False
        event = self.comp_filters[0]
        return (
            event.name.upper() == "VEVENT"
            and not event.is_not_defined
            and event.time_range is not None
            and not event.prop_filters
            and not event.comp_filters
        )


@dataclass(frozen=True, slots=True)
class DataRequest:
    """RFC 4791 9.6: how each object's calendar-data is returned. With neither
    option the object comes back exactly as stored."""

    # 9.6.5: recurrences expanded into single instances overlapping the range,
    # all times in UTC, no VTIMEZONE.
    expand: TimeRange | None = None
    # 9.6.6: the master plus only the overridden instances that overlap.
    limit_recurrence_set: TimeRange | None = None


class QueriedObject(NamedTuple):
    """A stored object as a calendar-query reads it: its text and what the
    query engine, the answer and the engine's caches need, not its booking
    (a week's query decodes a couple of hundred rows; a whole ``Booking``
    each, with its attendees and times in their zone, cost more than the
    rest of the answer). A named tuple, as it is built once per row.

    ``span`` is the index span (``CalendarObject.span``), ``etag`` the one
    the store wrote beside the text, ``timezone`` the booking's zone (in
    which floating and all-day times count), ``updated`` its last change."""

    uid: str
    href: str
    ics: str
    etag: str
    schedule_tag: str
    span: TimeSpan
    recurring: bool
    timezone: str
    updated: datetime

    @classmethod
    def of(cls, obj: CalendarObject) -> QueriedObject:
        """What a query reads of a whole object."""
        booking = obj.booking
        return cls(
            obj.uid,
            obj.href,
            obj.ics,
            obj.etag,
            obj.schedule_tag,
            obj.span,
            booking.recurring,
            booking.timezone,
            booking.updated,
        )
