"""The calendar user type (RFC 5545 3.2.3 CUTYPE) of each attendee of a
stored calendar object: whether an invited resource's address is asked as
a room or a person (``gateway.core.resource_invitations`` decides what that
means)."""

from __future__ import annotations

from icalendar import vCalAddress

from gateway.ical.common import _address, _as_list, _parse_calendar


def calendar_user_types(ics: str) -> dict[str, str]:
    """Attendee address (case folded) -> its CUTYPE (upper case, "" when
    none) in the first VEVENT of the object that names it."""
    types: dict[str, str] = {}
    for event in _parse_calendar(ics).walk("VEVENT"):
        for prop in _as_list(event.get("ATTENDEE", [])):
            params = prop.params if isinstance(prop, vCalAddress) else {}
            email = _address(str(prop)).casefold()
            if email:
                types.setdefault(email, str(params.get("CUTYPE", "")).upper())
    return types
