"""The same requests to Radicale (a reference CalDAV server, run on loopback)
and to the gateway, comparing what the answers mean rather than their bytes.

Radicale gets a fresh calendar made with MKCALENDAR under ``/user/``; the
gateway a fresh database with its ``room`` calendar (UTC, like Radicale's
floating times). Where the two differ by design (the gateway refuses
MKCALENDAR and double bookings) nothing is compared; every time-range case
also states the set the RFC asks for, so agreeing on a wrong answer fails too.
"""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import partial
from typing import Any
from urllib.parse import urlsplit

import icalendar
import pytest
from aiohttp import ClientSession

from tests.caldav.dav import NS, Answer, event, propfind_body
from tests.caldav.servers import DavEndpoint, GatewayServer, RadicaleServer, member_name
from tests.conftest import ADMIN_PASSWORD, basic

C = NS["C"]
_calendar_numbers = itertools.count(1)


@dataclass
class Both:
    radicale: DavEndpoint
    gateway: DavEndpoint

    async def each(self, call: Callable[[DavEndpoint], Awaitable[Answer]]) -> tuple[Answer, Answer]:
        """The same request to Radicale, then to the gateway."""
        return await call(self.radicale), await call(self.gateway)

    async def put_all(self, objects: dict[str, str]) -> None:
        for name, ics in objects.items():
            for side in (self.radicale, self.gateway):
                answer = await side.put(name, ics)
                assert answer.status == 201, (side.base, name, answer.status, answer.body)


@pytest.fixture
async def both(
    radicale: RadicaleServer, gateway: GatewayServer, http: ClientSession
) -> AsyncIterator[Both]:
    collection = f"/{radicale.user}/cal-{next(_calendar_numbers)}/"
    theirs = DavEndpoint(http, radicale.url, collection, radicale.auth)
    made = await theirs.request("MKCALENDAR")
    assert made.status == 201, made.body
    ours = DavEndpoint(http, gateway.url, "/dav/calendars/room/", basic("admin", ADMIN_PASSWORD))
    yield Both(theirs, ours)


# -- reading answers -----------------------------------------------------------------


def found_names(answer: Answer, collection: str) -> set[str]:
    """Members with a 200 propstat in a multistatus (the collection excluded)."""
    assert answer.status == 207, (answer.status, answer.body)
    names = set()
    for response in answer.xml().findall("D:response", NS):
        href = response.findtext("D:href", namespaces=NS)
        if href is None or href.rstrip("/").endswith(collection.rstrip("/")):
            continue
        statuses = [s.text or "" for s in response.findall("D:propstat/D:status", NS)]
        if any(" 200 " in s for s in statuses):
            names.add(member_name(href))
    return names


def missing_names(answer: Answer) -> set[str]:
    """Members answered with a bare 404 status (multiget misses, sync deletions)."""
    return {
        member_name(href)
        for href, status in answer.statuses().items()
        if status is not None and " 404 " in status
    }


def prop_of(answer: Answer, name: str, prop: str) -> Any:
    for href in answer.hrefs():
        if member_name(href) == name:
            return answer.props(href).get(prop)
    raise AssertionError(f"{name} not in {answer.body!r}")


def meaning(ics: str | bytes) -> dict[str, Any]:
    """What a user sees of an object: the VEVENTs' main properties, their
    alarms and X- properties."""
    calendar = icalendar.Calendar.from_ical(ics)
    events = []
    for vevent in calendar.walk("VEVENT"):
        events.append(
            {
                "uid": str(vevent["UID"]),
                "dtstart": vevent.decoded("DTSTART"),
                "dtend": vevent.decoded("DTEND") if "DTEND" in vevent else None,
                "duration": vevent.decoded("DURATION") if "DURATION" in vevent else None,
                "summary": str(vevent.get("SUMMARY", "")),
                "rrule": vevent["RRULE"].to_ical() if "RRULE" in vevent else None,
                "recurrence_id": vevent.decoded("RECURRENCE-ID")
                if "RECURRENCE-ID" in vevent
                else None,
                "alarms": sorted(
                    (str(a["ACTION"]), a["TRIGGER"].to_ical()) for a in vevent.walk("VALARM")
                ),
                "x": sorted((k, str(v)) for k, v in vevent.items() if k.startswith("X-")),
            }
        )
    return {
        "events": sorted(events, key=lambda e: (e["uid"], str(e["recurrence_id"]))),
        "timezones": sorted(str(tz["TZID"]) for tz in calendar.walk("VTIMEZONE")),
    }


def query(filter_xml: str, props: str = "<D:getetag/>") -> str:
    return (
        f'<C:calendar-query xmlns:D="DAV:" xmlns:C="{C}">'
        f"<D:prop>{props}</D:prop>"
        f'<C:filter><C:comp-filter name="VCALENDAR">{filter_xml}</C:comp-filter></C:filter>'
        "</C:calendar-query>"
    )


