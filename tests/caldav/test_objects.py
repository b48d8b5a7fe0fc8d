"""Calendar objects over CalDAV: PUT, GET/HEAD, DELETE (RFC 4791 5.3.2,
RFC 9110 13.1), through the real app, checked against the store's rows."""

from __future__ import annotations

import asyncio

import pytest
from lxml import etree

from tests.backends import Store
from tests.caldav.dav import ADMIN, NS, event, propfind, put, request
from tests.conftest import READER_PASSWORD, AppClient, basic
from tests.dbcheck import row_counts, tuples
from tests.rawhttp import connect, request_head

ANNA = "/dav/calendars/anna/"
READER = basic("reader", READER_PASSWORD)

RICH = (
    "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//Apple Inc.//macOS 15//EN\r\n"
    "X-WR-CALNAME:ignored\r\n"
    "BEGIN:VTIMEZONE\r\nTZID:Europe/Berlin\r\nBEGIN:STANDARD\r\nDTSTART:19701025T030000\r\n"
    "RRULE:FREQ=YEARLY;BYMONTH=10;BYDAY=-1SU\r\nTZOFFSETFROM:+0200\r\nTZOFFSETTO:+0100\r\n"
    "END:STANDARD\r\nBEGIN:DAYLIGHT\r\nDTSTART:19700329T020000\r\n"
    "RRULE:FREQ=YEARLY;BYMONTH=3;BYDAY=-1SU\r\nTZOFFSETFROM:+0100\r\nTZOFFSETTO:+0200\r\n"
    "END:DAYLIGHT\r\nEND:VTIMEZONE\r\n"
    "BEGIN:VEVENT\r\nUID:rich-1@example.com\r\nDTSTAMP:20261101T000000Z\r\n"
    "DTSTART;TZID=Europe/Berlin:20261203T090000\r\nDTEND;TZID=Europe/Berlin:20261203T100000\r\n"
    "SUMMARY:Färben 🎨\r\nX-APPLE-TRAVEL-ADVISORY-BEHAVIOR:AUTOMATIC\r\n"
    "X-UNKNOWN-PROP;X-PARAM=1:keep me\r\nCOLOR:turquoise\r\n"
    "BEGIN:VALARM\r\nACTION:DISPLAY\r\nDESCRIPTION:Reminder\r\nTRIGGER:-PT15M\r\n"
    "X-WR-ALARMUID:A1\r\nEND:VALARM\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n"
)


async def ctag(client: AppClient, path: str = ANNA) -> str:
    answer = await propfind(client, path, "CS:getctag")
    return str(answer.props(path)["CS:getctag"].text)


async def test_put_stores_the_object_exactly_as_sent(client: AppClient, store: Store) -> None:
    created = await put(client, ANNA + "rich.ics", RICH)
    assert created.status == 201
    etag = created.headers["ETag"]
    got = await request(client, "GET", ANNA + "rich.ics")
    assert got.status == 200
    assert got.body == RICH.encode("utf-8")
    assert got.headers["ETag"] == etag
    assert got.headers["Content-Type"] == "text/calendar; charset=utf-8"
    assert "Last-Modified" in got.headers
    # Read back as a booking: the parsed fields the gateway reasons with.
    assert tuples(store, "SELECT uid, title, timezone, origin, href FROM objects") == [
        ("rich-1@example.com", "Färben 🎨", "Europe/Berlin", "caldav", "rich.ics")
    ]


async def test_head_has_the_headers_and_no_body(client: AppClient) -> None:
    await put(client, ANNA + "a.ics", event("a"))
    async with client.head(ANNA + "a.ics", headers=basic("admin", "admin-secret-pw")) as resp:
        assert resp.status == 200
        assert resp.headers["ETag"].startswith('"')
        assert await resp.read() == b""


async def test_conditional_get_answers_304(client: AppClient) -> None:
    etag = (await put(client, ANNA + "a.ics", event("a"))).headers["ETag"]
    answer = await request(client, "GET", ANNA + "a.ics", headers={"If-None-Match": etag})
    assert answer.status == 304 and answer.body == b""


