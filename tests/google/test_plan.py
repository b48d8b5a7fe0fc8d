"""The mirror's one decision (``google_bridge.reconcile``) and the event
mapping (``google_bridge.mapping``), on plain dicts shaped like Calendar API
v3 Event resources. No I/O: every rule is checked on data."""

from __future__ import annotations

import copy
import json
from collections.abc import Iterable, Mapping
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.core.mirror import (
    AttendeeResponse,
    BusyBlock,
    Details,
    Direction,
    EventLink,
    InvitePath,
    LinkKind,
    LogKind,
    MirrorPolicy,
    google_event_id,
)
from gateway.core.model import Attendee, Booking, BookingStatus, Origin, PartStat, TimeSpan
from google_bridge.mapping import (
    BOOKING_KEY,
    RESOURCE_KEY,
    booking_id_in,
    digest,
    event_body,
    keep_answers,
    responses,
    same_content,
)
from google_bridge.reconcile import (
    Booked,
    GoogleDelete,
    GoogleView,
    Plan,
    Scope,
    block_digest,
    own_booking_id,
    reconcile,
    reconcile_series,
    vanished,
)

RES = "anna"
ZONE = "Europe/Berlin"
BERLIN = ZoneInfo(ZONE)
NEW_YORK = ZoneInfo("America/New_York")
NOW = datetime(2026, 3, 10, 12, 0, tzinfo=UTC)
WINDOW_START = NOW - timedelta(days=30)
HOUR = timedelta(hours=1)
ANNA_GOOGLE = "anna.google@example.com"
BOOKING_ID = "5f0c2d7e9a1b4c3d8e6f7a2b1c0d9e8f"
GID = google_event_id(BOOKING_ID)

Event = dict[str, Any]


# -- builders ------------------------------------------------------------------


def gevent(
    event_id: str,
    start: str = "2026-03-12T10:00:00+01:00",
    end: str = "2026-03-12T11:00:00+01:00",
    *,
    zone: str | None = ZONE,
    **extra: Any,
) -> Event:
    """A confirmed timed event as ``events.list`` returns it."""
    start_field: dict[str, str] = {"dateTime": start}
    end_field: dict[str, str] = {"dateTime": end}
    if zone is not None:
        start_field["timeZone"] = zone
        end_field["timeZone"] = zone
    event: Event = {
        "kind": "calendar#event",
        "id": event_id,
        "etag": f'"{event_id}-1"',
        "status": "confirmed",
        "htmlLink": f"https://www.google.com/calendar/event?eid={event_id}",
        "created": "2026-03-01T08:00:00.000Z",
        "updated": "2026-03-01T08:00:00.000Z",
        "summary": "Dentist",
        "creator": {"email": ANNA_GOOGLE, "self": True},
        "organizer": {"email": ANNA_GOOGLE, "self": True},
        "start": start_field,
        "end": end_field,
        "iCalUID": f"{event_id}@google.com",
        "sequence": 0,
        "reminders": {"useDefault": True},
        "eventType": "default",
    }
    event.update(extra)
    return event


def all_day(event_id: str, first: str, after_last: str, **extra: Any) -> Event:
    event = gevent(event_id, **extra)
    event["start"] = {"date": first}
    event["end"] = {"date": after_last}
    return event


def cancelled(event_id: str, **extra: Any) -> Event:
    """What a list keeps of a deleted event: hardly more than its id."""
    return {
        "kind": "calendar#event",
        "id": event_id,
        "etag": f'"{event_id}-gone"',
        "status": "cancelled",
        "updated": "2026-03-10T11:00:00.000Z",
        **extra,
    }


def booking(**changes: Any) -> Booking:
    start = datetime(2026, 3, 12, 10, 0, tzinfo=BERLIN)
    base = Booking(
        id=BOOKING_ID,
        resource_id=RES,
        uid=f"{BOOKING_ID}@gateway.test",
        title="Haircut with Zoë",
        start=start,
        end=start + HOUR,
        timezone=ZONE,
        created=NOW - timedelta(days=2),
        updated=NOW - timedelta(days=2),
        description="Short back and sides, please",
        location="Chair 2, Hauptstraße 5",
        attendees=(Attendee("zoe@example.com", "Zoë Müller"),),
    )
    return replace(base, **changes)


def as_google_returns(body: Mapping[str, Any], etag: str = '"3391427843112000"') -> Event:
    """Our written body the way Google hands it back: with read-only fields
    added, times in another (equivalent) notation, guests flagged."""
    event: Event = copy.deepcopy(dict(body))
    event.update(
        {
            "kind": "calendar#event",
            "etag": etag,
            "htmlLink": "https://www.google.com/calendar/event?eid=xyz",
            "created": "2026-03-08T08:00:00.000Z",
            "updated": "2026-03-08T08:00:01.000Z",
            "creator": {"email": ANNA_GOOGLE, "self": True},
            "organizer": {"email": ANNA_GOOGLE, "self": True},
            "iCalUID": f"{event['id']}@google.com",
            "sequence": 0,
            "reminders": {"useDefault": True},
            "eventType": "default",
        }
    )
    for key in ("start", "end"):
        if "dateTime" in event[key]:
            instant = datetime.fromisoformat(event[key]["dateTime"]).astimezone(UTC)
            event[key]["dateTime"] = instant.strftime("%Y-%m-%dT%H:%M:%SZ")
    for attendee in event.get("attendees", []):
        attendee.setdefault("responseStatus", "needsAction")
        attendee["self"] = False
    return event


def pushed_link(booking_id: str = BOOKING_ID, details: Details = Details.FULL) -> EventLink:
    return EventLink(
        RES, google_event_id(booking_id), LinkKind.PUSHED, booking_id=booking_id, details=details
    )


def written_link(b: Booking, details: Details = Details.FULL) -> EventLink:
    """The link after our last write of ``b``."""
    return replace(pushed_link(b.id, details), digest=digest(event_body(b, details)))


def imported_link(event_id: str, series_id: str = "") -> EventLink:
    return EventLink(
        RES, event_id, LinkKind.IMPORTED, booking_id=f"blk-{event_id}", series_id=series_id
    )


def series_link(event_id: str, etag: str) -> EventLink:
    return EventLink(
        RES,
        event_id,
        LinkKind.SERIES,
        etag=etag,
        series_id=event_id,
        expanded_until=NOW + timedelta(days=180),
    )