def vevent_in(start: str | None, end: str | None) -> str:
    bounds = "".join(
        f' {label}="{value}"' for label, value in (("start", start), ("end", end)) if value
    )
    return f'<C:comp-filter name="VEVENT"><C:time-range{bounds}/></C:comp-filter>'


def summary_matches(text: str, negate: bool = False) -> str:
    negation = ' negate-condition="yes"' if negate else ""
    return (
        '<C:comp-filter name="VEVENT"><C:prop-filter name="SUMMARY">'
        f'<C:text-match collation="i;ascii-casemap"{negation}>{text}</C:text-match>'
        "</C:prop-filter></C:comp-filter>"
    )


def multiget(hrefs: list[str], props: str = "<D:getetag/><C:calendar-data/>") -> str:
    inner = "".join(f"<D:href>{h}</D:href>" for h in hrefs)
    return (
        f'<C:calendar-multiget xmlns:D="DAV:" xmlns:C="{C}">'
        f"<D:prop>{props}</D:prop>{inner}</C:calendar-multiget>"
    )


def sync_collection(token: str) -> str:
    return (
        '<D:sync-collection xmlns:D="DAV:">'
        f"<D:sync-token>{token}</D:sync-token><D:sync-level>1</D:sync-level>"
        "<D:prop><D:getetag/></D:prop></D:sync-collection>"
    )


def new_token(answer: Answer) -> str:
    token = answer.xml().findtext("D:sync-token", namespaces=NS)
    assert token, answer.body
    return token


# -- test data (nothing overlaps: the gateway refuses double bookings) ---------------

BERLIN_TZ = (
    "BEGIN:VTIMEZONE\r\nTZID:Europe/Berlin\r\n"
    "BEGIN:DAYLIGHT\r\nTZOFFSETFROM:+0100\r\nTZOFFSETTO:+0200\r\nTZNAME:CEST\r\n"
    "DTSTART:19700329T020000\r\nRRULE:FREQ=YEARLY;BYMONTH=3;BYDAY=-1SU\r\nEND:DAYLIGHT\r\n"
    "BEGIN:STANDARD\r\nTZOFFSETFROM:+0200\r\nTZOFFSETTO:+0100\r\nTZNAME:CET\r\n"
    "DTSTART:19701025T030000\r\nRRULE:FREQ=YEARLY;BYMONTH=10;BYDAY=-1SU\r\nEND:STANDARD\r\n"
    "END:VTIMEZONE\r\n"
)


def with_timezone(ics: str) -> str:
    return ics.replace("BEGIN:VEVENT", BERLIN_TZ + "BEGIN:VEVENT", 1)


def allday(uid: str, day: str, summary: str = "Closed") -> str:
    return (
        "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//test//caldav//EN\r\n"
        f"BEGIN:VEVENT\r\nUID:{uid}\r\nDTSTAMP:20261101T000000Z\r\n"
        f"DTSTART;VALUE=DATE:{day}\r\nSUMMARY:{summary}\r\n"
        "END:VEVENT\r\nEND:VCALENDAR\r\n"
    )


def overridden(uid: str) -> str:
    """Weekly Nov 3, 10, 17 at 12:00Z; the Nov 10 one moved to Dec 8 12:00Z."""
    return (
        "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//test//caldav//EN\r\n"
        f"BEGIN:VEVENT\r\nUID:{uid}\r\nDTSTAMP:20261101T000000Z\r\n"
        "DTSTART:20261103T120000Z\r\nDTEND:20261103T130000Z\r\n"
        "RRULE:FREQ=WEEKLY;COUNT=3\r\nSUMMARY:Standup\r\nEND:VEVENT\r\n"
        f"BEGIN:VEVENT\r\nUID:{uid}\r\nDTSTAMP:20261101T000000Z\r\n"
        "RECURRENCE-ID:20261110T120000Z\r\n"
        "DTSTART:20261208T120000Z\r\nDTEND:20261208T130000Z\r\nSUMMARY:Standup (moved)\r\n"
        "END:VEVENT\r\nEND:VCALENDAR\r\n"
    )


