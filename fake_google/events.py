"""Event resources of the fake Google Calendar: times, recurrence, validation, queries.

Field semantics come from the Events resource reference
(https://developers.google.com/calendar/api/v3/reference/events) and the
``calendar.v3.json`` discovery document shipped with googleapiclient; recurrence
from "Recurring events" (https://developers.google.com/calendar/api/guides/recurringevents).
"""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from datetime import tzinfo as TzInfo
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from dateutil import rrule  # type: ignore[import-untyped]

from fake_google.errors import (
    bad_request,
    invalid,
    parse_error,
    required,
    time_range_empty,
)

Json = dict[str, Any]

# Google expands an open-ended series lazily; the fake needs a bound. 730 is two
# years of a daily series, the scale Google uses for its own expansion limits.
MAX_INSTANCES = 730

# Event ids: "characters allowed in the ID are those used in base32hex encoding, i.e.
# lowercase letters a-v and digits 0-9 ... the length of the ID must be between 5 and
# 1024 characters" (Event.id in the reference).
EVENT_ID_RE = re.compile(r"[a-v0-9]{5,1024}")

# Fields a client may write with insert/update/patch; everything else (kind, etag,
# created, updated, creator, htmlLink, recurringEventId, ...) is read-only and ignored.
WRITABLE_FIELDS = frozenset(
    {
        "anyoneCanAddSelf",
        "attachments",
        "attendees",
        "colorId",
        "conferenceData",
        "description",
        "end",
        "endTimeUnspecified",
        "extendedProperties",
        "gadget",
        "guestsCanInviteOthers",
        "guestsCanModify",
        "guestsCanSeeOtherGuests",
        "location",
        "privateCopy",
        "recurrence",
        "reminders",
        "sequence",
        "source",
        "start",
        "status",
        "summary",
        "transparency",
        "visibility",
    }
)
# Kept from the stored event across a full update (PUT).
PRESERVED_FIELDS = (
    "kind",
    "id",
    "iCalUID",
    "htmlLink",
    "created",
    "creator",
    "organizer",
    "recurringEventId",
    "originalStartTime",
    "eventType",
)
# What a cancelled item keeps in a list: "Cancelled exceptions are only guaranteed to
# have values for the id, recurringEventId and originalStartTime fields" (Event.status).
MINIMAL_CANCELLED_FIELDS = (
    "kind",
    "etag",
    "id",
    "status",
    "updated",
    "recurringEventId",
    "originalStartTime",
)

_STATUSES = ("confirmed", "tentative", "cancelled")
_TRANSPARENCIES = ("opaque", "transparent")
_VISIBILITIES = ("default", "public", "private", "confidential")
_RESPONSE_STATUSES = ("needsAction", "declined", "tentative", "accepted")


# --- times -------------------------------------------------------------------------------


def zone(name: str) -> ZoneInfo | None:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return None


def rfc3339_ms(moment: datetime) -> str:
    """``updated``/``created`` format: UTC with milliseconds, e.g. 2024-05-01T10:00:00.123Z."""
    utc = moment.astimezone(UTC)
    return utc.strftime("%Y-%m-%dT%H:%M:%S.") + f"{utc.microsecond // 1000:03d}Z"


def rfc3339(moment: datetime) -> str:
    """``dateTime`` format: local time with its offset, ``Z`` for UTC."""
    text = moment.isoformat(timespec="seconds")
    return text[:-6] + "Z" if text.endswith("+00:00") else text


def parse_timestamp(value: str, name: str) -> datetime:
    """An RFC 3339 query parameter: the offset is mandatory (timeMin, timeMax, updatedMin)."""
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise bad_request(name) from None
    if moment.tzinfo is None:
        raise bad_request(name)
    return moment.astimezone(UTC)


@dataclass(frozen=True)
class EventTime:
    """An event's start or end: aware ``value`` for dateTime, naive midnight for date."""

    value: datetime
    all_day: bool
    time_zone: str | None

    def instant(self, calendar_zone: TzInfo) -> datetime:
        # All-day events are placed in the calendar's time zone for time-range filters.
        if self.all_day:
            return self.value.replace(tzinfo=calendar_zone).astimezone(UTC)
        return self.value.astimezone(UTC)

    def at(self, value: datetime) -> EventTime:
        return EventTime(value, self.all_day, self.time_zone)

    def to_json(self) -> Json:
        if self.all_day:
            return {"date": self.value.date().isoformat()}
        out: Json = {"dateTime": rfc3339(self.value)}
        if self.time_zone:
            out["timeZone"] = self.time_zone
        return out


