"""Reading a client's calendar object (CalDAV PUT): validation per RFC 4791
4.1 and 5.3.2.1, and the fields the gateway needs (``ParsedObject``).

Every problem is reported as ``InvalidCalendarData`` naming the precondition
the object fails; no other exception leaves ``parse_object``. Objects beyond
the ``limits`` settings (``gateway.ical.limits``) raise its subclass
``RecurrenceLimit``, which CalDAV answers with 403.

The text first passes RFC 5545's grammar (``gateway.ical.syntax``): what is
stored is served as sent and must read in every client's parser. After that,
a value icalendar cannot read refuses the object only in the properties the
gateway reads (``READ_PROPERTIES``); any other is kept as sent (a year-0000
CREATED is grammatical, RFC 5545 3.3.4, though Python cannot hold it).
"""

from __future__ import annotations

import warnings
from collections.abc import Iterable
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from icalendar import Calendar, Component
from icalendar.prop import vCalAddress
from icalendar.timezone.windows_to_olson import WINDOWS_TO_OLSON

from gateway.core.errors import ExpansionLimit, InvalidCalendarData, RecurrenceLimit
from gateway.core.model import (
    FAR_FUTURE,
    Attendee,
    BookingStatus,
    Override,
    ParsedObject,
    PartStat,
    Recurrence,
    Scheduling,
    TimeSpan,
)
from gateway.ical.common import _address, _as_list
from gateway.ical.guard import check_events, check_text
from gateway.ical.known_zones import split_known_zones
from gateway.ical.limits import RecurrenceLimits, judge_instances
from gateway.ical.read_lines import lines_read
from gateway.ical.syntax import syntax_problem
from gateway.ical.timezones import _aware, _zone_key
from gateway.ical.zone_cache import fresh_zones

VALID_DATA = "valid-calendar-data"
VALID_OBJECT = "valid-calendar-object-resource"
SUPPORTED_COMPONENT = "supported-calendar-component"

# A series running past this year is indexed as unbounded (FAR_FUTURE):
# expanding it further buys nothing.
_LAST_YEAR = 2200
_EARLIEST = datetime.min.replace(tzinfo=UTC)

# Properties whose TZID parameter must name a zone we can resolve.
_ZONED = ("DTSTART", "DTEND", "RECURRENCE-ID", "EXDATE", "RDATE")

_PARTSTAT = {p.value: p for p in PartStat}


def _fail(precondition: str, message: str) -> InvalidCalendarData:
    return InvalidCalendarData(precondition, message)


def parse_object(
    ics: str, default_timezone: str, limits: RecurrenceLimits | None = None
) -> ParsedObject:
    """Validate ``ics`` as one calendar object resource and read its fields.

    Floating and all-day values are read in ``default_timezone`` (an IANA
    name; a wrong one is the caller's bug and raises ``ValueError``).
    ``limits`` are the ``limits`` settings (their defaults when None)."""
    try:
        zone = ZoneInfo(default_timezone)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ValueError(f"default_timezone {default_timezone!r} is not a time zone") from exc
    try:
        return _parse(ics, zone, default_timezone, limits or RecurrenceLimits())
    except InvalidCalendarData:
        raise
    except Exception as exc:  # whatever the library trips over in odd input
        raise _fail(VALID_DATA, f"cannot read the calendar data ({exc})") from exc


# -- structure ---------------------------------------------------------------------