OBJECTS = {
    # Dec 7 09:00-10:00Z
    "plain.ics": event("plain@example.com", "20261207T090000Z", "20261207T100000Z"),
    # Mondays Nov 2 ... Dec 7 15:00-16:00Z: only the sixth, last occurrence is in Dec 5-12.
    "weekly.ics": event(
        "weekly@example.com",
        "20261102T150000Z",
        "20261102T160000Z",
        summary="Weekly haircut",
        extra="RRULE:FREQ=WEEKLY;COUNT=6\r\n",
    ),
    # Daily Dec 9-11 at 07:00Z, the Dec 10 one excluded.
    "daily-exdate.ics": event(
        "daily@example.com",
        "20261209T070000Z",
        "20261209T080000Z",
        summary="Cleaning",
        extra="RRULE:FREQ=DAILY;COUNT=3\r\nEXDATE:20261210T070000Z\r\n",
    ),
    # All day Dec 14 (a DATE: floating, the calendar's zone, UTC on both).
    "allday.ics": allday("allday@example.com", "20261214"),
    # Dec 4 23:00Z - Dec 5 00:00Z: ends exactly where Dec 5 starts.
    "ends-at-start.ics": event("ends@example.com", "20261204T230000Z", "20261205T000000Z"),
    # Dec 12 00:00Z for an hour: starts exactly where Dec 5-12 ends.
    "starts-at-end.ics": event("starts@example.com", "20261212T000000Z", "20261212T010000Z"),
    # Dec 15 10:00-11:00 Berlin = 09:00-10:00Z, with its VTIMEZONE.
    "berlin.ics": with_timezone(
        event(
            "berlin@example.com",
            "20261215T100000",
            "20261215T110000",
            summary="Zoned",
        )
        .replace("DTSTART:", "DTSTART;TZID=Europe/Berlin:")
        .replace("DTEND:", "DTEND;TZID=Europe/Berlin:")
    ),
    # Dec 16 09:00Z for 90 minutes, by DURATION.
    "duration.ics": event("duration@example.com", "20261216T090000Z", "20261216T090000Z")
    .replace("DTEND:20261216T090000Z", "DURATION:PT1H30M")
    .replace("SUMMARY:Haircut", "SUMMARY:Long HAIRCUT"),
    "moved.ics": overridden("moved@example.com"),
    # Far away.
    "later.ics": event("later@example.com", "20270301T090000Z", "20270301T100000Z"),
    # Dec 17 09:00Z, no DTEND nor DURATION: an instant (RFC 5545 3.6.1).
    "instant.ics": event("instant@example.com", "20261217T090000Z", "", summary="Reminder").replace(
        "DTEND:\r\n", ""
    ),
    # All day Dec 21 and 22 (DTEND is exclusive).
    "allday-span.ics": allday("span@example.com", "20261221", "Holidays").replace(
        "SUMMARY", "DTEND;VALUE=DATE:20261223\r\nSUMMARY"
    ),
    # Dec 18 and, by RDATE, Dec 28, 09:00-10:00Z.
    "rdate.ics": event(
        "rdate@example.com",
        "20261218T090000Z",
        "20261218T100000Z",
        summary="Inventory",
        extra="RDATE:20261228T090000Z\r\n",
    ),
    # Saturdays 20:00-21:00Z from Dec 19, forever.
    "forever.ics": event(
        "forever@example.com",
        "20261219T200000Z",
        "20261219T210000Z",
        summary="Cleanup",
        extra="RRULE:FREQ=WEEKLY\r\n",
    ),
}

TIME_RANGES: dict[tuple[str | None, str | None], set[str]] = {
    # window: what RFC 4791 9.9 matches
    ("20261205T000000Z", "20261212T000000Z"): {
        "plain.ics",
        "weekly.ics",  # the last occurrence only
        "daily-exdate.ics",
        "moved.ics",  # the overridden instance moved here (Dec 8)
    },
    # The only occurrence of daily-exdate in here is the excluded one.
    ("20261210T000000Z", "20261211T000000Z"): set(),
    # Ends exactly at the start: not matched; starts exactly at the end: not matched.
    ("20261205T000000Z", "20261205T010000Z"): set(),
    ("20261211T080000Z", "20261212T000000Z"): set(),
    # The all-day event covers Dec 14 00:00Z-Dec 15 00:00Z.
    ("20261214T230000Z", "20261215T000000Z"): {"allday.ics"},
    ("20261215T000000Z", "20261215T090000Z"): set(),
    # Berlin 10:00 is 09:00Z.
    ("20261215T093000Z", "20261215T094000Z"): {"berlin.ics"},
    # DURATION ends at 10:30Z.
    ("20261216T102900Z", "20261216T103000Z"): {"duration.ics"},
    ("20261216T103000Z", "20261216T120000Z"): set(),
    # The moved instance no longer happens on Nov 10; Nov 3 and 17 still do.
    ("20261110T000000Z", "20261111T000000Z"): set(),
    ("20261117T000000Z", "20261118T000000Z"): {"moved.ics"},
    # Weekly's first occurrence Nov 2 and the monthly view of November.
    ("20261101T000000Z", "20261201T000000Z"): {"weekly.ics", "moved.ics"},
    ("20270101T000000Z", "20280101T000000Z"): {"later.ics", "forever.ics"},
    # An instant matches a range starting at it, not one ending at it (9.9).
    ("20261217T090000Z", "20261217T100000Z"): {"instant.ics"},
    ("20261217T080000Z", "20261217T090000Z"): set(),
    ("20261222T120000Z", "20261222T130000Z"): {"allday-span.ics"},
    ("20261223T000000Z", "20261224T000000Z"): set(),
    ("20261228T093000Z", "20261228T094000Z"): {"rdate.ics"},
    ("20300105T000000Z", "20300112T000000Z"): {"forever.ics"},
    # Open-ended ranges (9.9: start or end may be left out).
    ("20270101T000000Z", None): {"later.ics", "forever.ics"},
    (None, "20261102T153000Z"): {"weekly.ics"},
}


