"""The answer to a CALDAV:free-busy-query (RFC 4791 7.10): one VFREEBUSY
(RFC 5545 3.6.4) with the merged busy periods of a set of objects."""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime

from icalendar import Calendar, FreeBusy, vCalAddress, vPeriod

from gateway.core.model import TimeSpan, merge_spans
from gateway.ical.common import PRODID

BUSY = "BUSY"
TENTATIVE = "BUSY-TENTATIVE"


@dataclass(frozen=True, slots=True)
class Reply:
    """Who a free-busy REPLY is from and to, and the request's UID."""

    uid: str
    organizer: str
    attendee: str


@dataclass(frozen=True, slots=True)
class Busy:
    """One busy stretch of one instance, FBTYPE BUSY or BUSY-TENTATIVE."""

    span: TimeSpan
    tentative: bool


def _subtract(spans: list[TimeSpan], cuts: list[TimeSpan]) -> list[TimeSpan]:
    """``spans`` without the parts ``cuts`` cover (both sorted and merged)."""
    result: list[TimeSpan] = []
    for span in spans:
        start = span.start
        for cut in cuts:
            if cut.end <= start or cut.start >= span.end:
                continue
            if cut.start > start:
                result.append(TimeSpan(start, cut.start))
            start = max(start, cut.end)
        if start < span.end:
            result.append(TimeSpan(start, span.end))
    return result


def periods(busy: Iterable[Busy], window: TimeSpan) -> list[tuple[TimeSpan, str]]:
    """Sorted, merged periods clipped to ``window``. Where a confirmed and a
    tentative instance overlap, the time is BUSY (the stronger claim), so no
    instant is reported twice."""
    window = window.in_utc()
    clipped: dict[bool, list[TimeSpan]] = {True: [], False: []}
    for item in busy:
        span = item.span.in_utc()
        start, end = max(span.start, window.start), min(span.end, window.end)
        if start < end:  # RFC 5545 3.3.9: a period has a positive length
            clipped[item.tentative].append(TimeSpan(start, end))
    confirmed = merge_spans(clipped[False])
    tentative = _subtract(merge_spans(clipped[True]), confirmed)
    found = [(s, BUSY) for s in confirmed] + [(s, TENTATIVE) for s in tentative]
    return sorted(found, key=lambda item: (item[0].start, item[0].end))


def render(
    busy: Iterable[Busy], window: TimeSpan, now: datetime, reply: Reply | None = None
) -> str:
    """RFC 4791 7.10: a VCALENDAR with one VFREEBUSY whose DTSTART/DTEND are the
    query's range and whose FREEBUSY values are UTC periods (RFC 5545 3.8.2.6).
    With ``reply``, the iTIP REPLY to a free-busy request (RFC 5546 3.3.3):
    METHOD:REPLY, the request's UID and ORGANIZER, the one ATTENDEE."""
    window = window.in_utc()
    calendar = Calendar()
    calendar.add("prodid", PRODID)
    calendar.add("version", "2.0")
    component = FreeBusy()
    if reply is None:
        # RFC 5545 3.6.4 requires UID and DTSTAMP (RFC 4791's example leaves UID out).
        component.add("uid", f"{uuid.uuid4()}@freebusy.calgateway")
    else:
        calendar.add("method", "REPLY")
        component.add("uid", reply.uid)
        component.add("organizer", vCalAddress(reply.organizer))
        component.add("attendee", vCalAddress(reply.attendee))
    component.add("dtstamp", now.astimezone(UTC).replace(microsecond=0))
    component.add("dtstart", window.start)
    component.add("dtend", window.end)
    for span, fbtype in periods(busy, window):
        value = vPeriod((span.start, span.end))
        value.params.pop("VALUE", None)  # PERIOD is FREEBUSY's default type
        component.add("freebusy", value, parameters={"FBTYPE": fbtype})
    calendar.add_component(component)
    return bytes(calendar.to_ical()).decode("utf-8")