async def test_conditional_get_with_an_old_etag_answers_the_current_text(
    client: AppClient,
) -> None:
    old = (await put(client, ANNA + "a.ics", event("a"))).headers["ETag"]
    new = (await put(client, ANNA + "a.ics", event("a", summary="Moved"))).headers["ETag"]
    answer = await request(client, "GET", ANNA + "a.ics", headers={"If-None-Match": old})
    assert answer.status == 200 and b"SUMMARY:Moved" in answer.body
    assert answer.headers["ETag"] == new and answer.headers["Schedule-Tag"] == new
    assert "GMT" in answer.headers["Last-Modified"]
    same = await request(client, "GET", ANNA + "a.ics", headers={"If-None-Match": f'"x", {new}'})
    assert same.status == 304 and same.body == b""
    assert same.headers["ETag"] == new and same.headers["Schedule-Tag"] == new
    assert same.headers["Last-Modified"] == answer.headers["Last-Modified"]
    gone = await request(client, "GET", ANNA + "nope.ics", headers={"If-None-Match": new})
    assert gone.status == 404


async def test_listing_and_object_report_the_last_modified_of_get(client: AppClient) -> None:
    # A listing's members carry their time as stored text, parsed only when
    # getlastmodified is asked: it must say what GET and Depth 0 say.
    for uid, day in (("a", "02"), ("b", "03")):
        ics = event(uid, f"202612{day}T090000Z", f"202612{day}T100000Z")
        assert (await put(client, ANNA + f"{uid}.ics", ics)).status == 201
    listing = await propfind(client, ANNA, "D:getlastmodified", "D:getetag", depth="1")
    for uid in ("a", "b"):
        href = ANNA + f"{uid}.ics"
        got = await request(client, "GET", href)
        assert got.headers["Last-Modified"].endswith(" GMT")
        listed = listing.props(href)["D:getlastmodified"].text
        alone = (await propfind(client, href, "D:getlastmodified")).props(href)
        assert listed == alone["D:getlastmodified"].text == got.headers["Last-Modified"]


async def test_listed_members_say_what_each_member_says_of_its_caller(client: AppClient) -> None:
    # Listed members share their caller's principal and rights, worked out
    # once a listing: each must say what a PROPFIND of the member says.
    assert (await put(client, ANNA + "a.ics", event("a"))).status == 201
    href = ANNA + "a.ics"
    props = ("D:current-user-principal", "D:current-user-privilege-set")
    for auth in (ADMIN, READER):
        listing = await propfind(client, ANNA, *props, depth="1", auth=auth)
        alone = await propfind(client, href, *props, auth=auth)
        listed, own = listing.props(href), alone.props(href)
        for name in props:
            assert etree.tostring(listed[name]) == etree.tostring(own[name])
    privileges = await propfind(client, ANNA, props[1], depth="1", auth=READER)
    granted = etree.tostring(privileges.props(href)[props[1]])
    assert b"read" in granted and b"write" not in granted


async def test_update_replaces_and_changes_etag_ctag_and_sync_token(
    client: AppClient, store: Store
) -> None:
    first = await put(client, ANNA + "a.ics", event("a"))
    before = await ctag(client)
    second = await put(
        client,
        ANNA + "a.ics",
        event("a", summary="Moved"),
        headers={"If-Match": first.headers["ETag"]},
    )
    assert second.status == 204
    assert second.headers["ETag"] != first.headers["ETag"]
    assert await ctag(client) != before
    assert tuples(store, "SELECT revision, href, kind FROM changes ORDER BY revision") == [
        (1, "a.ics", "put"),
        (2, "a.ics", "put"),
    ]
    # The same bytes again change nothing at all.
    again = await put(client, ANNA + "a.ics", event("a", summary="Moved"))
    assert again.status == 204 and again.headers["ETag"] == second.headers["ETag"]
    assert row_counts(store)["changes"] == 2