# -- tests ---------------------------------------------------------------------------


async def test_propfind_depth_1(both: Both) -> None:
    await both.put_all({name: OBJECTS[name] for name in ("plain.ics", "weekly.ics", "moved.ics")})
    body = propfind_body("D:getetag", "D:resourcetype", "D:getcontenttype")
    radicale, gateway = await both.each(lambda s: s.propfind(body, depth="1"))
    names = found_names(radicale, both.radicale.collection)
    assert names == found_names(gateway, both.gateway.collection)
    assert names == {"plain.ics", "weekly.ics", "moved.ics"}
    for answer, side in ((radicale, both.radicale), (gateway, both.gateway)):
        for name in names:
            etag = prop_of(answer, name, "D:getetag")
            assert etag is not None and etag.text and etag.text.startswith('"'), name
            assert (prop_of(answer, name, "D:getcontenttype").text or "").startswith(
                "text/calendar"
            )
        (collection,) = [h for h in answer.hrefs() if h.endswith(side.collection)]
        kinds = {child.tag for child in answer.props(collection)["D:resourcetype"]}
        assert kinds == {f"{{{NS['D']}}}collection", f"{{{C}}}calendar"}


async def test_propfind_depth_0_and_missing_member(both: Both) -> None:
    await both.put_all({"plain.ics": OBJECTS["plain.ics"]})
    body = propfind_body("D:getetag")
    radicale, gateway = await both.each(
        lambda s: s.request("PROPFIND", "plain.ics", body, {"Depth": "0"})
    )
    assert radicale.status == gateway.status == 207
    for answer in (radicale, gateway):
        assert [member_name(h) for h in answer.hrefs()] == ["plain.ics"]
    radicale, gateway = await both.each(
        lambda s: s.request("PROPFIND", "nope.ics", body, {"Depth": "0"})
    )
    assert radicale.status == gateway.status == 404


async def test_get_returns_the_same_meaning(both: Both) -> None:
    rich = with_timezone(
        event(
            "rich@example.com",
            "20261209T100000",
            "20261209T110000",
            summary="Colour\\, cut\\; and wash",
            extra="RRULE:FREQ=WEEKLY;BYDAY=WE;UNTIL=20270201T000000Z\r\n"
            "X-SHOP-CHAIR:3\r\nX-APPLE-TRAVEL-ADVISORY-BEHAVIOR:AUTOMATIC\r\n"
            "BEGIN:VALARM\r\nACTION:DISPLAY\r\nDESCRIPTION:Soon\r\nTRIGGER:-PT15M\r\n"
            "END:VALARM\r\n"
            "BEGIN:VALARM\r\nACTION:AUDIO\r\nTRIGGER;VALUE=DATE-TIME:20261207T080000Z\r\n"
            "END:VALARM\r\n",
        )
        .replace("DTSTART:", "DTSTART;TZID=Europe/Berlin:")
        .replace("DTEND:", "DTEND;TZID=Europe/Berlin:")
    )
    objects = {
        "rich.ics": rich,
        "moved.ics": OBJECTS["moved.ics"],
        "allday.ics": OBJECTS["allday.ics"],
    }
    await both.put_all(objects)
    for name, sent in objects.items():
        radicale, gateway = await both.each(lambda s, n=name: s.get(n))
        assert radicale.status == gateway.status == 200
        for answer in (radicale, gateway):
            assert answer.headers["Content-Type"].startswith("text/calendar")
            assert answer.headers.get("ETag")
        assert meaning(radicale.body) == meaning(gateway.body) == meaning(sent), name
    rich_meaning = meaning(rich)["events"][0]
    assert len(rich_meaning["alarms"]) == 2
    assert ("X-SHOP-CHAIR", "3") in rich_meaning["x"]


async def test_calendar_query_time_range(both: Both) -> None:
    """Every window of ``TIME_RANGES`` on one calendar: both servers match
    exactly the members RFC 4791 9.9 asks for."""
    await both.put_all(OBJECTS)
    wrong = []
    for (start, end), expected in TIME_RANGES.items():
        body = query(vevent_in(start, end))
        radicale, gateway = await both.each(lambda s, b=body: s.report(b))
        for label, answer, side in (
            ("gateway", gateway, both.gateway),
            ("radicale", radicale, both.radicale),
        ):
            got = found_names(answer, side.collection)
            if got != expected:
                wrong.append(f"{label} {start}-{end}: got {sorted(got)}, want {sorted(expected)}")
    assert not wrong, "\n".join(wrong)


