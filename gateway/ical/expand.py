"""Recurrence instances of a stored calendar object, and when a component
overlaps a time range (RFC 4791 9.9).

A ``Loaded`` object is a parsed calendar plus the zone its floating and
all-day values are read in (the booking's, RFC 4791 9.9 "calendar-timezone").
It groups the calendar's components into recurrence sets (one UID: a master
and its overridden instances, RFC 5545 3.8.4.4) and hands out their instances
near a time window. Single components are their own instance; recurrence sets
are expanded with recurring_ical_events (EXDATE, RDATE and overrides are its
business), lazily and window by window, so that an unbounded RRULE is never
expanded beyond the range a caller looks at.

Every expansion runs in a ``session`` with a budget (``gateway.ical.walk``):
one request's expansion of one object at a time, its rules walked from near
the window, and past ``limits`` (steps, seconds, instances) an
``ExpansionLimit`` instead of a silently shortened answer. Callers run
sessions off the event loop; the budget is what ends them.
"""

from __future__ import annotations

import logging
import threading
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import recurring_ical_events
from icalendar import Calendar, Component

from gateway.core.errors import ExpansionLimit, InvalidCalendarData
from gateway.core.model import FAR_FUTURE, TimeSpan
from gateway.ical.common import _as_list, _reason
from gateway.ical.limits import SUB_DAILY, RecurrenceLimits
from gateway.ical.parse import _times
from gateway.ical.timezones import _aware
from gateway.ical.walk import Budget, Meter, Session, bound_rules

log = logging.getLogger(__name__)

# The components that recur (RFC 5545 3.8.5) and that RFC 4791 9.9 gives
# time-range rules for (VFREEBUSY and VALARM have their own, see below).
RECURRING = ("VEVENT", "VTODO", "VJOURNAL")

# recurring_ical_events compares floating and DATE values with a window in its
# own way; asking it for a little more and filtering ourselves keeps the
# answer exact in any zone (14 hours is the largest UTC offset in use). Sets
# whose times are all fixed instants (UTC or a TZID) need no margin, which
# matters for frequent rules: two days of a SECONDLY rule are 172,800 steps.
_MARGIN = timedelta(days=2)
# The first window asked of recurring_ical_events; it doubles while no
# instance turns up, so a long gap (or the end of a series) costs few calls.
# Rules more frequent than daily start with this many of their periods, so
# that a caller who needs one instance does not pay for 64 days of them.
_FIRST_STEP = timedelta(days=64)
_FIRST_PERIODS = 256
# A REPEAT count beyond this is a typo or an attack, not an alarm.
_MAX_REPEAT = 1000

_EARLIEST = datetime.min.replace(tzinfo=UTC)
_LATEST = datetime.max.replace(tzinfo=UTC)


def _shift(value: datetime, delta: timedelta) -> datetime:
    """``value + delta``, stopped at the ends of the datetime range."""
    try:
        return value + delta
    except OverflowError:
        return _LATEST if delta > timedelta(0) else _EARLIEST


def aware(value: date | datetime, zone: ZoneInfo) -> datetime:
    """A DATE or DATE-TIME as a UTC instant; floating and DATE values are read
    in ``zone`` (RFC 4791 9.9)."""
    return _aware(value, zone).astimezone(UTC)


def _dt(component: Component, name: str) -> Any:
    """The decoded value of a single-valued property, or None."""
    prop = component.get(name)
    if isinstance(prop, list):
        prop = prop[0] if prop else None
    return getattr(prop, "dt", None)


def _instant(component: Component, name: str, zone: ZoneInfo) -> datetime | None:
    value = _dt(component, name)
    return aware(value, zone) if isinstance(value, date) else None


# -- instances ---------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Instance:
    """One instance of a component.

    ``source`` is the stored component it comes from (the master or an
    override); ``component`` carries the instance's own times: the source
    itself for a single component, otherwise a copy recurring_ical_events made
    (with RECURRENCE-ID, without RRULE/RDATE/EXDATE). Neither may be changed.
    """

    source: Component
    component: Component
    recurring: bool