async def test_if_match_and_if_none_match_guard_writes(client: AppClient, store: Store) -> None:
    etag = (await put(client, ANNA + "a.ics", event("a"))).headers["ETag"]
    stale = await put(
        client, ANNA + "a.ics", event("a", summary="x"), headers={"If-Match": '"old"'}
    )
    assert stale.status == 412
    exists = await put(
        client, ANNA + "a.ics", event("a", summary="x"), headers={"If-None-Match": "*"}
    )
    assert exists.status == 412
    missing = await put(
        client,
        ANNA + "b.ics",
        event("b", "20261202T090000Z", "20261202T100000Z"),
        headers={"If-Match": "*"},
    )
    assert missing.status == 412
    assert row_counts(store)["objects"] == 1
    ok = await put(
        client, ANNA + "a.ics", event("a", summary="x"), headers={"If-Match": f'"nope", {etag}'}
    )
    assert ok.status == 204
    create = await put(
        client,
        ANNA + "c.ics",
        event("c", "20261203T090000Z", "20261203T100000Z"),
        headers={"If-None-Match": "*"},
    )
    assert create.status == 201
    malformed = await put(client, ANNA + "a.ics", event("a"), headers={"If-Match": "no-quotes"})
    assert malformed.status == 400


async def test_concurrent_creates_with_if_none_match_let_exactly_one_win(
    client: AppClient, store: Store
) -> None:
    answers = await asyncio.gather(
        *(
            put(
                client,
                ANNA + "same.ics",
                event("same", summary=f"v{n}"),
                headers={"If-None-Match": "*"},
            )
            for n in range(8)
        )
    )
    assert sorted(a.status for a in answers) == [201] + [412] * 7
    assert row_counts(store)["objects"] == 1


async def test_delete_with_and_without_if_match(client: AppClient, store: Store) -> None:
    etag = (await put(client, ANNA + "a.ics", event("a"))).headers["ETag"]
    refused = await request(client, "DELETE", ANNA + "a.ics", headers={"If-Match": '"other"'})
    assert refused.status == 412
    deleted = await request(client, "DELETE", ANNA + "a.ics", headers={"If-Match": etag})
    assert deleted.status == 204
    assert (await request(client, "GET", ANNA + "a.ics")).status == 404
    assert (await request(client, "DELETE", ANNA + "a.ics")).status == 404
    assert tuples(store, "SELECT uid, href FROM tombstones") == [("a", "a.ics")]


async def test_deleting_a_calendar_is_refused(client: AppClient) -> None:
    answer = await request(client, "DELETE", ANNA)
    assert answer.status == 403
    assert "config file" in answer.message()


async def test_double_booking_is_refused_unless_transparent(
    client: AppClient, store: Store
) -> None:
    assert (await put(client, ANNA + "a.ics", event("a"))).status == 201
    clash = await put(client, ANNA + "b.ics", event("b", "20261201T093000Z", "20261201T103000Z"))
    assert clash.status == 409
    assert "no-double-booking" in clash.error()
    assert "2026-12-01T09:00:00Z/2026-12-01T10:00:00Z" in clash.message()
    free = await put(
        client,
        ANNA + "b.ics",
        event("b", "20261201T093000Z", "20261201T103000Z", extra="TRANSP:TRANSPARENT\r\n"),
    )
    assert free.status == 201
    # Touching ends do not overlap (half-open).
    after = await put(client, ANNA + "c.ics", event("c", "20261201T100000Z", "20261201T110000Z"))
    assert after.status == 201
    # Other calendars are not affected.
    assert (await put(client, "/dav/calendars/room/a.ics", event("room-a"))).status == 201
    assert row_counts(store)["objects"] == 4


