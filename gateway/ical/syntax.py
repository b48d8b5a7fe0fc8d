"""RFC 5545's grammar, checked on a client's raw calendar text before any
parser reads it: ``syntax_problem(text)`` names the first line that breaks
it, or returns None.

Why: what the gateway stores it serves as sent (CalDAV GET, calendar-data,
feeds), so an object must be readable by every client stack, not only by
icalendar. icalendar is lenient where vobject (the other parser many stacks
use) is not, and the reverse; an object that breaks the grammar is refused
at PUT (RFC 4791 5.3.2.1 valid-calendar-data) with the line number (1-based,
of the text as sent), the component, the property and the rule. What it
checks, one content line at a time (a regular expression per unfolded line):

* no byte order mark: served as sent, neither icalendar nor vobject reads
  the text after one;
* every unfolded line is a content line (RFC 5545 3.1): a name of letters,
  digits and "-", parameters ``;NAME=value[,value]`` with plain or quoted
  values, ``:`` and the value; a line break is CRLF (or LF), never a lone
  CR; a folded line continues with a space or a tab;
* BEGIN/END pair up and match (RFC 5545 3.4, 3.6), the text is exactly one
  VCALENDAR with nothing but blank lines after its END;
* the value types of the properties clients parse (table ``_RULES``):
  DATE/DATE-TIME (3.3.4, 3.3.5: real calendar days; year 0000 is
  grammatical and kept), DURATION (3.3.6), PERIOD (3.3.9), UTC-OFFSET
  (3.3.14), INTEGER (3.3.8) and GEO's two floats (3.8.1.6);
* the properties that MUST NOT occur more than once in a VEVENT (3.6.1) or
  a VALARM (3.6.6) (table ``_ONCE``).

Tolerated on purpose, because real producers write them and both icalendar
and vobject read them (each pinned by a case in tests/test_ical_syntax.py):

* LF alone as line break, and blank lines between content lines;
* "_" in property and parameter names (Lotus Notes; both parsers read it);
* a DATE value of DTSTART, DTEND, DUE and RECURRENCE-ID without
  ``VALUE=DATE`` (RFC 5545 3.8.2.4 wants the parameter);
* DTSTAMP, CREATED, LAST-MODIFIED and COMPLETED in local time rather than
  UTC (3.8.7.1-3.8.7.3; the gateway does not read them);
* a TRIGGER date-time without ``VALUE=DATE-TIME`` (Apple's iCal writes it;
  RFC 5545 3.8.6.3 wants the parameter; vobject reads it on purpose);
* a DURATION skipping the minutes (``PT1H1S``): vobject writes it so;
* an empty RDATE (``RDATE:``; RFC 5545 3.8.5.2 wants a value): exporters
  write it, both parsers read it as no date (an empty EXDATE icalendar
  cannot read, so it is refused).

Refused although the ABNF's literals are case-insensitive: lower-case
letters in dates and durations (``20260101t100000z``, ``-pt15m``), which
icalendar cannot read; and a second of 60 (3.3.12's leap second), which
neither Python's datetime nor icalendar can hold.

What it does not do: decide anything the parsed object decides (UID, time
zones, DTEND after DTSTART, recurrence rules and their limits: see
``gateway.ical.parse`` and ``gateway.ical.guard``), or check characters XML
cannot carry (``gateway.core.text``).
"""

from __future__ import annotations

import re
from calendar import monthrange
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

# -- content lines (RFC 5545 3.1) --------------------------------------------------

_NEWLINE = re.compile(r"\r?\n")
# iana-token / x-name; "_" tolerated (see the module docstring).
_NAME = r"[A-Za-z0-9_-]+"
# paramtext: SAFE-CHAR (no CONTROL, DQUOTE, ";", ":", ","); quoted-string:
# QSAFE-CHAR (no CONTROL, DQUOTE). TAB is WSP and allowed.
_PARAM_VALUE = r'(?:"[^"\x00-\x08\x0a-\x1f\x7f]*"|[^";:,\x00-\x08\x0a-\x1f\x7f]*)'
_PARAM = rf"({_NAME})=({_PARAM_VALUE}(?:,{_PARAM_VALUE})*)"
_LINE = re.compile(rf"({_NAME})((?:;{_PARAM})*):(.*)", re.DOTALL)
_PARAMS = re.compile(rf";{_PARAM}")
# The name a content line starts with (gateway.ical.read_lines reads it too).
LINE_NAME = re.compile(_NAME)
_COMPONENT_NAME = re.compile(r"[A-Za-z0-9-]+")