def _read_calendar(ics: str, limits: RecurrenceLimits) -> tuple[Calendar, tuple[str, ...]]:
    """The object's VCALENDAR, and the TZIDs of the VTIMEZONEs of tz-database
    zones it was read without (``gateway.ical.known_zones``)."""
    if not ics.strip():
        raise _fail(VALID_DATA, "the body is empty, expected an iCalendar object")
    # Before icalendar parses: it expands VTIMEZONE rules while it parses,
    # and thousands of overrides take seconds.
    check_text(ics, limits)
    # RFC 5545's grammar, on the text as sent: what icalendar reads leniently
    # but other client stacks cannot is refused here, line number and all.
    problem = syntax_problem(ics)
    if problem is not None:
        raise _fail(VALID_DATA, problem)
    # The VTIMEZONEs of tz-database zones are read once per distinct block
    # (gateway.ical.known_zones); their TZIDs are all the rest needs of them.
    text, known_zones = split_known_zones(ics.lstrip("\ufeff"))
    # Only the lines of what is read below (gateway.ical.read_lines); the
    # rest was judged by the grammar check alone.
    text = lines_read(text, READ_PROPERTIES)
    fresh_zones()  # this object's VTIMEZONEs only (gateway.ical.zone_cache)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            parsed = Calendar.from_ical(text, multiple=True)
    except Exception as exc:
        raise _fail(VALID_DATA, f"not valid iCalendar data: {exc}") from exc
    calendars = _as_list(parsed)
    if len(calendars) != 1 or calendars[0].name != "VCALENDAR":
        names = ", ".join(c.name for c in calendars) or "nothing"
        raise _fail(VALID_DATA, f"expected exactly one VCALENDAR, found {names}")
    calendar: Calendar = calendars[0]
    return calendar, known_zones


# The properties the gateway reads from a stored object, parsed by icalendar
# (a PUT's parse gives icalendar only these lines, gateway.ical.read_lines):
# this module (the booking's fields), expand/filters/query (times, recurrence,
# alarms, RFC 4791 9.9), codec and itip (render, invitations), the feed (its
# own reading of the same time and recurrence lines), and the VTIMEZONE parts
# icalendar builds zones from. google_bridge reads the Booking only.
READ_PROPERTIES = frozenset(
    {
        # VCALENDAR
        "METHOD",
        # recurring_ical_events refuses to expand a calendar not Gregorian
        "CALSCALE",
        "X-WR-TIMEZONE",
        # VEVENT
        "UID",
        "DTSTART",
        "DTEND",
        "DURATION",
        "RRULE",
        "RDATE",
        "EXDATE",
        "EXRULE",
        "RECURRENCE-ID",
        "SUMMARY",
        "DESCRIPTION",
        "LOCATION",
        "ATTENDEE",
        "ORGANIZER",
        "STATUS",
        "TRANSP",
        "SEQUENCE",
        # VALARM
        "TRIGGER",
        "REPEAT",
        # VTIMEZONE and its STANDARD/DAYLIGHT parts
        "TZID",
        "TZOFFSETFROM",
        "TZOFFSETTO",
    }
)


def _check_broken(component: Component) -> None:
    """Refuse what icalendar could not read of the properties the gateway
    reads. Any other property was judged by ``gateway.ical.syntax`` alone and
    is kept as sent: a CREATED or DTSTAMP in year 0000 is grammatical (RFC
    5545 3.3.4) though Python's datetime cannot hold it."""
    for comp in component.walk():
        for name, error in comp.errors:
            if name is None:
                raise _fail(VALID_DATA, f"{comp.name} has a line that cannot be read: {error}")
            if name.upper() in READ_PROPERTIES:
                raise _fail(VALID_DATA, f"{comp.name} has an invalid {name} property: {error}")


def _events(calendar: Calendar) -> list[Component]:
    events: list[Component] = []
    for component in calendar.subcomponents:
        if component.name == "VTIMEZONE":
            continue
        if component.name != "VEVENT":
            raise _fail(
                SUPPORTED_COMPONENT,
                f"{component.name} components cannot be stored here, "
                "this calendar only holds events (VEVENT)",
            )
        events.append(component)
    if not events:
        raise _fail(VALID_OBJECT, "the calendar holds no event (VEVENT)")
    return events


def _uid(events: list[Component]) -> str:
    uids = set()
    for event in events:
        uid = str(_single(event, "UID")).strip() if "UID" in event else ""
        if not uid:
            raise _fail(VALID_OBJECT, "an event has no UID property")
        uids.add(uid)
    if len(uids) > 1:
        raise _fail(
            VALID_OBJECT,
            "all components of a calendar object must share one UID, found "
            + ", ".join(sorted(uids)),
        )
    return uids.pop()


def _recurrence_key(event: Component) -> str:
    return str(_single(event, "RECURRENCE-ID").to_ical(), "utf-8", "replace")


