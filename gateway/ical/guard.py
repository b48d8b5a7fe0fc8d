"""Holding a calendar object to the ``limits`` before it costs anything:
reads the facts of its rules and raises ``RecurrenceLimit`` with the
decision of ``gateway.ical.limits``.

* ``check_zones(text)`` runs on the raw text, before icalendar parses it:
  icalendar expands each STANDARD/DAYLIGHT rule of a VTIMEZONE whose TZID it
  does not know to the year 9999 while it parses, so a SECONDLY zone rule
  never returns (and fills the memory). Every parse of untrusted or stored
  text goes through it (``gateway.ical.common._parse_calendar``, the CalDAV
  PUT in ``gateway.ical.parse``).
* ``check_text(text, limits)`` adds a count of the overrides on the raw
  text (the CalDAV PUT);
* ``check_events(...)`` looks at the recurrence rules and the overrides of
  the events of a parsed object (the CalDAV PUT).

It does not count the instances of a bounded series: the span computation
of ``gateway.ical.parse`` walks them anyway, within a budget.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo

from icalendar import Component, vDDDTypes
from icalendar.parser.content_line import NEWLINE, UFOLD

from gateway.core.errors import RecurrenceLimit
from gateway.ical.common import _as_list
from gateway.ical.limits import (
    RecurrenceLimits,
    Refusal,
    RuleFacts,
    judge_overrides,
    judge_rule,
    judge_zone_rule,
)
from gateway.ical.timezones import _aware

_ZONE = re.compile("VTIMEZONE", re.IGNORECASE)
_OVERRIDE = re.compile(r"^RECURRENCE-ID[;:]", re.IGNORECASE | re.MULTILINE)


def _raise(refusal: Refusal | None) -> None:
    if refusal is not None:
        raise RecurrenceLimit(refusal.precondition, refusal.message)


def _parts(value: str) -> dict[str, tuple[str, ...]]:
    """An RRULE value's parts, upper-case names (RFC 5545 3.3.10)."""
    parts: dict[str, tuple[str, ...]] = {}
    for item in value.split(";"):
        name, _, values = item.partition("=")
        if name.strip():
            parts[name.strip().upper()] = tuple(v.strip() for v in values.split(","))
    return parts


def _zone_rules(unfolded: str) -> Iterator[RuleFacts]:
    """The RRULEs of the STANDARD/DAYLIGHT parts of every VTIMEZONE in the
    text (at any depth, as icalendar caches any VTIMEZONE it meets)."""
    stack: list[str] = []
    for line in NEWLINE.split(unfolded):
        name, _, value = line.partition(":")
        name = name.split(";", 1)[0].strip().upper()
        if name == "BEGIN":
            stack.append(value.strip().upper())
        elif name == "END":
            if stack:
                stack.pop()
        elif name == "RRULE" and "VTIMEZONE" in stack:
            inner = stack[-1] if stack else ""
            yield RuleFacts(f"VTIMEZONE {inner} RRULE", _parts(value))


def unfold(text: str) -> str:
    """``text`` unfolded exactly as icalendar unfolds it (RFC 5545 3.1)."""
    # Every fold icalendar's pattern matches ends in a line feed followed by
    # a space or a tab; most objects have none, and the search for those two
    # pairs costs a fraction of the pattern's scan.
    if "\n " not in text and "\n\t" not in text:
        return text
    return UFOLD.sub("", text)


def check_text(text: str, limits: RecurrenceLimits) -> None:
    """``check_zones``, and the overridden instances counted on the text: an
    object with thousands of them costs seconds to parse, so it is refused
    before (``limits.judge_overrides``; one object holds one series)."""
    unfolded = unfold(text)
    _check_zones_unfolded(unfolded)
    overrides = len(_OVERRIDE.findall(unfolded))
    _raise(judge_overrides("", overrides, limits))


def check_zones(text: str) -> None:
    """Raise ``RecurrenceLimit`` (valid-calendar-data) if a VTIMEZONE of the
    text has a rule no time zone has (``limits.judge_zone_rule``)."""
    # Unfolded and split exactly as icalendar does (RFC 5545 3.1).
    _check_zones_unfolded(unfold(text))


def _check_zones_unfolded(unfolded: str) -> None:
    if _ZONE.search(unfolded) is None:
        return
    for facts in _zone_rules(unfolded):
        _raise(judge_zone_rule(facts))


# -- events ------------------------------------------------------------------------


def _instant(value: Any, zone: ZoneInfo) -> datetime | None:
    if not isinstance(value, date):
        return None
    return _aware(value, zone)


def _rule_facts(component: Component, rule: Any, zone: ZoneInfo) -> RuleFacts:
    parts: dict[str, tuple[str, ...]] = {}
    for name, values in rule.items():
        texts = []
        for value in _as_list(values):
            if isinstance(value, date):  # as written: 20270101T000000Z
                texts.append(vDDDTypes(value).to_ical().decode("ascii"))
            else:
                texts.append(str(value))
        parts[str(name).upper()] = tuple(texts)
    until_seconds = None
    untils = rule.get("UNTIL")
    start_prop = component.get("DTSTART")
    start = _instant(getattr(start_prop, "dt", None), zone)
    until = _instant(_as_list(untils)[0], zone) if untils else None
    if start is not None and until is not None:
        until_seconds = (until - start).total_seconds()
    return RuleFacts(f"{component.name} RRULE", parts, until_seconds)


def check_events(events: Iterable[Component], zone: ZoneInfo, limits: RecurrenceLimits) -> None:
    """Raise ``RecurrenceLimit`` for the first rule or series of ``events``
    (the components of one object) beyond ``limits``."""
    overrides: dict[str, int] = {}
    for component in events:
        uid = str(component.get("UID", ""))
        if "RECURRENCE-ID" in component:
            overrides[uid] = overrides.get(uid, 0) + 1
        for rule in _as_list(component.get("RRULE", [])):
            if rule:
                _raise(judge_rule(_rule_facts(component, rule, zone), limits))
    for uid, count in overrides.items():
        _raise(judge_overrides(uid, count, limits))
