"""State of the fake Google Calendar: accounts, calendars, events, sync tokens.

All writes (API or "user in the Google UI") go through :class:`Store`, which bumps
etag/updated, assigns a change sequence for incremental sync and tells its listener
(push notifications). Semantics follow the Events reference
(https://developers.google.com/calendar/api/v3/reference/events) and the
synchronization guide (https://developers.google.com/calendar/api/guides/sync).
"""

from __future__ import annotations

import base64
import copy
import re
import secrets
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from fake_google.errors import (
    condition_not_met,
    deleted,
    duplicate,
    full_sync_required,
    invalid,
    not_found,
    required,
)
from fake_google.events import (
    EVENT_ID_RE,
    PRESERVED_FIELDS,
    WRITABLE_FIELDS,
    EventTime,
    Json,
    ListParams,
    Recurrence,
    instance_stamp,
    later,
    merge_patch,
    minimal_cancelled,
    normalize_writable,
    parse_stamp,
    rfc3339_ms,
    stored_time,
)

ACCESS_ROLES = ("owner", "writer", "reader", "freeBusyReader")
WRITE_ROLES = ("owner", "writer")


@dataclass
class Account:
    """A Google account; ``calendars`` is its calendar list (id -> accessRole)."""

    email: str
    time_zone: str
    calendars: dict[str, str] = field(default_factory=dict)

    @property
    def primary_calendar_id(self) -> str:
        return self.email


@dataclass
class StoredEvent:
    resource: Json
    seq: int  # change sequence of the last write (incremental sync)
    order: int  # creation order (the stable default order of events.list)


@dataclass
class Calendar:
    id: str
    summary: str
    time_zone: str
    owner: str | None
    primary: bool
    resource_id: str
    etag: str
    updated: str
    events: dict[str, StoredEvent] = field(default_factory=dict)

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.time_zone)

    def actor(self) -> str:
        return self.owner or self.id


@dataclass(frozen=True)
class Change:
    seq: int
    updated: str
    etag: str


def new_event_id() -> str:
    # Google generates base32hex ids; 26 characters from 128 random bits.
    return base64.b32hexencode(uuid.uuid4().bytes).decode().lower().rstrip("=")


def html_link(event_id: str, calendar_id: str) -> str:
    eid = base64.urlsafe_b64encode(f"{event_id} {calendar_id}".encode()).decode().rstrip("=")
    return f"https://www.google.com/calendar/event?eid={eid}"


def _when(raw: object) -> object:
    """A start/end as an instant, so 10:00Z and 11:00+01:00 compare equal."""
    if not isinstance(raw, dict):
        return raw
    moment = stored_time(raw)
    return (moment.all_day, moment.value if moment.all_day else moment.value.astimezone(UTC))


def check_if_match(resource: Json, header: str | None) -> None:
    """If-Match against the event's etag: 412 conditionNotMet when none matches."""
    if header is None:
        return
    tags = [t.strip().removeprefix("W/") for t in header.split(",")]
    if "*" in tags or resource.get("etag") in tags:
        return
    raise condition_not_met()