def plan(
    items: Iterable[Mapping[str, Any]],
    *,
    links: Iterable[EventLink] = (),
    own: Mapping[str, Booked] | None = None,
    import_foreign: bool = True,
    listed: set[str] | None = None,
) -> Plan:
    """``reconcile`` on a page of Google's events (``listed``: the last page
    of a complete listing), for a two-way resource (to_google when
    ``import_foreign`` is False)."""
    direction = Direction.TWO_WAY if import_foreign else Direction.TO_GOOGLE
    return reconcile(
        {link.event_id: link for link in links},
        own or {},
        GoogleView(list(items), ZONE, frozenset(listed) if listed is not None else None),
        Scope(RES, MirrorPolicy(direction, Details.FULL), WINDOW_START, NOW),
    )


def own_of(b: Booking) -> dict[str, Booked]:
    return {b.id: Booked(b)}


def repush(p: Plan) -> list[str]:
    """The bookings the plan writes back to Google."""
    return [write.booking_id for write in p.writes]


def echo_etags(p: Plan) -> list[tuple[str, str]]:
    """(event id, etag) of our own events the plan remembers as echoes."""
    return [
        (event_id, link.etag)
        for event_id, link in p.status.items()
        if link is not None and link.kind is LinkKind.PUSHED
    ]


def forgotten(p: Plan) -> list[str]:
    """Event ids whose link the plan drops besides the removed blocks' (series)."""
    return [e for e, link in p.status.items() if link is None and e not in p.removals]


def changes(p: Plan) -> dict[str, Any]:
    """Everything the plan asks to change (``seen`` is bookkeeping, and the
    status of imported blocks follows their upserts)."""
    return {
        "upserts": p.upserts,
        "removals": p.removals,
        "expand": p.expand,
        "series_removals": forgotten(p),
        "repush": repush(p),
        "responses": p.responses,
        "notes": p.notes,
        "echo_etags": echo_etags(p),
        "deletes": p.deletes,
        "copy_to_guests": p.copy_to_guests,
    }


def only(p: Plan, **expected: Any) -> None:
    """The plan holds exactly ``expected`` and nothing else."""
    wanted = {key: [] for key in changes(p)}
    wanted.update(expected)
    assert changes(p) == wanted


# -- foreign single events -----------------------------------------------------


def assert_expressed_in_its_zone(block: BusyBlock) -> None:
    """The block's times are aware and written in the zone it names (the
    calendar object renders them with that TZID)."""
    zone = ZoneInfo(block.timezone)
    for value in (block.span.start, block.span.end):
        assert value.tzinfo is not None and value.utcoffset() is not None
        assert value.utcoffset() == value.astimezone(zone).utcoffset()


def test_new_single_event_becomes_a_busy_block_at_the_right_instant() -> None:
    event = gevent(
        "dentist1",
        "2026-03-12T10:00:00-04:00",
        "2026-03-12T11:30:00-04:00",
        zone="America/New_York",
    )
    p = plan([event])
    only(p, upserts=p.upserts)
    (block,) = p.upserts
    assert block.event_id == "dentist1"
    assert block.span == TimeSpan(
        datetime(2026, 3, 12, 14, 0, tzinfo=UTC), datetime(2026, 3, 12, 15, 30, tzinfo=UTC)
    )
    assert_expressed_in_its_zone(block)
    assert (block.all_day, block.tentative, block.series_id) == (False, False, "")


def test_timed_event_without_zone_keeps_its_instant() -> None:
    p = plan([gevent("x1", "2026-03-12T09:00:00Z", "2026-03-12T10:00:00Z", zone=None)])
    (block,) = p.upserts
    assert block.span == TimeSpan(
        datetime(2026, 3, 12, 10, 0, tzinfo=BERLIN), datetime(2026, 3, 12, 11, 0, tzinfo=BERLIN)
    )
    assert_expressed_in_its_zone(block)


def test_timed_event_with_an_unknown_zone_keeps_its_instant() -> None:
    event = gevent(
        "odd", "2026-03-12T10:00:00+05:30", "2026-03-12T11:00:00+05:30", zone="Mars/Base"
    )
    (block,) = plan([event]).upserts
    assert block.span.start == datetime(2026, 3, 12, 4, 30, tzinfo=UTC)
    assert_expressed_in_its_zone(block)


@pytest.mark.parametrize(
    ("start", "end"),
    [
        ("9999-12-31T22:00:00-05:00", "9999-12-31T23:00:00-05:00"),
        ("0001-01-01T00:00:00+05:00", "0001-01-01T01:00:00+05:00"),
        ("9999-12-31T22:00:00Z", "9999-12-31T23:00:00Z"),
    ],
)
def test_an_event_in_year_1_or_9999_is_no_block_and_no_crash(start: str, end: str) -> None:
    # Shifting such a time to UTC overflows Python's datetime; the rest of the
    # page is still imported.
    p = plan([gevent("edge", start, end, zone=None), gevent("fine")])
    assert [b.event_id for b in p.upserts] == ["fine"]


@pytest.mark.parametrize("event_id", ["bad\x00id", "esc\x1b", "line\r\nUID:x", "x\ufffe"])
def test_an_event_id_no_calendar_can_carry_is_no_block(event_id: str) -> None:
    # The id becomes the block's UID and name, served in CalDAV's XML.
    p = plan([gevent(event_id), gevent("fine")])
    assert [b.event_id for b in p.upserts] == ["fine"]


def test_tentative_event_is_a_tentative_block() -> None:
    p = plan([gevent("maybe", status="tentative")])
    assert [b.tentative for b in p.upserts] == [True]


def test_all_day_event_runs_midnight_to_midnight_in_the_calendar_zone() -> None:
    # 29 March 2026 is the day Berlin moves its clocks forward: 23 hours long.
    p = plan([all_day("holiday", "2026-03-29", "2026-03-30")])
    block = p.upserts[0]
    assert block.all_day
    assert block.timezone == ZONE
    assert block.span.start == datetime(2026, 3, 29, 0, 0, tzinfo=BERLIN)
    assert block.span.end == datetime(2026, 3, 30, 0, 0, tzinfo=BERLIN)
    utc = block.span.in_utc()
    assert utc.end - utc.start == timedelta(hours=23)


def test_all_day_end_date_is_exclusive() -> None:
    block = plan([all_day("trip", "2026-03-12", "2026-03-14")]).upserts[0]
    assert block.span == TimeSpan(
        datetime(2026, 3, 12, tzinfo=BERLIN), datetime(2026, 3, 14, tzinfo=BERLIN)
    )
    # Two days blocked: the 13th late evening is busy, the 14th is free again.
    assert block.span.overlaps(
        TimeSpan(
            datetime(2026, 3, 13, 23, tzinfo=BERLIN), datetime(2026, 3, 13, 23, 30, tzinfo=BERLIN)
        )
    )
    assert not block.span.overlaps(
        TimeSpan(datetime(2026, 3, 14, 0, tzinfo=BERLIN), datetime(2026, 3, 14, 1, tzinfo=BERLIN))
    )