def _split(events: list[Component]) -> tuple[Component | None, list[Component]]:
    masters = [e for e in events if "RECURRENCE-ID" not in e]
    overrides = [e for e in events if "RECURRENCE-ID" in e]
    if len(masters) > 1:
        raise _fail(
            VALID_OBJECT,
            f"{len(masters)} events without RECURRENCE-ID share one UID, only one may",
        )
    keys = [_recurrence_key(e) for e in overrides]
    if len(set(keys)) != len(keys):
        raise _fail(VALID_OBJECT, "two events override the same RECURRENCE-ID")
    return (masters[0] if masters else None), overrides


# -- times -------------------------------------------------------------------------


def _known_tzids(calendar: Calendar, read_apart: tuple[str, ...]) -> set[str]:
    return {str(tz.get("TZID", "")) for tz in calendar.walk("VTIMEZONE")}.union(read_apart)


def _check_zones(event: Component, known: set[str]) -> None:
    """A TZID must be a zone icalendar resolved to the tz database, or have its
    VTIMEZONE in this object (RFC 5545 3.2.19). icalendar leaves an unknown one
    floating, so the value alone does not tell (and each parse sees only its
    own VTIMEZONEs: gateway.ical.zone_cache)."""
    for name in _ZONED:
        for prop in _as_list(event.get(name, [])):
            params = getattr(prop, "params", {})
            tzid = params.get("TZID") if params else None
            if not tzid or str(tzid) in known:
                continue
            values = [v.dt for v in getattr(prop, "dts", [prop])]
            for value in values:
                if isinstance(value, tuple):  # a PERIOD
                    value = value[0]
                if isinstance(value, datetime) and not isinstance(value.tzinfo, ZoneInfo):
                    raise _fail(
                        VALID_DATA,
                        f"{name} uses time zone {tzid!r}, which is neither a known "
                        "time zone nor defined by a VTIMEZONE in the object",
                    )


def _single(event: Component, name: str) -> Any:
    # A second UID, DTSTART, DTEND, DURATION or RECURRENCE-ID in a VEVENT was
    # refused on the text (gateway.ical.syntax, RFC 5545 3.6.1) before
    # icalendar parsed it; the instances recurring_ical_events copies have one.
    prop = event[name]
    return prop[0] if isinstance(prop, list) else prop


def _value(event: Component, name: str) -> date | datetime:
    value = _single(event, name).dt
    if not isinstance(value, date):
        raise _fail(VALID_DATA, f"{name} must be a DATE or DATE-TIME")
    return value


def _times(event: Component, zone: ZoneInfo) -> tuple[date | datetime, datetime, datetime]:
    """DTSTART as written, and the first occurrence as aware datetimes."""
    if "DTSTART" not in event:
        raise _fail(VALID_DATA, "an event has no DTSTART")
    raw_start = _value(event, "DTSTART")
    start = _aware(raw_start, zone)
    is_date = not isinstance(raw_start, datetime)
    if "DTEND" in event and "DURATION" in event:
        raise _fail(VALID_DATA, "an event has both DTEND and DURATION")
    if "DTEND" in event:
        raw_end = _value(event, "DTEND")
        if is_date != (not isinstance(raw_end, datetime)):
            raise _fail(VALID_DATA, "DTEND must have the same value type as DTSTART")
        end = _aware(raw_end, zone)
        if end < start:
            raise _fail(VALID_DATA, "DTEND is before DTSTART")
    elif "DURATION" in event:
        duration = _single(event, "DURATION").dt
        if not isinstance(duration, timedelta):
            raise _fail(VALID_DATA, "DURATION must be a duration")
        if duration < timedelta(0):
            raise _fail(VALID_DATA, "DURATION is negative")
        # Nominal days keep the wall-clock time across DST changes (RFC 5545 3.3.6).
        end = _aware(_add(raw_start, duration, zone), zone)
    else:
        # RFC 5545 3.6.1: a DATE lasts the day, a DATE-TIME is an instant.
        end = _aware(raw_start + timedelta(days=1), zone) if is_date else start
    return raw_start, start, end


def _add(value: date | datetime, duration: timedelta, zone: ZoneInfo) -> date | datetime:
    if not isinstance(value, datetime):
        if duration.seconds == 0:
            return value + duration
        return _aware(value, zone) + duration
    return value + duration


