"""The iTIP REPLY (RFC 5546 3.2.3) a resource sends when it answers an
invitation itself (``gateway.core.resource_invitations``): METHOD:REPLY, one
VEVENT with the organizer's UID and SEQUENCE, ORGANIZER, the one ATTENDEE
answering with its PARTSTAT, and a REQUEST-STATUS per status (RFC 5546 3.6:
"2.0;Success", or why it declined, e.g. "4.0;Event conflict. Date-time is
busy.;<the busy period>").

Only the calendar text; the e-mail around it is ``gateway.mail``'s."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from icalendar import Calendar, Event, vCalAddress
from icalendar.prop import vInline

from gateway.core.model import PartStat, TimeSpan
from gateway.ical.common import PRODID
from gateway.ical.timezones import _utc


def render_reply(
    *,
    uid: str,
    sequence: int,
    organizer: str,
    attendee: str,
    attendee_name: str,
    partstat: PartStat,
    statuses: Sequence[str],
    title: str,
    span: TimeSpan,
    now: datetime,
) -> str:
    """The REPLY text; times in UTC (no VTIMEZONE needed)."""
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    calendar = Calendar()
    calendar.add("prodid", PRODID)
    calendar.add("version", "2.0")
    calendar.add("method", "REPLY")
    event = Event()
    event.add("uid", uid)
    event.add("dtstamp", _utc(now))
    event.add("sequence", sequence)
    event.add("dtstart", _utc(span.start))
    event.add("dtend", _utc(span.end))
    if title:
        event.add("summary", title)
    event.add("organizer", vCalAddress(f"mailto:{organizer}"))
    who = vCalAddress(f"mailto:{attendee}")
    if attendee_name:
        who.params["CN"] = attendee_name
    who.params["PARTSTAT"] = partstat.value
    event.add("attendee", who)
    for status in statuses:
        # Written as is: its ";" separate the code, the description and the
        # data (RFC 5545 3.8.8.3), which a TEXT value would escape.
        event.add("request-status", vInline(status))
    calendar.add_component(event)
    return bytes(calendar.to_ical()).decode("utf-8")
