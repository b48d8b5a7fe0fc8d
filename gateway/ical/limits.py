"""Which recurrence rules a booking calendar accepts: the ``limits`` settings
applied to the facts of one rule or one object.

Pure decisions on plain data, tested as tables (tests/test_ical_limits.py).
Reading the facts out of a calendar object is ``gateway.ical.guard``'s job,
bounding the expansion of what is already stored ``gateway.ical.walk``'s.

A booking calendar never needs an event repeating every second, and one
object must not stall the server for everyone (issue 12), so:

* a rule more frequent than daily (SECONDLY, MINUTELY, HOURLY) needs COUNT
  or UNTIL bounding it to ``max_sub_daily_occurrences``; for UNTIL the bound
  is every FREQ x INTERVAL step from DTSTART to UNTIL, times the BYSECOND /
  BYMINUTE values that multiply each step (an upper bound: a rule that needs
  BYDAY or BYHOUR to stay small is written with FREQ=DAILY or WEEKLY);
* COUNT above ``max_instances`` is refused for any FREQ (the exact number of
  instances of a bounded series is checked when its span is computed);
* a part RFC 5545 3.3.10 does not name (a typo like UNTL=, or an extension)
  is refused: dropped, it would change the series without a word; so is a
  rule with both COUNT and UNTIL, which 3.3.10 forbids;
* more than ``max_overrides`` overridden instances (RECURRENCE-ID) are refused;
* a VTIMEZONE rule must look like a time zone's: FREQ=YEARLY, INTERVAL 1, a
  few changes a year at most, at one time of the day. icalendar expands every
  such rule to the year 9999 while parsing, so anything else would stall
  the parser itself.

RFC 4791 5.3.2.1 lets a server refuse such objects: ``max-instances`` when
there are too many instances, ``valid-calendar-data`` otherwise.
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from dataclasses import dataclass

MAX_INSTANCES = "max-instances"
VALID_DATA = "valid-calendar-data"

# The parts of a recurrence rule (RFC 5545 3.3.10 recur-rule-part).
RULE_PARTS = frozenset(
    {"FREQ", "UNTIL", "COUNT", "INTERVAL", "BYSECOND", "BYMINUTE", "BYHOUR", "BYDAY"}
    | {"BYMONTHDAY", "BYYEARDAY", "BYWEEKNO", "BYMONTH", "BYSETPOS", "WKST"}
)
FREQUENCIES = ("SECONDLY", "MINUTELY", "HOURLY", "DAILY", "WEEKLY", "MONTHLY", "YEARLY")
# Seconds of one step of a rule more frequent than daily.
SUB_DAILY = {"SECONDLY": 1, "MINUTELY": 60, "HOURLY": 3600}
# The BYxxx parts that multiply each step of a sub-daily rule (RFC 5545
# 3.3.10: BYSECOND expands MINUTELY and HOURLY, BYMINUTE expands HOURLY).
_EXPANDING = {"SECONDLY": (), "MINUTELY": ("BYSECOND",), "HOURLY": ("BYMINUTE", "BYSECOND")}

# What a time zone's STANDARD/DAYLIGHT rule may say (RFC 5545 3.6.5 and its
# examples): the day of the change; the time comes from DTSTART.
_ZONE_PARTS = frozenset(
    {"FREQ", "INTERVAL", "COUNT", "UNTIL", "WKST", "BYMONTH", "BYDAY", "BYMONTHDAY"}
    | {"BYYEARDAY", "BYWEEKNO", "BYSETPOS", "BYHOUR", "BYMINUTE", "BYSECOND"}
)
# Some writers repeat DTSTART's time in the rule (one value each).
_ZONE_TIME_PARTS = ("BYHOUR", "BYMINUTE", "BYSECOND")
# Changes a year one zone rule may make. Real zones make one per rule; the
# bound keeps icalendar's expansion to the year 9999 short.
MAX_ZONE_CHANGES_PER_YEAR = 12


@dataclass(frozen=True, slots=True)
class RecurrenceLimits:
    """The ``limits`` settings (config/README.md "limits"); the defaults are
    the documented ones."""

    max_instances: int = 10_000
    max_sub_daily_occurrences: int = 1000
    max_overrides: int = 1000
    max_expansion_steps: int = 200_000
    expansion_seconds: float = 2.0


@dataclass(frozen=True, slots=True)
class Refusal:
    """Why an object is refused: the RFC 4791 5.3.2.1 precondition it fails
    and a message naming the property and the rule."""

    precondition: str
    message: str


@dataclass(frozen=True, slots=True)
class RuleFacts:
    """One RRULE as written.

    ``where`` names it for people ("VEVENT RRULE", "VTIMEZONE STANDARD
    RRULE"); ``parts`` maps each upper-case rule part to its values as text;
    ``until_seconds`` is UNTIL minus DTSTART in seconds when the rule has
    UNTIL (read in the object's zone), else None."""

    where: str
    parts: Mapping[str, tuple[str, ...]]
    until_seconds: float | None = None

    def text(self) -> str:
        return ";".join(f"{name}={','.join(values)}" for name, values in self.parts.items())


def _integer(facts: RuleFacts, name: str, default: int) -> int | Refusal:
    values = facts.parts.get(name)
    if not values:
        return default
    try:
        number = int(values[0])
    except ValueError:
        number = -1
    if number < (1 if name == "INTERVAL" else 0):
        return Refusal(VALID_DATA, f"{facts.where}:{facts.text()} has an invalid {name}")
    return number


def _freq(facts: RuleFacts) -> str | Refusal:
    values = facts.parts.get("FREQ", ())
    freq = values[0].upper() if values else ""
    if freq not in FREQUENCIES:
        return Refusal(VALID_DATA, f"{facts.where}:{facts.text()} has no valid FREQ")
    return freq


def sub_daily_bound(facts: RuleFacts, freq: str, interval: int) -> int | None:
    """At most how many occurrences a sub-daily rule bounded by UNTIL has
    (see the module docstring), or None without UNTIL."""
    if facts.until_seconds is None:
        return None
    steps = max(int(facts.until_seconds // (SUB_DAILY[freq] * interval)), 0) + 1
    for name in _EXPANDING[freq]:
        steps *= max(len(facts.parts.get(name, ())), 1)
    return steps


def _unknown_part(facts: RuleFacts) -> Refusal | None:
    """A part RFC 5545 3.3.10 does not name: a typo (UNTL=) or an extension
    (RFC 7529 RSCALE/SKIP, RFC 2445 x-name parts) that the expansion would
    drop or choke on, so the series would not be the one the writer meant:
    its later occurrences would never block a double booking."""
    unknown = [name for name in facts.parts if name not in RULE_PARTS]
    if not unknown:
        return None
    name = unknown[0]
    close = difflib.get_close_matches(name, sorted(RULE_PARTS), n=1, cutoff=0.6)
    hint = f" (did you mean {close[0]}?)" if close else ""
    return Refusal(
        VALID_DATA,
        f"{facts.where}:{facts.text()} has the part {name}={','.join(facts.parts[name])}, "
        f"which is not an RRULE part of RFC 5545 3.3.10{hint}",
    )


def judge_rule(facts: RuleFacts, limits: RecurrenceLimits) -> Refusal | None:
    """Whether an event's (VEVENT, VTODO, VJOURNAL) RRULE is acceptable."""
    unknown = _unknown_part(facts)
    if unknown is not None:
        return unknown
    if "COUNT" in facts.parts and "UNTIL" in facts.parts:
        # RFC 5545 3.3.10: they "MUST NOT occur in the same recur"; which
        # one ends the series would be a guess.
        return Refusal(
            VALID_DATA,
            f"{facts.where}:{facts.text()} has both COUNT and UNTIL; "
            "RFC 5545 3.3.10 allows one or the other",
        )
    freq = _freq(facts)
    if isinstance(freq, Refusal):
        return freq
    interval = _integer(facts, "INTERVAL", 1)
    if isinstance(interval, Refusal):
        return interval
    count = _integer(facts, "COUNT", -1) if "COUNT" in facts.parts else None
    if isinstance(count, Refusal):
        return count
    rule = f"{facts.where}:{facts.text()}"
    if count is not None and count > limits.max_instances:
        return Refusal(
            MAX_INSTANCES,
            f"{rule} has {count} instances; a series may have at most "
            f"{limits.max_instances} (limits.max_instances)",
        )
    if freq not in SUB_DAILY:
        return None
    most = limits.max_sub_daily_occurrences
    bound = count if count is not None else sub_daily_bound(facts, freq, interval)
    if bound is None:
        return Refusal(
            MAX_INSTANCES,
            f"{rule} repeats more often than daily without end; a booking calendar "
            f"takes such a rule only with COUNT or UNTIL limiting it to {most} "
            "occurrences (limits.max_sub_daily_occurrences)",
        )
    if bound > most:
        what = "has" if count is not None else "may have up to"
        return Refusal(
            MAX_INSTANCES,
            f"{rule} {what} {bound} occurrences more often than daily; at most {most} "
            "are accepted (limits.max_sub_daily_occurrences)",
        )
    return None


def _day_bound(parts: Mapping[str, tuple[str, ...]], with_month: bool) -> int:
    """At most how many days a year (or a month, ``with_month``) the day
    parts of a yearly rule select."""
    bounds: list[int] = []
    if "BYMONTHDAY" in parts:
        bounds.append(len(parts["BYMONTHDAY"]))
    if "BYYEARDAY" in parts:
        bounds.append(len(parts["BYYEARDAY"]))
    if "BYWEEKNO" in parts:
        bounds.append(7 * len(parts["BYWEEKNO"]))
    if "BYDAY" in parts:
        plain = 5 if with_month else 53
        bounds.append(sum(1 if day[:1] in "+-0123456789" else plain for day in parts["BYDAY"]))
    return min(bounds) if bounds else 1


def judge_zone_rule(facts: RuleFacts) -> Refusal | None:
    """Whether a VTIMEZONE STANDARD/DAYLIGHT RRULE is one a time zone has."""
    rule = f"{facts.where}:{facts.text()}"
    unknown = sorted(set(facts.parts) - _ZONE_PARTS)
    if unknown:
        return Refusal(
            VALID_DATA,
            f"{rule} is not a time zone rule: {', '.join(unknown)} has no place in one "
            "(a zone changes its offset on a day of the year, at the time of DTSTART)",
        )
    freq = _freq(facts)
    if isinstance(freq, Refusal):
        return freq
    if freq != "YEARLY":
        return Refusal(
            VALID_DATA,
            f"{rule} is not a time zone rule: zones change their offset with "
            "FREQ=YEARLY rules (RFC 5545 3.6.5)",
        )
    interval = _integer(facts, "INTERVAL", 1)
    if isinstance(interval, Refusal):
        return interval
    if interval != 1:
        return Refusal(VALID_DATA, f"{rule} is not a time zone rule: INTERVAL must be 1")
    times = [name for name in _ZONE_TIME_PARTS if len(facts.parts.get(name, ())) > 1]
    if times:
        return Refusal(
            VALID_DATA,
            f"{rule} is not a time zone rule: {', '.join(times)} may name one time only "
            "(a zone changes its offset once on the day)",
        )
    months = len(facts.parts.get("BYMONTH", ())) or 1
    changes = months * _day_bound(facts.parts, with_month="BYMONTH" in facts.parts)
    if changes > MAX_ZONE_CHANGES_PER_YEAR:
        return Refusal(
            VALID_DATA,
            f"{rule} is not a time zone rule: it may change the offset {changes} times a "
            f"year, a zone rule at most {MAX_ZONE_CHANGES_PER_YEAR}",
        )
    return None


def judge_overrides(uid: str, count: int, limits: RecurrenceLimits) -> Refusal | None:
    """Whether one series (``uid``; empty: the whole object) may have
    ``count`` overridden instances."""
    if count <= limits.max_overrides:
        return None
    what = f"the series {uid!r}" if uid else "the object"
    return Refusal(
        MAX_INSTANCES,
        f"{what} has {count} overridden instances (RECURRENCE-ID); at most "
        f"{limits.max_overrides} are accepted (limits.max_overrides)",
    )


def judge_instances(uid: str, count: int | None, limits: RecurrenceLimits) -> Refusal | None:
    """Whether a bounded series with ``count`` instances (None: more than
    could be counted within ``max_expansion_steps`` and ``expansion_seconds``)
    is acceptable."""
    if count is not None and count <= limits.max_instances:
        return None
    if count is None:
        return Refusal(
            MAX_INSTANCES,
            f"the series {uid!r} has more instances than can be counted within "
            f"{limits.max_expansion_steps} steps and {limits.expansion_seconds:g} seconds "
            "(limits.max_expansion_steps, limits.expansion_seconds)",
        )
    return Refusal(
        MAX_INSTANCES,
        f"the series {uid!r} has more than {limits.max_instances} instances (limits.max_instances)",
    )