def test_cancelled_single_event_removes_its_block_only_when_linked() -> None:
    linked = plan([cancelled("gone1")], links=[imported_link("gone1")])
    only(linked, removals=["gone1"])
    unknown = plan([cancelled("never-seen")])
    only(unknown)


NOT_BUSY = {
    "transparent": {"transparency": "transparent"},
    "declined by self": {
        "attendees": [
            {"email": "boss@example.com", "organizer": True, "responseStatus": "accepted"},
            {"email": ANNA_GOOGLE, "self": True, "responseStatus": "declined"},
        ]
    },
    "working location": {"eventType": "workingLocation", "transparency": "transparent"},
    "working location, opaque": {"eventType": "workingLocation"},
    "birthday": {"eventType": "birthday"},
}


@pytest.mark.parametrize("extra", NOT_BUSY.values(), ids=NOT_BUSY.keys())
def test_events_that_do_not_make_the_owner_busy(extra: dict[str, Any]) -> None:
    # A block made before (the event was busy then) is removed ...
    only(plan([gevent("e1", **extra)], links=[imported_link("e1")]), removals=["e1"])
    # ... and a new one never becomes a block.
    only(plan([gevent("e2", **extra)]))


def test_declined_by_someone_else_still_blocks() -> None:
    event = gevent(
        "meeting",
        attendees=[
            {"email": ANNA_GOOGLE, "self": True, "responseStatus": "accepted"},
            {"email": "guest@example.com", "responseStatus": "declined"},
        ],
    )
    assert [b.event_id for b in plan([event]).upserts] == ["meeting"]


def test_long_past_events_are_skipped_unless_already_blocked() -> None:
    past = gevent("old", "2025-12-01T10:00:00+01:00", "2025-12-01T11:00:00+01:00")
    only(plan([past]))
    # Edited while a block for it exists: the block follows the event.
    assert [b.event_id for b in plan([past], links=[imported_link("old")]).upserts] == ["old"]
    # Ending inside the window is recent enough.
    recent = gevent("recent", "2026-02-10T10:00:00+01:00", "2026-02-10T11:00:00+01:00")
    assert [b.event_id for b in plan([recent]).upserts] == ["recent"]


def test_events_without_id_are_ignored() -> None:
    p = plan([{"status": "confirmed", "start": {"date": "2026-03-12"}}])
    only(p)
    assert p.seen == set()


# -- recurring events ----------------------------------------------------------


def weekly(event_id: str, etag: str = '"s-1"', **extra: Any) -> Event:
    return gevent(event_id, etag=etag, recurrence=["RRULE:FREQ=WEEKLY;BYDAY=TH"], **extra)


def test_recurring_master_is_expanded() -> None:
    master = weekly("series1")
    p = plan([master])
    only(p, expand=[master])


def test_recurring_master_with_unchanged_etag_is_not_expanded_again() -> None:
    only(plan([weekly("series1", '"s-1"')], links=[series_link("series1", '"s-1"')]))
    changed = weekly("series1", '"s-2"')
    only(plan([changed], links=[series_link("series1", '"s-1"')]), expand=[changed])


def test_recurring_master_linked_as_a_single_event_is_expanded() -> None:
    # A single event turned into a series keeps its id; its old link is not a SERIES one.
    master = weekly("was-single", '"s-1"')
    link = replace(imported_link("was-single"), etag='"s-1"')
    only(plan([master], links=[link]), expand=[master])


def test_cancelled_master_removes_the_series() -> None:
    master = weekly("series1", status="cancelled")
    only(plan([master], links=[series_link("series1", '"s-1"')]), series_removals=["series1"])


def test_deleted_series_listed_without_its_recurrence_is_removed() -> None:
    # Deleted events come back with little more than their id (no
    # "recurrence"): the series is known by its link.
    only(
        plan([cancelled("series1")], links=[series_link("series1", '"s-1"')]),
        series_removals=["series1"],
    )


def test_changed_instance_is_a_block_of_its_series() -> None:
    moved = gevent(
        "series1_20260312T090000Z",
        "2026-03-12T15:00:00+01:00",
        "2026-03-12T16:00:00+01:00",
        recurringEventId="series1",
        originalStartTime={"dateTime": "2026-03-12T10:00:00+01:00", "timeZone": ZONE},
    )
    p = plan([moved], links=[series_link("series1", '"s-1"')])
    only(p, upserts=p.upserts)
    (block,) = p.upserts
    assert block.event_id == "series1_20260312T090000Z"
    assert block.series_id == "series1"
    assert block.span == TimeSpan(
        datetime(2026, 3, 12, 15, tzinfo=BERLIN), datetime(2026, 3, 12, 16, tzinfo=BERLIN)
    )
    assert (block.all_day, block.tentative) == (False, False)
    assert_expressed_in_its_zone(block)


def test_cancelled_instance_is_removed() -> None:
    gone = cancelled(
        "series1_20260319T090000Z",
        recurringEventId="series1",
        originalStartTime={"dateTime": "2026-03-19T10:00:00+01:00", "timeZone": ZONE},
    )
    # Instances are imported under their own ids without separate links
    # being needed here: the removal is planned either way.
    only(plan([gone]), removals=["series1_20260319T090000Z"])
    only(
        plan([gone], links=[imported_link(gone["id"], "series1")]),
        removals=["series1_20260319T090000Z"],
    )


def test_free_instance_removes_its_block() -> None:
    free = gevent(
        "series1_20260326T090000Z", recurringEventId="series1", transparency="transparent"
    )
    only(plan([free]), removals=["series1_20260326T090000Z"])


# -- our own events --------------------------------------------------------------


@pytest.mark.parametrize("details", list(Details))
def test_our_unchanged_event_is_an_echo(details: Details) -> None:
    b = booking()
    event = as_google_returns(event_body(b, details), etag='"echo-7"')
    p = plan([event], links=[pushed_link(details=details)], own=own_of(b))
    only(p, echo_etags=[(GID, '"echo-7"')])


def test_our_all_day_event_echo() -> None:
    b = booking(
        start=datetime(2026, 3, 12, tzinfo=BERLIN), end=datetime(2026, 3, 13, tzinfo=BERLIN)
    )
    event = as_google_returns(event_body(b, Details.FULL), etag='"e"')
    only(plan([event], own=own_of(b)), echo_etags=[(GID, '"e"')])