async def test_calendar_query_without_time_range_and_with_data(both: Both) -> None:
    await both.put_all(OBJECTS)
    body = query('<C:comp-filter name="VEVENT"/>', "<D:getetag/><C:calendar-data/>")
    radicale, gateway = await both.each(lambda s: s.report(body))
    names = found_names(gateway, both.gateway.collection)
    assert names == found_names(radicale, both.radicale.collection) == set(OBJECTS)
    for name in names:
        ours = prop_of(gateway, name, "C:calendar-data").text
        theirs = prop_of(radicale, name, "C:calendar-data").text
        assert meaning(ours) == meaning(theirs) == meaning(OBJECTS[name]), name
    # No VTODO is stored anywhere.
    todo = query('<C:comp-filter name="VTODO"/>')
    radicale, gateway = await both.each(lambda s: s.report(todo))
    assert found_names(radicale, both.radicale.collection) == set()
    assert found_names(gateway, both.gateway.collection) == set()


HAIRCUTS = {
    "plain.ics",
    "weekly.ics",
    "ends-at-start.ics",
    "starts-at-end.ics",
    "duration.ics",
    "later.ics",
}
TEXT_MATCHES = {
    # (text, negate-condition): members whose SUMMARY matches (i;ascii-casemap)
    ("haircut", False): HAIRCUTS,
    ("HAIRCUT", False): HAIRCUTS,
    ("Weekly", False): {"weekly.ics"},
    ("haircut", True): set(OBJECTS) - HAIRCUTS,
    ("no such words", False): set(),
}


async def test_calendar_query_text_match(both: Both) -> None:
    await both.put_all(OBJECTS)
    wrong = []
    for (text, negate), expected in TEXT_MATCHES.items():
        body = query(summary_matches(text, negate))
        radicale, gateway = await both.each(lambda s, b=body: s.report(b))
        for label, answer, side in (
            ("gateway", gateway, both.gateway),
            ("radicale", radicale, both.radicale),
        ):
            got = found_names(answer, side.collection)
            if got != expected:
                wrong.append(f"{label} {text!r} negate={negate}: got {sorted(got)}")
    assert not wrong, "\n".join(wrong)


async def test_calendar_multiget(both: Both) -> None:
    await both.put_all({n: OBJECTS[n] for n in ("plain.ics", "moved.ics", "allday.ics")})
    wanted = ["plain.ics", "moved.ics", "missing.ics"]
    radicale, gateway = await both.each(
        lambda s: s.report(multiget([s.collection + n for n in wanted]))
    )
    for answer, side in ((radicale, both.radicale), (gateway, both.gateway)):
        assert found_names(answer, side.collection) == {"plain.ics", "moved.ics"}
        assert missing_names(answer) == {"missing.ics"}
        for name in ("plain.ics", "moved.ics"):
            data = prop_of(answer, name, "C:calendar-data").text
            assert meaning(data) == meaning(OBJECTS[name])


async def test_sync_collection(both: Both) -> None:
    await both.put_all({n: OBJECTS[n] for n in ("plain.ics", "weekly.ics", "allday.ics")})
    radicale, gateway = await both.each(lambda s: s.report(sync_collection("")))
    for answer, side in ((radicale, both.radicale), (gateway, both.gateway)):
        assert found_names(answer, side.collection) == {"plain.ics", "weekly.ics", "allday.ics"}
        assert missing_names(answer) == set()
    tokens = {"radicale": new_token(radicale), "gateway": new_token(gateway)}

    # Nothing changed: nothing reported.
    radicale, gateway = await both.each(
        lambda s: s.report(sync_collection(tokens["radicale" if s is both.radicale else "gateway"]))
    )
    for answer, side in ((radicale, both.radicale), (gateway, both.gateway)):
        assert found_names(answer, side.collection) == set()
        assert missing_names(answer) == set()

    # One added, one changed, one deleted.
    await both.put_all({"duration.ics": OBJECTS["duration.ics"]})
    changed = OBJECTS["plain.ics"].replace("SUMMARY:Haircut", "SUMMARY:Haircut v2")
    for side in (both.radicale, both.gateway):
        assert (await side.put("plain.ics", changed)).status in (201, 204)
        assert (await side.delete("weekly.ics")).status in (200, 204)
    radicale, gateway = await both.each(
        lambda s: s.report(sync_collection(tokens["radicale" if s is both.radicale else "gateway"]))
    )
    for answer, side in ((radicale, both.radicale), (gateway, both.gateway)):
        assert found_names(answer, side.collection) == {"duration.ics", "plain.ics"}
        assert missing_names(answer) == {"weekly.ics"}
    assert new_token(gateway) != tokens["gateway"]
    assert new_token(radicale) != tokens["radicale"]

    # A token the server never issued: 403 valid-sync-token (RFC 6578 3.2).
    radicale, gateway = await both.each(
        lambda s: s.report(sync_collection("http://example.com/not-a-token"))
    )
    assert radicale.status == gateway.status == 403
    assert "valid-sync-token" in gateway.error()
    assert "valid-sync-token" in radicale.error()