@dataclass(slots=True)
class _Set:
    """The components of one UID: a recurrence set, or a single component."""

    master: Component | None = None
    overrides: dict[datetime, Component] = field(default_factory=dict)

    @property
    def recurring(self) -> bool:
        master = self.master
        return bool(self.overrides) or (
            master is not None and ("RRULE" in master or "RDATE" in master)
        )

    def members(self) -> list[Component]:
        return ([self.master] if self.master is not None else []) + list(self.overrides.values())


class Loaded:
    """A parsed stored object and the zone of its floating and all-day times.

    Objects are immutable for a given ETag, so one ``Loaded`` serves every
    request on it (see the cache in ``gateway.ical.query``); nothing here
    changes the parsed components.
    """

    def __init__(
        self, calendar: Calendar, zone: ZoneInfo, limits: RecurrenceLimits | None = None
    ) -> None:
        self.calendar = calendar
        self.zone = zone
        self.limits = limits or RecurrenceLimits()
        self._sets: dict[str, dict[str, _Set]] = {}
        self._queries: dict[str, Any] = {}
        # Names whose expansion failed. dateutil's rule cache is left in a
        # state where the next walk never ends, so a failed query is not
        # asked again.
        self._broken: set[str] = set()
        self._lock = threading.RLock()
        self._meter = Meter(self.limits)

    def session(self, uid: str) -> Session:
        """``with loaded.session(uid):`` around everything one request asks
        of this object: one such session at a time (the object is shared by
        requests and threads), with a fresh ``Budget`` named after ``uid``."""
        return Session(self._lock, self._meter, Budget(self.limits, uid))

    def sets(self, name: str) -> dict[str, _Set]:
        """The top-level ``name`` components by UID."""
        found = self._sets.get(name)
        if found is None:
            found = {}
            for component in self.calendar.subcomponents:
                if component.name != name:
                    continue
                members = found.setdefault(str(component.get("UID", "")), _Set())
                recurrence_id = _instant(component, "RECURRENCE-ID", self.zone)
                if recurrence_id is not None:
                    members.overrides.setdefault(recurrence_id, component)
                elif members.master is None:
                    members.master = component
                else:  # two masters: not a valid object, keep both visible
                    found.setdefault(f"{id(component)}", _Set(master=component))
            self._sets[name] = found
        return found

    def instances(
        self, name: str, window: TimeSpan, *, at_once: bool = False
    ) -> Iterator[Instance]:
        """Instances of the ``name`` components near ``window``: every single
        component, and the instances of recurrence sets that recurring_ical_events
        finds around the window (callers test the exact overlap).

        Lazy: a caller that stops early expands no further. ``at_once`` asks
        for the whole window in one walk: for a caller that wants every
        instance of a bounded series (a rule with COUNT is walked from its
        start by every step, see ``gateway.ical.walk.near``)."""
        sets = self.sets(name)
        recurring: dict[str, _Set] = {}
        for uid, members in sets.items():
            if members.recurring:
                recurring[uid] = members
            else:
                for component in members.members():
                    yield Instance(component, component, recurring=False)
        if recurring:
            yield from self._expand(name, recurring, window, at_once)

    def _expand(
        self, name: str, sets: dict[str, _Set], window: TimeSpan, at_once: bool = False
    ) -> Iterator[Instance]:
        yielded = 0
        if name in self._broken:
            yield from self._as_written(sets)
            return
        budget = self._meter.current()
        try:
            for occurrence in self._walk(name, sets, window, at_once):
                members = sets.get(str(occurrence.get("UID", "")))
                if members is None:
                    continue
                yielded += 1
                budget.instances(yielded)
                yield Instance(self._source(members, occurrence), occurrence, recurring=True)
        except ExpansionLimit:
            raise  # the budget's answer, for the caller to report
        except Exception as exc:
            # A stored object was expanded when it was stored, so this is rare;
            # its components as written are what we know for sure.
            log.warning(
                "cannot expand the %s components of %s: %s", name, ", ".join(sets), _reason(exc)
            )
            self._broken.add(name)
            self._queries.pop(name, None)
            if yielded == 0:
                yield from self._as_written(sets)

    @staticmethod
    def _as_written(sets: dict[str, _Set]) -> Iterator[Instance]:
        for members in sets.values():
            for component in members.members():
                yield Instance(component, component, recurring=True)

    def _source(self, members: _Set, occurrence: Component) -> Component:
        """The stored component an occurrence comes from: the override with its
        RECURRENCE-ID, else the master."""
        recurrence_id = _instant(occurrence, "RECURRENCE-ID", self.zone)
        override = members.overrides.get(recurrence_id) if recurrence_id else None
        if override is not None:
            return override
        if members.master is not None:
            return members.master
        return next(iter(members.overrides.values()))

    def _query(self, name: str) -> Any:
        query = self._queries.get(name)
        if query is None:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                query = recurring_ical_events.of(self.calendar, components=[name])
            bound_rules(query, self._meter)
            self._queries[name] = query
        return query

    def _earliest(self, sets: dict[str, _Set]) -> datetime | None:
        """No instance starts before the earliest DTSTART, RDATE or DUE of the
        sets' components (RFC 5545 3.8.5.2: RDATEs may come before DTSTART)."""
        found: list[datetime] = []
        for members in sets.values():
            for component in members.members():
                for prop_name in ("DTSTART", "DUE"):
                    value = _instant(component, prop_name, self.zone)
                    if value is not None:
                        found.append(value)
                for rdate in _as_list(component.get("RDATE", [])):
                    for value in getattr(rdate, "dts", []):
                        start = value.dt[0] if isinstance(value.dt, tuple) else value.dt
                        if isinstance(start, date):
                            found.append(aware(start, self.zone))
        return min(found) if found else None

    def _fixed(self, sets: dict[str, _Set]) -> bool:
        """Whether every start of the sets is a fixed instant (UTC or with a
        TZID): then no margin is needed around a window."""
        for members in sets.values():
            for component in members.members():
                for prop_name in ("DTSTART", "DUE", "RECURRENCE-ID"):
                    value = _dt(component, prop_name)
                    if isinstance(value, date) and (
                        not isinstance(value, datetime) or value.tzinfo is None
                    ):
                        return False
                for rdate in _as_list(component.get("RDATE", [])):
                    for value in getattr(rdate, "dts", []):
                        start = value.dt[0] if isinstance(value.dt, tuple) else value.dt
                        if not isinstance(start, datetime) or start.tzinfo is None:
                            return False
        return True

    @staticmethod
    def _first_step(sets: dict[str, _Set]) -> timedelta:
        """The first window: ``_FIRST_PERIODS`` periods of the most frequent
        sub-daily rule, else ``_FIRST_STEP``."""
        step = _FIRST_STEP
        for members in sets.values():
            for component in members.members():
                for rule in _as_list(component.get("RRULE", [])):
                    try:
                        freq = str(rule.get("FREQ", ["DAILY"])[0]).upper()
                        interval = max(int(rule.get("INTERVAL", [1])[0]), 1)
                    except (ValueError, TypeError, IndexError, AttributeError):
                        freq, interval = "SECONDLY", 1
                    if freq in SUB_DAILY:
                        period = timedelta(seconds=SUB_DAILY[freq] * interval)
                        step = min(step, period * _FIRST_PERIODS)
        return step

    def _walk(
        self, name: str, sets: dict[str, _Set], window: TimeSpan, at_once: bool = False
    ) -> Iterator[Component]:
        """recurring_ical_events' occurrences around ``window``, asked for one
        step at a time, each occurrence once. The rules walk from near each
        step (``gateway.ical.walk.near``) and charge the session's budget."""
        budget = self._meter.current()
        query = self._query(name)
        margin = timedelta(0) if self._fixed(sets) else _MARGIN
        low = window.start
        high = min(_shift(window.end, margin), FAR_FUTURE)
        earliest = self._earliest(sets)
        if earliest is not None:
            low = max(low, earliest)
        low = _shift(low, -margin)
        step = high - low if at_once and low < high else self._first_step(sets)
        seen: set[tuple[bytes, bytes, str]] = set()
        while low < high:
            budget.check()
            upper = min(_shift(low, step), high)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                try:
                    found = query.between(low, upper)
                except OverflowError:
                    return
            fresh = False
            for occurrence in sorted(found, key=lambda c: aware(c["DTSTART"].dt, self.zone)):
                key = (
                    occurrence["RECURRENCE-ID"].to_ical(),
                    occurrence["DTSTART"].to_ical(),
                    str(occurrence.get("UID", "")),
                )
                if key not in seen:
                    seen.add(key)
                    fresh = True
                    yield occurrence
            if not fresh:
                step = min(step * 2, timedelta(days=365 * 1000))
            low = upper