def test_our_event_is_known_by_its_private_property_without_a_link() -> None:
    b = booking()
    event = as_google_returns(event_body(b, Details.FULL), etag='"e1"')
    only(plan([event], own=own_of(b)), echo_etags=[(GID, '"e1"')])


CHANGES_IN_GOOGLE = {
    "title": {"summary": "Haircut (moved by Anna)"},
    "description": {"description": "call me"},
    "location": {"location": "Chair 3"},
    "time": {
        "start": {"dateTime": "2026-03-12T11:00:00+01:00", "timeZone": ZONE},
        "end": {"dateTime": "2026-03-12T12:00:00+01:00", "timeZone": ZONE},
    },
    "free": {"transparency": "transparent"},
    "guest removed": {"attendees": []},
}


@pytest.mark.parametrize("edit", CHANGES_IN_GOOGLE.values(), ids=CHANGES_IN_GOOGLE.keys())
def test_our_event_changed_in_google_is_written_back_with_a_conflict_note(
    edit: dict[str, Any],
) -> None:
    b = booking()
    event = as_google_returns(event_body(b, Details.FULL))
    event.update(copy.deepcopy(edit))
    p = plan([event], links=[written_link(b)], own=own_of(b))
    only(p, repush=[BOOKING_ID], notes=p.notes)
    (note,) = p.notes
    assert (note.resource_id, note.kind, note.at) == (RES, LogKind.CONFLICT, NOW)
    assert (note.booking_id, note.event_id) == (BOOKING_ID, GID)
    assert "Haircut with Zoë" in note.message
    assert "changed" in note.message
    # Never imported as a busy block of its own.
    assert p.upserts == []


def test_our_event_behind_a_change_not_yet_pushed_is_written_without_a_conflict() -> None:
    """Rescheduled here, its push still queued, a guest's answer moves the
    event's etag: Google shows the old time, which is our own last write,
    not a person's change. Written back (the queued push would too), but no
    conflict is reported."""
    b = booking()
    event = as_google_returns(event_body(b, Details.FULL), etag='"answered"')
    event["attendees"] = [{"email": "zoe@example.com", "responseStatus": "accepted"}]
    later = b.start + HOUR
    moved = replace(b, start=later, end=later + HOUR)
    p = plan([event], links=[written_link(b)], own=own_of(moved))
    assert repush(p) == [BOOKING_ID] and p.notes == []
    assert p.responses == [AttendeeResponse(BOOKING_ID, "zoe@example.com", "ACCEPTED")]
    # Without a link (a write Google took went unrecorded) likewise.
    assert plan([event], own=own_of(moved)).notes == []


def test_our_event_deleted_in_google_is_written_back() -> None:
    # A deleted event comes back stripped of its extended properties: it is
    # known only through the link the push left.
    gone = cancelled(GID)
    for import_foreign in (True, False):
        p = plan(
            [gone],
            links=[written_link(booking())],
            own=own_of(booking()),
            import_foreign=import_foreign,
        )
        only(p, repush=[BOOKING_ID], notes=p.notes)
        (note,) = p.notes
        assert note.kind is LogKind.CONFLICT
        assert "deleted" in note.message
        assert note.event_id == GID


def test_our_event_live_in_google_for_a_booking_gone_here_is_deleted_again() -> None:
    """The push queued with the cancellation may have run before the event
    reached Google (a write Google took while the gateway died): meeting it
    live, the sync deletes it again, and never imports it."""
    b = booking()
    event = as_google_returns(event_body(b, Details.FULL))
    event["summary"] = "edited in Google meanwhile"
    gone = [GoogleDelete(BOOKING_ID, GID)]
    only(plan([event], links=[pushed_link()], own={BOOKING_ID: Booked(None)}), deletes=gone)
    cancelled_here = replace(b, status=BookingStatus.CANCELLED)
    only(plan([event], links=[pushed_link()], own=own_of(cancelled_here)), deletes=gone)
    # Deleted on both sides: nothing left to do.
    only(plan([cancelled(GID)], links=[pushed_link()], own={BOOKING_ID: Booked(None)}))
    # Not even looked up: still never imported.
    only(plan([event], links=[pushed_link()], own={}))


def test_guest_answer_on_our_event_comes_back_as_a_response() -> None:
    b = booking(
        attendees=(
            Attendee("zoe@example.com", "Zoë Müller"),
            Attendee("max@example.com", partstat=PartStat.ACCEPTED),
            Attendee("ida@example.com"),
        )
    )
    event = as_google_returns(event_body(b, Details.FULL), etag='"e9"')
    event["attendees"] = [
        {"email": "Zoe@Example.com", "responseStatus": "accepted"},  # answered
        {"email": "max@example.com", "responseStatus": "accepted"},  # as held
        {"email": "ida@example.com", "responseStatus": "needsAction"},  # no answer yet
    ]
    p = plan([event], links=[pushed_link()], own=own_of(b))
    # An answer is not an edit: no conflict, the etag is remembered.
    only(
        p,
        responses=[AttendeeResponse(BOOKING_ID, "zoe@example.com", "ACCEPTED")],
        echo_etags=[(GID, '"e9"')],
    )


def test_guest_declining_our_event_does_not_free_the_time() -> None:
    b = booking()
    event = as_google_returns(event_body(b, Details.FULL))
    event["attendees"][0]["responseStatus"] = "declined"
    p = plan([event], own=own_of(b))
    assert p.responses == [AttendeeResponse(BOOKING_ID, "zoe@example.com", "DECLINED")]
    assert p.upserts == [] and p.removals == [] and repush(p) == []


def test_unchanged_event_while_our_push_is_queued_is_no_conflict() -> None:
    before = booking()
    written = event_body(before, Details.FULL)
    link = replace(pushed_link(), etag='"w1"', digest=digest(written))
    # Moved in the gateway; its push waits in the outbox (Google has a hiccup).
    after = replace(before, start=before.start + HOUR, end=before.end + HOUR, sequence=1)
    event = as_google_returns(written, etag='"w1"')  # nobody touched it in Google
    p = plan([event], links=[link], own=own_of(after))
    assert p.notes == []