async def test_conditional_requests(both: Both) -> None:
    await both.put_all({"plain.ics": OBJECTS["plain.ics"]})
    changed = OBJECTS["plain.ics"].replace("SUMMARY:Haircut", "SUMMARY:Changed")
    wrong = {"If-Match": '"not-the-etag"'}
    radicale, gateway = await both.each(lambda s: s.put("plain.ics", changed, wrong))
    assert radicale.status == gateway.status == 412
    radicale, gateway = await both.each(lambda s: s.delete("plain.ics", wrong))
    assert radicale.status == gateway.status == 412
    radicale, gateway = await both.each(
        lambda s: s.put("plain.ics", changed, {"If-None-Match": "*"})
    )
    assert radicale.status == gateway.status == 412
    # Nothing of that changed anything.
    radicale, gateway = await both.each(lambda s: s.get("plain.ics"))
    assert meaning(radicale.body) == meaning(gateway.body) == meaning(OBJECTS["plain.ics"])

    # The right etag works on both; the old one then no longer does.
    etags = {id(both.radicale): radicale.headers["ETag"], id(both.gateway): gateway.headers["ETag"]}
    radicale, gateway = await both.each(
        lambda s: s.put("plain.ics", changed, {"If-Match": etags[id(s)]})
    )
    assert radicale.status in (201, 204) and gateway.status == 204
    radicale, gateway = await both.each(lambda s: s.delete("plain.ics", {"If-Match": etags[id(s)]}))
    assert radicale.status == gateway.status == 412
    # If-None-Match: * creates when nothing is there.
    radicale, gateway = await both.each(
        lambda s: s.put("new.ics", OBJECTS["later.ics"], {"If-None-Match": "*"})
    )
    assert radicale.status == gateway.status == 201
    # Missing objects: 404 for GET and DELETE on both.
    radicale, gateway = await both.each(lambda s: s.get("nope.ics"))
    assert radicale.status == gateway.status == 404
    radicale, gateway = await both.each(lambda s: s.delete("nope.ics"))
    assert radicale.status == gateway.status == 404


INVALID = {
    "not-icalendar": "this is not a calendar\r\n",
    "truncated": "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nBEGIN:VEVENT\r\nUID:x\r\n",
    "no-uid": event("gone").replace("UID:gone\r\n", ""),
    "two-uids": event("one@example.com").replace(
        "END:VCALENDAR",
        "BEGIN:VEVENT\r\nUID:two@example.com\r\nDTSTAMP:20261101T000000Z\r\n"
        "DTSTART:20261202T090000Z\r\nDTEND:20261202T100000Z\r\nEND:VEVENT\r\nEND:VCALENDAR",
    ),
    "bad-date": event("bad@example.com", "20261341T090000Z", "20261341T100000Z"),
}


@pytest.mark.parametrize("kind", list(INVALID))
async def test_invalid_body_is_refused(both: Both, kind: str) -> None:
    radicale, gateway = await both.each(lambda s: s.put(f"{kind}.ics", INVALID[kind]))
    assert 400 <= radicale.status < 500, (radicale.status, radicale.body)
    assert 400 <= gateway.status < 500, (gateway.status, gateway.body)
    radicale, gateway = await both.each(lambda s: s.get(f"{kind}.ics"))
    assert radicale.status == gateway.status == 404


async def test_uid_already_used_by_another_member(both: Both) -> None:
    """RFC 4791 5.3.2.1 no-uid-conflict: one UID, one object in a calendar."""
    await both.put_all({"plain.ics": OBJECTS["plain.ics"]})
    again = OBJECTS["plain.ics"].replace("DTSTART:20261207T090000Z", "DTSTART:20261220T090000Z")
    again = again.replace("DTEND:20261207T100000Z", "DTEND:20261220T100000Z")
    radicale, gateway = await both.each(lambda s: s.put("copy.ics", again))
    assert gateway.status in (403, 409)
    assert "no-uid-conflict" in gateway.error()
    assert radicale.status in (403, 409), radicale.status


def _utc(value: Any) -> Any:
    return value.astimezone(UTC) if isinstance(value, datetime) else value