def parse_event_time(raw: object, which: str, *, recurring: bool) -> EventTime:
    if not isinstance(raw, dict) or not (raw.get("date") or raw.get("dateTime")):
        raise required(f"Missing {which} time.")
    zone_name = raw.get("timeZone")
    tz: ZoneInfo | None = None
    if zone_name is not None:
        tz = zone(str(zone_name)) if isinstance(zone_name, str) else None
        if tz is None:
            raise invalid(f"Invalid time zone definition for {which} time.")
    if raw.get("date"):
        if raw.get("dateTime"):
            raise invalid(f"Invalid {which} time.")
        try:
            day = date.fromisoformat(str(raw["date"]))
        except ValueError:
            raise invalid(f"Invalid {which} time.") from None
        return EventTime(datetime(day.year, day.month, day.day), True, zone_name)
    try:
        moment = datetime.fromisoformat(str(raw["dateTime"]))
    except ValueError:
        raise invalid(f"Invalid {which} time.") from None
    if moment.tzinfo is None:
        if tz is None:
            raise required(f"Missing time zone definition for {which} time.")
        moment = moment.replace(tzinfo=tz)
    elif tz is not None:
        moment = moment.astimezone(tz)
    # Google needs a named zone to expand a series across DST changes.
    if recurring and tz is None:
        raise required(f"Missing time zone definition for {which} time.")
    return EventTime(moment.replace(microsecond=0), False, zone_name)


def stored_time(raw: Json) -> EventTime:
    """Parse a start/end the fake itself normalized (never fails on valid data)."""
    return parse_event_time(raw, "start", recurring=False)


# --- recurrence ----------------------------------------------------------------------------

_ICAL_DT_RE = re.compile(r"(\d{8})(?:T(\d{6})(Z?))?")


def _ical_value(text: str, params: Mapping[str, str], start: EventTime) -> datetime:
    match = _ICAL_DT_RE.fullmatch(text.strip())
    if match is None:
        raise ValueError(text)
    day = datetime.strptime(match[1], "%Y%m%d")
    if start.all_day:
        return day
    local_tz = start.value.tzinfo
    if match[2] is None:
        return day.replace(
            hour=start.value.hour, minute=start.value.minute, second=start.value.second
        ).replace(tzinfo=local_tz)
    moment = datetime.strptime(match[1] + match[2], "%Y%m%d%H%M%S")
    if match[3]:
        return moment.replace(tzinfo=UTC).astimezone(local_tz)
    if "TZID" in params:
        tz = zone(params["TZID"])
        if tz is None:
            raise ValueError(params["TZID"])
        return moment.replace(tzinfo=tz).astimezone(local_tz)
    return moment.replace(tzinfo=local_tz)


def _rule(value: str, start: EventTime) -> rrule.rrule:
    # dateutil insists on a UTC UNTIL when DTSTART is aware and a floating one when it is
    # not; Google accepts both forms (RFC 5545 wants UTC), so normalize first.
    parts = []
    for part in value.split(";"):
        if not part:
            continue
        key, _, val = part.partition("=")
        if key.upper() == "UNTIL":
            match = _ICAL_DT_RE.fullmatch(val)
            if match is None:
                raise ValueError(val)
            if start.all_day:
                val = match[1] + "T235959"
            elif not match[3]:
                local = datetime.strptime(match[1] + (match[2] or "235959"), "%Y%m%d%H%M%S")
                local = local.replace(tzinfo=start.value.tzinfo).astimezone(UTC)
                val = local.strftime("%Y%m%dT%H%M%SZ")
        parts.append(f"{key.upper()}={val}")
    rule = rrule.rrulestr(";".join(parts), dtstart=start.value)
    assert isinstance(rule, rrule.rrule)
    return rule