def _iana(raw_start: date | datetime, event: Component, default: str) -> str:
    if not isinstance(raw_start, datetime) or raw_start.tzinfo is None:
        return default
    key = _zone_key(raw_start.tzinfo)
    if key is not None:
        return key
    # A zone built from the object's VTIMEZONE: its TZID may still name one.
    tzid = str(event["DTSTART"].params.get("TZID", "")).strip("/")
    for candidate in (tzid, WINDOWS_TO_OLSON.get(tzid, "")):
        if candidate:
            try:
                return _zone_key(ZoneInfo(candidate)) or default
            except (ZoneInfoNotFoundError, ValueError, OSError):
                continue
    return default


# -- span --------------------------------------------------------------------------


def _rrules(event: Component) -> list[Any]:
    return [r for r in _as_list(event.get("RRULE", [])) if r]


def _unbounded(event: Component) -> bool:
    return any("UNTIL" not in rrule and "COUNT" not in rrule for rrule in _rrules(event))


def _span(
    calendar: Calendar,
    master: Component | None,
    events: Iterable[tuple[datetime, datetime]],
    uid: str,
    zone: ZoneInfo,
    limits: RecurrenceLimits,
) -> TimeSpan:
    """First start to last end over all occurrences, in UTC.

    A bounded series is walked whole, within the ``limits`` budget: more
    instances than ``limits.max_instances``, or more than the budget can
    count, and the object is refused (``RecurrenceLimit``)."""
    # Imported here: expand reads event times with this module.
    from gateway.ical.expand import Loaded, event_span

    starts_ends = list(events)
    first = min(s for s, _ in starts_ends)
    last = max(e for _, e in starts_ends)
    if master is not None and _unbounded(master):
        return TimeSpan(first.astimezone(UTC), FAR_FUTURE)
    loaded = Loaded(calendar, zone, limits)
    count = 0
    try:
        with loaded.session(uid):
            whole = TimeSpan(_EARLIEST, FAR_FUTURE)
            for instance in loaded.instances("VEVENT", whole, at_once=True):
                span = event_span(instance.component, zone)
                if span is None:
                    continue
                count += 1
                if span.start.year > _LAST_YEAR:
                    return TimeSpan(first.astimezone(UTC), FAR_FUTURE)
                first, last = min(first, span.start), max(last, span.end)
    except ExpansionLimit as exc:
        counted = None if count < limits.max_instances else count + 1
        refusal = judge_instances(uid, counted, limits)
        assert refusal is not None
        raise RecurrenceLimit(refusal.precondition, refusal.message) from exc
    except InvalidCalendarData:
        raise
    except Exception as exc:
        raise _fail(VALID_DATA, f"the recurrence cannot be expanded ({exc})") from exc
    if last.year > _LAST_YEAR:
        return TimeSpan(first.astimezone(UTC), FAR_FUTURE)
    return TimeSpan(first.astimezone(UTC), last.astimezone(UTC))


# -- fields ------------------------------------------------------------------------


def _text(event: Component, name: str) -> str:
    value = event.get(name)
    if isinstance(value, list):
        value = value[0] if value else ""
    return str(value) if value is not None else ""


def _attendees(event: Component) -> tuple[Attendee, ...]:
    result: list[Attendee] = []
    for prop in _as_list(event.get("ATTENDEE", [])):
        email = _address(str(prop))
        if not email:
            continue
        params = prop.params if isinstance(prop, vCalAddress) else {}
        partstat = _PARTSTAT.get(str(params.get("PARTSTAT", "")).upper(), PartStat.NEEDS_ACTION)
        result.append(Attendee(email=email, name=str(params.get("CN", "")), partstat=partstat))
    return tuple(result)


def _scheduling(event: Component) -> Scheduling:
    """ORGANIZER and the attendees whose SCHEDULE-AGENT (RFC 6638 7.1) is
    CLIENT or NONE; a value the server does not know counts as SERVER, as
    7.1 asks of a server that supports the parameter."""
    organizer = event.get("ORGANIZER")
    if isinstance(organizer, list):
        organizer = organizer[0] if organizer else None
    by_client: set[str] = set()
    for prop in _as_list(event.get("ATTENDEE", [])):
        params = prop.params if isinstance(prop, vCalAddress) else {}
        email = _address(str(prop))
        if email and str(params.get("SCHEDULE-AGENT", "")).upper() in ("CLIENT", "NONE"):
            by_client.add(email)
    return Scheduling(
        organizer=_address(str(organizer)) if organizer is not None else "",
        by_client=frozenset(by_client),
    )