def instances(answer: Answer, side: DavEndpoint) -> set[tuple[str, Any, Any, bool]]:
    """(UID, RECURRENCE-ID, DTSTART in UTC, still has a recurrence rule) of
    every VEVENT in the calendar-data of a multistatus."""
    found = set()
    for name in found_names(answer, side.collection):
        data = prop_of(answer, name, "C:calendar-data").text
        for vevent in icalendar.Calendar.from_ical(data).walk("VEVENT"):
            recurrence_id = (
                _utc(vevent.decoded("RECURRENCE-ID")) if "RECURRENCE-ID" in vevent else None
            )
            found.add(
                (
                    str(vevent["UID"]),
                    recurrence_id,
                    _utc(vevent.decoded("DTSTART")),
                    "RRULE" in vevent or "EXDATE" in vevent,
                )
            )
    return found


async def test_calendar_query_expand(both: Both) -> None:
    """RFC 4791 9.6.5: recurring objects come back as their instances in the
    range, each with a RECURRENCE-ID and no rule."""
    await both.put_all(OBJECTS)
    start, end = "20261205T000000Z", "20261212T000000Z"
    body = query(
        vevent_in(start, end),
        f'<D:getetag/><C:calendar-data><C:expand start="{start}" end="{end}"/></C:calendar-data>',
    )
    radicale, gateway = await both.each(lambda s: s.report(body))
    at = partial(datetime, tzinfo=UTC)
    expected = {
        ("plain@example.com", None, at(2026, 12, 7, 9), False),
        ("weekly@example.com", at(2026, 12, 7, 15), at(2026, 12, 7, 15), False),
        ("daily@example.com", at(2026, 12, 9, 7), at(2026, 12, 9, 7), False),
        ("daily@example.com", at(2026, 12, 11, 7), at(2026, 12, 11, 7), False),
        ("moved@example.com", at(2026, 11, 10, 12), at(2026, 12, 8, 12), False),
    }
    assert instances(gateway, both.gateway) == expected
    assert instances(radicale, both.radicale) == expected


def busy_periods(body: bytes) -> list[tuple[datetime, datetime, str]]:
    """Merged busy time of a free-busy answer, per FBTYPE.

    FBTYPE=FREE periods are left out: RFC 4791 7.10 says the report "only
    returns busy time information", yet Radicale 3.9 lists cancelled events
    as FREE (its deviation; the gateway lists nothing for them)."""
    calendar = icalendar.Calendar.from_ical(body)
    (component,) = calendar.walk("VFREEBUSY")
    spans: dict[str, list[tuple[datetime, datetime]]] = {}
    values = component.get("FREEBUSY", [])
    for prop in values if isinstance(values, list) else [values]:
        fbtype = str(prop.params.get("FBTYPE", "BUSY")).upper()
        if fbtype == "FREE":
            continue
        for period in prop.dt if isinstance(prop.dt, list) else [prop.dt]:
            period_start, period_end = period
            if not isinstance(period_end, datetime):
                period_end = period_start + period_end
            spans.setdefault(fbtype, []).append((_utc(period_start), _utc(period_end)))
    merged = []
    for fbtype, found in spans.items():
        found.sort()
        current = list(found[0])
        for span_start, span_end in found[1:]:
            if span_start <= current[1]:
                current[1] = max(current[1], span_end)
            else:
                merged.append((current[0], current[1], fbtype))
                current = [span_start, span_end]
        merged.append((current[0], current[1], fbtype))
    return sorted(merged)


FREE_BUSY_OBJECTS = {
    "plain.ics": OBJECTS["plain.ics"],  # Dec 7 09-10Z
    "daily-exdate.ics": OBJECTS["daily-exdate.ics"],  # Dec 9, 11 07-08Z
    "tentative.ics": event(
        "tentative@example.com",
        "20261207T100000Z",
        "20261207T110000Z",
        extra="STATUS:TENTATIVE\r\n",
    ),
    "free.ics": event(
        "free@example.com",
        "20261207T093000Z",
        "20261207T120000Z",
        extra="TRANSP:TRANSPARENT\r\n",
    ),
    "cancelled.ics": event(
        "cancelled@example.com",
        "20261208T090000Z",
        "20261208T100000Z",
        extra="STATUS:CANCELLED\r\n",
    ),
    "later.ics": OBJECTS["later.ics"],
}


async def test_free_busy_query(both: Both) -> None:
    """RFC 4791 7.10: opaque, not cancelled instances in the range are busy
    (tentative ones BUSY-TENTATIVE); transparent and cancelled ones are not."""
    await both.put_all(FREE_BUSY_OBJECTS)
    body = (
        f'<C:free-busy-query xmlns:C="{C}">'
        '<C:time-range start="20261201T000000Z" end="20261210T000000Z"/>'
        "</C:free-busy-query>"
    )
    radicale, gateway = await both.each(lambda s: s.report(body))
    assert radicale.status == gateway.status == 200
    for answer in (radicale, gateway):
        assert answer.headers["Content-Type"].startswith("text/calendar")
    at = partial(datetime, tzinfo=UTC)
    expected = [
        (at(2026, 12, 7, 9), at(2026, 12, 7, 10), "BUSY"),
        (at(2026, 12, 7, 10), at(2026, 12, 7, 11), "BUSY-TENTATIVE"),
        (at(2026, 12, 9, 7), at(2026, 12, 9, 8), "BUSY"),
    ]
    assert busy_periods(gateway.body) == expected
    assert b"FBTYPE=FREE" not in gateway.body  # 7.10: busy time only
    assert busy_periods(radicale.body) == expected


