"""Issue 12, items 6 and 7, through the real app.

6. No calendar can reach another calendar's bookings by their UID: a UID is
   unique across the gateway (CalDAV PUT and API), and every answer goes to
   the booking it was sent for: a signed link names the booking by id, an
   iTIP REPLY whose UID several bookings hold (copies stored before UIDs
   were unique, written straight into the database here) is routed by its
   ORGANIZER or refused.
7. Answers are ordered by the time the booker gave them: a click when it is
   clicked, a REPLY by its DTSTAMP (never later than it arrived). A late
   e-mail written before a click does not overturn the click; an answer to
   the current SEQUENCE is not compared with one given before a reschedule.
   The RSVP page shows the current answer and offers the others.
"""

from __future__ import annotations

import json
import logging
import re
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import lxml.html
import pytest

from gateway.core.invitations import ItipReply
from gateway.core.model import PartStat
from gateway.web.auth import hash_password
from gateway.web.keys import BOOKINGS
from tests.backends import Store
from tests.conftest import ADMIN_PASSWORD, basic
from tests.dbcheck import row_counts, write_directly
from tests.invitations import (
    ORGANIZER,
    Client,
    book,
    booking_json,
    invitation_yaml,
    partstat_of,
    reply,
    rsvp_path,
)
from tests.legacy import insert_legacy_copy

MALLORY_PASSWORD = "mallory-secret-pw"
CALENDAR = {"Content-Type": "text/calendar; charset=utf-8"}


@pytest.fixture(scope="module")
def mallory_hash() -> str:
    return hash_password(MALLORY_PASSWORD)


@pytest.fixture
def config_file(tmp_path: Path, store: Store, mallory_hash: str) -> Path:
    """The invitation settings plus mallory, who may write bob's calendar only."""
    text = invitation_yaml(store.url).replace(
        "users:\n",
        f'users:\n  - name: mallory\n    password_hash: "{mallory_hash}"\n'
        "    access: {bob: read-write}\n",
        1,
    )
    path = tmp_path / "gateway.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def event(uid: str) -> str:
    """A CalDAV client's event with ``uid``, in the same slot as the
    samples' booking and with the same booker."""
    return (
        "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//test//isolation//EN\r\n"
        f"BEGIN:VEVENT\r\nUID:{uid}\r\nDTSTAMP:20261101T120000Z\r\n"
        "DTSTART:20261201T080000Z\r\nDTEND:20261201T090000Z\r\nSUMMARY:Haircut\r\n"
        "ORGANIZER:mailto:bob@example.com\r\n"
        "ATTENDEE;PARTSTAT=NEEDS-ACTION:mailto:zoe@example.com\r\n"
        "END:VEVENT\r\nEND:VCALENDAR\r\n"
    )


async def post_reply(client: Client, headers: dict[str, str], text: str) -> tuple[int, Any]:
    resp = await client.post(
        "/api/v1/itip", data=text.encode("utf-8"), headers={**headers, **CALENDAR}
    )
    return resp.status, await resp.json()


def now() -> datetime:
    return datetime.now(UTC).replace(microsecond=0)


# -- 6: one UID, one booking ------------------------------------------------------------


async def test_a_put_may_not_reuse_another_calendars_uid(
    client: Client, api_headers: dict[str, str], store: Store
) -> None:
    anna = await book(client, api_headers)
    mallory = basic("mallory", MALLORY_PASSWORD)
    resp = await client.put(
        "/dav/calendars/bob/copy.ics", data=event(anna["uid"]), headers={**mallory, **CALENDAR}
    )
    assert resp.status == 409
    body = await resp.text()
    assert "no-uid-conflict" in body
    # Mallory may not read anna's calendar: the answer names no object of it.
    assert "/dav/calendars/anna" not in body
    assert "href" not in body
    # Someone who may read it is told which object holds the UID (RFC 4791 5.3.2.1).
    admin = basic("admin", ADMIN_PASSWORD)
    resp = await client.put(
        "/dav/calendars/bob/copy.ics", data=event(anna["uid"]), headers={**admin, **CALENDAR}
    )
    assert resp.status == 409
    assert re.search(r"<D:href>/dav/calendars/anna/[^<]+\.ics</D:href>", await resp.text())
    assert (await client.get("/dav/calendars/bob/copy.ics", headers=admin)).status == 404
    assert row_counts(store)["objects"] == 1

    # Nor the UID a Google event of any calendar will get as a busy block.
    resp = await client.put(
        "/dav/calendars/bob/block.ics",
        data=event("google-abc123@anna.calgateway"),
        headers={**mallory, **CALENDAR},
    )
    assert resp.status == 409
    assert "no-uid-conflict" in await resp.text()


