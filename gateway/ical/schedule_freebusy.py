"""Reading a free-busy request that a scheduling client POSTs to its schedule
outbox (RFC 6638 5, RFC 5546 3.3.2): a VCALENDAR with METHOD:REQUEST and one
VFREEBUSY naming the ORGANIZER, the ATTENDEEs asked about and the span.

What is wrong is an ``InvalidCalendarData`` naming the RFC 6638 precondition:
``valid-calendar-data`` for text that is no iCalendar,
``valid-scheduling-message`` for iCalendar that is no free-busy request,
``recipient-specified`` for a request without an ATTENDEE. DTSTART and DTEND
must be DATE-TIMEs (RFC 5546 3.3.2 wants them in UTC; a floating time, as
python-caldav sends from a naive datetime, is read as UTC). The reply is
``freebusy.render`` with a ``Reply``.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from icalendar import Component

from gateway.core.errors import InvalidCalendarData
from gateway.core.model import TimeSpan
from gateway.core.schedule_freebusy import FreeBusyRequest
from gateway.ical.common import _as_list, _parse_calendar


def _message(text: str) -> InvalidCalendarData:
    return InvalidCalendarData("valid-scheduling-message", text)


def _instant(component: Component, name: str) -> datetime:
    prop = component.get(name)
    if prop is None or isinstance(prop, list):
        raise _message(f"the VFREEBUSY needs exactly one {name}")
    value: Any = getattr(prop, "dt", None)
    if not isinstance(value, datetime):
        raise _message(f"{name} of a free-busy request must be a DATE-TIME (RFC 5546 3.3.2)")
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def parse_freebusy_request(text: str) -> FreeBusyRequest:
    """The request in ``text``; raises ``InvalidCalendarData`` (see above)."""
    try:
        calendar = _parse_calendar(text)
    except InvalidCalendarData:
        raise
    except Exception as exc:
        raise InvalidCalendarData(
            "valid-calendar-data", f"not an iCalendar object: {exc}"
        ) from None
    method = str(calendar.get("METHOD", "")).strip().upper()
    if method != "REQUEST":
        raise _message(f"a free-busy request has METHOD:REQUEST, not {method or 'none'!r}")
    components = [c for c in calendar.subcomponents if c.name != "VTIMEZONE"]
    if len(components) != 1 or components[0].name != "VFREEBUSY":
        raise _message("a free-busy request holds one VFREEBUSY and nothing else")
    freebusy = components[0]
    start, end = _instant(freebusy, "DTSTART"), _instant(freebusy, "DTEND")
    if end <= start:
        raise _message("DTEND of the free-busy request must be after its DTSTART")
    organizers = _as_list(freebusy.get("ORGANIZER", []))
    if len(organizers) != 1 or not str(organizers[0]).strip():
        raise _message("a free-busy request names exactly one ORGANIZER (RFC 5546 3.3.2)")
    attendees: list[str] = []
    for value in _as_list(freebusy.get("ATTENDEE", [])):
        address = str(value).strip()
        if address and address.casefold() not in (a.casefold() for a in attendees):
            attendees.append(address)
    if not attendees:
        raise InvalidCalendarData(
            "recipient-specified", "name at least one ATTENDEE whose busy time you want"
        )
    uid = str(freebusy.get("UID", "")).strip() or f"{uuid.uuid4()}@freebusy.calgateway"
    return FreeBusyRequest(
        uid=uid,
        organizer=str(organizers[0]).strip(),
        attendees=tuple(attendees),
        window=TimeSpan(start, end),
    )