async def test_a_double_booking_names_the_first_conflicting_span_in_the_status_line(
    client: AppClient,
) -> None:
    """vdirsyncer and others print only "409, message='<reason phrase>'":
    the reason phrase says what is in the way, in UTC (RFC 9110 15.1)."""
    assert (await put(client, ANNA + "a.ics", event("a"))).status == 201
    berlin = event(
        "b",
        "20261201T093000Z",
        "20261201T103000Z",
    ).replace("DTSTART:20261201T093000Z", "DTSTART;TZID=Europe/Berlin:20261201T103000")
    clash = await put(client, ANNA + "b.ics", berlin)
    assert clash.status == 409
    assert clash.reason == "Conflict: busy 2026-12-01 09:00-10:00 UTC"
    # The body still names every span, with the precondition.
    assert "no-double-booking" in clash.error()
    assert "2026-12-01T09:00:00Z/2026-12-01T10:00:00Z" in clash.message()
    # Several spans: the first, and how many more; across midnight, both days.
    night = event("n", "20261201T233000Z", "20261202T003015Z")
    assert (await put(client, ANNA + "n.ics", night)).status == 201
    day = await put(client, ANNA + "d.ics", event("d", "20261201T000000Z", "20261203T000000Z"))
    assert day.status == 409
    assert day.reason == "Conflict: busy 2026-12-01 09:00-10:00 UTC and 1 more"
    late = await put(client, ANNA + "l.ics", event("l", "20261202T000000Z", "20261202T010000Z"))
    assert late.reason == "Conflict: busy 2026-12-01 23:30 to 2026-12-02 00:30:15 UTC"


async def test_the_conflict_reason_phrase_is_one_short_ascii_line_of_times_only(
    client: AppClient,
) -> None:
    """Nothing the client sent reaches the status line: a hostile UID and
    SUMMARY (escaped CR LF, a header to inject, non-ASCII, great length) on
    both the stored booking and the clashing one. Read from the raw socket,
    as sent (RFC 9112 4: reason-phrase is HTAB / SP / VCHAR / obs-text)."""
    hostile = "Evil\\r\\nX-Injected: yes\\n\u00fc\u202e" + "x" * 500
    stored = event("\u00e9vil-X-Injected: 1" + "u" * 200, summary=hostile)
    assert (await put(client, ANNA + "a.ics", stored)).status == 201
    body = event(
        "cl\u00e4sh-X-Injected: 2", "20261201T093000Z", "20261201T094500Z", summary=hostile
    )
    data = body.encode("utf-8")
    head = {
        **ADMIN,
        "Content-Type": "text/calendar; charset=utf-8",
        "Content-Length": str(len(data)),
    }
    assert client.server.port is not None
    conn = await connect(client.server.port)
    try:
        await conn.send(request_head("PUT", ANNA + "clash.ics", head).encode() + data)
        answer = await conn.answer()
    finally:
        await conn.close()
    assert answer.status == 409
    assert answer.status_line == b"HTTP/1.1 409 Conflict: busy 2026-12-01 09:00-10:00 UTC"
    assert "x-injected" not in answer.headers
    assert b"no-double-booking" in answer.body


async def test_api_bookings_and_caldav_objects_block_each_other(
    client: AppClient, api_headers: dict[str, str]
) -> None:
    await put(client, ANNA + "a.ics", event("a"))
    resp = await client.post(
        "/api/v1/bookings",
        json={
            "resource": "anna",
            "start": "2026-12-01T09:30:00Z",
            "end": "2026-12-01T09:45:00Z",
            "title": "Clash",
        },
        headers=api_headers,
    )
    assert resp.status == 409
    resp = await client.post(
        "/api/v1/bookings",
        json={
            "resource": "anna",
            "start": "2026-12-05T09:00:00Z",
            "end": "2026-12-05T10:00:00Z",
            "title": "Booked online",
        },
        headers=api_headers,
    )
    booking = await resp.json()
    listing = await propfind(client, ANNA, "D:getetag", depth="1")
    href = f"{ANNA}{booking['uid']}.ics"
    assert href in listing.hrefs()
    clash = await put(client, ANNA + "x.ics", event("x", "20261205T093000Z", "20261205T094500Z"))
    assert clash.status == 409


