"""``POST /api/v1/itip``: bookers' iTIP REPLYs (RFC 5546 3.2.3), one as
text/calendar or a whole e-mail as message/rfc822 (iMIP, RFC 6047), through
the real app."""

from __future__ import annotations

from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest

from tests.backends import Store
from tests.dbcheck import row_counts
from tests.invitations import (
    ORGANIZER,
    Client,
    book,
    booking_json,
    invitation_yaml,
    partstat_of,
    reply,
)

CALENDAR = {"Content-Type": "text/calendar; charset=utf-8"}
MESSAGE = {"Content-Type": "message/rfc822"}


@pytest.fixture
def config_file(tmp_path: Path, store: Store) -> Path:
    path = tmp_path / "gateway.yaml"
    path.write_text(invitation_yaml(store.url), encoding="utf-8")
    return path


def e_mail(*calendars: str, method: str = "REPLY") -> bytes:
    """A reply e-mail as Apple Mail sends it: a note and the calendar part."""
    message = EmailMessage()
    message["From"] = "Zoë Müller <zoe@example.com>"
    message["To"] = ORGANIZER
    message["Subject"] = "Accepted: Haircut"
    message.set_content("Zoë Müller has accepted your invitation.")
    for text in calendars:
        message.add_attachment(
            text.encode("utf-8"),
            maintype="text",
            subtype="calendar",
            params={"method": method, "charset": "utf-8"},
        )
    return message.as_bytes()


async def post_itip(
    client: Client, body: str | bytes, headers: dict[str, str], kind: dict[str, str]
) -> tuple[int, Any]:
    data = body.encode("utf-8") if isinstance(body, str) else body
    resp = await client.post("/api/v1/itip", data=data, headers={**headers, **kind})
    return resp.status, await resp.json()


def only(result: Any) -> dict[str, Any]:
    (entry,) = result["replies"]
    assert set(entry) == {"uid", "attendee", "partstat", "applied", "reason"}
    return dict(entry)


async def test_a_reply_as_text_calendar_is_applied(
    client: Client, api_headers: dict[str, str]
) -> None:
    booking = await book(client, api_headers)
    status, result = await post_itip(client, reply(booking["uid"]), api_headers, CALENDAR)
    assert status == 200
    assert only(result) == {
        "uid": booking["uid"],
        "attendee": "zoe@example.com",
        "partstat": "ACCEPTED",
        "applied": True,
        "reason": "applied",
    }
    after = await booking_json(client, api_headers, booking["id"])
    assert after["booker"]["partstat"] == "ACCEPTED"
    assert after["sequence"] == booking["sequence"]

    status, again = await post_itip(client, reply(booking["uid"]), api_headers, CALENDAR)
    assert (status, only(again)["applied"], only(again)["reason"]) == (200, True, "unchanged")


async def test_an_outlook_reply_without_organizer_is_applied(
    client: Client, api_headers: dict[str, str]
) -> None:
    booking = await book(client, api_headers)
    text = reply(booking["uid"], "DECLINED", attendee="MAILTO:Zoe@Example.com", organizer=None)
    assert "ORGANIZER" not in text
    # No charset parameter: iCalendar's default, UTF-8 (RFC 5545 3.1.4).
    status, result = await post_itip(
        client, text, api_headers, {"Content-Type": "text/calendar; method=REPLY"}
    )
    assert status == 200
    assert only(result)["applied"] is True
    assert await partstat_of(client, api_headers, booking["id"]) == "DECLINED"


async def test_a_whole_e_mail_is_read_for_its_reply(
    client: Client, api_headers: dict[str, str]
) -> None:
    booking = await book(client, api_headers)
    status, result = await post_itip(client, e_mail(reply(booking["uid"])), api_headers, MESSAGE)
    assert status == 200
    assert only(result)["applied"] is True
    assert await partstat_of(client, api_headers, booking["id"]) == "ACCEPTED"


async def test_an_e_mail_answering_two_bookings_answers_both_in_order(
    client: Client, api_headers: dict[str, str]
) -> None:
    first = await book(client, api_headers)
    second = await book(
        client, api_headers, start="2026-12-01T11:00:00+01:00", end="2026-12-01T12:00:00+01:00"
    )
    # The invitation it answers, quoted as a REQUEST, is skipped.
    quoted = reply(first["uid"]).replace("METHOD:REPLY", "METHOD:REQUEST")
    body = e_mail(reply(first["uid"]), quoted, reply(second["uid"], "TENTATIVE"))
    status, result = await post_itip(client, body, api_headers, MESSAGE)
    assert status == 200
    assert [(r["uid"], r["partstat"], r["applied"]) for r in result["replies"]] == [
        (first["uid"], "ACCEPTED", True),
        (second["uid"], "TENTATIVE", True),
    ]
    assert await partstat_of(client, api_headers, second["id"]) == "TENTATIVE"


