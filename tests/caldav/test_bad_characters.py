"""One bad character must not break CalDAV for a whole calendar (issue 12,
item 2): PUT refuses what XML 1.0 cannot carry (RFC 4791 5.3.2.1
valid-calendar-data), a body in no real charset is a 4xx, and an object that
holds such a character anyway (stored before the rule, or by hand) is served
with U+FFFD in every XML answer while its GET stays byte-identical."""

from __future__ import annotations

import pytest
from lxml import etree

from caldav_backend.dav.errors import DavError
from tests.backends import Store, sqlite_only
from tests.caldav.dav import NS, Answer, event, put, reports, request, sync
from tests.conftest import AppClient
from tests.dbcheck import row_counts, tamper_object

CALENDAR = "/dav/calendars/anna/"
ALL_ANSWER = {
    "propfind": 207,
    "calendar-query": 207,
    "sync-collection": 207,
    "calendar-multiget": 207,
}


def statuses(answers: dict[str, Answer]) -> dict[str, int]:
    return {name: a.status for name, a in answers.items()}


@pytest.mark.parametrize(
    "char", ["\x00", "\x1b", "\x0b", "\ufffe"], ids=["NUL", "ESC", "VT", "U+FFFE"]
)
async def test_put_refuses_a_character_xml_cannot_carry(
    client: AppClient, store: Store, char: str
) -> None:
    before = row_counts(store)
    answer = await put(client, f"{CALENDAR}bad.ics", event("bad", summary=f"Hair{char}cut"))
    assert answer.status == 403
    assert answer.error()[0] == "valid-calendar-data"
    assert answer.message() == (
        f"SUMMARY (line 9) contains U+{ord(char):04X} at column 13, "
        "which calendar clients cannot carry"
    )
    assert row_counts(store) == before
    assert statuses(await reports(client)) == ALL_ANSWER


async def test_put_refuses_a_lone_surrogate_spelled_in_utf_7(client: AppClient) -> None:
    # UTF-7 (RFC 2152) is a real charset, and "+2D8-" in it is U+D83F alone.
    body = event("u7", summary="Hair+2D8-cut").encode("ascii")
    answer = await request(
        client,
        "PUT",
        f"{CALENDAR}u7.ics",
        body,
        headers={"Content-Type": "text/calendar; charset=utf-7"},
    )
    assert answer.status == 403
    assert "SUMMARY (line 9) contains U+D83F" in answer.message()


@pytest.mark.parametrize(
    ("charset", "message"),
    [
        ("punycode", "'punycode' is not a text charset"),
        ("foo", "unknown charset 'foo'"),
        ("base64", "'base64' is not a text charset"),
        ("idna", "'idna' is not a text charset"),
    ],
)
async def test_put_in_no_real_charset_is_a_415(
    client: AppClient, charset: str, message: str
) -> None:
    answer = await request(
        client,
        "PUT",
        f"{CALENDAR}cs.ics",
        event("cs").encode("ascii"),
        headers={"Content-Type": f"text/calendar; charset={charset}"},
    )
    assert answer.status == 415
    assert answer.error()[0] == "supported-calendar-data"
    assert answer.message() == message


async def test_put_of_bytes_that_do_not_decode_is_a_403(client: AppClient) -> None:
    answer = await request(
        client,
        "PUT",
        f"{CALENDAR}b.ics",
        event("b", summary="caf\udce9").encode("utf-8", "surrogateescape"),
        headers={"Content-Type": "text/calendar; charset=utf-8"},
    )
    assert answer.status == 403
    assert answer.error()[0] == "valid-calendar-data"


# PostgreSQL's text cannot hold NUL (U+0000) at all, so such old data
# exists only in a SQLite file: SQLite only.
@sqlite_only("a stored NUL: PostgreSQL text refuses it")
async def test_a_stored_object_with_such_characters_takes_no_calendar_down(
    client: AppClient, store: Store, api_headers: dict[str, str]
) -> None:
    assert (await put(client, f"{CALENDAR}good.ics", event("good", summary="Fine"))).status == 201
    assert (
        await put(
            client, f"{CALENDAR}bad.ics", event("bad", "20261202T090000Z", "20261202T100000Z")
        )
    ).status == 201
    raw = tamper_object(store, "bad", "Haircut", "Hair\x00cut \x1b\x0b\ufffe\uffff")

    answers = await reports(client)
    assert statuses(answers) == ALL_ANSWER
    for name in ("calendar-query", "sync-collection", "calendar-multiget"):
        data = answers[name].props(f"{CALENDAR}bad.ics")["C:calendar-data"].text
        assert "SUMMARY:Hair\ufffdcut \ufffd\ufffd\ufffd\ufffd\r\n" in data, name
        fine = answers[name].props(f"{CALENDAR}good.ics")["C:calendar-data"].text
        assert "SUMMARY:Fine\r\n" in fine, name
    # The listing without a limit is streamed page by page; with one it is not.
    limited = await sync(client, data=True, limit=10)
    assert limited.status == 207
    assert "\ufffd" in limited.props(f"{CALENDAR}bad.ics")["C:calendar-data"].text

    # Only the XML is mended: the object itself is as stored.
    got = await request(client, "GET", f"{CALENDAR}bad.ics")
    assert got.status == 200
    assert got.body == raw.encode("utf-8")
    feed = await client.get("/feeds/anna.ics?token=anna-feed-token-0123456789abcdef")
    assert feed.status == 200
    listed = await client.get(
        "/api/v1/bookings",
        params={"resource": "anna", "start": "2026-12-01T00:00Z", "end": "2026-12-02T00:00Z"},
        headers=api_headers,
    )
    assert listed.status == 200


@pytest.mark.parametrize(
    "revision", ["99999999999999999999", "9" * 5000, "\u00b2", "\u0661"], ids=lambda r: r[:8]
)
async def test_a_sync_token_with_a_revision_out_of_range_is_refused(
    client: AppClient, revision: str
) -> None:
    answer = await sync(client, f"urn:calgateway:sync:anna:{revision}")
    assert answer.status == 403
    assert answer.xml().find("D:valid-sync-token", NS) is not None


def test_an_error_quoting_such_a_character_is_still_xml() -> None:
    # Error messages may quote what a client sent; the answer must stay an
    # XML error body, not become a 500.
    error = DavError(400, "bad \x00 value \ud800", "{DAV:}x", hrefs=("/dav/\x1b",))
    response = error.response()
    assert response.status == 400
    assert isinstance(response.body, bytes)
    root = etree.fromstring(response.body)
    assert root.findtext("G:message", namespaces=NS) == "bad \ufffd value \ufffd"