_SHOWN = 60  # characters of an offending line quoted in a message


class _Problem(Exception):
    """The first rule the text breaks, as the message for the client."""


def _quote(text: str) -> str:
    return repr(text if len(text) <= _SHOWN else text[:_SHOWN] + "...")


def _unfolded(text: str) -> Iterator[tuple[int, str]]:
    """The content lines of ``text`` unfolded (RFC 5545 3.1), each with the
    number of the line it starts on; blank lines are skipped."""
    current: list[str] | None = None
    start = 0
    for number, raw in enumerate(_NEWLINE.split(text), 1):
        if "\r" in raw:
            raise _Problem(
                f"line {number} holds a carriage return (CR) without a line feed: "
                "content lines end with CRLF (RFC 5545 3.1)"
            )
        if raw[:1] in (" ", "\t"):
            if current is None:
                # icalendar would join it to the line before the blank one,
                # vobject reads it as a line of its own.
                raise _Problem(
                    f"line {number} starts with a space or a tab, so it continues a folded "
                    "line, but no content line comes right before it (RFC 5545 3.1)"
                )
            current.append(raw[1:])
            continue
        if current is not None:
            yield start, "".join(current)
        current, start = ([raw], number) if raw else (None, number)
    if current is not None:
        yield start, "".join(current)


def _not_a_line(number: int, line: str) -> _Problem:
    head = LINE_NAME.match(line)
    if ":" not in line:
        why = "a folded line must start with a space or a tab"
    elif head is None or line[head.end()] not in ";:":
        why = "a property name holds only letters, digits and '-'"
    else:
        why = (
            "parameters are written ;NAME=VALUE[,VALUE], a value holding ';', ':' or ',' "
            "in double quotes, and no double quote inside"
        )
    return _Problem(
        f"line {number} is not an iCalendar content line ({_quote(line)}): {why} (RFC 5545 3.1)"
    )


# -- value types (RFC 5545 3.3) ----------------------------------------------------

_DATE = re.compile(r"(\d{4})(\d{2})(\d{2})")
_DATE_TIME = re.compile(r"(\d{4})(\d{2})(\d{2})T(?:[01]\d|2[0-3])[0-5]\d[0-5]\d(Z?)")
_TIME_PART = r"T(?:\d+H(?:\d+M)?(?:\d+S)?|\d+M(?:\d+S)?|\d+S)"
_DURATION = re.compile(rf"[+-]?P(?:\d+W|\d+D(?:{_TIME_PART})?|{_TIME_PART})")
_UTC_OFFSET = re.compile(r"[+-](?:[01]\d|2[0-3])[0-5]\d(?:[0-5]\d)?")
_INTEGER = re.compile(r"[+-]?\d+")
_FLOAT = r"[+-]?\d+(?:\.\d+)?"
_GEO = re.compile(rf"{_FLOAT};{_FLOAT}")


def _real_day(year: str, month: str, day: str) -> bool:
    # Year 0000 is grammatical (RFC 5545 3.3.4) and, proleptic Gregorian, a
    # leap year like 2000; Python's date cannot hold it, monthrange can judge it.
    if not 1 <= int(month) <= 12:
        return False
    return 1 <= int(day) <= monthrange(int(year) or 2000, int(month))[1]


def _is_date(value: str) -> bool:
    found = _DATE.fullmatch(value)
    return found is not None and _real_day(*found.groups())