class Recurrence:
    """A series' occurrence starts, from RRULE/EXRULE/RDATE/EXDATE lines (RFC 5545)."""

    def __init__(self, lines: list[str], start: EventTime) -> None:
        self.start = start
        self._set = rrule.rruleset()
        # RFC 5545: DTSTART is always the first instance, whether or not the rule
        # matches it (rruleset drops the duplicate when it does).
        self._set.rdate(start.value)
        try:
            for line in lines:
                name, _, value = str(line).partition(":")
                key, *raw_params = name.split(";")
                params = dict(p.partition("=")[::2] for p in raw_params)
                key = key.upper()
                if key == "RRULE":
                    self._set.rrule(_rule(value, start))
                elif key == "EXRULE":
                    self._set.exrule(_rule(value, start))
                elif key in ("RDATE", "EXDATE"):
                    values = [_ical_value(v, params, start) for v in value.split(",")]
                    add = self._set.rdate if key == "RDATE" else self._set.exdate
                    for v in values:
                        add(v)
                else:
                    raise ValueError(line)
        except (ValueError, TypeError, KeyError):
            raise invalid("Invalid recurrence rule.") from None

    def __iter__(self) -> Iterator[datetime]:
        for count, occurrence in enumerate(self._set):
            if count >= MAX_INSTANCES:
                return
            yield occurrence

    def contains(self, value: datetime) -> bool:
        for occurrence in self:
            if occurrence == value:
                return True
            if occurrence > value:
                return False
        return False


def instance_stamp(occurrence: datetime, all_day: bool) -> str:
    """The suffix of an instance id: ``_20240501T100000Z`` (UTC) or ``_20240501``."""
    if all_day:
        return occurrence.strftime("%Y%m%d")
    return occurrence.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")