# -- RFC 4791 9.9: when a component overlaps a time range --------------------------


def event_span(component: Component, zone: ZoneInfo) -> TimeSpan | None:
    """A VEVENT's time in UTC by the RFC 4791 9.9 table: [DTSTART, DTEND),
    [DTSTART, DTSTART+DURATION), a day for a DATE without either, an instant
    for a DATE-TIME without either. The same code the store's index span
    comes from (``gateway.ical.parse``), so both always agree."""
    try:
        _, start, end = _times(component, zone)
    except (InvalidCalendarData, ValueError, TypeError, KeyError, AttributeError):
        return None
    return TimeSpan(start, end).in_utc()


def _journal_span(component: Component, zone: ZoneInfo) -> TimeSpan | None:
    # RFC 4791 9.9 VJOURNAL: a DATE-TIME DTSTART is an instant, a DATE a day;
    # without DTSTART a journal never overlaps.
    value = _dt(component, "DTSTART")
    if isinstance(value, datetime):
        start = aware(value, zone)
        return TimeSpan(start, start)
    if isinstance(value, date):
        return TimeSpan(aware(value, zone), aware(value + timedelta(days=1), zone))
    return None


def _todo_overlaps(instance: Instance, zone: ZoneInfo, window: TimeSpan) -> bool:
    """RFC 4791 9.9, the VTODO table, row by row. The source tells which
    properties the to-do has (recurring_ical_events writes DUE into every
    copy); the instance's copy tells where this instance lies."""
    source, component = instance.source, instance.component
    start, end = window.start, window.end
    dtstart = _instant(component, "DTSTART", zone)
    duration = _dt(source, "DURATION")
    due = _instant(component, "DUE", zone) if "DUE" in source else None
    completed = _instant(source, "COMPLETED", zone)
    created = _instant(source, "CREATED", zone)
    if dtstart is not None:
        if isinstance(duration, timedelta):
            finish = dtstart + duration
            return start <= finish and (end > dtstart or end >= finish)
        if due is not None:
            return (start < due or start <= dtstart) and (end > dtstart or end >= due)
        return start <= dtstart < end
    if due is not None:
        return start < due <= end
    if completed is not None and created is not None:
        return (start <= created or start <= completed) and (end >= created or end >= completed)
    if completed is not None:
        return start <= completed <= end
    if created is not None:
        return end > created
    return True


