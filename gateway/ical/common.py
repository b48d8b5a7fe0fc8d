"""What the codec, the zone code and the feed share: the product identifier
and reading icalendar's parsed form."""

from __future__ import annotations

import warnings
from typing import Any

from icalendar import Calendar

from gateway.ical.zone_cache import fresh_zones

PRODID = "-//calgateway//calgateway 0.1//EN"


def _parse_calendar(text: str) -> Calendar:
    """The first VCALENDAR of ``text`` (a stored object holds exactly one).

    Raises ``RecurrenceLimit`` for a VTIMEZONE rule that would stall
    icalendar's parser (``gateway.ical.guard.check_zones``)."""
    # Imported here: the guard reads zones with modules that import this one.
    from gateway.ical.guard import check_zones

    check_zones(text)
    fresh_zones()  # this text's VTIMEZONEs only (gateway.ical.zone_cache)
    with warnings.catch_warnings():
        # icalendar warns when it guesses an Olson name from a "globally unique"
        # TZID (RFC 5545 3.2.19); the guess is what we want, the noise is not.
        warnings.simplefilter("ignore")
        parsed = Calendar.from_ical(text)
    if isinstance(parsed, list):  # pragma: no cover - only with multiple=True
        if not parsed:
            raise ValueError("no VCALENDAR")
        return parsed[0]
    return parsed


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def _address(value: str) -> str:
    """An e-mail address from a CAL-ADDRESS value (RFC 5545 3.3.3): ``mailto:``
    (any case) and surrounding blanks removed, the address's own case kept."""
    address = value.strip()
    if address.lower().startswith("mailto:"):
        address = address[len("mailto:") :]
    return address.strip()


def _reason(exc: BaseException) -> str:
    """A stored object's data problem for one log line that names the object:
    a traceback would say nothing more, and would come on every query that
    meets the object."""
    return f"{type(exc).__name__}: {exc}"
