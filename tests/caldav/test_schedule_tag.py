"""Schedule-Tag and If-Schedule-Tag-Match over real HTTP (RFC 6638 3.2.10,
8.2, 8.3, 9.3), on both store backends.

The schedule tag tells an organizer's client whether the object is still
the one its organizer last wrote: an attendee's answer changes the object
(its PARTSTAT, so its ETag) but not the tag, and a client that writes with
the current tag succeeds where If-Match of the ETag it read would fail, and
the answer survives its write. Every write of the organizer (a CalDAV PUT,
the gateway's own API) makes a new tag; a stale one gets 412 on PUT and
DELETE. OPTIONS advertising calendar-auto-schedule is checked with the rest
of the DAV header in test_discovery."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import caldav
import pytest
from aiohttp import web
from caldav.elements import cdav
from caldav.lib.error import ScheduleTagMismatchError

from gateway.core.invitations import ItipReply
from gateway.core.model import Attendee, BookingChanges, BookingDraft, PartStat
from gateway.core.ports import MirrorRepository
from gateway.web.keys import BOOKINGS
from tests.caldav.dav import Answer, event, multiget_body, propfind, put, request, time_range_query
from tests.caldav.servers import GatewayServer
from tests.caldav.test_interop_python_caldav import connect, in_thread
from tests.conftest import AppClient

UID = "tagged@app.example"
PATH = "/dav/calendars/anna/tagged.ics"
ZOE = "zoe@example.com"
# Organized by someone outside the gateway: no invitation is sent, so
# nothing but the answer below changes the object behind the test's back.
ORGANIZER_LINES = (
    "SEQUENCE:0\r\nORGANIZER:mailto:boss@elsewhere.example\r\n"
    f"ATTENDEE;CN=Zoë;PARTSTAT=NEEDS-ACTION:mailto:{ZOE}\r\n"
)


def meeting(summary: str = "Haircut") -> str:
    return event(UID, extra=ORGANIZER_LINES, summary=summary)


async def answer_accepted(app: web.Application, repo: MirrorRepository) -> None:
    """Zoë accepts (as an iMIP REPLY or the RSVP link does: apply_reply)."""
    (stored,) = await repo.with_uid(UID)
    reply = ItipReply(UID, ZOE, PartStat.ACCEPTED, stored.booking.sequence, datetime.now(UTC))
    outcome = await app[BOOKINGS].apply_reply(reply, "e-mail", booking_id=stored.booking.id)
    assert outcome.applied, outcome.reason


async def get(client: AppClient, method: str = "GET") -> Answer:
    return await request(client, method, PATH)


def tag_of(found: Answer, href: str = PATH) -> str:
    return str(found.props(href)["C:schedule-tag"].text)


async def test_the_tag_comes_with_put_get_head_propfind_and_reports(client: AppClient) -> None:
    created = await put(client, PATH, meeting())
    assert created.status == 201
    tag = created.headers["Schedule-Tag"]
    assert tag.startswith('"') and tag.endswith('"')
    for method in ("GET", "HEAD"):
        assert (await get(client, method)).headers["Schedule-Tag"] == tag
    assert tag_of(await propfind(client, PATH, "C:schedule-tag")) == tag
    listing = await propfind(client, "/dav/calendars/anna/", "C:schedule-tag", depth="1")
    assert tag_of(listing) == tag
    query = time_range_query(
        "20261201T000000Z", "20261202T000000Z", extra_props="<C:schedule-tag/>"
    )
    found = await request(client, "REPORT", "/dav/calendars/anna/", query, headers={"Depth": "1"})
    assert tag_of(found) == tag
    multiget = multiget_body(PATH).replace("<D:getetag/>", "<D:getetag/><C:schedule-tag/>")
    assert tag_of(await request(client, "REPORT", "/dav/calendars/anna/", multiget)) == tag
    # RFC 6638 9.3: not one of allprop's.
    allprop = await request(
        client,
        "PROPFIND",
        PATH,
        '<D:propfind xmlns:D="DAV:"><D:allprop/></D:propfind>',
        headers={"Depth": "0"},
    )
    assert "C:schedule-tag" not in allprop.props(PATH)

    # Every write of the organizer's client makes a new tag.
    moved = await put(client, PATH, meeting("Haircut and beard"))
    assert moved.status == 204
    assert moved.headers["Schedule-Tag"] != tag
    assert (await get(client)).headers["Schedule-Tag"] == moved.headers["Schedule-Tag"]


async def test_an_answer_keeps_the_tag_and_a_write_with_it_keeps_the_answer(
    client: AppClient, repo: MirrorRepository
) -> None:
    created = await put(client, PATH, meeting())
    tag, etag = created.headers["Schedule-Tag"], created.headers["ETag"]

    await answer_accepted(client.app, repo)
    after = await get(client)
    assert after.headers["ETag"] != etag, "the answer changed the object"
    assert after.headers["Schedule-Tag"] == tag, "but not its schedule tag"
    assert b"PARTSTAT=ACCEPTED" in after.body

    # The organizer's client, which read the object before the answer, moves
    # it. With If-Match of the ETag it read it would overwrite the answer:
    refused = await put(client, PATH, meeting("Haircut 30 min"), headers={"If-Match": etag})
    assert refused.status == 412
    # With the schedule tag it read it may write, and the answer stays.
    written = await put(
        client, PATH, meeting("Haircut 30 min"), headers={"If-Schedule-Tag-Match": tag}
    )
    assert written.status == 204
    stored = await get(client)
    assert b"SUMMARY:Haircut 30 min" in stored.body
    assert b"PARTSTAT=ACCEPTED" in stored.body and b"NEEDS-ACTION" not in stored.body
    # Not stored as sent, so no ETag in the answer (RFC 4791 5.3.4); a new tag.
    assert "ETag" not in written.headers
    assert written.headers["Schedule-Tag"] == stored.headers["Schedule-Tag"] != tag


async def test_without_an_answer_in_between_a_write_with_the_tag_is_stored_as_sent(
    client: AppClient,
) -> None:
    tag = (await put(client, PATH, meeting())).headers["Schedule-Tag"]
    written = await put(client, PATH, meeting("Beard"), headers={"If-Schedule-Tag-Match": tag})
    assert written.status == 204
    stored = await get(client)
    assert stored.body == meeting("Beard").encode()
    assert written.headers["ETag"] == stored.headers["ETag"]


@pytest.mark.parametrize("method", ["PUT", "DELETE"])
async def test_a_stale_tag_is_412_naming_the_current_one(client: AppClient, method: str) -> None:
    stale = (await put(client, PATH, meeting())).headers["Schedule-Tag"]
    current = (await put(client, PATH, meeting("Beard"))).headers["Schedule-Tag"]
    headers = {"If-Schedule-Tag-Match": stale}
    if method == "PUT":
        refused = await put(client, PATH, meeting("Lost"), headers=headers)
    else:
        refused = await request(client, "DELETE", PATH, headers=headers)
    assert refused.status == 412
    assert "schedule tag is now" in refused.message() and current in refused.message()
    kept = await get(client)
    assert kept.status == 200 and b"SUMMARY:Beard" in kept.body
    # The current tag deletes it.
    deleted = await request(client, "DELETE", PATH, headers={"If-Schedule-Tag-Match": current})
    assert deleted.status == 204
    assert (await get(client)).status == 404


async def test_a_tag_for_an_object_that_is_not_there_is_412(client: AppClient) -> None:
    refused = await put(client, PATH, meeting(), headers={"If-Schedule-Tag-Match": '"x"'})
    assert refused.status == 412
    assert (await get(client)).status == 404


async def test_a_header_that_is_not_one_tag_is_400(client: AppClient) -> None:
    await put(client, PATH, meeting())
    refused = await put(client, PATH, meeting("x"), headers={"If-Schedule-Tag-Match": "*"})
    assert refused.status == 400
    assert "If-Schedule-Tag-Match" in refused.message()


async def test_the_gateways_own_changes_make_a_new_tag_and_answers_keep_it(
    client: AppClient, repo: MirrorRepository
) -> None:
    """A booking made and moved through the JSON API: the gateway is its
    organizer, so its changes are new tags; an answer is not."""
    service = client.app[BOOKINGS]
    start = datetime(2026, 12, 1, 9, tzinfo=UTC)
    booking = await service.create(
        BookingDraft(
            resource_id="anna",
            title="Haircut",
            start=start,
            end=start.replace(hour=10),
            attendees=(Attendee(email=ZOE, name="Zoë"),),
        )
    )
    path = f"/dav/calendars/anna/{booking.uid}.ics"
    first = (await request(client, "GET", path)).headers["Schedule-Tag"]
    reply = ItipReply(booking.uid, ZOE, PartStat.ACCEPTED, 0, datetime.now(UTC))
    assert (await service.apply_reply(reply, "e-mail", booking_id=booking.id)).applied
    answered = await request(client, "GET", path)
    assert answered.headers["Schedule-Tag"] == first
    await service.reschedule(booking.id, BookingChanges(title="Haircut and beard"))
    assert (await request(client, "GET", path)).headers["Schedule-Tag"] != first


async def test_python_caldav_saves_with_the_tag_and_keeps_the_answer(
    gateway: GatewayServer, app: web.Application, repo: MirrorRepository
) -> None:
    """python-caldav caches the Schedule-Tag of a GET and sends it as
    If-Schedule-Tag-Match on save(), so an app built on it moves the event
    after Zoë answered without a 412 and without losing her answer; a
    delete(if_match=True) with a tag gone stale is refused."""

    def load() -> tuple[Any, str, dict[str, Any]]:
        calendar = connect(f"{gateway.url}/dav/").calendar(url=gateway.calendar_url("anna"))
        saved = calendar.save_event(meeting())
        loaded = calendar.event_by_url(saved.url)
        loaded.load()
        return loaded, str(loaded.schedule_tag), loaded.get_properties([cdav.ScheduleTag()])

    obj, tag, props = await in_thread(load)
    assert props[cdav.ScheduleTag.tag] == tag

    await answer_accepted(app, repo)

    def move() -> str:
        obj.icalendar_component["SUMMARY"] = "Haircut moved"
        obj.save()
        return str(obj.schedule_tag)

    new_tag = await in_thread(move)
    assert new_tag != tag
    (stored,) = await repo.with_uid(UID)
    assert stored.schedule_tag == new_tag
    assert "SUMMARY:Haircut moved" in stored.ics
    assert [a.partstat for a in stored.booking.attendees] == [PartStat.ACCEPTED]

    def delete_with_stale_tag() -> None:
        other = caldav.Event(client=obj.client, url=obj.url, parent=obj.parent)
        other.props[cdav.ScheduleTag.tag] = tag
        other.delete(if_match=True)

    with pytest.raises(ScheduleTagMismatchError):
        await in_thread(delete_with_stale_tag)
    assert await repo.with_uid(UID), "not deleted"