def _freebusy_overlaps(component: Component, zone: ZoneInfo, window: TimeSpan) -> bool:
    # RFC 4791 9.9 VFREEBUSY: its DTSTART/DTEND, else its FREEBUSY periods.
    dtstart = _instant(component, "DTSTART", zone)
    dtend = _instant(component, "DTEND", zone)
    if dtstart is not None and dtend is not None:
        return window.start <= dtend and window.end > dtstart
    for prop in _as_list(component.get("FREEBUSY", [])):
        for period in getattr(prop, "dts", [prop]):
            value = getattr(period, "dt", None)
            if not isinstance(value, tuple):
                continue
            first, last = value
            begin = aware(first, zone)
            finish = begin + last if isinstance(last, timedelta) else aware(last, zone)
            if window.start < finish and window.end > begin:
                return True
    return False


def overlaps(instance: Instance, zone: ZoneInfo, window: TimeSpan) -> bool:
    """Whether one instance overlaps ``window`` (RFC 4791 9.9).

    Deviation, on purpose: a VEVENT whose DTEND equals its DTSTART (which RFC
    5545 3.6.1 forbids; the 9.9 formula would never match it) counts as an
    instant, like one without DTEND. That is how the store indexes it, and an
    event that is shown must be found."""
    name = instance.source.name
    if name == "VEVENT":
        span = event_span(instance.component, zone)
        return span is not None and span.meets(window)
    if name == "VJOURNAL":
        span = _journal_span(instance.component, zone)
        return span is not None and span.meets(window)
    if name == "VTODO":
        return _todo_overlaps(instance, zone, window)
    if name == "VFREEBUSY":
        return _freebusy_overlaps(instance.component, zone, window)
    return False