def occurrence(status: str = "cancelled") -> Event:
    """One occurrence of our own recurring booking, as an exception Google lists."""
    original = {"dateTime": "2026-03-19T10:00:00+01:00", "timeZone": ZONE}
    if status == "cancelled":
        return cancelled(
            f"{GID}_20260319T090000Z", recurringEventId=GID, originalStartTime=original
        )
    return gevent(
        f"{GID}_20260319T090000Z",
        "2026-03-19T14:00:00+01:00",
        "2026-03-19T15:00:00+01:00",
        recurringEventId=GID,
        originalStartTime=original,
    )


@pytest.mark.parametrize("status", ["cancelled", "confirmed"])
@pytest.mark.parametrize("import_foreign", [True, False])
def test_occurrence_of_our_recurring_booking_edited_in_google_is_a_conflict(
    status: str, import_foreign: bool
) -> None:
    # Never a busy block (nor the removal of one); writing the series back
    # would not undo an exception in Google, so a person is told.
    b = booking(recurring=True)
    p = plan(
        [occurrence(status)], links=[pushed_link()], own=own_of(b), import_foreign=import_foreign
    )
    only(p, notes=p.notes)
    (note,) = p.notes
    assert (note.kind, note.resource_id, note.at) == (LogKind.CONFLICT, RES, NOW)
    assert (note.booking_id, note.event_id) == (BOOKING_ID, f"{GID}_20260319T090000Z")
    assert ("deleted" if status == "cancelled" else "changed") in note.message
    assert p.seen == {f"{GID}_20260319T090000Z"}


# -- direction and bookkeeping -------------------------------------------------


def test_to_google_only_ignores_everything_but_our_events() -> None:
    b = booking()
    ours = as_google_returns(event_body(b, Details.FULL))
    ours["summary"] = "edited in Google"
    items = [
        gevent("single"),
        weekly("series1"),
        weekly("series2", status="cancelled"),
        cancelled("gone1"),
        gevent("free", transparency="transparent"),
        ours,
    ]
    links = [imported_link("gone1"), imported_link("free"), pushed_link()]
    p = plan(items, links=links, own=own_of(b), import_foreign=False)
    only(p, repush=[BOOKING_ID], notes=p.notes)
    assert p.seen == {"single", "series1", "series2", "gone1", "free", GID}


def test_seen_collects_every_event_of_the_page() -> None:
    b = booking()
    items = [
        gevent("a"),
        gevent("old", "2025-01-01T10:00:00Z", "2025-01-01T11:00:00Z"),  # skipped, still seen
        cancelled("b"),
        weekly("c"),
        gevent("c_20260312T090000Z", recurringEventId="c"),
        gevent("d", transparency="transparent"),
        as_google_returns(event_body(b, Details.FULL)),
    ]
    p = plan(items, own=own_of(b))
    assert p.seen == {"a", "old", "b", "c", "c_20260312T090000Z", "d", GID}


def test_a_page_mixing_everything_is_planned_item_by_item() -> None:
    b = booking()
    items = [
        gevent("new1"),
        cancelled("gone1"),
        weekly("series1"),
        as_google_returns(event_body(b, Details.FULL), etag='"ours"'),
    ]
    p = plan(items, links=[imported_link("gone1"), pushed_link()], own=own_of(b))
    assert [u.event_id for u in p.upserts] == ["new1"]
    assert p.removals == ["gone1"]
    assert [m["id"] for m in p.expand] == ["series1"]
    assert echo_etags(p) == [(GID, '"ours"')]
    assert repush(p) == [] and p.notes == []


# -- mapping: bookings as Google events ----------------------------------------


def test_full_event_body() -> None:
    b = booking(
        start=datetime(2026, 3, 12, 9, tzinfo=UTC), end=datetime(2026, 3, 12, 10, tzinfo=UTC)
    )
    body = event_body(b, Details.FULL)
    assert body["id"] == GID
    assert body["summary"] == "Haircut with Zoë"
    assert body["description"] == "Short back and sides, please"
    assert body["location"] == "Chair 2, Hauptstraße 5"
    # In the booking's zone, as Google shows it to the resource.
    assert body["start"] == {"dateTime": "2026-03-12T10:00:00+01:00", "timeZone": ZONE}
    assert body["end"] == {"dateTime": "2026-03-12T11:00:00+01:00", "timeZone": ZONE}
    assert body["attendees"] == [{"email": "zoe@example.com", "displayName": "Zoë Müller"}]
    assert (body["status"], body["transparency"]) == ("confirmed", "opaque")
    assert body["extendedProperties"] == {"private": {BOOKING_KEY: BOOKING_ID, RESOURCE_KEY: RES}}
    assert booking_id_in(body) == BOOKING_ID
    assert "recurrence" not in body


def test_event_body_status_transparency_answers_and_recurrence() -> None:
    b = booking(
        status=BookingStatus.TENTATIVE,
        transparent=True,
        attendees=(Attendee("a@example.com", partstat=PartStat.DECLINED), Attendee("b@x.org")),
    )
    body = event_body(b, Details.FULL, recurrence=("RRULE:FREQ=WEEKLY;COUNT=4",))
    assert (body["status"], body["transparency"]) == ("tentative", "transparent")
    assert body["recurrence"] == ["RRULE:FREQ=WEEKLY;COUNT=4"]
    # The gateway's PARTSTAT is not Google's to hold: no answer is written.
    assert body["attendees"] == [{"email": "a@example.com"}, {"email": "b@x.org"}]


def test_an_update_carries_each_guests_answer_as_google_holds_it() -> None:
    body = event_body(
        booking(attendees=(Attendee("Zoe@Example.com", "Zoë"), Attendee("new@x.org"))),
        Details.FULL,
    )
    current = {
        "attendees": [
            {"email": "zoe@example.com", "responseStatus": "accepted", "comment": "see you"},
            {"email": "gone@x.org", "responseStatus": "declined"},
        ]
    }
    kept = keep_answers(body, current)
    assert kept["attendees"] == [
        {
            "email": "Zoe@Example.com",
            "displayName": "Zoë",
            "responseStatus": "accepted",
            "comment": "see you",
        },
        {"email": "new@x.org"},  # new to Google: its default, needsAction
    ]
    assert body["attendees"][0] == {"email": "Zoe@Example.com", "displayName": "Zoë"}
    assert keep_answers({"summary": "x"}, current) == {"summary": "x"}