def _is_date_time(value: str, utc: bool | None = None) -> bool:
    """``utc``: True wants "Z", False forbids it, None takes either."""
    found = _DATE_TIME.fullmatch(value)
    if found is None or not _real_day(*found.groups()[:3]):
        return False
    return utc is None or (found.group(4) == "Z") == utc


def _is_duration(value: str) -> bool:
    return _DURATION.fullmatch(value) is not None


def _is_period(value: str) -> bool:
    start, slash, end = value.partition("/")
    return bool(slash) and _is_date_time(start) and (_is_date_time(end) or _is_duration(end))


def _each(check: Callable[[str], bool]) -> Callable[[str], bool]:
    """A comma-separated list of values, each passing ``check``."""
    return lambda value: all(check(part) for part in value.split(","))


_DATE_TIME_TEXT = "a date-time such as 20260101T090000Z"
_DATE_TEXT = "a date such as 20260101"
_DURATION_TEXT = "a duration such as PT1H or -P1D (RFC 5545 3.3.6)"
_PERIOD_TEXT = "a period such as 20260101T090000Z/PT1H or 20260101T090000Z/20260101T100000Z"


@dataclass(frozen=True)
class _Type:
    """A value type a property may have: what it takes, said for people."""

    check: Callable[[str], bool]
    text: str


_ANY_DATE_TIME = _Type(_is_date_time, _DATE_TIME_TEXT)
_DATE_OR_DATE_TIME = _Type(lambda v: _is_date(v) or _is_date_time(v), _DATE_TIME_TEXT)
_ONLY_DATE = _Type(_is_date, _DATE_TEXT)
_DATE_TIMES = _Type(_each(_is_date_time), "date-times such as 20260101T090000Z")
_DATES = _Type(_each(_is_date), "dates such as 20260101")
_PERIODS = _Type(_each(_is_period), "periods such as 20260101T090000Z/PT1H")
# An empty RDATE: tolerated (see the module docstring).
_RDATE_TIMES = _Type(lambda v: not v or _each(_is_date_time)(v), _DATE_TIMES.text)
_DURATION_TYPE = _Type(_is_duration, _DURATION_TEXT)
_UTC_DATE_TIME = _Type(
    lambda v: _is_date_time(v, utc=True), "a UTC date-time such as 20260101T090000Z"
)
_LOCAL_DATE_TIME = _Type(
    lambda v: _is_date_time(v, utc=False), "a local date-time such as 19701025T030000, without Z"
)
_TRIGGER_DEFAULT = _Type(
    lambda v: _is_duration(v) or _is_date_time(v),
    "a duration such as -PT15M (or, with VALUE=DATE-TIME, a UTC date-time)",
)
_OFFSET = _Type(lambda v: _UTC_OFFSET.fullmatch(v) is not None, "a UTC offset such as +0100")
_INTEGER_TYPE = _Type(lambda v: _INTEGER.fullmatch(v) is not None, "an integer")
_GEO_TYPE = _Type(lambda v: _GEO.fullmatch(v) is not None, "latitude;longitude such as 52.5;13.4")


@dataclass(frozen=True)
class _Rule:
    """The value types of a property by its VALUE parameter ("" when there
    is none), and the RFC 5545 section that says so."""

    types: dict[str, _Type]
    section: str


def _dated(section: str) -> _Rule:
    # The DATE tolerance without VALUE=DATE: see the module docstring.
    return _Rule({"": _DATE_OR_DATE_TIME, "DATE-TIME": _ANY_DATE_TIME, "DATE": _ONLY_DATE}, section)


def _stamp(section: str) -> _Rule:
    # Local time tolerated (module docstring); year 0000 is grammatical.
    return _Rule({"": _ANY_DATE_TIME, "DATE-TIME": _ANY_DATE_TIME}, section)


def _integer(section: str) -> _Rule:
    return _Rule({"": _INTEGER_TYPE, "INTEGER": _INTEGER_TYPE}, section)