async def test_a_stale_reply_is_not_applied_and_says_why(
    client: Client, api_headers: dict[str, str], settings: Any
) -> None:
    booking = await book(client, api_headers)
    resp = await client.patch(
        f"/api/v1/bookings/{booking['id']}",
        json={"start": "2026-12-01T11:00:00+01:00", "end": "2026-12-01T12:00:00+01:00"},
        headers=api_headers,
    )
    assert (await resp.json())["sequence"] == 1
    status, result = await post_itip(
        client, reply(booking["uid"], sequence=0), api_headers, CALENDAR
    )
    assert status == 200
    entry = only(result)
    assert entry["applied"] is False
    assert entry["reason"] == ("stale reply: it answers SEQUENCE 0, the booking is at SEQUENCE 1")
    assert await partstat_of(client, api_headers, booking["id"]) == "NEEDS-ACTION"
    # Logged and dropped: the resource's log says so.
    log = await (await client.get("/api/v1/resources/anna/sync/log", headers=api_headers)).json()
    assert any("stale reply" in e["message"] for e in log["entries"])


async def test_a_reply_for_an_unknown_uid_is_dropped_not_an_error(
    client: Client, api_headers: dict[str, str], store: Store
) -> None:
    before = row_counts(store)
    status, result = await post_itip(client, reply("nobody@elsewhere"), api_headers, CALENDAR)
    assert status == 200
    assert only(result) == {
        "uid": "nobody@elsewhere",
        "attendee": "zoe@example.com",
        "partstat": "ACCEPTED",
        "applied": False,
        "reason": "no booking has UID 'nobody@elsewhere'",
    }
    assert row_counts(store) == before


async def test_readers_may_not_answer_and_hidden_bookings_look_unknown(
    client: Client,
    api_headers: dict[str, str],
    reader_headers: dict[str, str],
    store: Store,
) -> None:
    on_anna = await book(client, api_headers)  # the reader token may read anna
    on_room = await book(client, api_headers, resource="room")  # and not see room
    before = row_counts(store)
    status, problem = await post_itip(client, reply(on_anna["uid"]), reader_headers, CALENDAR)
    assert status == 403
    assert "read-only access to resource 'anna'" in problem["detail"]
    # One refused reply refuses the whole request: nothing is written.
    both = e_mail(reply(on_room["uid"]), reply(on_anna["uid"]))
    status, _ = await post_itip(client, both, reader_headers, MESSAGE)
    assert status == 403
    assert row_counts(store) == before
    assert await partstat_of(client, api_headers, on_anna["id"]) == "NEEDS-ACTION"

    status, result = await post_itip(client, reply(on_room["uid"]), reader_headers, CALENDAR)
    assert status == 200
    assert only(result)["applied"] is False
    assert only(result)["reason"] == f"no booking has UID {on_room['uid']!r}"
    assert await partstat_of(client, api_headers, on_room["id"]) == "NEEDS-ACTION"


async def test_credentials_are_required(client: Client, api_headers: dict[str, str]) -> None:
    booking = await book(client, api_headers)
    status, problem = await post_itip(client, reply(booking["uid"]), {}, CALENDAR)
    assert status == 401
    assert problem["status"] == 401


@pytest.mark.parametrize(
    ("body", "kind", "named"),
    [
        ("this is not a calendar", CALENDAR, "not iCalendar data"),
        ("", CALENDAR, "the reply is empty"),
        (
            reply("x@y").replace("METHOD:REPLY", "METHOD:REQUEST"),
            CALENDAR,
            "expected METHOD:REPLY, got REQUEST",
        ),
        (b"BEGIN:VCALENDAR\r\nMETHOD:REPLY\r\nX-A:\xff\xfe\r\n", CALENDAR, "is not text"),
        (e_mail(), MESSAGE, "no iCalendar object with a METHOD"),
        (b"\x00\xff garbage", MESSAGE, "no iCalendar object with a METHOD"),
        (
            e_mail(reply("x@y").replace("METHOD:REPLY", "METHOD:PUBLISH"), method="PUBLISH"),
            MESSAGE,
            "expected METHOD:REPLY, got PUBLISH",
        ),
    ],
)
async def test_a_body_without_a_usable_reply_is_a_400_naming_the_problem(
    client: Client, api_headers: dict[str, str], body: Any, kind: dict[str, str], named: str
) -> None:
    status, problem = await post_itip(client, body, api_headers, kind)
    assert status == 400
    assert problem["errors"][0]["field"] == "body"
    assert named in problem["detail"]


async def test_other_media_types_are_415(client: Client, api_headers: dict[str, str]) -> None:
    booking = await book(client, api_headers)
    for kind in ("application/json", "text/plain", "application/ics", ""):
        headers = {**api_headers, "Content-Type": kind} if kind else api_headers
        resp = await client.post("/api/v1/itip", data=reply(booking["uid"]), headers=headers)
        assert resp.status == 415, kind
        assert resp.content_type == "application/problem+json"
    assert await partstat_of(client, api_headers, booking["id"]) == "NEEDS-ACTION"


async def test_a_body_over_the_limit_is_413(client: Client, api_headers: dict[str, str]) -> None:
    resp = await client.post(
        "/api/v1/itip", data=b"x" * (1_048_576 + 1), headers={**api_headers, **MESSAGE}
    )
    assert resp.status == 413
    assert resp.content_type == "application/problem+json"