def test_anonymous_event_body_shows_only_the_span() -> None:
    b = booking(
        attendees=(Attendee("zoe@example.com", "Zoë Müller"), Attendee("max.private@example.org"))
    )
    body = event_body(b, Details.ANONYMOUS)
    assert set(body) == {
        "id",
        "start",
        "end",
        "status",
        "transparency",
        "summary",
        "visibility",
        "extendedProperties",
    }
    assert body["summary"] == "Busy"
    assert body["visibility"] == "private"
    assert body["start"] == event_body(b, Details.FULL)["start"]
    assert body["end"] == event_body(b, Details.FULL)["end"]
    assert body["id"] == GID
    assert body["extendedProperties"]["private"] == {BOOKING_KEY: BOOKING_ID, RESOURCE_KEY: RES}
    secrets = [
        "Haircut",
        "Zoë",
        "Zo\\u00eb",
        "Müller",
        "zoe@example.com",
        "max.private",
        "Short back",
        "sides",
        "Chair 2",
        "Hauptstraße",
    ]
    for text in (json.dumps(body), json.dumps(body, ensure_ascii=False)):
        for secret in secrets:
            assert secret not in text


def test_all_day_booking_maps_to_dates() -> None:
    # Whole days in the booking's zone, even when given in UTC.
    b = booking(
        start=datetime(2026, 3, 11, 23, tzinfo=UTC), end=datetime(2026, 3, 13, 23, tzinfo=UTC)
    )
    for details in Details:
        body = event_body(b, details)
        assert body["start"] == {"date": "2026-03-12"}
        assert body["end"] == {"date": "2026-03-14"}  # exclusive, as Google reads it


def test_midnight_in_another_zone_is_not_all_day() -> None:
    b = booking(
        start=datetime(2026, 3, 12, tzinfo=BERLIN),
        end=datetime(2026, 3, 13, tzinfo=BERLIN),
        timezone="America/New_York",
    )
    body = event_body(b, Details.FULL)
    assert body["start"] == {
        "dateTime": "2026-03-11T19:00:00-04:00",
        "timeZone": "America/New_York",
    }
    assert "date" not in body["end"]


def test_digest_is_stable_and_sensitive_to_change() -> None:
    body = event_body(booking(), Details.FULL)
    reordered = dict(reversed(list(copy.deepcopy(body).items())))
    assert digest(body) == digest(copy.deepcopy(body)) == digest(reordered)
    assert len(digest(body)) == 32
    assert all(c in "0123456789abcdef" for c in digest(body))
    others = [
        event_body(booking(title="Haircut with Zoe"), Details.FULL),
        event_body(booking(end=booking().end + timedelta(minutes=15)), Details.FULL),
        event_body(booking(), Details.ANONYMOUS),
        event_body(booking(attendees=()), Details.FULL),
        event_body(booking(status=BookingStatus.TENTATIVE), Details.FULL),
    ]
    digests = {digest(body), *(digest(other) for other in others)}
    assert len(digests) == len(others) + 1


def test_same_content_ignores_what_google_adds_and_guests_answers() -> None:
    body = event_body(booking(), Details.FULL)
    event = as_google_returns(body)
    event["attendees"][0].update(
        {"responseStatus": "accepted", "comment": "see you", "email": "ZOE@example.com"}
    )
    event["hangoutLink"] = "https://meet.google.com/abc-defg-hij"
    event["visibility"] = "default"
    assert same_content(event, body)
    # Same instant written with another offset.
    event["start"] = {"dateTime": "2026-03-12T05:00:00-04:00", "timeZone": "America/New_York"}
    assert same_content(event, body)


@pytest.mark.parametrize(
    "edit",
    [
        *CHANGES_IN_GOOGLE.values(),
        {"status": "cancelled"},
        {"status": "tentative"},
        {"attendees": [{"email": "zoe@example.com"}, {"email": "gatecrasher@example.com"}]},
        {"end": {"dateTime": "2026-03-12T11:05:00+01:00", "timeZone": ZONE}},
    ],
)
def test_same_content_notices_a_person_editing(edit: dict[str, Any]) -> None:
    body = event_body(booking(), Details.FULL)
    event = as_google_returns(body)
    event.update(copy.deepcopy(edit))
    assert not same_content(event, body)


def test_responses_report_only_new_answers_of_known_guests() -> None:
    b = booking(
        attendees=(
            Attendee("zoe@example.com"),
            Attendee("max@example.com", partstat=PartStat.TENTATIVE),
        )
    )
    event = {
        "attendees": [
            {"email": "zoe@example.com", "responseStatus": "tentative"},
            {"email": "max@example.com", "responseStatus": "tentative"},
            {"email": "stranger@example.com", "responseStatus": "accepted"},
            {"email": ANNA_GOOGLE, "self": True, "responseStatus": "accepted"},
        ]
    }
    assert responses(event, b) == [("zoe@example.com", "TENTATIVE")]
    assert (
        responses({"attendees": [{"email": "zoe@example.com", "responseStatus": "odd"}]}, b) == []
    )


def test_an_own_event_a_full_listing_leaves_out_is_planned_as_deleted_in_google() -> None:
    """One rule for both paths: missing from a complete listing is what an
    incremental sync reports as a cancelled event."""
    b = booking()
    ours = written_link(b)
    links = {ours.event_id: ours, "imp1": imported_link("imp1")}
    missing = vanished(links, listed={"imp1"})
    assert missing == [{"id": ours.event_id, "status": "cancelled"}]
    assert vanished(links, listed={ours.event_id}) == []  # listed: nothing vanished

    from_full = plan(missing, links=links.values(), own=own_of(b))
    from_delta = plan([cancelled(ours.event_id)], links=links.values(), own=own_of(b))
    assert repush(from_full) == repush(from_delta) == [b.id]
    assert [n.message for n in from_full.notes] == [n.message for n in from_delta.notes]
    assert "deleted in Google Calendar" in from_full.notes[0].message
    # A booking cancelled here meanwhile is not written back: its delete is queued.
    gone = plan(missing, links=links.values(), own=own_of(booking(status=BookingStatus.CANCELLED)))
    assert repush(gone) == [] and gone.notes == []


def test_an_event_another_resource_wrote_is_busy_time_like_any_other() -> None:
    """After a takeover the calendar still holds the previous resource's
    events until their removal: for this resource they are busy time."""
    theirs = gevent(
        "prevres1",
        extendedProperties={"private": {BOOKING_KEY: "other-booking", RESOURCE_KEY: "anna"}},
    )
    result = plan([theirs], own={"other-booking": Booked(None, foreign=True)})
    assert [b.event_id for b in result.upserts] == ["prevres1"]
    assert repush(result) == [] and result.notes == []
    # Deleted in the gateway instead (its push is queued): left alone.
    deleted = plan([theirs], own={"other-booking": Booked(None)})
    assert deleted.upserts == [] and repush(deleted) == []
    assert deleted.deletes == [GoogleDelete("other-booking", "prevres1")]


