"""The filter of a CalDAV calendar-query (RFC 4791 9.7) evaluated on a parsed
stored object.

A comp-filter holds when some component of its name in the current scope
passes all of its nested filters and, with a time-range, has an instance
overlapping the range (RFC 4791 9.7.1, 9.9). Component, property and parameter
names compare case-insensitively (RFC 5545 2.1).

Some filters are answered from the object's text, before it is parsed: which
components it holds (``answer_from_names``), and whether a text search can
find its text in it at all (``text_rules_out``).
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable
from datetime import date, datetime, timedelta
from typing import Any

from icalendar import Component, vBroken, vCategory, vText

from gateway.core.model import TimeSpan
from gateway.core.query import (
    Collation,
    CompFilter,
    MatchType,
    ParamFilter,
    PropFilter,
    TextMatch,
    TimeRange,
)
from gateway.ical.common import _as_list
from gateway.ical.expand import (
    RECURRING,
    Instance,
    Loaded,
    alarm_overlaps,
    aware,
    overlaps,
)
from gateway.ical.guard import unfold

# -- text-match (RFC 4791 9.7.5, collations RFC 4790 / RFC 5051) --------------------

# RFC 4790 9.2: i;ascii-casemap folds only the 26 ASCII letters.
_ASCII_FOLD = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")


def _ascii_casemap(text: str) -> str:
    return text.translate(_ASCII_FOLD)


def _octet(text: str) -> str:
    # RFC 4790 9.3: i;octet compares octets; equal strings are equal UTF-8.
    return text


def _unicode_casemap(text: str) -> str:
    # RFC 5051 (i;unicode-casemap): case mapping, then NFKD decomposition.
    # Full case folding stands in for the RFC's titlecase mapping: it maps more
    # (German sharp s to "ss"), never less.
    return unicodedata.normalize("NFKD", text.casefold())


_FOLD: dict[Collation, Callable[[str], str]] = {
    Collation.ASCII_CASEMAP: _ascii_casemap,
    Collation.OCTET: _octet,
    Collation.UNICODE_CASEMAP: _unicode_casemap,
}

_MATCH: dict[MatchType, Callable[[str, str], bool]] = {
    MatchType.CONTAINS: lambda value, needle: needle in value,
    MatchType.EQUALS: lambda value, needle: value == needle,
    MatchType.STARTS_WITH: lambda value, needle: value.startswith(needle),
    MatchType.ENDS_WITH: lambda value, needle: value.endswith(needle),
}


def text_matches(values: list[str], match: TextMatch) -> bool:
    """RFC 4791 9.7.5: whether any of ``values`` matches, negated with
    negate-condition."""
    fold = _FOLD[match.collation]
    test = _MATCH[match.match_type]
    needle = fold(match.text)
    found = any(test(fold(value), needle) for value in values)
    return found != match.negate


# Multi-valued TEXT properties (RFC 5545 3.8.1.2 CATEGORIES, 3.8.1.10
# RESOURCES): a text-match holds if any one value does.


def _texts(prop: Any) -> list[str]:
    """A property's values as text: TEXT unescaped (RFC 5545 3.3.11), a
    CAL-ADDRESS as written ("mailto:x@y"), anything else in its iCalendar form."""
    if isinstance(prop, vCategory):
        return [str(value) for value in prop.cats]
    if isinstance(prop, str):  # vText, vCalAddress, vUri...
        return [str(prop)]
    to_ical = getattr(prop, "to_ical", None)
    if to_ical is not None:
        raw = to_ical()
        return [raw.decode("utf-8", "replace") if isinstance(raw, bytes) else str(raw)]
    return [str(prop)]


def _multi_texts(name: str, prop: Any) -> list[str]:
    if name == "RESOURCES" and isinstance(prop, vText):
        # icalendar reads RESOURCES as one TEXT and unescapes "\\," too, so
        # a comma inside one value cannot be told from a separator.
        return [part.strip() for part in str(prop).split(",")]
    return _texts(prop)


# -- param-filter (RFC 4791 9.7.3) ------------------------------------------------


def _param_values(prop: Any, name: str) -> list[str] | None:
    params = getattr(prop, "params", None)
    if not params or name not in params:
        return None
    return [str(value) for value in _as_list(params[name])]


def param_matches(prop: Any, param: ParamFilter) -> bool:
    values = _param_values(prop, param.name.upper())
    if param.is_not_defined:
        return values is None
    if values is None:
        return False
    return param.text_match is None or text_matches(values, param.text_match)


# -- prop-filter (RFC 4791 9.7.2) -------------------------------------------------


def _value_overlaps(value: Any, loaded: Loaded, window: TimeSpan) -> bool:
    """RFC 4791 9.9 on a property value: a DATE-TIME is an instant,
    (start <= value AND end > value); a DATE is its whole day in the zone; a
    PERIOD (RDATE, FREEBUSY) overlaps like a VEVENT."""
    if isinstance(value, tuple):
        first, last = value
        start = aware(first, loaded.zone)
        end = start + last if isinstance(last, timedelta) else aware(last, loaded.zone)
        return window.start < end and window.end > start
    if isinstance(value, datetime):
        return window.start <= aware(value, loaded.zone) < window.end
    if isinstance(value, date):
        start, end = aware(value, loaded.zone), aware(value + timedelta(days=1), loaded.zone)
        return window.start < end and window.end > start
    return False  # a DURATION (a relative TRIGGER) or not a time at all


def _prop_in_range(prop: Any, loaded: Loaded, time_range: TimeRange) -> bool:
    if isinstance(prop, vBroken):
        # Kept as sent though icalendar cannot read it as a time (a year-0000
        # CREATED, RFC 5545 3.3.5; see gateway.ical.parse): in no range.
        return False
    window = time_range.as_span()
    values = [v.dt for v in getattr(prop, "dts", [])] or [getattr(prop, "dt", None)]
    return any(_value_overlaps(value, loaded, window) for value in values)


def _prop_holds(name: str, prop: Any, loaded: Loaded, flt: PropFilter) -> bool:
    if flt.time_range is not None and not _prop_in_range(prop, loaded, flt.time_range):
        return False
    if flt.text_match is not None and not text_matches(_multi_texts(name, prop), flt.text_match):
        return False
    return all(param_matches(prop, param) for param in flt.param_filters)


def prop_matches(component: Component, loaded: Loaded, flt: PropFilter) -> bool:
    """RFC 4791 9.7.2. A property that occurs more than once (ATTENDEE) matches
    when one occurrence passes the whole filter, parameters included, so that
    "an attendee who is Bob and has accepted" means one attendee."""
    name = flt.name.upper()
    props = _as_list(component[name]) if name in component else []
    if flt.is_not_defined:
        return not props
    return any(_prop_holds(name, prop, loaded, flt) for prop in props)


# -- comp-filter (RFC 4791 9.7.1) -------------------------------------------------


def _passes_nested(component: Component, loaded: Loaded, flt: CompFilter) -> bool:
    return all(prop_matches(component, loaded, p) for p in flt.prop_filters) and all(
        _comp_matches(component, component.subcomponents, loaded, c) for c in flt.comp_filters
    )


def _in_range(
    parent: Component | None,
    components: list[Component],
    name: str,
    loaded: Loaded,
    window: TimeSpan,
) -> bool:
    """Whether one of ``components`` (all named ``name``) overlaps ``window``."""
    if name in RECURRING:
        # RFC 4791 9.9: "if any one instance matches, then the test returns
        # true"; instances belong to the master or to the override they come from.
        wanted = {id(c) for c in components}
        return any(
            id(instance.source) in wanted and overlaps(instance, loaded.zone, window)
            for instance in loaded.instances(name, window)
        )
    if name == "VFREEBUSY":
        return any(
            overlaps(Instance(c, c, recurring=False), loaded.zone, window) for c in components
        )
    if name == "VALARM":
        return parent is not None and any(
            alarm_overlaps(loaded, parent, alarm, window) for alarm in components
        )
    if name == "VCALENDAR":
        # Not defined by RFC 4791; read as "holds a component that overlaps".
        return any(
            _in_range(
                calendar,
                [c for c in calendar.subcomponents if c.name == kind],
                kind,
                loaded,
                window,
            )
            for calendar in components
            for kind in (*RECURRING, "VFREEBUSY")
        )
    return False  # RFC 4791 9.9 gives VTIMEZONE and others no time


def _comp_matches(
    parent: Component | None, scope: list[Component], loaded: Loaded, flt: CompFilter
) -> bool:
    name = flt.name.upper()
    found = [c for c in scope if c.name == name]
    if flt.is_not_defined:
        return not found
    passing = [c for c in found if _passes_nested(c, loaded, flt)]
    if not passing or flt.time_range is None:
        return bool(passing)
    return _in_range(parent, passing, name, loaded, flt.time_range.as_span())


# -- answers from the text alone ------------------------------------------------------

# A line that starts with BEGIN: always opens a component: a folded continuation
# starts with a space or tab, and a line break inside a value is escaped
# (RFC 5545 3.1, 3.3.11).
_BEGIN = re.compile(r"^BEGIN:([A-Za-z0-9-]+)[ \t]*\r?$", re.MULTILINE | re.IGNORECASE)

# Components that RFC 5545 3.6 only allows directly inside VCALENDAR.
_TOP_LEVEL = frozenset({"VEVENT", "VTODO", "VJOURNAL", "VFREEBUSY", "VTIMEZONE"})


def component_names(text: str) -> frozenset[str]:
    """The names of all components in an iCalendar text, without parsing it."""
    return frozenset(name.upper() for name in _BEGIN.findall(text))


def answer_from_names(flt: CompFilter, names: frozenset[str]) -> bool | None:
    """The filter's answer when the components the object holds decide it,
    else None (the object has to be parsed).

    Decided: a filter that asks only which components a VCALENDAR holds (what
    "list all events" and "list all tasks" send), and any filter that needs a
    component the text does not have, since nested filters AND (RFC 4791 9.7.1).
    """
    if flt.name.upper() != "VCALENDAR":
        return None
    if flt.is_not_defined:
        return False  # a stored object is a VCALENDAR
    if _needs_missing(flt, names):
        return False
    if flt.time_range is not None or flt.prop_filters:
        return None
    for child in flt.comp_filters:
        name = child.name.upper()
        if name not in _TOP_LEVEL or child.time_range or child.prop_filters or child.comp_filters:
            return None
        if (name in names) == child.is_not_defined:
            return False
    return True


# Properties whose value a text-match reads as written, apart from TEXT escapes
# (RFC 5545 TEXT, CAL-ADDRESS and URI values): what text searches ask about.
SCREENED = frozenset(
    {
        "SUMMARY",
        "DESCRIPTION",
        "LOCATION",
        "COMMENT",
        "CATEGORIES",
        "RESOURCES",
        "CONTACT",
        "UID",
        "RELATED-TO",
        "URL",
        "ATTENDEE",
        "ORGANIZER",
        "STATUS",
        "CLASS",
        "TRANSP",
    }
)
# What icalendar's unescaping (RFC 5545 3.3.11) turns a backslash pair into.
_ESCAPED = frozenset("\\,;:\r\n")


def _required_matches(flt: CompFilter) -> list[TextMatch]:
    """The text-matches every match of ``flt`` must satisfy: plain (not negated)
    ones on screened properties, reached through comp-filters that are not
    is-not-defined (everything in a filter ANDs, RFC 4791 9.7.1)."""
    found = [
        p.text_match
        for p in flt.prop_filters
        if p.text_match is not None
        and not p.is_not_defined
        and not p.text_match.negate
        and p.text_match.text
        and p.text_match.collation is not Collation.UNICODE_CASEMAP
        and p.name.upper() in SCREENED
    ]
    for child in flt.comp_filters:
        if not child.is_not_defined:
            found.extend(_required_matches(child))
    return found


def text_rules_out(flt: CompFilter, text: str) -> bool:
    """Whether the object's text shows, without parsing it, that ``flt``
    cannot match: a text-match it needs finds its text nowhere in the object.

    Sound because every value a screened property has, unescaped, is one
    stretch of the unfolded text (icalendar's own unfolding), as long as the
    text has no backslash or the searched text none of the characters an
    escape produces; collations that fold letter by letter keep that true.
    i;unicode-casemap (NFKD) does not, and is not screened."""
    if flt.is_not_defined:
        return False
    matches = _required_matches(flt)
    if not matches:
        return False
    unfolded = unfold(text)
    plain = "\\" not in unfolded
    folded: dict[Collation, str] = {}
    for match in matches:
        if not plain and not _ESCAPED.isdisjoint(match.text):
            continue
        fold = _FOLD[match.collation]
        haystack = folded.get(match.collation)
        if haystack is None:
            haystack = folded[match.collation] = fold(unfolded)
        if fold(match.text) not in haystack:
            return True
    return False


def _needs_missing(flt: CompFilter, names: frozenset[str]) -> bool:
    """Whether some comp-filter the answer depends on asks for a component of a
    name the object has nowhere."""
    return any(
        not child.is_not_defined
        and (child.name.upper() not in names or _needs_missing(child, names))
        for child in flt.comp_filters
    )


def comp_matches(loaded: Loaded, flt: CompFilter) -> bool:
    """Whether the object satisfies ``flt``, the filter's outermost comp-filter
    (RFC 4791 9.7: it names VCALENDAR to match anything at all)."""
    return _comp_matches(None, [loaded.calendar], loaded, flt)