def _occurrence_id(value: date | datetime, zone: ZoneInfo) -> str:
    """An occurrence's name as ``Override.recurrence_id`` has it: ISO 8601
    in UTC, or the DATE of an all-day series."""
    if not isinstance(value, datetime):
        return value.isoformat()
    return _aware(value, zone).astimezone(UTC).isoformat()


def _recurrence(master: Component | None, overrides: list[Component], zone: ZoneInfo) -> Recurrence:
    """The series as a comparable value (``Recurrence``)."""
    rules: list[str] = []
    exdates: set[str] = set()
    if master is not None:
        for name in ("RRULE", "RDATE", "EXRULE"):
            for prop in _as_list(master.get(name, [])):
                rules.append(str(master.content_line(name, prop)))
        for prop in _as_list(master.get("EXDATE", [])):
            exdates.update(_occurrence_id(d.dt, zone) for d in getattr(prop, "dts", []))
    found = []
    for event in overrides:
        _, start, end = _times(event, zone)
        rid = _occurrence_id(_single(event, "RECURRENCE-ID").dt, zone)
        found.append(Override(rid, start.astimezone(UTC), end.astimezone(UTC), _status(event)))
    return Recurrence(
        rules=tuple(rules),
        exdates=frozenset(exdates),
        overrides=tuple(sorted(found, key=lambda o: o.recurrence_id)),
    )


def _status(event: Component) -> BookingStatus:
    value = _text(event, "STATUS").strip().upper()
    if value == "CANCELLED":
        return BookingStatus.CANCELLED
    if value == "TENTATIVE":
        return BookingStatus.TENTATIVE
    return BookingStatus.CONFIRMED


def _sequence(event: Component) -> int:
    value = event.get("SEQUENCE", 0)
    try:
        return int(value)
    except (TypeError, ValueError) as exc:
        raise _fail(VALID_DATA, f"SEQUENCE must be an integer, got {value!r}") from exc


# -- the whole ---------------------------------------------------------------------


def _parse(
    ics: str, zone: ZoneInfo, default_timezone: str, limits: RecurrenceLimits
) -> ParsedObject:
    calendar, known_zones = _read_calendar(ics, limits)
    _check_broken(calendar)
    if "METHOD" in calendar:
        raise _fail(
            VALID_OBJECT,
            "a stored calendar object must not have a METHOD property (RFC 4791 4.1); "
            "send scheduling messages another way",
        )
    events = _events(calendar)
    uid = _uid(events)
    master, overrides = _split(events)
    check_events(events, zone, limits)
    known = _known_tzids(calendar, known_zones)
    times: list[tuple[datetime, datetime]] = []
    primary: tuple[Component, date | datetime, datetime, datetime] | None = None
    for event in events:
        _check_zones(event, known)
        raw, start, end = _times(event, zone)
        times.append((start, end))
        if event is master or (master is None and (primary is None or start < primary[2])):
            primary = (event, raw, start, end)
    if primary is None:  # pragma: no cover - events is never empty
        raise _fail(VALID_OBJECT, "the calendar holds no event (VEVENT)")
    event, raw_start, start, end = primary
    recurring = bool(overrides) or (master is not None and ("RRULE" in master or "RDATE" in master))
    span = (
        _span(calendar, master, times, uid, zone, limits)
        if recurring
        else TimeSpan(start, end).in_utc()
    )
    timezone = _iana(raw_start, event, default_timezone)
    local = ZoneInfo(timezone)
    return ParsedObject(
        uid=uid,
        component="VEVENT",
        title=_text(event, "SUMMARY"),
        start=start.astimezone(local),
        end=end.astimezone(local),
        timezone=timezone,
        span=span,
        description=_text(event, "DESCRIPTION"),
        location=_text(event, "LOCATION"),
        attendees=_attendees(event),
        status=_status(event),
        transparent=_text(event, "TRANSP").strip().upper() == "TRANSPARENT",
        sequence=_sequence(event),
        recurring=recurring,
        scheduling=replace(_scheduling(event), recurrence=_recurrence(master, overrides, zone)),
    )