async def test_an_api_booking_may_not_take_a_uid_another_calendar_holds(
    client: Client, api_headers: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    admin = basic("admin", ADMIN_PASSWORD)
    resp = await client.put(
        "/dav/calendars/bob/mine.ics",
        data=event("0123abcd@gateway.test"),
        headers={**admin, **CALENDAR},
    )
    assert resp.status == 201
    # The API makes UIDs of new ids; this one comes out as the UID bob's has.
    monkeypatch.setattr(uuid, "uuid4", lambda: SimpleNamespace(hex="0123abcd"))
    resp = await client.post(
        "/api/v1/bookings",
        json={
            "resource": "anna",
            "start": "2026-12-02T09:00:00Z",
            "end": "2026-12-02T10:00:00Z",
            "title": "Colour",
        },
        headers=api_headers,
    )
    assert resp.status == 409
    problem = await resp.json()
    assert problem["title"] == "UID conflict"
    assert "bob" not in problem["detail"] and "mine.ics" not in problem["detail"]


async def test_a_link_answers_the_booking_it_was_sent_for(
    client: Client, api_headers: dict[str, str], store: Store
) -> None:
    bob = await book(client, api_headers, resource="bob")
    # Anna's calendar holds a copy with the same UID, stored earlier.
    await insert_legacy_copy(store, bob["id"], "anna", "copy")
    resp = await client.post(rsvp_path(bob, PartStat.ACCEPTED))
    assert resp.status == 200, await resp.text()
    assert await partstat_of(client, api_headers, bob["id"]) == "ACCEPTED"
    assert await partstat_of(client, api_headers, "copy") == "NEEDS-ACTION"


async def test_a_reply_to_a_shared_uid_is_routed_by_organizer_or_refused(
    client: Client, api_headers: dict[str, str], store: Store, caplog: pytest.LogCaptureFixture
) -> None:
    bob = await book(client, api_headers, resource="bob")
    await insert_legacy_copy(store, bob["id"], "anna", "copy")

    # The ORGANIZER names bob's address: bob's booking, not anna's copy.
    status, result = await post_reply(
        client,
        api_headers,
        reply(bob["uid"], "ACCEPTED", dtstamp=now(), organizer="bob@example.com"),
    )
    assert status == 200
    assert result["replies"][0]["applied"] is True
    assert await partstat_of(client, api_headers, bob["id"]) == "ACCEPTED"
    assert await partstat_of(client, api_headers, "copy") == "NEEDS-ACTION"

    # The gateway's own address is every calendar's: it tells nothing apart.
    with caplog.at_level(logging.WARNING, logger="calgateway.replies"):
        status, problem = await post_reply(
            client, api_headers, reply(bob["uid"], "DECLINED", dtstamp=now())
        )
    assert status == 409
    assert problem["title"] == "Ambiguous reply"
    assert any("ambiguous" in r.getMessage() for r in caplog.records)
    assert await partstat_of(client, api_headers, bob["id"]) == "ACCEPTED"
    assert await partstat_of(client, api_headers, "copy") == "NEEDS-ACTION"

    # By e-mail the same reply is logged and dropped.
    service = client.app[BOOKINGS]
    outcome = await service.apply_reply(
        ItipReply(bob["uid"], "zoe@example.com", PartStat.DECLINED, 0, now(), None, ORGANIZER),
        "e-mail",
    )
    assert not outcome.applied
    assert "neither the reply's ORGANIZER nor its attendee" in outcome.reason
    assert await partstat_of(client, api_headers, bob["id"]) == "ACCEPTED"
    assert await partstat_of(client, api_headers, "copy") == "NEEDS-ACTION"


# -- 7: the newest answer wins -----------------------------------------------------------


async def test_a_late_reply_written_before_a_click_does_not_overturn_it(
    client: Client, api_headers: dict[str, str]
) -> None:
    booking = await book(client, api_headers)
    written = now() - timedelta(hours=1)  # declined in her calendar an hour ago ...
    assert (await client.post(rsvp_path(booking, PartStat.ACCEPTED))).status == 200  # ... then
    status, result = await post_reply(  # ... and the decline's e-mail arrives now
        client, api_headers, reply(booking["uid"], "DECLINED", dtstamp=written)
    )
    assert status == 200
    (entry,) = result["replies"]
    assert entry["applied"] is False
    assert entry["reason"].startswith("superseded")
    assert await partstat_of(client, api_headers, booking["id"]) == "ACCEPTED"


async def test_a_reply_given_after_a_click_overturns_it(
    client: Client, api_headers: dict[str, str]
) -> None:
    booking = await book(client, api_headers)
    assert (await client.post(rsvp_path(booking, PartStat.ACCEPTED))).status == 200
    later = datetime.now(UTC) + timedelta(seconds=1)  # DTSTAMP has whole seconds
    status, result = await post_reply(
        client, api_headers, reply(booking["uid"], "DECLINED", dtstamp=later.replace(microsecond=0))
    )
    assert status == 200
    assert result["replies"][0]["applied"] is True
    assert await partstat_of(client, api_headers, booking["id"]) == "DECLINED"


async def test_a_click_after_a_reply_overturns_it(
    client: Client, api_headers: dict[str, str]
) -> None:
    booking = await book(client, api_headers)
    _, result = await post_reply(
        client, api_headers, reply(booking["uid"], "DECLINED", dtstamp=now() - timedelta(hours=1))
    )
    assert result["replies"][0]["applied"] is True
    # An accept link from the invitation, clicked now: the newest answer.
    resp = await client.post(rsvp_path(booking, PartStat.ACCEPTED))
    assert resp.status == 200
    assert await partstat_of(client, api_headers, booking["id"]) == "ACCEPTED"


async def test_a_dtstamp_in_the_future_counts_from_its_arrival(
    client: Client, api_headers: dict[str, str]
) -> None:
    booking = await book(client, api_headers)
    future = now() + timedelta(days=30)  # a wrong clock, or a forged reply
    _, result = await post_reply(
        client, api_headers, reply(booking["uid"], "DECLINED", dtstamp=future)
    )
    assert result["replies"][0]["applied"] is True
    resp = await client.post(rsvp_path(booking, PartStat.ACCEPTED))
    assert resp.status == 200
    assert await partstat_of(client, api_headers, booking["id"]) == "ACCEPTED"


async def test_replies_are_ordered_by_dtstamp_even_repeating_an_answer(
    client: Client, api_headers: dict[str, str]
) -> None:
    booking = await book(client, api_headers)
    t = now() - timedelta(hours=3)
    for partstat, written, applied in (
        ("ACCEPTED", t, True),
        ("ACCEPTED", t + timedelta(hours=2), True),  # the same answer, given again later
        ("DECLINED", t + timedelta(hours=1), False),  # older than the repeated accept
        ("DECLINED", t - timedelta(hours=1), False),
    ):
        status, result = await post_reply(
            client, api_headers, reply(booking["uid"], partstat, dtstamp=written)
        )
        assert status == 200
        assert result["replies"][0]["applied"] is applied, (partstat, written, result)
    assert await partstat_of(client, api_headers, booking["id"]) == "ACCEPTED"


async def test_a_reschedule_asks_again_and_earlier_answer_times_do_not_count(
    client: Client, api_headers: dict[str, str]
) -> None:
    booking = await book(client, api_headers)
    assert (await client.post(rsvp_path(booking, PartStat.ACCEPTED))).status == 200
    resp = await client.patch(
        f"/api/v1/bookings/{booking['id']}",
        json={"start": "2026-12-01T11:00:00+01:00", "end": "2026-12-01T12:00:00+01:00"},
        headers=api_headers,
    )
    assert resp.status == 200
    moved = await resp.json()
    assert moved["sequence"] == 1
    # Her calendar's clock is an hour slow: the DTSTAMP is before the click,
    # but it answers the new SEQUENCE, the click an older one.
    _, result = await post_reply(
        client,
        api_headers,
        reply(booking["uid"], "DECLINED", dtstamp=now() - timedelta(hours=1), sequence=1),
    )
    assert result["replies"][0]["applied"] is True, result
    assert await partstat_of(client, api_headers, booking["id"]) == "DECLINED"


async def test_the_page_says_when_an_answer_was_superseded(
    client: Client, api_headers: dict[str, str], store: Store
) -> None:
    booking = await book(client, api_headers)
    assert (await client.post(rsvp_path(booking, PartStat.ACCEPTED))).status == 200
    # Another server on the same database, whose clock is ahead, recorded it.
    (row,) = store.rows("SELECT attendees FROM objects WHERE booking_id = ?", (booking["id"],))
    attendees = json.loads(row["attendees"])
    attendees[0]["answered_at"] = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
    await write_directly(
        store,
        "UPDATE objects SET attendees = ? WHERE booking_id = ?",
        (json.dumps(attendees), booking["id"]),
    )
    path = rsvp_path(booking, PartStat.DECLINED)
    shown = await (await client.get(path)).text()
    assert "already been superseded by a newer answer of yours (accepted)" in shown
    assert "<form" not in shown
    resp = await client.post(path)
    assert resp.status == 409
    assert "already been superseded by a newer answer of yours (accepted)" in await resp.text()
    assert await partstat_of(client, api_headers, booking["id"]) == "ACCEPTED"


async def test_the_page_shows_the_current_answer_and_offers_the_others(
    client: Client, api_headers: dict[str, str]
) -> None:
    booking = await book(client, api_headers)
    assert (await client.post(rsvp_path(booking, PartStat.DECLINED))).status == 200
    # The accept link of the same invitation, opened after declining.
    page = await (await client.get(rsvp_path(booking, PartStat.ACCEPTED))).text()
    assert '<dd id="rsvp-current">declined</dd>' in page
    # One form with every answer: the link's own chosen, the recorded one marked.
    assert answer_choices(page) == {
        "ACCEPTED": ("checked", ""),
        "TENTATIVE": ("", ""),
        "DECLINED": ("", "current"),
    }

    # Any answer can be sent from that link: maybe, through the accept link.
    resp = await client.post(rsvp_path(booking, PartStat.ACCEPTED), data={"answer": "TENTATIVE"})
    assert resp.status == 200
    answered = await resp.text()
    assert "Thank you, you tentatively accepted" in answered
    assert '<dd id="rsvp-current">maybe</dd>' in answered
    assert answer_choices(answered)["TENTATIVE"] == ("checked", "current")
    assert (await booking_json(client, api_headers, booking["id"]))["booker"][
        "partstat"
    ] == "TENTATIVE"


def answer_choices(page: str) -> dict[str, tuple[str, str]]:
    """Each answer the page's form offers: (whether it is chosen, whether
    it is marked as the answer recorded now)."""
    form = lxml.html.fromstring(page).get_element_by_id("rsvp-form")
    choices = {}
    for radio in form.xpath(".//input[@name='answer']"):
        label = form.xpath(f".//label[@for='{radio.get('id')}']")[0]
        choices[radio.get("value")] = (
            "checked" if radio.get("checked") is not None else "",
            "current" if label.xpath(".//*[@class='current']") else "",
        )
    return choices