class Store:
    def __init__(self) -> None:
        self.accounts: dict[str, Account] = {}
        self.calendars: dict[str, Calendar] = {}
        self.seq = 0
        self._order = 0
        self._last_ms = 0
        self._sync_tokens: dict[str, tuple[str, int]] = {}
        self.on_change: Callable[[Calendar], None] | None = None

    # --- accounts and calendars ----------------------------------------------------------

    def _now(self) -> tuple[int, str]:
        # Strictly increasing milliseconds, so ``updated`` orders every change.
        ms = max(int(time.time() * 1000), self._last_ms + 1)
        self._last_ms = ms
        moment = datetime.fromtimestamp(ms // 1000, UTC).replace(microsecond=(ms % 1000) * 1000)
        return ms, rfc3339_ms(moment)

    def _stamp(self) -> Change:
        self.seq += 1
        ms, updated = self._now()
        return Change(self.seq, updated, f'"{ms}{self.seq:06d}"')

    def add_account(self, email: str, time_zone: str = "UTC") -> Account:
        if email in self.accounts:
            raise ValueError(f"account {email} exists")
        ZoneInfo(time_zone)
        account = Account(email, time_zone)
        self.accounts[email] = account
        self._new_calendar(email, email, time_zone, owner=email, primary=True)
        account.calendars[email] = "owner"
        return account

    def _new_calendar(
        self, calendar_id: str, summary: str, time_zone: str, *, owner: str | None, primary: bool
    ) -> Calendar:
        ms, updated = self._now()
        calendar = Calendar(
            id=calendar_id,
            summary=summary,
            time_zone=time_zone,
            owner=owner,
            primary=primary,
            resource_id=secrets.token_urlsafe(20),
            etag=f'"{ms}"',
            updated=updated,
        )
        self.calendars[calendar_id] = calendar
        return calendar

    def add_calendar(
        self,
        email: str,
        summary: str,
        access_role: str = "owner",
        *,
        time_zone: str | None = None,
        calendar_id: str | None = None,
    ) -> Calendar:
        account = self.accounts[email]
        if access_role not in ACCESS_ROLES:
            raise ValueError(f"access_role must be one of {ACCESS_ROLES}")
        calendar_id = calendar_id or f"c_{secrets.token_hex(16)}@group.calendar.google.com"
        if calendar_id in self.calendars:
            raise ValueError(f"calendar {calendar_id} exists")
        owner = email if access_role == "owner" else None
        calendar = self._new_calendar(
            calendar_id, summary, time_zone or account.time_zone, owner=owner, primary=False
        )
        account.calendars[calendar_id] = access_role
        return calendar

    def share(self, calendar_id: str, email: str, access_role: str) -> None:
        if access_role not in ACCESS_ROLES:
            raise ValueError(f"access_role must be one of {ACCESS_ROLES}")
        if calendar_id not in self.calendars:
            raise KeyError(calendar_id)
        self.accounts[email].calendars[calendar_id] = access_role

    def unshare(self, calendar_id: str, email: str) -> None:
        self.accounts[email].calendars.pop(calendar_id, None)

    def delete_calendar(self, calendar_id: str) -> None:
        """calendars.delete of a secondary calendar: it leaves every calendar
        list and answers 404 notFound from then on (the primary calendar
        cannot be deleted, only cleared)."""
        calendar = self.calendars[calendar_id]
        if calendar.primary:
            raise ValueError("a primary calendar cannot be deleted")
        del self.calendars[calendar_id]
        for account in self.accounts.values():
            account.calendars.pop(calendar_id, None)

    def resolve(self, email: str, calendar_id: str) -> tuple[Calendar, str]:
        """The calendar behind a path's calendarId for this account, and its role.

        "primary" is the account's primary calendar; a calendar not on the account's
        list answers 404 like one that does not exist.
        """
        account = self.accounts[email]
        if calendar_id == "primary":
            calendar_id = account.primary_calendar_id
        role = account.calendars.get(calendar_id)
        if role is None or calendar_id not in self.calendars:
            raise not_found()
        return self.calendars[calendar_id], role

    def calendar_list_entry(self, account: Account, calendar: Calendar) -> Json:
        entry: Json = {
            "kind": "calendar#calendarListEntry",
            "etag": calendar.etag,
            "id": calendar.id,
            "summary": calendar.summary,
            "timeZone": calendar.time_zone,
            "colorId": "14",
            "backgroundColor": "#9fe1e7",
            "foregroundColor": "#000000",
            "selected": True,
            "accessRole": account.calendars[calendar.id],
            "defaultReminders": [],
            "conferenceProperties": {"allowedConferenceSolutionTypes": ["hangoutsMeet"]},
        }
        if calendar.id == account.primary_calendar_id:
            entry["primary"] = True
        return entry

    def calendar_resource(self, calendar: Calendar) -> Json:
        return {
            "kind": "calendar#calendar",
            "etag": calendar.etag,
            "id": calendar.id,
            "summary": calendar.summary,
            "timeZone": calendar.time_zone,
            "conferenceProperties": {"allowedConferenceSolutionTypes": ["hangoutsMeet"]},
        }

    # --- sync tokens ---------------------------------------------------------------------

    def issue_sync_token(self, calendar: Calendar, seq: int) -> str:
        token = "CP" + secrets.token_urlsafe(18)
        self._sync_tokens[token] = (calendar.id, seq)
        return token

    def sync_seq(self, calendar: Calendar, token: str) -> int:
        """The change sequence a token stands for; 410 fullSyncRequired when unknown."""
        entry = self._sync_tokens.get(token)
        if entry is None or entry[0] != calendar.id:
            raise full_sync_required()
        return entry[1]

    def expire_sync_tokens(self, calendar: Calendar) -> None:
        for token, (calendar_id, _) in list(self._sync_tokens.items()):
            if calendar_id == calendar.id:
                del self._sync_tokens[token]

    # --- events: writes ------------------------------------------------------------------

    def _commit(self, calendar: Calendar, resource: Json, change: Change) -> None:
        resource["etag"] = change.etag
        resource["updated"] = change.updated
        resource.setdefault("created", change.updated)
        old = calendar.events.get(resource["id"])
        if old is None:
            self._order += 1
        order = old.order if old else self._order
        calendar.events[resource["id"]] = StoredEvent(resource, change.seq, order)
        calendar.updated = change.updated

    def _changed(self, calendar: Calendar) -> None:
        if self.on_change is not None:
            self.on_change(calendar)

    def _organizer(self, calendar: Calendar) -> Json:
        organizer: Json = {"email": calendar.id}
        if not calendar.primary:
            organizer["displayName"] = calendar.summary
        organizer["self"] = True
        return organizer

    def _by_ical_uid(self, calendar: Calendar, ical_uid: str) -> StoredEvent | None:
        for stored in calendar.events.values():
            res = stored.resource
            if res.get("iCalUID") == ical_uid and not res.get("recurringEventId"):
                return stored
        return None

    def insert(
        self, calendar: Calendar, body: Json, actor: str, *, import_mode: bool = False
    ) -> Json:
        event_id = body.get("id")
        if event_id is not None:
            if not isinstance(event_id, str) or not EVENT_ID_RE.fullmatch(event_id):
                raise invalid("Invalid resource id value.")
            # Ids stay taken after a delete: the cancelled event is kept for sync.
            if event_id in calendar.events:
                raise duplicate()
        ical_uid = body.get("iCalUID")
        if ical_uid is not None and (not isinstance(ical_uid, str) or not ical_uid):
            raise invalid("Invalid iCalUID value.")
        if import_mode:
            if not ical_uid:
                raise required("Missing iCalUID.")
            existing = self._by_ical_uid(calendar, ical_uid)
            if existing is not None:
                # events.import of a known iCalUID updates that event.
                return self._write(calendar, existing.resource, body, patch=False, importing=True)
        elif ical_uid and self._by_ical_uid(calendar, ical_uid) is not None:
            raise duplicate()
        if event_id is None:
            event_id = new_event_id()
        organizer = self._organizer(calendar)
        if import_mode:
            organizer = self._imported_organizer(calendar, body) or organizer
        fields = normalize_writable(
            body,
            calendar_id=calendar.id,
            organizer_email=organizer["email"],
            calendar_zone=calendar.zone,
        )
        event_type = body.get("eventType", "default")
        if event_type not in ("default", "outOfOffice", "focusTime", "workingLocation"):
            raise invalid("Invalid event type.")
        creator: Json = {"email": actor}
        if actor.lower() == calendar.id.lower():
            creator["self"] = True
        resource: Json = {
            "kind": "calendar#event",
            "etag": "",
            "id": event_id,
            "status": fields.pop("status"),
            "htmlLink": html_link(event_id, calendar.id),
            **fields,
            "creator": creator,
            "organizer": organizer,
            "iCalUID": ical_uid or f"{event_id}@google.com",
            "sequence": fields.get("sequence", 0),
            "eventType": event_type,
        }
        self._commit(calendar, resource, self._stamp())
        self._changed(calendar)
        return copy.deepcopy(resource)

    def _imported_organizer(self, calendar: Calendar, body: Json) -> Json | None:
        # "organizer ... Read-only, except when importing an event."
        raw = body.get("organizer")
        if not isinstance(raw, dict) or not raw.get("email"):
            return None
        organizer = {k: v for k, v in raw.items() if k in ("email", "displayName")}
        if str(raw["email"]).lower() == calendar.id.lower():
            organizer["self"] = True
        return organizer

    def _write(
        self,
        calendar: Calendar,
        current: Json,
        body: Json,
        *,
        patch: bool,
        importing: bool = False,
    ) -> Json:
        base = {k: v for k, v in current.items() if k in WRITABLE_FIELDS}
        wanted = merge_patch(base, body) if patch else body
        organizer = current["organizer"]
        if importing:
            organizer = self._imported_organizer(calendar, body) or organizer
        fields = normalize_writable(
            wanted,
            calendar_id=calendar.id,
            organizer_email=organizer.get("email"),
            calendar_zone=calendar.zone,
        )
        if current.get("recurringEventId"):
            fields.pop("recurrence", None)  # an exception is one instance, not a series
        old_sequence = int(current.get("sequence", 0))
        asked = body.get("sequence")
        if asked is not None and not importing and asked < old_sequence:
            raise invalid(
                "Invalid sequence value. The specified sequence number is below the "
                "current sequence number of the resource."
            )
        sequence = asked if asked is not None else old_sequence
        # Rescheduling bumps SEQUENCE (RFC 5546) when the client did not.
        moved = fields.get("recurrence") != current.get("recurrence") or any(
            _when(fields.get(k)) != _when(current.get(k)) for k in ("start", "end")
        )
        if moved and sequence <= old_sequence:
            sequence = old_sequence + 1
        resource: Json = {k: copy.deepcopy(current[k]) for k in PRESERVED_FIELDS if k in current}
        resource.update(fields)
        resource["organizer"] = organizer
        resource["sequence"] = sequence
        self._commit(calendar, resource, self._stamp())
        self._changed(calendar)
        return copy.deepcopy(resource)

    def update(
        self,
        calendar: Calendar,
        event_id: str,
        body: Json,
        *,
        patch: bool,
        if_match: str | None = None,
    ) -> Json:
        current, stored = self._find(calendar, event_id)
        if stored is None and current.get("status") == "cancelled":
            raise deleted()  # an instance of a deleted series
        check_if_match(current, if_match)
        # A cancelled event comes back when written with status confirmed (a PUT
        # without status defaults to confirmed too).
        return self._write(calendar, current, body, patch=patch)

    def delete(self, calendar: Calendar, event_id: str, *, if_match: str | None = None) -> None:
        current, _ = self._find(calendar, event_id)
        if current.get("status") == "cancelled":
            raise deleted()
        check_if_match(current, if_match)
        # Deleting keeps the event as "cancelled" so incremental sync can report it;
        # deleting one instance stores a cancelled exception of the series.
        resource = copy.deepcopy(current)
        resource["status"] = "cancelled"
        self._commit(calendar, resource, self._stamp())
        if resource.get("recurrence"):
            for exception in self._exceptions(calendar, resource["id"]).values():
                if exception.resource.get("status") != "cancelled":
                    cancelled = copy.deepcopy(exception.resource)
                    cancelled["status"] = "cancelled"
                    self._commit(calendar, cancelled, self._stamp())
        self._changed(calendar)

    # --- events: reads -------------------------------------------------------------------

    def get(self, calendar: Calendar, event_id: str) -> Json:
        # A deleted event is still returned, with status "cancelled" (Event.status).
        return copy.deepcopy(self._find(calendar, event_id)[0])

    def _find(self, calendar: Calendar, event_id: str) -> tuple[Json, StoredEvent | None]:
        stored = calendar.events.get(event_id)
        if stored is not None:
            return stored.resource, stored
        generated = self._generated(calendar, event_id)
        if generated is None:
            raise not_found()
        return generated, None

    def _generated(self, calendar: Calendar, event_id: str) -> Json | None:
        """An instance of a series by its id ``{masterId}_{stamp}``, if it occurs."""
        master_id, sep, stamp = event_id.rpartition("_")
        master = calendar.events.get(master_id) if sep else None
        if master is None or not master.resource.get("recurrence"):
            return None
        start = stored_time(master.resource["start"])
        occurrence = parse_stamp(stamp, start)
        if occurrence is None or not self._recurrence(master.resource).contains(occurrence):
            return None
        instance = self._instance(calendar, master, occurrence)
        if master.resource.get("status") == "cancelled":
            instance["status"] = "cancelled"
        return instance

    def _recurrence(self, master: Json) -> Recurrence:
        return Recurrence(master["recurrence"], stored_time(master["start"]))

    def _exceptions(self, calendar: Calendar, master_id: str) -> dict[str, StoredEvent]:
        prefix = master_id + "_"
        return {
            event_id.removeprefix(prefix): stored
            for event_id, stored in calendar.events.items()
            if stored.resource.get("recurringEventId") == master_id
        }

    def _instance(self, calendar: Calendar, master: StoredEvent, occurrence: datetime) -> Json:
        res = master.resource
        start, end = stored_time(res["start"]), stored_time(res["end"])
        if start.all_day:
            end_value = occurrence + (end.value - start.value)
        else:
            duration = end.value.astimezone(UTC) - start.value.astimezone(UTC)
            end_value = later(occurrence, duration).astimezone(end.value.tzinfo)
        stamp = instance_stamp(occurrence, start.all_day)
        instance = {k: copy.deepcopy(v) for k, v in res.items() if k != "recurrence"}
        instance_id = f"{res['id']}_{stamp}"
        instance["id"] = instance_id
        instance["htmlLink"] = html_link(instance_id, calendar.id)
        # Instances have their own etags, which change whenever the series does.
        instance["etag"] = '"' + res["etag"].strip('"') + re.sub(r"\D", "", stamp) + '"'
        instance["recurringEventId"] = res["id"]
        instance["originalStartTime"] = start.at(occurrence).to_json()
        instance["start"] = start.at(occurrence).to_json()
        instance["end"] = EventTime(end_value, end.all_day, end.time_zone).to_json()
        return instance

    def _bounds(self, calendar: Calendar, event: Json) -> tuple[datetime, datetime]:
        start = stored_time(event["start"]).instant(calendar.zone)
        end = stored_time(event["end"]).instant(calendar.zone)
        return start, end

    def _in_window(
        self,
        calendar: Calendar,
        event: Json,
        time_min: datetime | None,
        time_max: datetime | None,
        min_inclusive: bool,
    ) -> bool:
        if (time_min is None and time_max is None) or "start" not in event:
            return True
        start, end = self._bounds(calendar, event)
        if time_max is not None and start >= time_max:
            return False
        if time_min is not None:
            # events.list: "Lower bound (exclusive) for an event's end time";
            # events.instances: "Lower bound (inclusive)".
            return end >= time_min if min_inclusive else end > time_min
        return True

    def expand(
        self,
        calendar: Calendar,
        master: StoredEvent,
        *,
        time_min: datetime | None = None,
        time_max: datetime | None = None,
        min_inclusive: bool = False,
        include_cancelled: bool = False,
    ) -> list[Json]:
        """The instances of a series, stored exceptions replacing generated ones."""
        res = master.resource
        start = stored_time(res["start"])
        exceptions = self._exceptions(calendar, res["id"])
        series_cancelled = res.get("status") == "cancelled"
        out: list[Json] = []
        for occurrence in self._recurrence(res):
            if time_max is not None and start.at(occurrence).instant(calendar.zone) >= time_max:
                break
            if instance_stamp(occurrence, start.all_day) in exceptions:
                continue
            instance = self._instance(calendar, master, occurrence)
            if series_cancelled:
                instance["status"] = "cancelled"
            out.append(instance)
        out.extend(copy.deepcopy(e.resource) for e in exceptions.values())
        out = [e for e in out if self._in_window(calendar, e, time_min, time_max, min_inclusive)]
        if not include_cancelled:
            out = [e for e in out if e.get("status") != "cancelled"]
        out.sort(key=lambda e: self._bounds(calendar, e)[0])
        return out

    def _visible(self, calendar: Calendar, event: Json, params: ListParams) -> bool:
        if event.get("status") != "cancelled":
            return True
        # updatedMin: "entries deleted since this time will always be included".
        if params.show_deleted or params.updated_min is not None:
            return True
        # showDeleted: "Cancelled instances of recurring events (but not the underlying
        # recurring event) will still be included if showDeleted and singleEvents are
        # both False."
        master_id = event.get("recurringEventId")
        if master_id and not params.single_events:
            master = calendar.events.get(master_id)
            return master is not None and master.resource.get("status") != "cancelled"
        return False

    def list_events(self, calendar: Calendar, params: ListParams, since: int | None) -> list[Json]:
        """events.list items before paging; ``since`` is a sync token's sequence."""
        if since is not None:
            return self._changes(calendar, params, since)
        out: list[Json] = []
        wide = params.show_deleted or params.updated_min is not None
        for stored in sorted(calendar.events.values(), key=lambda s: s.order):
            event = stored.resource
            if params.single_events:
                if event.get("recurringEventId") in calendar.events:
                    continue  # listed with its series
                if event.get("recurrence"):
                    instances = self.expand(
                        calendar,
                        stored,
                        time_min=params.time_min,
                        time_max=params.time_max,
                        include_cancelled=wide,
                    )
                    out.extend(i for i in instances if params.matches(i))
                    continue
            if not self._visible(calendar, event, params):
                continue
            windowed = params.time_min is not None or params.time_max is not None
            if event.get("recurrence"):
                if windowed and not self.expand(
                    calendar,
                    stored,
                    time_min=params.time_min,
                    time_max=params.time_max,
                    include_cancelled=True,
                ):
                    continue
            elif not self._in_window(calendar, event, params.time_min, params.time_max, False):
                continue
            if params.matches(event):
                out.append(copy.deepcopy(event))
        if params.order_by == "startTime":
            out.sort(key=lambda e: self._bounds(calendar, e)[0])
        elif params.order_by == "updated":
            out.sort(key=lambda e: e["updated"])
        return [self.present(e) for e in out]

    def _changes(self, calendar: Calendar, params: ListParams, since: int) -> list[Json]:
        # Incremental sync: "the result will always contain deleted entries", whatever
        # showDeleted says; everything written after the token, in change order.
        changed: dict[str, Json] = {}
        for stored in sorted(calendar.events.values(), key=lambda s: s.seq):
            if stored.seq <= since:
                continue
            event = stored.resource
            if params.single_events and event.get("recurrence"):
                for instance in self.expand(calendar, stored, include_cancelled=True):
                    changed.setdefault(instance["id"], instance)
            else:
                changed[event["id"]] = copy.deepcopy(event)
        return [self.present(e) for e in changed.values()]

    def instances(self, calendar: Calendar, event_id: str, params: ListParams) -> list[Json]:
        stored = calendar.events.get(event_id)
        if stored is None:
            raise not_found()
        if not stored.resource.get("recurrence"):
            items = [copy.deepcopy(stored.resource)]
        else:
            items = self.expand(
                calendar,
                stored,
                time_min=params.time_min,
                time_max=params.time_max,
                min_inclusive=True,
                include_cancelled=params.show_deleted,
            )
        if params.original_start is not None:
            wanted = params.original_start
            items = [
                i
                for i in items
                if "originalStartTime" in i
                and stored_time(i["originalStartTime"]).instant(calendar.zone) == wanted
            ]
        return [self.present(i) for i in items]

    @staticmethod
    def present(event: Json) -> Json:
        return minimal_cancelled(event) if event.get("status") == "cancelled" else event

    def raw_events(self, calendar: Calendar, include_cancelled: bool) -> list[Json]:
        stored = sorted(calendar.events.values(), key=lambda s: s.order)
        return [
            copy.deepcopy(s.resource)
            for s in stored
            if include_cancelled or s.resource.get("status") != "cancelled"
        ]