async def test_recurring_object_is_checked_occurrence_by_occurrence(client: AppClient) -> None:
    # Weekly on Tuesdays 09:00-10:00 UTC from 2026-12-01.
    weekly = event("w", extra="RRULE:FREQ=WEEKLY;COUNT=10\r\n")
    assert (await put(client, ANNA + "w.ics", weekly)).status == 201
    # A Wednesday fits, the fourth Tuesday does not.
    wednesday = event("d1", "20261209T090000Z", "20261209T100000Z")
    assert (await put(client, ANNA + "d1.ics", wednesday)).status == 201
    tuesday = event("d2", "20261222T093000Z", "20261222T094500Z")
    clash = await put(client, ANNA + "d2.ics", tuesday)
    assert clash.status == 409
    assert "2026-12-22T09:00:00Z/2026-12-22T10:00:00Z" in clash.message()
    # Excluding that Tuesday frees it; editing the series keeps its own time.
    weekly_minus = event("w", extra="RRULE:FREQ=WEEKLY;COUNT=10\r\nEXDATE:20261222T090000Z\r\n")
    assert (await put(client, ANNA + "w.ics", weekly_minus)).status == 204
    assert (await put(client, ANNA + "d2.ics", tuesday)).status == 201
    # Now the series cannot take that Tuesday back.
    assert (await put(client, ANNA + "w.ics", weekly)).status == 409


async def test_invalid_objects_get_a_precondition_and_nothing_is_written(
    client: AppClient, store: Store
) -> None:
    cases = {
        "valid-calendar-data": "this is not iCalendar",
        "valid-calendar-object-resource": event("m").replace(
            "VERSION:2.0\r\n", "VERSION:2.0\r\nMETHOD:REQUEST\r\n"
        ),
        "supported-calendar-component": event("t").replace("VEVENT", "VTODO"),
    }
    two_uids = event("one").replace(
        "END:VCALENDAR",
        "BEGIN:VEVENT\r\nUID:two\r\nDTSTART:20261202T090000Z\r\nEND:VEVENT\r\nEND:VCALENDAR",
    )
    for precondition, body in [*cases.items(), ("valid-calendar-object-resource", two_uids)]:
        answer = await put(client, ANNA + "bad.ics", body)
        # RFC 4791 1.3: a precondition that will always fail is a 403.
        assert answer.status == 403, (precondition, answer.body)
        assert precondition in answer.error()
        assert answer.message()
    wrong_type = await request(
        client, "PUT", ANNA + "bad.ics", b"{}", headers={"Content-Type": "application/json"}
    )
    assert wrong_type.status == 415
    assert "supported-calendar-data" in wrong_type.error()
    latin1 = await request(
        client,
        "PUT",
        ANNA + "bad.ics",
        "Zoë".encode("utf-16"),
        headers={"Content-Type": "text/calendar"},
    )
    assert latin1.status == 403
    assert "valid-calendar-data" in latin1.error()
    assert row_counts(store)["objects"] == 0


@pytest.mark.parametrize(
    ("rule", "words"),
    [
        ("FREQ=WEEKLY;UNTL=20270101T000000Z", "UNTL=20270101T000000Z"),
        ("FREQ=WEEKLY;BYDAYS=MO", "did you mean BYDAY?"),
        ("FREQ=WEEKLY;COUNT=5;UNTIL=20270101T000000Z", "both COUNT and UNTIL"),
    ],
)
async def test_a_rule_with_a_part_rfc_5545_does_not_name_is_refused(
    client: AppClient, store: Store, caplog: pytest.LogCaptureFixture, rule: str, words: str
) -> None:
    """Issue 13 item 2: a misspelt part (UNTL=) used to be stored with its
    recurrence silently dropped, so its later weeks never blocked a double
    booking, and every query that met it logged a traceback."""
    answer = await put(client, ANNA + "typo.ics", event("typo", extra=f"RRULE:{rule}\r\n"))
    assert answer.status == 403
    assert "valid-calendar-data" in answer.error()
    assert f"RRULE:{rule}" in answer.message()
    assert words in answer.message()
    assert row_counts(store)["objects"] == 0
    assert not [r for r in caplog.records if r.exc_info]