# -- gateway -> Google: a queued push ---------------------------------------------------

TWO_WAY = MirrorPolicy(Direction.TWO_WAY, Details.FULL)
IMPORT_COPIES = MirrorPolicy(Direction.TWO_WAY, Details.FULL, InvitePath.GOOGLE_IMPORT)


def push(
    b: Booking | None,
    link: EventLink | None,
    policy: MirrorPolicy,
    *,
    guests: frozenset[str] = frozenset(),
    force: bool = False,
    booking_id: str = BOOKING_ID,
) -> Plan:
    """``reconcile`` as the pusher asks it: one booking, nothing seen of
    Google (``force``: an earlier sync saw Google's copy changed)."""
    bid = b.id if b is not None else booking_id
    return reconcile(
        {link.event_id: link} if link is not None else {},
        {bid: Booked(b, guests_with_copies=guests)},
        GoogleView(differs=frozenset({bid}) if force else frozenset()),
        Scope(RES, policy, WINDOW_START, NOW),
    )


def push_kind(p: Plan) -> str:
    assert len(p.writes) + len(p.deletes) <= 1
    return "write" if p.writes else "delete" if p.deletes else "nothing"


@pytest.mark.parametrize(
    ("case", "the_booking", "link", "policy", "force", "kind"),
    [
        ("new booking", booking(), None, TWO_WAY, False, "write"),
        (
            "unchanged since our write",
            booking(),
            written_link(booking()),
            TWO_WAY,
            False,
            "nothing",
        ),
        (
            "changed here",
            booking(title="Colour"),
            written_link(booking()),
            TWO_WAY,
            False,
            "write",
        ),
        (
            "changed in Google: forced",
            booking(),
            written_link(booking()),
            TWO_WAY,
            True,
            "write",
        ),
        (
            "cancelled, was written",
            booking(status=BookingStatus.CANCELLED),
            written_link(booking()),
            TWO_WAY,
            False,
            "delete",
        ),
        (
            # A write Google may have taken unrecorded: deleted by its id
            # (404 if it never got there).
            "cancelled, no link",
            booking(status=BookingStatus.CANCELLED),
            None,
            TWO_WAY,
            False,
            "delete",
        ),
        ("deleted, was written", None, written_link(booking()), TWO_WAY, False, "delete"),
        (
            "deleted, only an imported block's link",
            None,
            imported_link("x"),
            TWO_WAY,
            False,
            "delete",
        ),
        (
            "a busy block from Google",
            booking(origin=Origin.GOOGLE),
            None,
            TWO_WAY,
            True,
            "nothing",
        ),
    ],
)
def test_what_a_push_does(
    case: str,
    the_booking: Booking | None,
    link: EventLink | None,
    policy: MirrorPolicy,
    force: bool,
    kind: str,
) -> None:
    plan = push(the_booking, link, policy, force=force)
    assert push_kind(plan) == kind, case
    if kind == "write":
        assert the_booking is not None
        (write,) = plan.writes
        assert write.fresh_read is force  # changed in Google: read it before writing
        assert write.body["summary"] == the_booking.title
        new_status = plan.status[write.event_id]
        assert new_status is not None and new_status.digest == digest(write.body)
    if kind == "delete":
        (delete,) = plan.deletes
        assert delete.event_id == google_event_id(BOOKING_ID)  # never the imported block
        assert plan.status == (
            {delete.event_id: None} if link is not None and link.event_id == delete.event_id else {}
        )


def test_a_push_keeps_the_detail_level_the_event_was_first_written_with() -> None:
    anonymous_link = written_link(booking(), Details.ANONYMOUS)
    # A new title changes nothing an anonymous event shows.
    assert push_kind(push(booking(title="Colour"), anonymous_link, TWO_WAY)) == "nothing"
    later = booking().start + HOUR
    plan = push(booking(start=later, end=later + HOUR), anonymous_link, TWO_WAY)
    (write,) = plan.writes
    new_status = plan.status[write.event_id]
    assert new_status is not None and new_status.details is Details.ANONYMOUS
    assert write.body["summary"] == "Busy"


def test_guests_with_an_imported_copy_are_not_listed_and_their_copies_follow() -> None:
    b = booking(attendees=(Attendee("zoe@example.com"), Attendee("anna@x.org")))
    plan = push(b, None, IMPORT_COPIES, guests=frozenset({"anna@x.org"}))
    (write,) = plan.writes
    assert plan.copy_to_guests == [b.id]
    assert [a["email"] for a in write.body["attendees"]] == ["zoe@example.com"]
    cancelled = push(replace(b, status=BookingStatus.CANCELLED), written_link(b), IMPORT_COPIES)
    assert push_kind(cancelled) == "delete" and cancelled.copy_to_guests == [b.id]
    assert not push(b, None, TWO_WAY).copy_to_guests


def test_our_own_event_is_known_by_its_properties_or_by_our_link() -> None:
    ours = pushed_link()
    links = {ours.event_id: ours}
    written = as_google_returns(event_body(booking(), Details.FULL))
    assert own_booking_id(written, {}) == BOOKING_ID
    # Deleted events come back stripped: our link still knows them.
    assert own_booking_id(cancelled(ours.event_id), links) == BOOKING_ID
    assert own_booking_id(gevent("someone-elses"), links) is None


# -- both directions: replaying a plan converges ------------------------------------

_TEXT = st.text(st.characters(codec="utf-8", exclude_categories=("Cs", "Cc")), max_size=20)
_EMAILS = st.sampled_from(["zoe@example.com", "anna@x.org", "max@y.net"])


@st.composite
def bookings(draw: st.DrawFn) -> Booking:
    start = datetime(2026, 3, 12, 6, tzinfo=BERLIN) + timedelta(
        minutes=15 * draw(st.integers(0, 96 * 20))
    )
    emails = draw(st.lists(_EMAILS, unique=True, max_size=3))
    return booking(
        title=draw(_TEXT),
        description=draw(_TEXT),
        location=draw(_TEXT),
        start=start,
        end=start + timedelta(minutes=15 * draw(st.integers(1, 16))),
        status=draw(st.sampled_from(list(BookingStatus))),
        transparent=draw(st.booleans()),
        attendees=tuple(Attendee(e) for e in emails),
    )