# Property -> value types, anywhere but in a VTIMEZONE's STANDARD/DAYLIGHT.
_RULES: dict[str, _Rule] = {
    "DTSTART": _dated("3.8.2.4"),
    "DTEND": _dated("3.8.2.2"),
    "DUE": _dated("3.8.2.3"),
    "RECURRENCE-ID": _dated("3.8.4.4"),
    "EXDATE": _Rule({"": _DATE_TIMES, "DATE-TIME": _DATE_TIMES, "DATE": _DATES}, "3.8.5.1"),
    "RDATE": _Rule(
        {"": _RDATE_TIMES, "DATE-TIME": _RDATE_TIMES, "DATE": _DATES, "PERIOD": _PERIODS},
        "3.8.5.2",
    ),
    "DTSTAMP": _stamp("3.8.7.2"),
    "CREATED": _stamp("3.8.7.1"),
    "LAST-MODIFIED": _stamp("3.8.7.3"),
    "COMPLETED": _stamp("3.8.2.1"),
    "DURATION": _Rule({"": _DURATION_TYPE, "DURATION": _DURATION_TYPE}, "3.8.2.5"),
    "TRIGGER": _Rule(
        {"": _TRIGGER_DEFAULT, "DURATION": _DURATION_TYPE, "DATE-TIME": _UTC_DATE_TIME},
        "3.8.6.3",
    ),
    "SEQUENCE": _integer("3.8.7.4"),
    "PRIORITY": _integer("3.8.1.9"),
    "PERCENT-COMPLETE": _integer("3.8.1.8"),
    "REPEAT": _integer("3.8.6.2"),
    "GEO": _Rule({"": _GEO_TYPE, "FLOAT": _GEO_TYPE}, "3.8.1.6"),
}
# Inside a VTIMEZONE's STANDARD/DAYLIGHT (RFC 5545 3.6.5): onsets in local time.
_LOCAL_DATE_TIMES = _Type(
    lambda v: not v or _each(lambda w: _is_date_time(w, utc=False))(v),
    "local date-times such as 19701025T030000",
)
_ZONE_RULES: dict[str, _Rule] = {
    "DTSTART": _Rule({"": _LOCAL_DATE_TIME, "DATE-TIME": _LOCAL_DATE_TIME}, "3.6.5, 3.8.2.4"),
    "RDATE": _Rule({"": _LOCAL_DATE_TIMES, "DATE-TIME": _LOCAL_DATE_TIMES}, "3.6.5, 3.8.5.2"),
    "TZOFFSETFROM": _Rule({"": _OFFSET, "UTC-OFFSET": _OFFSET}, "3.8.3.3"),
    "TZOFFSETTO": _Rule({"": _OFFSET, "UTC-OFFSET": _OFFSET}, "3.8.3.4"),
}
_ZONE_PARTS = frozenset({"STANDARD", "DAYLIGHT"})

# "MUST NOT occur more than once" (RFC 5545 3.6.1 eventprop, 3.6.6 alarmc).
_ONCE: dict[str, tuple[frozenset[str], str]] = {
    "VEVENT": (
        frozenset(
            {
                "DTSTAMP",
                "UID",
                "CLASS",
                "CREATED",
                "DESCRIPTION",
                "DTSTART",
                "GEO",
                "LAST-MODIFIED",
                "LOCATION",
                "ORGANIZER",
                "PRIORITY",
                "SEQUENCE",
                "STATUS",
                "SUMMARY",
                "TRANSP",
                "URL",
                "RECURRENCE-ID",
                "DTEND",
                "DURATION",
            }
        ),
        "3.6.1",
    ),
    "VALARM": (
        frozenset({"ACTION", "TRIGGER", "DURATION", "REPEAT", "DESCRIPTION", "SUMMARY"}),
        "3.6.6",
    ),
}
_NO_ONCE: tuple[frozenset[str], str] = (frozenset(), "")


def _value_param(params: str) -> str:
    for found in _PARAMS.finditer(params):
        if found.group(1).upper() == "VALUE":
            return found.group(2).strip('"').upper()
    return ""