async def test_etags_agree_between_put_get_and_propfind(both: Both) -> None:
    names = ("plain.ics", "moved.ics")
    put_etags: dict[tuple[str, str], str] = {}
    for name in names:
        for label, side in (("radicale", both.radicale), ("gateway", both.gateway)):
            answer = await side.put(name, OBJECTS[name])
            assert answer.status == 201
            put_etags[(label, name)] = answer.headers["ETag"]
    radicale, gateway = await both.each(lambda s: s.propfind(propfind_body("D:getetag")))
    for label, answer in (("radicale", radicale), ("gateway", gateway)):
        for name in names:
            assert prop_of(answer, name, "D:getetag").text == put_etags[(label, name)]
    for name in names:
        radicale, gateway = await both.each(lambda s, n=name: s.get(n))
        assert radicale.headers["ETag"] == put_etags[("radicale", name)]
        assert gateway.headers["ETag"] == put_etags[("gateway", name)]
    # A change makes a new etag on both.
    changed = OBJECTS["plain.ics"].replace("SUMMARY:Haircut", "SUMMARY:Trim")
    radicale, gateway = await both.each(lambda s: s.put("plain.ics", changed))
    assert radicale.headers["ETag"] != put_etags[("radicale", "plain.ics")]
    assert gateway.headers["ETag"] != put_etags[("gateway", "plain.ics")]


async def test_options_announce_calendar_access(both: Both) -> None:
    radicale, gateway = await both.each(lambda s: s.request("OPTIONS"))
    for answer in (radicale, gateway):
        assert answer.status == 200
        tokens = {t.strip() for t in answer.headers.get("DAV", "").split(",")}
        assert {"1", "calendar-access"} <= tokens, answer.headers.get("DAV")
        allowed = {m.strip() for m in answer.headers.get("Allow", "").split(",")}
        assert {"PROPFIND", "REPORT", "PUT", "DELETE", "GET"} <= allowed


def limited_sync(token: str, nresults: int) -> str:
    return (
        '<D:sync-collection xmlns:D="DAV:">'
        f"<D:sync-token>{token}</D:sync-token><D:sync-level>1</D:sync-level>"
        f"<D:limit><D:nresults>{nresults}</D:nresults></D:limit>"
        "<D:prop><D:getetag/></D:prop></D:sync-collection>"
    )


def truncated(answer: Answer, side: DavEndpoint) -> bool:
    """RFC 6578 3.6: the request-URI answered 507 marks a truncated result."""
    return any(
        urlsplit(href).path == side.collection and " 507 " in (status or "")
        for href, status in answer.statuses().items()
    )


async def test_sync_collection_limit_on_changes(both: Both) -> None:
    """RFC 6578 3.7: with DAV:limit the server truncates (507 on the
    collection, a token to go on from) or refuses; it never answers more.
    Only the gateway is checked: Radicale 3.9 ignores DAV:limit (it answered
    2 results for nresults 1, neither truncating nor refusing)."""
    gateway = both.gateway
    assert (await gateway.put("a.ics", OBJECTS["plain.ics"])).status == 201
    token = new_token(await gateway.report(sync_collection("")))
    for name in ("later.ics", "rdate.ics"):
        assert (await gateway.put(name, OBJECTS[name])).status == 201
    first = await gateway.report(limited_sync(token, 1))
    assert found_names(first, gateway.collection) == {"later.ics"}
    assert truncated(first, gateway)
    second = await gateway.report(limited_sync(new_token(first), 1))
    assert found_names(second, gateway.collection) == {"rdate.ics"}
    assert not truncated(second, gateway)


async def test_sync_collection_limit_on_initial_sync(both: Both) -> None:
    gateway = both.gateway
    for name in ("plain.ics", "later.ics", "rdate.ics"):
        assert (await gateway.put(name, OBJECTS[name])).status == 201
    answer = await gateway.report(limited_sync("", 1))
    assert answer.status == 207
    seen = found_names(answer, gateway.collection)
    assert len(seen) == 1
    assert truncated(answer, gateway)
    # Following the tokens brings the rest, each member once.
    for _ in range(3):
        answer = await gateway.report(limited_sync(new_token(answer), 1))
        seen |= found_names(answer, gateway.collection)
        if not truncated(answer, gateway):
            break
    assert seen == {"plain.ics", "later.ics", "rdate.ics"}
    assert not truncated(answer, gateway)