def instance_start(instance: Instance, zone: ZoneInfo) -> datetime:
    """A sort key: when the instance starts (DUE for a to-do without DTSTART)."""
    for name in ("DTSTART", "DUE"):
        value = _instant(instance.component, name, zone)
        if value is not None:
            return value
    return _EARLIEST


# -- VALARM ------------------------------------------------------------------------


def _alarm_shifts(alarm: Component) -> list[timedelta]:
    """The offsets of an alarm's repetitions from its first trigger (RFC 5545
    3.8.6.2 REPEAT with DURATION)."""
    shifts = [timedelta(0)]
    repeat_value = alarm.get("REPEAT")
    interval = _dt(alarm, "DURATION")
    try:
        repeat = int(repeat_value) if repeat_value is not None else 0
    except (TypeError, ValueError):
        repeat = 0
    if isinstance(interval, timedelta) and interval > timedelta(0):
        shifts.extend(interval * n for n in range(1, min(repeat, _MAX_REPEAT) + 1))
    return shifts


def _anchor(instance: Instance, zone: ZoneInfo, related_end: bool) -> datetime | None:
    """The time a relative TRIGGER counts from (RFC 5545 3.8.6.3): the start,
    or with RELATED=END the end (DTEND, DUE, or DTSTART+DURATION)."""
    if not related_end:
        return _instant(instance.component, "DTSTART", zone) or _instant(
            instance.component, "DUE", zone
        )
    if instance.source.name == "VEVENT":
        span = event_span(instance.component, zone)
        return span.end if span is not None else None
    due = _instant(instance.component, "DUE", zone)
    if due is not None:
        return due
    start = _instant(instance.component, "DTSTART", zone)
    duration = _dt(instance.source, "DURATION")
    if start is not None and isinstance(duration, timedelta):
        return start + duration
    return start


def alarm_overlaps(loaded: Loaded, parent: Component, alarm: Component, window: TimeSpan) -> bool:
    """RFC 4791 9.9 VALARM: (start <= trigger-time) AND (end > trigger-time)
    for the trigger or any repetition of it. A relative trigger is counted for
    each instance of a recurring parent; an absolute one fires once."""
    trigger = alarm.get("TRIGGER")
    if isinstance(trigger, list):
        trigger = trigger[0] if trigger else None
    value = getattr(trigger, "dt", None)
    shifts = _alarm_shifts(alarm)

    def fires(at: datetime) -> bool:
        return any(window.start <= _shift(at, shift) < window.end for shift in shifts)

    if isinstance(value, date):
        return fires(aware(value, loaded.zone))
    if not isinstance(value, timedelta) or trigger is None:
        return False
    related_end = str(trigger.params.get("RELATED", "START")).upper() == "END"
    offsets = [value + shift for shift in shifts]
    # The instances whose anchor + an offset can fall into the window.
    around = TimeSpan(
        _shift(window.start, -max(offsets) - timedelta(seconds=1)),
        max(_shift(window.end, -min(offsets)), _shift(window.start, -max(offsets))),
    )
    for instance in loaded.instances(str(parent.name), around):
        if instance.source is not parent:
            continue
        anchor = _anchor(instance, loaded.zone, related_end)
        if anchor is not None and fires(_shift(anchor, value)):
            return True
    return False