async def test_one_uid_per_calendar(client: AppClient) -> None:
    await put(client, ANNA + "a.ics", event("same-uid"))
    again = await put(client, ANNA + "b.ics", event("same-uid"))
    assert again.status == 409
    assert "no-uid-conflict" in again.error()
    # For clients that show only the status line; the UID stays in the body.
    assert again.reason == "Conflict: UID already used"
    assert again.xml().findtext(".//D:href", namespaces=NS) == ANNA + "a.ics"
    changed = await put(client, ANNA + "a.ics", event("other-uid"))
    assert changed.status == 409
    # Nor in another calendar: UIDs are unique across the gateway, or an
    # attendee's reply (by UID) could land on the other calendar's copy.
    elsewhere = await put(client, "/dav/calendars/room/a.ics", event("same-uid"))
    assert elsewhere.status == 409
    assert elsewhere.xml().findtext(".//D:href", namespaces=NS) == ANNA + "a.ics"


async def test_reader_may_read_but_not_write(client: AppClient, store: Store) -> None:
    await put(client, ANNA + "a.ics", event("a"))
    assert (await request(client, "GET", ANNA + "a.ics", auth=READER)).status == 200
    for method, body in (("PUT", event("b").encode()), ("DELETE", None)):
        answer = await request(
            client,
            method,
            ANNA + "a.ics",
            body,
            headers={"Content-Type": "text/calendar"},
            auth=READER,
        )
        assert answer.status == 403, method
        assert "need-privileges" in answer.error()
    hidden = await request(client, "GET", "/dav/calendars/bob/a.ics", auth=READER)
    assert hidden.status == 404
    assert row_counts(store)["objects"] == 1


async def test_names_are_clients_own_and_percent_encoded(client: AppClient) -> None:
    path = ANNA + "Termin%20f%C3%BCr%20Zo%C3%AB@home.ics"
    assert (await put(client, path, event("u"))).status == 201
    listing = await propfind(client, ANNA, "D:getetag", depth="1")
    assert path in listing.hrefs()
    assert (await request(client, "GET", path)).status == 200


async def test_path_tricks_are_refused(client: AppClient, store: Store) -> None:
    for path in (
        ANNA + "..%2F..%2Fetc.ics",
        ANNA + "a%2Fb.ics",
        ANNA + "%2E%2E",
        ANNA + "x%00.ics",
        ANNA + "%FF.ics",
        ANNA + "sub/deeper.ics",
    ):
        answer = await put(client, path, event("p"))
        assert 400 <= answer.status < 500, path
    assert row_counts(store)["objects"] == 0


async def test_put_on_a_collection_is_not_allowed(client: AppClient) -> None:
    assert (await put(client, ANNA, event("a"))).status == 405
    assert (await request(client, "GET", ANNA)).status == 405


async def test_api_edit_of_a_caldav_series_keeps_its_name_and_every_occurrence(
    client: AppClient, api_headers: dict[str, str]
) -> None:
    weekly = event("series-uid", extra="RRULE:FREQ=WEEKLY;COUNT=10\r\n")
    assert (await put(client, ANNA + "chosen-name.ics", weekly)).status == 201
    listed = await client.get(
        "/api/v1/bookings",
        params={"resource": "anna", "start": "2026-12-01T00:00:00Z", "end": "2026-12-02T00:00Z"},
        headers=api_headers,
    )
    (booking,) = (await listed.json())["bookings"]
    patched = await client.patch(
        f"/api/v1/bookings/{booking['id']}", json={"title": "Renamed"}, headers=api_headers
    )
    assert patched.status == 200
    got = await request(client, "GET", ANNA + "chosen-name.ics")
    assert got.status == 200 and "SUMMARY:Renamed" in got.body.decode()
    assert (await request(client, "GET", ANNA + "series-uid.ics")).status == 404
    # The eighth Tuesday is still busy: the index covers the whole series.
    late = await put(
        client, ANNA + "late.ics", event("late", "20270119T093000Z", "20270119T094500Z")
    )
    assert late.status == 409