def parse_stamp(stamp: str, start: EventTime) -> datetime | None:
    try:
        if start.all_day:
            return datetime.strptime(stamp, "%Y%m%d")
        moment = datetime.strptime(stamp, "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)
    except ValueError:
        return None
    return moment.astimezone(start.value.tzinfo)


# --- writing events -------------------------------------------------------------------------


def merge_patch(current: Json, changes: Json) -> Json:
    """Patch semantics: nested objects merge, arrays and scalars replace, null clears."""
    out = copy.deepcopy(current)
    for key, value in changes.items():
        if value is None:
            out.pop(key, None)
        elif isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = merge_patch(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def _check_choice(body: Json, name: str, choices: tuple[str, ...]) -> None:
    if name in body and body[name] not in choices:
        raise invalid(f"Invalid value for: {name}")


def _attendees(raw: object, calendar_id: str, organizer_email: str | None) -> list[Json]:
    if not isinstance(raw, list):
        raise invalid("Invalid value for: attendees")
    out = []
    for item in raw:
        if not isinstance(item, dict) or not item.get("email"):
            raise required("Missing attendee email.")
        email = str(item["email"])
        if "@" not in email:
            raise invalid("Invalid attendee email.")
        attendee = copy.deepcopy(item)
        attendee.setdefault("responseStatus", "needsAction")
        _check_choice(attendee, "responseStatus", _RESPONSE_STATUSES)
        # "self": whether this entry represents the calendar on which this copy of
        # the event appears; "organizer": whether it is the organizer. Both read-only.
        attendee.pop("self", None)
        attendee.pop("organizer", None)
        if email.lower() == calendar_id.lower():
            attendee["self"] = True
        if organizer_email and email.lower() == organizer_email.lower():
            attendee["organizer"] = True
        out.append(attendee)
    return out


def normalize_writable(
    fields: Json, *, calendar_id: str, organizer_email: str | None, calendar_zone: TzInfo
) -> Json:
    """Validate the client-writable fields of an event and return them normalized."""
    out = {k: copy.deepcopy(v) for k, v in fields.items() if k in WRITABLE_FIELDS and v is not None}
    recurrence = out.get("recurrence")
    if recurrence is not None and (
        not isinstance(recurrence, list) or not all(isinstance(x, str) for x in recurrence)
    ):
        raise invalid("Invalid recurrence rule.")
    recurring = bool(recurrence)
    start = parse_event_time(fields.get("start"), "start", recurring=recurring)
    end = parse_event_time(fields.get("end"), "end", recurring=recurring)
    if start.all_day != end.all_day:
        raise invalid("Start and end times must either both be date or both be dateTime.")
    if start.all_day:
        if end.value <= start.value:
            raise time_range_empty()
    elif end.instant(calendar_zone) < start.instant(calendar_zone):
        raise time_range_empty()
    out["start"] = start.to_json()
    out["end"] = end.to_json()
    if recurring:
        Recurrence(recurrence or [], start)  # validates, raising 400 invalid
    elif "recurrence" in out:
        del out["recurrence"]
    out.setdefault("status", "confirmed")
    _check_choice(out, "status", _STATUSES)
    _check_choice(out, "transparency", _TRANSPARENCIES)
    _check_choice(out, "visibility", _VISIBILITIES)
    if "attendees" in out:
        out["attendees"] = _attendees(out["attendees"], calendar_id, organizer_email)
    props = out.get("extendedProperties")
    if props is not None:
        ok = isinstance(props, dict) and all(
            k in ("private", "shared")
            and isinstance(v, dict)
            and all(isinstance(x, str) for x in v.values())
            for k, v in props.items()
        )
        if not ok:
            raise invalid("Invalid value for: extendedProperties")
    out.setdefault("reminders", {"useDefault": True})
    if "sequence" in out and (not isinstance(out["sequence"], int) or out["sequence"] < 0):
        raise invalid("Invalid sequence value.")
    if "summary" in out and not isinstance(out["summary"], str):
        raise invalid("Invalid value for: summary")
    return out


def minimal_cancelled(event: Json) -> Json:
    return {k: copy.deepcopy(event[k]) for k in MINIMAL_CANCELLED_FIELDS if k in event}


def event_text(event: Json) -> str:
    """The text the ``q`` parameter searches (summary, description, location, people)."""
    people = [event.get("organizer") or {}, *(event.get("attendees") or [])]
    parts = [str(event.get(k) or "") for k in ("summary", "description", "location")]
    for person in people:
        parts.append(str(person.get("displayName") or ""))
        parts.append(str(person.get("email") or ""))
    return " ".join(parts).lower()


# --- list parameters ------------------------------------------------------------------------

# "There are several query parameters that cannot be specified together with
# nextSyncToken ... iCalUID, orderBy, privateExtendedProperty, q,
# sharedExtendedProperty, timeMin, timeMax, updatedMin" (events.list, syncToken).
SYNC_INCOMPATIBLE = (
    "iCalUID",
    "orderBy",
    "privateExtendedProperty",
    "q",
    "sharedExtendedProperty",
    "timeMin",
    "timeMax",
    "updatedMin",
)

Query = Mapping[str, list[str]]


def query_one(query: Query, name: str) -> str | None:
    values = query.get(name)
    return values[-1] if values else None


def query_bool(query: Query, name: str) -> bool:
    value = query_one(query, name)
    if value is None:
        return False
    if value.lower() not in ("true", "false"):
        raise invalid(f"Invalid boolean value for {name}: {value}", name)
    return value.lower() == "true"


def query_max_results(query: Query, default: int, cap: int) -> int:
    value = query_one(query, "maxResults")
    if value is None:
        return default
    try:
        number = int(value)
    except ValueError:
        raise invalid(f"Invalid value for maxResults: {value}", "maxResults") from None
    if number < 1:
        raise invalid(f"Invalid value for maxResults: {value}", "maxResults")
    # "The page size can never be larger than 2500 events": larger values are capped.
    return min(number, cap)


def _properties(query: Query, name: str) -> list[tuple[str, str]]:
    out = []
    for value in query.get(name, []):
        key, sep, val = value.partition("=")
        if not sep or not key:
            raise invalid(f"Invalid value for {name}: {value}", name)
        out.append((key, val))
    return out


@dataclass
class ListParams:
    max_results: int = 250
    page_token: str | None = None
    show_deleted: bool = False
    single_events: bool = False
    time_min: datetime | None = None
    time_max: datetime | None = None
    updated_min: datetime | None = None
    order_by: str | None = None
    q: str | None = None
    ical_uid: str | None = None
    private_props: list[tuple[str, str]] = field(default_factory=list)
    shared_props: list[tuple[str, str]] = field(default_factory=list)
    sync_token: str | None = None
    original_start: datetime | None = None

    @classmethod
    def parse(cls, query: Query, *, instances: bool = False) -> ListParams:
        params = cls(
            max_results=query_max_results(query, 250, 2500),
            page_token=query_one(query, "pageToken"),
            show_deleted=query_bool(query, "showDeleted"),
            single_events=query_bool(query, "singleEvents"),
        )
        sync_token = query_one(query, "syncToken")
        if sync_token is not None:
            for name in SYNC_INCOMPATIBLE:
                if name in query:
                    raise invalid(f"The parameter {name} cannot be used with syncToken.", name)
            params.sync_token = sync_token
        for name, attr in (("timeMin", "time_min"), ("timeMax", "time_max")):
            value = query_one(query, name)
            if value is not None:
                setattr(params, attr, parse_timestamp(value, name))
        if params.time_min and params.time_max and params.time_min >= params.time_max:
            raise time_range_empty("timeMax")
        value = query_one(query, "updatedMin")
        if value is not None:
            params.updated_min = parse_timestamp(value, "updatedMin")
        order_by = query_one(query, "orderBy")
        if order_by is not None:
            if order_by not in ("startTime", "updated"):
                raise invalid(f"Invalid value for orderBy: {order_by}", "orderBy")
            if order_by == "startTime" and not params.single_events:
                raise invalid(
                    "The requested ordering is not available for the particular query.",
                    "orderBy",
                )
            params.order_by = order_by
        params.q = query_one(query, "q")
        params.ical_uid = query_one(query, "iCalUID")
        params.private_props = _properties(query, "privateExtendedProperty")
        params.shared_props = _properties(query, "sharedExtendedProperty")
        if instances:
            value = query_one(query, "originalStart")
            if value is not None:
                params.original_start = parse_timestamp(value, "originalStart")
        return params

    def matches(self, event: Json) -> bool:
        """Filters other than time and status (those depend on the event's series)."""
        if self.q and not all(term in event_text(event) for term in self.q.lower().split()):
            return False
        if self.ical_uid is not None and event.get("iCalUID") != self.ical_uid:
            return False
        props = event.get("extendedProperties") or {}
        for scope, wanted in (("private", self.private_props), ("shared", self.shared_props)):
            have = props.get(scope) or {}
            if any(have.get(k) != v for k, v in wanted):
                return False
        if self.updated_min is not None:
            updated = datetime.fromisoformat(event["updated"])
            if updated < self.updated_min:
                return False
        return True


# --- partial responses (``fields``) ---------------------------------------------------------

FieldTree = dict[str, "FieldTree | None"]


def parse_fields(spec: str) -> FieldTree:
    """Parse the ``fields`` parameter (e.g. ``items(id,etag),nextSyncToken``).

    Syntax from "Performance tips: partial response"
    (https://developers.google.com/calendar/api/guides/performance#partial-response).
    """
    tree, pos = _parse_field_list(spec, 0)
    if pos != len(spec):
        raise invalid(f"Invalid field selection {spec}", "fields")
    return tree


def _parse_field_list(spec: str, pos: int) -> tuple[FieldTree, int]:
    tree: FieldTree = {}
    while True:
        match = re.compile(r"[A-Za-z0-9_*]+(?:/[A-Za-z0-9_*]+)*").match(spec, pos)
        if match is None:
            raise invalid(f"Invalid field selection {spec}", "fields")
        path = match[0].split("/")
        pos = match.end()
        sub: FieldTree | None = None
        if pos < len(spec) and spec[pos] == "(":
            sub, pos = _parse_field_list(spec, pos + 1)
            if pos >= len(spec) or spec[pos] != ")":
                raise invalid(f"Invalid field selection {spec}", "fields")
            pos += 1
        node = tree
        for name in path[:-1]:
            child = node.setdefault(name, {})
            if child is None:  # the whole field is already selected
                break
            node = child
        else:
            leaf = path[-1]
            if leaf not in node:
                node[leaf] = sub
            else:
                old = node[leaf]
                node[leaf] = None if old is None or sub is None else {**old, **sub}
        if pos < len(spec) and spec[pos] == ",":
            pos += 1
            continue
        return tree, pos


def apply_fields(value: Any, tree: FieldTree | None) -> Any:
    if tree is None:
        return value
    if isinstance(value, list):
        return [apply_fields(v, tree) for v in value]
    if not isinstance(value, dict):
        return value
    if "*" in tree:
        return {k: apply_fields(v, tree["*"]) for k, v in value.items()}
    return {k: apply_fields(value[k], sub) for k, sub in tree.items() if k in value}


def parse_json_body(body: bytes) -> Json:
    if not body.strip():
        return {}
    try:
        data = json.loads(body)
    except ValueError:
        raise parse_error() from None
    if not isinstance(data, dict):
        raise parse_error()
    return data


def later(a: datetime, b: timedelta) -> datetime:
    """Absolute-time addition (wall-clock ``+`` on zoneinfo datetimes ignores DST gaps)."""
    return (a.astimezone(UTC) + b).astimezone(a.tzinfo)
