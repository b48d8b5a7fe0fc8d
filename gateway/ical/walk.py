"""Walking recurrence rules within a budget, from the window asked about.

recurring_ical_events hands each recurrence set's rules to dateutil, and
dateutil walks a rule from its DTSTART whatever window is asked for, keeping
every instance it passed in the rule's cache: a SECONDLY rule asked about a
day 60 years after its start walks (and keeps) two billion instances first.
This module:

* ``Budget``: the steps (candidates walked, kept or not) and seconds one
  object's expansion may take in one request (``limits.max_expansion_steps``,
  ``limits.expansion_seconds``); past either it raises ``ExpansionLimit``,
  never a silently shortened answer;
* ``near``: the rule restarted at a whole number of its periods before the
  window where that gives exactly the same instances (see its docstring);
* ``BoundedRule`` and ``bound_rules``: recurring_ical_events' rule objects
  replaced by ones that walk ``near`` the window, uncached, charging every
  step to the budget of the request that expands.

It does not decide which rules are acceptable (``gateway.ical.limits``) nor
which instances overlap a window (``gateway.ical.expand``).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta, tzinfo
from typing import Any

from dateutil.rrule import (  # type: ignore[import-untyped]
    DAILY,
    HOURLY,
    MINUTELY,
    MONTHLY,
    SECONDLY,
    WEEKLY,
    rrule,
    rruleset,
)

from gateway.core.errors import ExpansionLimit
from gateway.ical.limits import RecurrenceLimits

# The budget checks the clock once per this many steps (a step costs
# microseconds; the clock about as much).
_CLOCK_EVERY = 256
# Restarted rules begin this long before the window's start in wall-clock
# time when the rule's zone changes its offset within a day of the window:
# local time jumps by an hour or two at such a change (recurring_ical_events
# widens the window by the event's length itself). Elsewhere wall-clock time
# runs with the window, and no slack is needed: two days of slack would be
# 172,800 steps of a SECONDLY rule.
_SLACK = timedelta(hours=3)
_NEAR_CHANGE = timedelta(days=1)
# The periods of rules whose every period holds the same instances (dateutil
# counts them in wall-clock time).
_FIXED = {
    SECONDLY: timedelta(seconds=1),
    MINUTELY: timedelta(minutes=1),
    HOURLY: timedelta(hours=1),
    DAILY: timedelta(days=1),
    WEEKLY: timedelta(weeks=1),
}


class Budget:
    """The steps and seconds one object's expansion may still take."""

    __slots__ = ("_clock", "_deadline", "_limits", "_steps", "uid")

    def __init__(
        self,
        limits: RecurrenceLimits,
        uid: str,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._limits = limits
        self._clock = clock
        self._steps = limits.max_expansion_steps
        self._deadline = clock() + limits.expansion_seconds
        self.uid = uid

    @property
    def limits(self) -> RecurrenceLimits:
        return self._limits

    def seconds_left(self) -> float:
        return max(self._deadline - self._clock(), 0.0)

    def step(self) -> None:
        """Charge one candidate of a rule."""
        self._steps -= 1
        if self._steps < 0:
            raise ExpansionLimit(
                self.uid,
                f"the recurring event {self.uid!r} needs more than "
                f"{self._limits.max_expansion_steps} steps to expand in the range asked "
                "for (limits.max_expansion_steps); ask for a shorter range",
            )
        if self._steps % _CLOCK_EVERY == 0:
            self.check()

    def check(self) -> None:
        """Raise once the seconds are spent."""
        if self._clock() > self._deadline:
            raise ExpansionLimit(
                self.uid,
                f"the recurring event {self.uid!r} takes more than "
                f"{self._limits.expansion_seconds:g} seconds to expand in the range asked "
                "for (limits.expansion_seconds); ask for a shorter range",
            )

    def instances(self, count: int) -> None:
        """Raise when more instances than ``limits.max_instances`` are kept."""
        if count > self._limits.max_instances:
            raise ExpansionLimit(
                self.uid,
                f"the recurring event {self.uid!r} has more than "
                f"{self._limits.max_instances} instances in the range asked for "
                "(limits.max_instances); ask for a shorter range",
            )


# -- restarting a rule near the window ---------------------------------------------


def _slack(moment: datetime, zone: tzinfo | None) -> timedelta:
    """``_SLACK`` if the zone's offset changes within a day of ``moment``."""
    if zone is None or moment.tzinfo is None:
        return timedelta(0)  # floating: wall-clock time is all there is
    try:
        offsets = {
            (moment + shift).astimezone(zone).utcoffset()
            for shift in (-_NEAR_CHANGE, timedelta(0), _NEAR_CHANGE)
        }
    except OverflowError:
        return _SLACK
    return timedelta(0) if len(offsets) == 1 else _SLACK


def _wall(moment: datetime, zone: tzinfo | None) -> datetime:
    """``moment`` as the naive wall-clock time dateutil counts in."""
    if moment.tzinfo is not None and zone is not None:
        moment = moment.astimezone(zone)
    return moment.replace(tzinfo=None)


def _uncached(rule: rrule, **changes: Any) -> rrule:
    return rule.replace(cache=False, **changes)


def _never(rule: rrule) -> rrule:
    """A rule with no instance."""
    return _uncached(rule, count=0)


def near(rule: rrule, after: datetime) -> rrule:
    """An uncached copy of ``rule`` whose instances from ``after`` on are
    exactly the rule's own, started as late as that allows.

    The copy starts a whole number of the rule's periods (FREQ times
    INTERVAL) after DTSTART, so it walks the same grid of periods; instances
    of its first period before its start are dropped, but that start is not
    after ``after`` in wall-clock time (``_SLACK`` before it near a change of
    the zone's offset). dateutil fills the
    BYxxx parts a rule leaves out from DTSTART (RFC 5545 3.3.10): a monthly
    rule's day, a yearly rule's day and month; these are carried over as
    they were. With COUNT only rules with exactly one instance per period can
    start late (COUNT less the periods skipped): those without BYxxx parts,
    FREQ from SECONDLY to WEEKLY. Everything else starts at DTSTART.
    """
    dtstart: datetime = rule._dtstart
    zone = dtstart.tzinfo
    first = dtstart.replace(tzinfo=None)
    target = _wall(after, zone)
    try:
        target -= _slack(after, zone)
    except OverflowError:
        return _uncached(rule)
    if target <= first:
        return _uncached(rule)
    freq: int = rule._freq
    interval: int = rule._interval
    count: int | None = rule._count
    original: dict[str, Any] = rule._original_rule
    explicit = any(value is not None for value in original.values())
    period = _FIXED.get(freq)
    if count is not None and (explicit or period is None):
        return _uncached(rule)
    changes: dict[str, Any] = {}
    try:
        if period is not None:
            skipped = (target - first) // (period * interval)
            if skipped <= 0:
                return _uncached(rule)
            start = first + period * interval * skipped
            if count is not None:
                if count <= skipped:
                    return _never(rule)
                changes["count"] = count - skipped
            if freq == WEEKLY:
                # dateutil's first week runs from DTSTART's day, every later
                # one from WKST's: start on WKST so that the week is whole
                # (BYSETPOS picks from the whole week).
                start -= timedelta(days=(start.weekday() - rule._wkst) % 7)
        else:
            months = interval if freq == MONTHLY else 12 * interval
            elapsed = (target.year - first.year) * 12 + target.month - first.month
            skipped = elapsed // months - 1
            if skipped <= 0:
                return _uncached(rule)
            year, month = divmod(first.year * 12 + first.month - 1 + skipped * months, 12)
            start = first.replace(year=year, month=month + 1, day=1)
    except (OverflowError, ValueError):
        return _never(rule)  # past the year 9999: nothing is left
    # The parts dateutil took from DTSTART (marked None in _original_rule).
    for part, value in (
        ("bymonthday", dtstart.day),
        ("bymonth", dtstart.month),
        ("byweekday", dtstart.weekday()),
    ):
        if part in original and original[part] is None:
            changes[part] = value
    return _uncached(rule, dtstart=start.replace(tzinfo=zone), **changes)


# -- recurring_ical_events' rules, bounded ------------------------------------------


class Meter:
    """The budget of the expansion under way on one ``Loaded`` object (one at
    a time, under its lock); rules charge their steps to it."""

    def __init__(self, limits: RecurrenceLimits) -> None:
        self.limits = limits
        self.budget: Budget | None = None

    def current(self) -> Budget:
        if self.budget is None:
            # Outside a session (not expected): each walk is bounded alone.
            return Budget(self.limits, "?")
        return self.budget


class BoundedRule:
    """Stands in for a dateutil rule or rule set inside recurring_ical_events
    (which calls ``between(start, stop, inc=True)`` and reads ``until``):
    walks the rule ``near`` the window, uncached, charging each step."""

    def __init__(self, rule: rrule | rruleset, meter: Meter) -> None:
        self._rule = rule
        self._meter = meter
        self.until = getattr(rule, "until", None)
        self.string = getattr(rule, "string", "")

    def between(
        self, after: datetime, before: datetime, inc: bool = False, count: int = 1
    ) -> Iterator[datetime]:
        budget = self._meter.current()
        budget.check()
        rule = self._rule
        # A rule set holds the RDATEs and DTSTART: a finite list.
        walked = iter(rule) if isinstance(rule, rruleset) else iter(near(rule, after))
        for moment in walked:
            budget.step()
            if moment > before or (not inc and moment == before):
                return
            if moment > after or (inc and moment == after):
                yield moment


def bound_rules(query: Any, meter: Meter) -> int:
    """Replace the rules of every series of a recurring_ical_events query by
    ``BoundedRule``s charging ``meter``; returns how many were replaced.

    This reaches into recurring_ical_events (``series``, ``recurrence``,
    ``rrules``); tests/test_ical_walk.py fails if a new version moves them."""
    replaced = 0
    for series in query.series:
        recurrence = series.recurrence
        rules = getattr(recurrence, "rrules", None)
        if not getattr(recurrence, "has_core", False) or rules is None:
            continue
        recurrence.rrules = [
            rule if isinstance(rule, BoundedRule) else BoundedRule(rule, meter) for rule in rules
        ]
        replaced += len(rules)
    return replaced


class Session:
    """One expansion at a time on a shared object: holds its lock (waiting
    at most the budget's seconds) and puts the budget on its meter. Sessions
    nest in one thread; the outer budget counts."""

    def __init__(self, lock: threading.RLock, meter: Meter, budget: Budget) -> None:
        self._lock = lock
        self._meter = meter
        self._budget = budget
        self._outer: Budget | None = None

    def __enter__(self) -> Budget:
        if not self._lock.acquire(timeout=max(self._budget.seconds_left(), 0.001)):
            raise ExpansionLimit(
                self._budget.uid,
                f"the recurring event {self._budget.uid!r} is being expanded by another "
                "request that takes long; try again",
            )
        self._outer = self._meter.budget
        if self._outer is None:
            self._meter.budget = self._budget
        return self._meter.budget or self._budget

    def __exit__(self, *exc: object) -> None:
        self._meter.budget = self._outer
        self._lock.release()