@given(
    first=bookings(),
    then=bookings(),
    details=st.sampled_from(list(Details)),
    invitations=st.sampled_from([InvitePath.EMAIL, InvitePath.GOOGLE, InvitePath.GOOGLE_IMPORT]),
    copies=st.frozensets(_EMAILS),
)
@settings(max_examples=300, deadline=None)
def test_replaying_the_plans_converges(
    first: Booking,
    then: Booking,
    details: Details,
    invitations: InvitePath,
    copies: frozenset[str],
) -> None:
    """Push a booking, change it, push again; each time the plan is
    executed (Google holds the body, the link its digest), the next push
    plans nothing, and the sync that reads our write back sees an echo:
    no write-back, no conflict, no busy block, no answer changed."""
    policy = MirrorPolicy(Direction.TWO_WAY, details, invitations)
    link: EventLink | None = None
    for version in (first, then):
        guests = copies if invitations is InvitePath.GOOGLE_IMPORT else frozenset()
        pushed = push(version, link, policy, guests=guests)
        event: Event | None = None
        if pushed.writes:
            (write,) = pushed.writes
            new_status = pushed.status[write.event_id]
            assert new_status is not None
            event = as_google_returns(write.body)
            # Google has touched it since (its etag moved on), so the sync must
            # recognise our write by its content, not by the etag.
            link = replace(new_status, etag='"ours"')
        elif pushed.deletes:
            link = None
        again = push(version, link, policy, guests=guests)
        if version.status is BookingStatus.CANCELLED:
            # A cancelled booking's event is deleted by its id even without a
            # link (a write may have reached Google unrecorded): the same
            # delete again, never a write.
            assert push_kind(again) == "delete" and again.status == {}
        else:
            assert push_kind(again) == "nothing"
        if event is not None and link is not None:
            synced = plan(
                [event], links=[link], own={version.id: Booked(version, guests_with_copies=guests)}
            )
            assert (repush(synced), synced.notes, synced.upserts) == ([], [], [])
            assert synced.responses == []


def test_a_complete_listing_removes_what_google_no_longer_has_in_the_plan() -> None:
    """The last page of a full listing decides what vanished, in the plan
    (nothing is decided again when it is applied)."""
    b = booking()
    ours = pushed_link()
    links = [
        ours,
        imported_link("gone1"),
        imported_link("kept1"),
        series_link("series-gone", '"s-1"'),
        series_link("series-kept", '"s-2"'),
        imported_link("series-kept_20260312", series_id="series-kept"),
        imported_link("series-gone_20260312", series_id="series-gone"),
    ]
    listed = {"kept1", "series-kept"}
    result = plan([gevent("kept1")], links=links, own=own_of(b), listed=listed)
    assert sorted(result.removals) == ["gone1", "series-gone_20260312"]
    assert forgotten(result) == ["series-gone"]
    assert repush(result) == [b.id]  # our own event vanished: written back
    # The same page of a delta (no listing) removes nothing it did not see.
    delta = plan([gevent("kept1")], links=links)
    assert (delta.removals, forgotten(delta), repush(delta)) == ([], [], [])


# -- the saved status -------------------------------------------------------------


def with_status(links: Mapping[str, EventLink], p: Plan) -> dict[str, EventLink]:
    """The saved status after the plan was executed."""
    new = dict(links)
    for event_id, link in p.status.items():
        if link is None:
            new.pop(event_id, None)
        else:
            new[event_id] = link
    return new


def test_a_block_imported_exactly_so_already_is_left_alone_and_a_moved_one_rewritten() -> None:
    """The status keeps a digest of what each block was imported as: a
    change notice that changes nothing of the block (a new title, a
    guest's answer) writes nothing, a moved event rewrites its block."""
    first = plan([gevent("dentist1")])
    (block,) = first.upserts
    saved = first.status["dentist1"]
    assert saved is not None and saved.digest == block_digest(block)
    assert saved.kind is LinkKind.IMPORTED and saved.etag == '"dentist1-1"'
    retitled = gevent("dentist1", summary="Dentist (moved room)", etag='"dentist1-2"')
    only(plan([retitled], links=[replace(saved, booking_id="blk-1")]))
    moved = gevent("dentist1", "2026-03-12T11:00:00+01:00", "2026-03-12T12:00:00+01:00")
    again = plan([moved], links=[replace(saved, booking_id="blk-1")])
    assert [b.span.start.hour for b in again.upserts] == [10]  # 11:00 Berlin, in UTC
    new = again.status["dentist1"]
    assert new is not None and new.booking_id == "blk-1"  # the same block, rewritten


def test_an_own_event_whose_link_was_lost_is_recognised_and_its_link_made_again() -> None:
    """A crash after Google took the insert and before the link was saved:
    the sync meets our event without a link, sees our write and remembers
    it, instead of writing it back as a conflict."""
    b = booking()
    event = as_google_returns(event_body(b, Details.FULL), etag='"after-crash"')
    p = plan([event], own=own_of(b))
    saved = p.status[GID]
    assert saved is not None and saved.kind is LinkKind.PUSHED and saved.booking_id == b.id
    assert saved.etag == '"after-crash"' and saved.digest == digest(event_body(b, Details.FULL))
    assert repush(p) == [] and p.notes == []
    # With that status a queued push of the unchanged booking writes nothing.
    assert push_kind(push(b, saved, TWO_WAY)) == "nothing"


def test_a_series_expansion_replaces_the_instances_imported_for_it() -> None:
    master = {"id": "yoga", "etag": '"yoga-3"'}
    links = {
        "yoga": series_link("yoga", '"yoga-2"'),
        "yoga_20260312": imported_link("yoga_20260312", series_id="yoga"),
        "yoga_20260305": imported_link("yoga_20260305", series_id="yoga"),
        "other_1": imported_link("other_1", series_id="other"),
    }
    instances = [
        gevent("yoga_20260312", recurringEventId="yoga"),
        gevent(
            "yoga_20260319",
            "2026-03-19T10:00:00+01:00",
            "2026-03-19T11:00:00+01:00",
            recurringEventId="yoga",
        ),
    ]
    until = NOW + timedelta(days=180)
    p = reconcile_series(RES, master, instances, ZONE, until, links)
    assert [b.event_id for b in p.upserts] == ["yoga_20260312", "yoga_20260319"]
    assert {b.series_id for b in p.upserts} == {"yoga"}
    assert p.removals == ["yoga_20260305"]  # no longer an instance; other series untouched
    series = p.status["yoga"]
    assert series is not None and (series.etag, series.expanded_until) == ('"yoga-3"', until)
    # Expanded again with nothing changed: only the series' status moves on.
    again = reconcile_series(RES, master, instances, ZONE, until, with_status(links, p))
    assert (again.upserts, again.removals, list(again.status)) == ([], [], ["yoga"])
