"""iTIP (RFC 5546) messages: the REQUEST or CANCEL the organizer sends for a
booking, written from the stored calendar object, and the attendees' REPLY
read back into an ``ItipReply``.

The e-mail around them (iMIP, RFC 6047) is ``gateway.mail``'s business; this
module only produces and reads the calendar text."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from datetime import UTC, date, datetime, tzinfo
from typing import Any
from zoneinfo import ZoneInfo

from icalendar import Calendar, Component, Event, Timezone, vCalAddress
from icalendar.timezone.windows_to_olson import WINDOWS_TO_OLSON

from gateway.core.invitations import InvalidReply, InvitationKind, ItipReply
from gateway.core.model import (
    FAR_FUTURE,
    Attendee,
    BookingStatus,
    CalendarObject,
    PartStat,
    Resource,
)
from gateway.ical.codec import _master_event, _replace
from gateway.ical.common import PRODID, _address, _as_list, _parse_calendar
from gateway.ical.parse import _occurrence_id, _times
from gateway.ical.timezones import _is_iana, _utc, _vtimezone

# Parameters that belong to CalDAV scheduling inside a store (RFC 6638
# section 7) and mean nothing to, or mislead, the recipient of an iTIP message.
_STORE_ONLY_PARAMS = ("SCHEDULE-AGENT", "SCHEDULE-STATUS", "SCHEDULE-FORCE-SEND")

_PARTSTAT = {p.value: p for p in PartStat}


# -- REQUEST / CANCEL ------------------------------------------------------------------


def render_itip(
    obj: CalendarObject,
    resource: Resource,
    kind: InvitationKind,
    organizer_email: str,
    now: datetime,
    recurrence_id: str = "",
) -> str:
    """The iTIP message (RFC 5546 3.2.2 REQUEST or 3.2.5 CANCEL) telling the
    booking's attendees about ``obj`` as stored. ``recurrence_id`` (a
    CANCEL only): the one occurrence of the series cancelled, named as
    ``Override.recurrence_id`` names it (``occurrence_event``).

    The stored text is the starting point, so what a CalDAV client wrote
    (X- properties, overridden occurrences, its own VTIMEZONEs) reaches the
    attendees; VALARMs do not, as the organizer's reminders are not theirs.
    ORGANIZER becomes ``organizer_email`` (CN: the resource's name), an address
    the gateway owns, so that replies come back to the gateway."""
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    booking = obj.booking
    if kind is InvitationKind.REQUEST and booking.status is BookingStatus.CANCELLED:
        raise ValueError(f"booking {booking.id!r} is cancelled: send a CANCEL, not a REQUEST")
    calendar = _parse_calendar(obj.ics)
    master = _master_event(calendar, booking.uid)
    if master is None:
        raise ValueError(f"the stored object of booking {booking.id!r} has no VEVENT")
    _replace(calendar, "PRODID", PRODID)
    _replace(calendar, "VERSION", "2.0")
    # RFC 5546 3.1 / RFC 6047 2.4: METHOD says what the message is for; the
    # MIME part repeats it as its method= parameter.
    _replace(calendar, "METHOD", kind.value)
    if recurrence_id and kind is not InvitationKind.CANCEL:
        raise ValueError("only a CANCEL is written for one occurrence")
    if recurrence_id:
        # RFC 5546 3.2.5: a CANCEL with RECURRENCE-ID cancels that occurrence.
        events: list[Component] = [
            occurrence_event(obj, recurrence_id, resource.timezone, calendar)
        ]
    elif kind is InvitationKind.CANCEL:
        # RFC 5546 3.2.5: a CANCEL without RECURRENCE-ID cancels every
        # occurrence, overridden ones included, so only the master is sent.
        events = [master]
    else:
        # RFC 5546 3.2.2: a REQUEST for a series carries the master and its
        # overridden occurrences (same UID) together.
        events = [
            c
            for c in calendar.subcomponents
            if c.name == "VEVENT" and str(c.get("UID", "")) == booking.uid
        ] or [master]
    for event in events:
        _prepare(event, obj, kind, is_master=event is master, now=now)
        _replace(event, "ORGANIZER", _organizer(organizer_email, resource))
    own_zones = {str(c.get("TZID", "")): c for c in calendar.subcomponents if c.name == "VTIMEZONE"}
    # VTIMEZONEs first, so that readers meet each zone before its use.
    calendar.subcomponents = [*_timezones(events, own_zones, obj), *events]
    return bytes(calendar.to_ical()).decode("utf-8")


def _prepare(
    event: Component,
    obj: CalendarObject,
    kind: InvitationKind,
    *,
    is_master: bool,
    now: datetime,
) -> None:
    booking = obj.booking
    event.subcomponents = [c for c in event.subcomponents if c.name != "VALARM"]
    # RFC 5546 2.1.5 / RFC 5545 3.8.7.2: in a message with METHOD, DTSTAMP is
    # when the message was made, in UTC.
    _replace(event, "DTSTAMP", _utc(now))
    sequence = booking.sequence
    if not is_master:
        # An overridden occurrence may have been revised more often than the
        # series (RFC 5546 2.1.4); its SEQUENCE must never go backwards.
        sequence = max(sequence, _int(event.get("SEQUENCE", 0)))
    _replace(event, "SEQUENCE", sequence)
    previous = {
        _address(str(a)).casefold(): a
        for a in _as_list(event.get("ATTENDEE", []))
        if isinstance(a, vCalAddress)
    }
    event.pop("ATTENDEE", None)
    # The gateway keeps one attendee list per booking; every component of the
    # message lists the same people.
    for attendee in booking.attendees:
        event.add("ATTENDEE", _attendee(attendee, previous.get(attendee.email.casefold()), kind))
    if kind is InvitationKind.CANCEL:
        _replace(event, "STATUS", "CANCELLED")


def occurrence_event(
    obj: CalendarObject, recurrence_id: str, default_timezone: str, calendar: Calendar | None = None
) -> Component:
    """The VEVENT of one occurrence of ``obj``'s series: its override when the
    text has one, else the master's properties for that occurrence
    (RECURRENCE-ID, DTSTART and DTEND or DURATION moved to it, no rules).
    ``recurrence_id``: ISO text in UTC, or a DATE (``Override``); floating
    times are read in ``default_timezone``. Raises ``ValueError`` when the
    text has no such series."""
    calendar = calendar if calendar is not None else _parse_calendar(obj.ics)
    zone = ZoneInfo(default_timezone)
    uid = obj.booking.uid
    for event in calendar.walk("VEVENT"):
        if str(event.get("UID", "")) != uid or "RECURRENCE-ID" not in event:
            continue
        if _occurrence_id(event.decoded("RECURRENCE-ID"), zone) == recurrence_id:
            return event
    master = _master_event(calendar, uid)
    if master is None or "RECURRENCE-ID" in master:
        raise ValueError(f"booking {obj.booking.id!r} has no series")
    event = Event()
    for name, value in master.property_items(recursive=False, sorted=False):
        if name.upper() not in _SERIES_ONLY:
            event.add(name, value, encode=False)
    event.subcomponents = list(master.subcomponents)
    first = master.decoded("DTSTART")
    start = _occurrence_start(recurrence_id, first, zone)
    _replace(event, "RECURRENCE-ID", start)
    _replace(event, "DTSTART", start)
    if "DTEND" in master:
        _replace(event, "DTEND", start + (master.decoded("DTEND") - first))
    return event


# Properties that make a VEVENT a series; an occurrence has none of them.
# (BEGIN/END, and the times the occurrence gets, are written anew.)
_SERIES_ONLY = frozenset({"BEGIN", "END", "RRULE", "RDATE", "EXRULE", "EXDATE", "DTSTART", "DTEND"})


def _occurrence_start(
    recurrence_id: str, first: date | datetime, zone: ZoneInfo
) -> date | datetime:
    """The occurrence named ``recurrence_id`` written like the series'
    DTSTART ``first``: a DATE, a time in its zone, or a floating time."""
    if not isinstance(first, datetime):
        return date.fromisoformat(recurrence_id[:10])
    instant = datetime.fromisoformat(recurrence_id)
    if first.tzinfo is None:
        return instant.astimezone(zone).replace(tzinfo=None)
    return instant.astimezone(first.tzinfo)


def occurrence_times(
    obj: CalendarObject, recurrence_id: str, default_timezone: str
) -> tuple[datetime, datetime]:
    """When one occurrence of ``obj``'s series is (``occurrence_event``), as
    aware datetimes (a DATE from midnight in ``default_timezone``)."""
    _, start, end = _times(
        occurrence_event(obj, recurrence_id, default_timezone), ZoneInfo(default_timezone)
    )
    return start, end


def _organizer(email: str, resource: Resource) -> vCalAddress:
    # Nothing of the stored ORGANIZER is kept: SENT-BY or SCHEDULE-AGENT
    # written for the resource's own address would be wrong for this one.
    organizer = vCalAddress(f"mailto:{email}")
    organizer.params["CN"] = resource.name
    return organizer


def _attendee(
    attendee: Attendee, previous: vCalAddress | None, kind: InvitationKind
) -> vCalAddress:
    address = vCalAddress(f"mailto:{attendee.email}")
    if previous is not None:
        # Keep what a client said about the person (CUTYPE, LANGUAGE, ROLE...).
        address.params.update(
            {k: v for k, v in previous.params.items() if k.upper() not in _STORE_ONLY_PARAMS}
        )
    if attendee.name:
        address.params["CN"] = attendee.name
    # RFC 5545 3.2.16 / 3.2.12 / 3.2.17: bookers are required participants;
    # a REQUEST asks them to answer, a CANCEL expects no answer (RFC 5546 3.2.5).
    address.params.setdefault("ROLE", "REQ-PARTICIPANT")
    address.params["PARTSTAT"] = attendee.partstat.value
    address.params["RSVP"] = "TRUE" if kind is InvitationKind.REQUEST else "FALSE"
    return address


def _int(value: Any) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        return 0


# -- VTIMEZONEs -------------------------------------------------------------------------


def _tzids(events: Sequence[Component]) -> list[str]:
    """Every TZID parameter the events use, in first-use order."""
    seen: dict[str, None] = {}
    for event in events:
        for _name, value in event.property_items(sorted=False):
            params = getattr(value, "params", None)
            tzid = params.get("TZID") if params else None
            if tzid:
                seen.setdefault(str(tzid), None)
    return list(seen)


def _years(obj: CalendarObject) -> tuple[int, int]:
    """The years a generated VTIMEZONE covers: the object's whole span (a long
    stretch for an endless series), and a year on either side for local times
    near New Year and EXDATE/RECURRENCE-ID values just outside the span."""
    start, end = obj.span.start, obj.span.end
    last = start.year + 30 if end >= FAR_FUTURE else end.year
    return max(start.year - 1, 1970), min(max(last + 2, start.year + 1), 2200)


def _timezones(
    events: Sequence[Component], own: Mapping[str, Component], obj: CalendarObject
) -> Iterator[Component]:
    """Exactly one VTIMEZONE per TZID the message uses (RFC 5545 3.6.5).

    A tz-database zone is generated for the object's whole span, like the
    feed does: a VTIMEZONE a client cut to the first occurrence would misplace
    later ones. Other TZIDs (Outlook's "W. Europe Standard Time") keep the
    object's own definition, or get the matching tz-database zone under their
    own name when the object had none."""
    for tzid in _tzids(events):
        if _is_iana(tzid):
            yield _vtimezone(tzid, *_years(obj))
        elif tzid in own:
            yield own[tzid]
        else:
            yield _renamed(_vtimezone(_olson(tzid), *_years(obj)), tzid)


def _olson(tzid: str) -> str:
    for candidate in (tzid.strip("/"), WINDOWS_TO_OLSON.get(tzid, "")):
        if candidate and _is_iana(candidate):
            return candidate
    # parse_object accepts no object with such a TZID; a message saying it
    # without its definition would be unreadable (RFC 5545 3.2.19).
    raise ValueError(f"no VTIMEZONE can be written for TZID {tzid!r}")


def _renamed(vtimezone: Timezone, tzid: str) -> Timezone:
    """A copy of a (cached, shared) VTIMEZONE under another TZID."""
    result = Timezone()
    for name, value in vtimezone.items():
        result[name] = value
    _replace(result, "TZID", tzid)
    result.subcomponents = list(vtimezone.subcomponents)
    return result


# -- REPLY ------------------------------------------------------------------------------


def parse_reply(text: str) -> ItipReply:
    """Read an attendee's iTIP REPLY (RFC 5546 3.2.3, as sent by iMIP, RFC 6047).

    Lenient where real clients differ from the RFC: Outlook sends no
    ORGANIZER, addresses may say "MAILTO:" in any case, a missing SEQUENCE
    means 0 (RFC 5545 3.8.7.4), a missing PARTSTAT means NEEDS-ACTION and an
    unknown one is read as NEEDS-ACTION (RFC 5545 3.2.12). Raises
    ``InvalidReply`` for anything that is not a usable REPLY."""
    if not text.strip():
        raise InvalidReply("the reply is empty")
    try:
        calendar = _parse_calendar(text.lstrip("\ufeff"))
    except Exception as exc:  # whatever icalendar trips over in odd input
        raise InvalidReply(f"the reply is not iCalendar data ({exc})") from exc
    method = str(calendar.get("METHOD", "")).strip().upper()
    if method != "REPLY":
        raise InvalidReply(f"expected METHOD:REPLY, got {method or 'no METHOD'}")
    try:
        return _read_reply(calendar)
    except InvalidReply:
        raise
    except Exception as exc:
        raise InvalidReply(f"cannot read the reply ({exc})") from exc


def _read_reply(calendar: Calendar) -> ItipReply:
    events = list(calendar.walk("VEVENT"))
    if not events:
        raise InvalidReply("the reply has no VEVENT")
    # A reply about the whole series and some occurrences lists the master
    # first in practice, but not by rule: prefer the one without RECURRENCE-ID.
    event = next((e for e in events if "RECURRENCE-ID" not in e), events[0])
    uid = str(event.get("UID", "")).strip()
    if not uid:
        raise InvalidReply("the reply has no UID")
    email, partstat = _replying_attendee(event)
    return ItipReply(
        uid=uid,
        attendee_email=email,
        partstat=partstat,
        sequence=_sequence(event),
        dtstamp=_dtstamp(event),
        recurrence_id=_recurrence_id(event),
        organizer_email=_organizer_email(event),
        comment="\n".join(str(c) for c in _as_list(event.get("COMMENT", []))),
    )


def _replying_attendee(event: Component) -> tuple[str, PartStat]:
    """RFC 5546 3.2.3: exactly one ATTENDEE, the one replying. A client that
    lists others too marks the replier by an answer; that one is taken."""
    attendees = [a for a in _as_list(event.get("ATTENDEE", [])) if a]
    if not attendees:
        raise InvalidReply("the reply names no ATTENDEE")
    if len(attendees) > 1:
        answered = [a for a in attendees if _partstat(a) is not PartStat.NEEDS_ACTION]
        if len(answered) != 1:
            raise InvalidReply(f"the reply names {len(attendees)} attendees, expected one")
        attendees = answered
    attendee = attendees[0]
    email = _email(attendee)
    if not email:
        raise InvalidReply("the replying ATTENDEE has no e-mail address")
    return email, _partstat(attendee)


def _email(address: Any) -> str:
    """The e-mail address of a CAL-ADDRESS (RFC 5545 3.3.3). Apple may write a
    urn:uuid: address with the e-mail in the EMAIL parameter (RFC 7986 6.2)."""
    value = str(address).strip()
    if value.lower().startswith("mailto:"):
        return _address(value)
    params = getattr(address, "params", {}) or {}
    email = str(params.get("EMAIL", "")).strip()
    return _address(email) if email else ("" if ":" in value else value)


def _partstat(address: Any) -> PartStat:
    params = getattr(address, "params", {}) or {}
    value = str(params.get("PARTSTAT", "")).strip().upper()
    return _PARTSTAT.get(value, PartStat.NEEDS_ACTION)


def _sequence(event: Component) -> int:
    value = event.get("SEQUENCE")
    if value is None:
        return 0
    try:
        sequence = int(value)
    except (TypeError, ValueError) as exc:
        raise InvalidReply(f"SEQUENCE must be an integer, got {value!r}") from exc
    if sequence < 0:
        raise InvalidReply(f"SEQUENCE must not be negative, got {sequence}")
    return sequence


def _dtstamp(event: Component) -> datetime:
    if "DTSTAMP" not in event:
        raise InvalidReply("the reply has no DTSTAMP")
    prop = _as_list(event["DTSTAMP"])[0]
    value = getattr(prop, "dt", None)
    if not isinstance(value, datetime):
        raise InvalidReply("DTSTAMP must be a DATE-TIME")
    if value.tzinfo is None:
        # RFC 5545 3.8.7.2 wants UTC. icalendar leaves a TZID on DTSTAMP
        # unapplied; a floating value is read as UTC.
        value = value.replace(tzinfo=_zone_of(prop))
    return value.astimezone(UTC)


def _zone_of(prop: Any) -> tzinfo:
    tzid = str((getattr(prop, "params", None) or {}).get("TZID", "")).strip()
    try:
        return ZoneInfo(_olson(tzid)) if tzid else UTC
    except ValueError:
        return UTC


def _recurrence_id(event: Component) -> datetime | date | None:
    if "RECURRENCE-ID" not in event:
        return None
    value = event.decoded("RECURRENCE-ID")
    if not isinstance(value, date):
        raise InvalidReply("RECURRENCE-ID must be a DATE or DATE-TIME")
    return value


def _organizer_email(event: Component) -> str | None:
    organizer = event.get("ORGANIZER")
    if organizer is None:
        return None
    return _email(_as_list(organizer)[0]) or None