def _value_problem(number: int, component: str, name: str, params: str, value: str) -> None:
    rules = _ZONE_RULES if component in _ZONE_PARTS else _RULES
    rule = rules.get(name)
    if rule is None:
        return
    kind = _value_param(params) if params else ""
    where = f"line {number}: {name} in {component}"
    expected = rule.types.get(kind)
    if expected is None:
        allowed = ", ".join(f"VALUE={k}" for k in rule.types if k)
        raise _Problem(
            f"{where} has VALUE={kind}, which it cannot have; it takes {allowed} "
            f"(RFC 5545 {rule.section})"
        )
    if not expected.check(value):
        raise _Problem(f"{where} is {_quote(value)}, not {expected.text} (RFC 5545 {rule.section})")


# -- components (RFC 5545 3.4, 3.6) ------------------------------------------------


@dataclass
class _Open:
    """A component whose END is still to come."""

    name: str
    line: int
    seen: dict[str, int] = field(default_factory=dict)


def _check(text: str) -> None:
    if text.startswith("\ufeff"):
        # Served as sent, it would reach clients whose parsers stop at it.
        raise _Problem(
            "line 1 starts with a byte order mark (U+FEFF), which iCalendar readers "
            "such as vobject cannot read: send UTF-8 without it (RFC 5545 3.1, 3.1.4)"
        )
    stack: list[_Open] = []
    closed = 0  # the line of END:VCALENDAR, once seen
    for number, line in _unfolded(text):
        found = _LINE.fullmatch(line)
        if found is None:
            raise _not_a_line(number, line)
        name, params, value = found.group(1).upper(), found.group(2), found.group(5)
        if closed:
            raise _Problem(
                f"line {number} comes after END:VCALENDAR (line {closed}): a calendar "
                "object holds one VCALENDAR and nothing after it (RFC 5545 3.4, RFC 4791 4.1)"
            )
        if name in ("BEGIN", "END"):
            if _COMPONENT_NAME.fullmatch(value) is None:
                raise _Problem(
                    f"line {number}: {name} {_quote(value)} is not a component name, "
                    "which holds only letters, digits and '-' (RFC 5545 3.4)"
                )
            component = value.upper()
            if name == "BEGIN":
                if not stack and component != "VCALENDAR":
                    raise _Problem(
                        f"line {number} is BEGIN:{value}, but a calendar object starts "
                        "with BEGIN:VCALENDAR (RFC 5545 3.4)"
                    )
                stack.append(_Open(component, number))
                continue
            if not stack or stack[-1].name != component:
                opened = (
                    f"{stack[-1].name} opened on line {stack[-1].line} is still open"
                    if stack
                    else "no component is open"
                )
                raise _Problem(
                    f"line {number} is END:{value}, but {opened}: every BEGIN needs "
                    "its own END (RFC 5545 3.4, 3.6)"
                )
            stack.pop()
            if not stack:
                closed = number
            continue
        if not stack:
            raise _Problem(
                f"line {number} ({_quote(line)}) comes before BEGIN:VCALENDAR (RFC 5545 3.4)"
            )
        current = stack[-1]
        once, section = _ONCE.get(current.name, _NO_ONCE)
        if name in once:
            first = current.seen.setdefault(name, number)
            if first != number:
                raise _Problem(
                    f"line {number}: a second {name} in {current.name} (the first is on "
                    f"line {first}); it may occur only once (RFC 5545 {section})"
                    + (
                        ", or is this a folded line that does not start with a space or a tab?"
                        if found.group(1) != name
                        else ""
                    )
                )
        _value_problem(number, current.name, name, params, value)
    if stack:
        raise _Problem(
            f"{stack[-1].name} opened on line {stack[-1].line} is never closed: "
            f"END:{stack[-1].name} is missing (RFC 5545 3.4, 3.6)"
        )
    if not closed:
        raise _Problem("no BEGIN:VCALENDAR found (RFC 5545 3.4)")


def syntax_problem(text: str) -> str | None:
    """The first way ``text`` (one calendar object as sent) breaks RFC
    5545's grammar, for the client; None when it keeps it."""
    try:
        _check(text)
    except _Problem as problem:
        return str(problem)
    return None
