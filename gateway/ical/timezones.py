"""Time zones: VTIMEZONEs from the tz database (RFC 5545 3.6.5), written
with one observance per transition, and helpers that read zones and values."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, tzinfo
from functools import lru_cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from icalendar import Component, Timezone

from gateway.ical.common import _as_list

# Names the tz database uses for UTC; a DATE-TIME in UTC is written with "Z" and
# needs no VTIMEZONE (RFC 5545 3.2.19).
_UTC_KEYS = frozenset({"UTC", "Etc/UTC", "Etc/Universal", "Etc/Zulu", "Universal", "Zulu"})


@lru_cache(maxsize=512)
def _is_iana(tzid: str) -> bool:
    """Whether ``tzid`` names a zone of the tz database we can describe ourselves."""
    try:
        ZoneInfo(tzid)
        _vtimezone(tzid, 2000, 2001)  # and icalendar can write it
    except (ZoneInfoNotFoundError, ValueError, OSError):
        return False
    return True


@lru_cache(maxsize=256)
def _vtimezone(tzid: str, first_year: int, last_year: int) -> Timezone:
    """A VTIMEZONE for ``tzid`` from the tz database (RFC 5545 3.6.5).

    Only transitions between ``first_year`` and ``last_year`` are listed, which
    keeps objects small; icalendar notes that this is slow, hence the cache.
    Callers must not change the returned component.
    """
    generated = Timezone.from_tzid(
        tzid, first_date=date(first_year, 1, 1), last_date=date(last_year, 1, 1)
    )
    return _one_observance_per_transition(generated)


def _one_observance_per_transition(vtimezone: Timezone) -> Timezone:
    """The same zone with every transition its own STANDARD/DAYLIGHT part.

    icalendar lists later transitions as RDATEs of one observance, which RFC
    5545 3.6.5 allows, but vobject (and so Radicale) ignores those RDATEs and
    would put every summer after the first in winter time. A DTSTART per
    observance reads the same in every parser.
    """
    result = Timezone()
    for name, value in vtimezone.items():
        result[name] = value
    transitions: list[tuple[datetime, Component]] = []
    for observance in vtimezone.subcomponents:
        starts = [observance.decoded("DTSTART")]
        for rdate in _as_list(observance.get("RDATE", [])):
            starts.extend(v.dt for v in rdate.dts)
        for start in starts:
            part = type(observance)()
            part.add("DTSTART", start)
            for name, value in observance.items():
                if name not in ("DTSTART", "RDATE"):
                    part[name] = value
            transitions.append((start, part))
    transitions.sort(key=lambda t: t[0])
    for _, transition in transitions:
        result.add_component(transition)
    return result


@lru_cache(maxsize=256)
def _vtimezone_bytes(tzid: str, first_year: int, last_year: int) -> bytes:
    return bytes(_vtimezone(tzid, first_year, last_year).to_ical())


def _zone_key(tz: tzinfo | None) -> str | None:
    if tz is None:
        return None
    if tz is UTC:
        return "UTC"
    key = getattr(tz, "key", None)
    if isinstance(key, str):
        return "UTC" if key in _UTC_KEYS else key
    return None


def _aware(value: date | datetime, zone: ZoneInfo) -> datetime:
    """An instant for a DTSTART-like value. DATE and floating DATE-TIME values
    have no zone of their own; like RFC 4791 9.9 we read them in the zone of the
    calendar (here: the booking's)."""
    if isinstance(value, datetime):
        return value if value.tzinfo is not None else value.replace(tzinfo=zone)
    return datetime.combine(value, time(), zone)


def _utc(value: datetime) -> datetime:
    return value.astimezone(UTC)


def _listed_years(vtimezone: Component) -> tuple[int, int] | None:
    """The years a VTIMEZONE lists transitions for, or None if its observances
    recur by RRULE (RFC 5545 3.6.5) and so hold for any year."""
    years: list[int] = []
    for observance in vtimezone.subcomponents:
        if "RRULE" in observance:
            return None
        for name in ("DTSTART", "RDATE"):
            for prop in _as_list(observance.get(name, [])):
                values = getattr(prop, "dts", [prop])
                years.extend(v.dt.year for v in values if isinstance(v.dt, date))
    return (min(years), max(years)) if years else None
