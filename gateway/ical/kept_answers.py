"""The attendees' answers a server-side change made, kept through an
organizer's write (RFC 6638 3.2.10, per-attendee data preservation).

An organizer's client that writes with If-Schedule-Tag-Match of the current
schedule tag has not seen what the server changed since the organizer's
last write: the PARTSTAT an attendee's answer set, the SCHEDULE-STATUS of a
delivery. Its text still holds the old values, and storing it as sent would
lose the answers. So, per component (same UID and RECURRENCE-ID in both
texts), each ATTENDEE of the new text that the stored text also has gets
the stored PARTSTAT and SCHEDULE-STATUS back.

Except when the organizer asked again: a component whose time the new text
changed (DTSTART, DTEND, DURATION, DUE or its recurrence) is a new question
to its attendees, as a move through the gateway's own API is
(``BookingService.reschedule``), and the client's PARTSTAT is the one that
counts. SEQUENCE alone does not tell: python-caldav, for one, raises it on
every save, a new title included. An attendee the stored text does not
have is new and keeps what the client wrote.

Not here: whether to keep anything at all (``Precondition.keeps_server_changes``
in ``gateway.core.model``). The text is re-serialized only when something
is kept; otherwise it is returned as sent.
"""

from __future__ import annotations

from typing import Any

from icalendar import Calendar, Component

from gateway.ical.common import _address, _as_list, _parse_calendar

# What the server changes on an organizer's object on its own.
KEPT_PARAMS = ("PARTSTAT", "SCHEDULE-STATUS")

_SCHEDULED = ("VEVENT", "VTODO", "VJOURNAL")
_TIMING = ("DTSTART", "DTEND", "DURATION", "DUE", "RRULE", "RDATE", "EXDATE", "EXRULE")

_Key = tuple[str, str]  # UID, RECURRENCE-ID as written ("" for the master)


def keep_server_answers(stored: str, written: str) -> str:
    """``written`` with the PARTSTAT and SCHEDULE-STATUS each attendee has
    in ``stored`` (see the module docstring); ``written`` itself when there
    is nothing to keep."""
    before = {_key(c): c for c in _components(_parse_calendar(stored))}
    calendar = _parse_calendar(written)
    changed = False
    for component in _components(calendar):
        old = before.get(_key(component))
        if old is None or _timing(component) != _timing(old):
            continue
        kept = {
            _address(str(a)).lower(): a.params
            for a in _as_list(old.get("ATTENDEE", []))
            if _address(str(a))
        }
        for attendee in _as_list(component.get("ATTENDEE", [])):
            params = kept.get(_address(str(attendee)).lower())
            if params is None:
                continue
            for name in KEPT_PARAMS:
                value = params.get(name)
                if value is not None and attendee.params.get(name) != value:
                    attendee.params[name] = value
                    changed = True
    if not changed:
        return written
    return bytes(calendar.to_ical()).decode("utf-8")


def _components(calendar: Calendar) -> list[Component]:
    return [c for c in calendar.subcomponents if c.name in _SCHEDULED]


def _key(component: Component) -> _Key:
    recurrence = component.get("RECURRENCE-ID")
    return (
        str(component.get("UID", "")),
        "" if recurrence is None else str(recurrence.to_ical().decode("utf-8")),
    )


def _timing(component: Component) -> list[tuple[str, list[bytes]]]:
    """The component's time and recurrence as written (values and parameters)."""
    return [(name, [_written(v) for v in _as_list(component.get(name, []))]) for name in _TIMING]


def _written(value: Any) -> bytes:
    params = getattr(value, "params", {})
    described = ";".join(f"{k}={v}" for k, v in sorted(params.items()))
    return described.encode() + b":" + bytes(value.to_ical())
