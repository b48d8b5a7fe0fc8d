"""python-caldav (the real client, synchronous, run in a thread) against the
gateway on a real loopback port: discovery, create/read/update/delete,
time-range search with recurrences, sync tokens, access rights and the
double-booking refusal, as a Python user of the library sees them."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, TypeVar

import caldav
import icalendar
import pytest
from caldav.lib import error

from tests.caldav.dav import event
from tests.caldav.servers import GatewayServer
from tests.conftest import ADMIN_PASSWORD, READER_PASSWORD

T = TypeVar("T")
CLIENT_TIMEOUT = 30  # seconds, for any one python-caldav call sequence


async def in_thread(function: Callable[..., T], *args: Any) -> T:
    """Run blocking python-caldav code while the server runs in this loop."""
    return await asyncio.wait_for(asyncio.to_thread(function, *args), CLIENT_TIMEOUT)


def connect(url: str, user: str = "admin", password: str = ADMIN_PASSWORD) -> caldav.DAVClient:
    return caldav.DAVClient(url=url, username=user, password=password, timeout=10)


def calendar_names(client: caldav.DAVClient) -> dict[str, str]:
    """Calendar URL path -> display name, found from the principal."""
    principal = client.principal()
    return {cal.url.path: cal.get_display_name() for cal in principal.calendars()}


def room(gateway: GatewayServer, user: str = "admin", password: str = ADMIN_PASSWORD) -> Any:
    client = connect(f"{gateway.url}/dav/", user, password)
    return client.calendar(url=gateway.calendar_url("room"))


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)  # type: ignore[misc]


ALL = {
    "/dav/calendars/anna/": "Anna Schmidt",
    "/dav/calendars/room/": "Room 1",
    "/dav/calendars/bob/": "Bob Jones",
}


# -- discovery -----------------------------------------------------------------------


async def test_discovery_from_dav_root(gateway: GatewayServer) -> None:
    def discover() -> tuple[str, dict[str, str], str, dict[str, str]]:
        admin = connect(f"{gateway.url}/dav/")
        reader = connect(f"{gateway.url}/dav/", "reader", READER_PASSWORD)
        return (
            admin.principal().url.path,
            calendar_names(admin),
            reader.principal().url.path,
            calendar_names(reader),
        )

    admin_principal, admin_calendars, reader_principal, reader_calendars = await in_thread(discover)
    assert admin_principal == "/dav/principals/admin/"
    assert admin_calendars == ALL
    assert reader_principal == "/dav/principals/reader/"
    assert reader_calendars == {"/dav/calendars/anna/": "Anna Schmidt"}


async def test_discovery_from_well_known_url(gateway: GatewayServer) -> None:
    """The URL RFC 6764 5 gives clients; the gateway redirects it to /dav/."""
    names = await in_thread(lambda: calendar_names(connect(f"{gateway.url}/.well-known/caldav")))
    assert names == ALL


@pytest.mark.parametrize("suffix", ["", "/"])
async def test_discovery_from_bare_server_url(gateway: GatewayServer, suffix: str) -> None:
    names = await in_thread(lambda: calendar_names(connect(gateway.url + suffix)))
    assert names == ALL


async def test_wrong_password_is_an_authorization_error(gateway: GatewayServer) -> None:
    with pytest.raises(error.AuthorizationError):
        await in_thread(lambda: connect(f"{gateway.url}/dav/", "admin", "wrong").principal())


# -- objects -------------------------------------------------------------------------


async def test_create_read_update_delete(gateway: GatewayServer) -> None:
    def scenario() -> dict[str, Any]:
        calendar = room(gateway)
        ics = event(
            "crud-1@example.com",
            extra="BEGIN:VALARM\r\nACTION:DISPLAY\r\nDESCRIPTION:Soon\r\n"
            "TRIGGER:-PT15M\r\nEND:VALARM\r\nX-SHOP-NOTE:bring towel\r\n",
        )
        created = calendar.save_event(ics)
        seen: dict[str, Any] = {"url": created.url.path}
        # A fresh client reads what the server stored.
        again = room(gateway).event_by_uid("crud-1@example.com")
        seen["read"] = again.icalendar_component.copy()
        seen["read_data"] = again.data

        again.icalendar_component["summary"] = icalendar.vText("Haircut and shave")
        again.save()
        seen["updated"] = room(gateway).event_by_uid("crud-1@example.com").icalendar_component
        seen["listed"] = [e.icalendar_component["uid"] for e in room(gateway).events()]

        room(gateway).event_by_uid("crud-1@example.com").delete()
        try:
            room(gateway).event_by_uid("crud-1@example.com")
        except error.NotFoundError:
            seen["gone"] = True
        seen["after_delete"] = room(gateway).events()
        return seen

    seen = await in_thread(scenario)
    assert seen["url"].startswith("/dav/calendars/room/")
    read = seen["read"]
    assert str(read["summary"]) == "Haircut"
    assert read.decoded("dtstart") == utc(2026, 12, 1, 9)
    assert read.decoded("dtend") == utc(2026, 12, 1, 10)
    assert str(read["x-shop-note"]) == "bring towel"
    alarms = icalendar.Calendar.from_ical(seen["read_data"]).walk("VALARM")
    assert [str(a["description"]) for a in alarms] == ["Soon"]
    assert str(seen["updated"]["summary"]) == "Haircut and shave"
    assert str(seen["updated"]["x-shop-note"]) == "bring towel"
    assert seen["listed"] == ["crud-1@example.com"]
    assert seen.get("gone") is True
    assert seen["after_delete"] == []


# A calendar with a single event, a weekly event with one exception (EXDATE)
# and an event far outside the searched weeks; nothing overlaps.
SINGLE = event("single@example.com", "20261201T090000Z", "20261201T100000Z", summary="Single")
WEEKLY = event(
    "weekly@example.com",
    "20261202T140000Z",
    "20261202T150000Z",
    summary="Weekly",
    extra="RRULE:FREQ=WEEKLY;COUNT=4\r\nEXDATE:20261209T140000Z\r\n",
)
LATER = event("later@example.com", "20270301T090000Z", "20270301T100000Z", summary="Later")


def _load(calendar: Any) -> None:
    for ics in (SINGLE, WEEKLY, LATER):
        calendar.save_event(ics)


def _occurrences(found: list[Any]) -> set[tuple[str, datetime]]:
    return {
        (str(e.icalendar_component["uid"]), e.icalendar_component.decoded("dtstart")) for e in found
    }


def _uids(found: list[Any]) -> list[str]:
    return sorted(str(e.icalendar_component["uid"]) for e in found)


async def test_search_time_range_with_recurrence(gateway: GatewayServer) -> None:
    def scenario() -> dict[str, Any]:
        calendar = room(gateway)
        _load(calendar)
        december = {"start": utc(2026, 12, 1), "end": utc(2027, 1, 1), "event": True}
        # Only the excluded occurrence (Dec 9) lies in this window.
        exdate_week = {"start": utc(2026, 12, 8), "end": utc(2026, 12, 15), "event": True}
        # The last occurrence only: later than the first one.
        last_week = {"start": utc(2026, 12, 22), "end": utc(2026, 12, 29), "event": True}
        return {
            "expanded": calendar.search(**december, expand=True),
            "server_expanded": calendar.search(**december, expand=True, server_expand=True),
            "plain": calendar.search(**december),
            "exdate_week": calendar.search(**exdate_week, expand=True),
            "exdate_week_plain": calendar.search(**exdate_week, post_filter=False),
            "last_week": calendar.search(**last_week, expand=True),
            "last_week_plain": calendar.search(**last_week, post_filter=False),
        }

    found = await in_thread(scenario)
    weekly = {
        ("weekly@example.com", utc(2026, 12, day, 14)) for day in (2, 16, 23)
    }  # Dec 9 excluded
    expected = {("single@example.com", utc(2026, 12, 1, 9)), *weekly}
    assert _occurrences(found["expanded"]) == expected
    assert len(found["expanded"]) == 4
    for occurrence in found["expanded"]:
        if str(occurrence.icalendar_component["uid"]) == "weekly@example.com":
            assert "RRULE" not in occurrence.icalendar_component
            assert "RECURRENCE-ID" in occurrence.icalendar_component
    assert _occurrences(found["server_expanded"]) == expected
    # Without expansion: one object per UID, the master with its RRULE.
    assert _uids(found["plain"]) == ["single@example.com", "weekly@example.com"]
    weekly_master = next(
        e for e in found["plain"] if str(e.icalendar_component["uid"]) == "weekly@example.com"
    )
    assert "RRULE" in weekly_master.icalendar_component
    assert found["exdate_week"] == []
    assert found["exdate_week_plain"] == []  # the server itself does not match it
    assert _occurrences(found["last_week"]) == {("weekly@example.com", utc(2026, 12, 23, 14))}
    assert _uids(found["last_week_plain"]) == ["weekly@example.com"]


# -- sync tokens ---------------------------------------------------------------------


async def test_sync_tokens(gateway: GatewayServer) -> None:
    def scenario() -> dict[str, Any]:
        calendar = room(gateway)
        calendar.save_event(SINGLE)
        calendar.save_event(WEEKLY)
        seen: dict[str, Any] = {}
        initial = calendar.objects_by_sync_token(load_objects=True)
        seen["initial"] = _uids(list(initial))
        seen["initial_token"] = initial.sync_token
        unchanged = calendar.objects_by_sync_token(initial.sync_token)
        seen["unchanged"] = list(unchanged)
        seen["unchanged_token"] = unchanged.sync_token

        calendar.save_event(LATER)
        added = calendar.objects_by_sync_token(initial.sync_token, load_objects=True)
        seen["added"] = _uids(list(added))

        single = calendar.event_by_uid("single@example.com")
        single.icalendar_component["summary"] = icalendar.vText("Changed")
        single.save()
        changed = calendar.objects_by_sync_token(added.sync_token, load_objects=True)
        seen["changed"] = [(str(e.icalendar_component["summary"])) for e in changed]

        weekly_url = calendar.event_by_uid("weekly@example.com").url
        calendar.event_by_uid("weekly@example.com").delete()
        deleted = calendar.objects_by_sync_token(changed.sync_token)
        seen["deleted_urls"] = {u.path for u in deleted.deleted_urls}
        seen["weekly_path"] = weekly_url.path
        seen["tokens"] = [initial.sync_token, added.sync_token, changed.sync_token]
        seen["final_token"] = deleted.sync_token
        # The high-level sync() of a loaded collection applies the changes.
        snapshot = calendar.objects_by_sync_token(load_objects=True)
        calendar.save_event(
            event("new@example.com", "20261205T090000Z", "20261205T100000Z", summary="New")
        )
        later = calendar.event_by_uid("later@example.com")
        seen["later_path"] = later.url.path
        later.delete()
        updated, removed = snapshot.sync()
        seen["sync_updated"] = _uids(list(updated))
        seen["sync_removed"] = [o.url.path for o in removed]
        seen["sync_now"] = _uids(list(snapshot))
        return seen

    seen = await in_thread(scenario)
    assert seen["initial"] == ["single@example.com", "weekly@example.com"]
    assert seen["initial_token"]
    assert seen["unchanged"] == []
    assert seen["unchanged_token"] == seen["initial_token"]
    assert seen["added"] == ["later@example.com"]
    assert seen["changed"] == ["Changed"]
    assert seen["deleted_urls"] == {seen["weekly_path"]}
    assert len(set(seen["tokens"])) == 3  # every change moves the token on
    assert seen["final_token"] not in seen["tokens"]
    assert seen["sync_updated"] == ["new@example.com"]
    assert seen["sync_removed"] == [seen["later_path"]]
    assert seen["sync_now"] == ["new@example.com", "single@example.com"]


# -- refusals ------------------------------------------------------------------------


async def test_reader_cannot_write(gateway: GatewayServer) -> None:
    def scenario() -> dict[str, Any]:
        reader = connect(f"{gateway.url}/dav/", "reader", READER_PASSWORD)
        anna = reader.calendar(url=gateway.calendar_url("anna"))
        seen: dict[str, Any] = {}
        try:
            anna.save_event(event("reader@example.com"))
        except error.DAVError as exc:
            seen["write"] = exc
        admin_anna = connect(f"{gateway.url}/dav/").calendar(url=gateway.calendar_url("anna"))
        admin_anna.save_event(event("anna@example.com"))
        try:
            anna.event_by_uid("anna@example.com").delete()
        except error.DAVError as exc:
            seen["delete"] = exc
        seen["reader_sees"] = _uids(anna.events())
        try:
            reader.calendar(url=gateway.calendar_url("room")).events()
        except error.DAVError as exc:
            seen["room"] = exc
        return seen

    seen = await in_thread(scenario)
    assert isinstance(seen.get("write"), error.AuthorizationError | error.PutError)
    assert seen["write"].status == 403
    assert isinstance(seen.get("delete"), error.AuthorizationError | error.DeleteError)
    assert seen["delete"].status == 403
    assert seen["reader_sees"] == ["anna@example.com"]  # nothing added, nothing removed
    assert isinstance(seen.get("room"), error.DAVError)  # not granted: not even visible
    assert seen["room"].status == 404


async def test_double_booking_is_refused(gateway: GatewayServer) -> None:
    def scenario() -> dict[str, Any]:
        calendar = room(gateway)
        calendar.save_event(event("first@example.com", "20261201T090000Z", "20261201T100000Z"))
        seen: dict[str, Any] = {}
        try:
            calendar.save_event(event("second@example.com", "20261201T093000Z", "20261201T103000Z"))
        except error.DAVError as exc:
            seen["refused"] = exc
        calendar.save_event(
            event(
                "free@example.com",
                "20261201T093000Z",
                "20261201T103000Z",
                extra="TRANSP:TRANSPARENT\r\n",
            )
        )
        seen["stored"] = _uids(calendar.events())
        return seen

    seen = await in_thread(scenario)
    refused = seen.get("refused")
    assert isinstance(refused, error.PutError), refused
    assert refused.status == 409
    assert "no-double-booking" in str(refused)
    assert seen["stored"] == ["first@example.com", "free@example.com"]
