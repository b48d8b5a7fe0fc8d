"""Invitations through Google: the booker as a guest of the Google event
(Google invites them), or a copy in a colleague's own connected calendar;
e-mail whenever the Google path cannot work."""

from __future__ import annotations

from pathlib import Path

from fake_google.calendar import FakeGoogle
from gateway.core.mirror import google_event_id
from gateway.web.keys import OUTBOX
from tests.backends import Store
from tests.conftest import API_TOKEN
from tests.google.harness import at, running_gateway
from tests.invitations import reply
from tests.smtp import Recorder

SALON = "salon.calendar@example.com"
ANNA = "anna.google@example.com"
ZOE = "zoe@example.com"

RESOURCES = """\
  - id: salon
    name: Salon
    email: salon@example.com
    invitations: {via: google}
  - id: room
    name: Meeting room
    email: room@example.com
    invitations: {via: google_import}
  - id: anna
    name: Anna Schmidt
    email: anna@example.com
"""


async def test_guest_of_the_google_event_instead_of_an_email(
    tmp_path: Path, store: Store, fake: FakeGoogle, mail: tuple[Recorder, int]
) -> None:
    async with running_gateway(tmp_path, store, fake, mail, resources=RESOURCES) as gateway:
        await gateway.connect("salon", SALON)
        booking = await gateway.book(
            "salon", at(3, 10), at(3, 11), "Cut", booker={"name": "Zoë", "email": ZOE}
        )
        await gateway.settle()
        event = fake.event(SALON, google_event_id(booking["id"]))
        (guest,) = event["attendees"]
        assert guest["email"] == ZOE and guest["responseStatus"] == "needsAction"
        inserts = [r for r in fake.requests if r.method == "POST" and r.path.endswith("/events")]
        assert inserts[-1].query.get("sendUpdates") == "all"  # Google e-mails the guest
        assert gateway.mail.to(ZOE) == []  # and we do not, too

        # Zoë accepts in her Google Calendar: the booking hears of it.
        fake.user_update(
            SALON, event["id"], {"attendees": [{**guest, "responseStatus": "accepted"}]}
        )
        await gateway.settle()
        seen = await gateway.api("GET", f"/bookings/{booking['id']}", expect=200)
        assert seen["attendees"][0]["partstat"] == "ACCEPTED"

        # Not connected any more: the e-mail is the fallback.
        await gateway.admin.disconnect("salon")
        later = await gateway.book(
            "salon", at(4, 10), at(4, 11), "Colour", booker={"name": "Zoë", "email": ZOE}
        )
        await gateway.settle()
        (mailed,) = gateway.mail.to(ZOE)
        assert later["uid"] in mailed.get_body(preferencelist=("calendar",)).get_content()  # type: ignore[union-attr]


async def test_a_copy_in_the_bookers_own_connected_calendar(
    tmp_path: Path, store: Store, fake: FakeGoogle, mail: tuple[Recorder, int]
) -> None:
    async with running_gateway(tmp_path, store, fake, mail, resources=RESOURCES) as gateway:
        await gateway.connect("room", "room.calendar@example.com")
        await gateway.connect("anna", ANNA)
        booking = await gateway.book(
            "room", at(5, 9), at(5, 10), "Team sync", booker={"name": "Anna", "email": ANNA}
        )
        await gateway.settle()
        (copy,) = [e for e in fake.events(ANNA) if e.get("iCalUID") == booking["uid"]]
        assert copy["summary"] == "Team sync"
        assert gateway.mail.to(ANNA) == []  # the copy replaced the e-mail
        # One entry for Anna: Google adds an event to the calendar of every
        # guest it lists (Calendar API "Event propagation"), so the room's own
        # event must not list her beside the imported copy.
        room_event = fake.event("room.calendar@example.com", google_event_id(booking["id"]))
        assert ANNA not in [a["email"] for a in room_event.get("attendees", [])]
        # In Anna's own mirror the copy is her busy time like any appointment.
        (block,) = await gateway.busy_blocks("anna")
        assert block.booking.start == at(5, 9)

        await gateway.api("DELETE", f"/bookings/{booking['id']}", expect=200)
        await gateway.settle()
        cancelled = [
            e
            for e in fake.events(ANNA, include_cancelled=True)
            if e.get("iCalUID") == booking["uid"]
        ]
        assert [e["status"] for e in cancelled] == ["cancelled"]
        assert await gateway.busy_blocks("anna") == []


async def test_a_guests_answer_in_google_survives_a_later_gateway_write(
    tmp_path: Path, store: Store, fake: FakeGoogle, mail: tuple[Recorder, int]
) -> None:
    """Zoë accepts in Google; before the gateway syncs, the booking is moved.
    The write must not put back the answer the gateway held (Events: update
    replaces the whole event, so the gateway reads Google's copy first)."""
    async with running_gateway(tmp_path, store, fake, mail, resources=RESOURCES) as gateway:
        await gateway.connect("salon", SALON)
        booking = await gateway.book(
            "salon", at(3, 10), at(3, 11), "Cut", booker={"name": "Zoë", "email": ZOE}
        )
        await gateway.settle()
        event_id = google_event_id(booking["id"])
        (guest,) = fake.event(SALON, event_id)["attendees"]

        fake.drop_notifications = True  # the gateway does not hear of it yet
        fake.user_update(SALON, event_id, {"attendees": [{**guest, "responseStatus": "accepted"}]})
        await gateway.api(
            "PATCH",
            f"/bookings/{booking['id']}",
            {"start": at(3, 14).isoformat(), "end": at(3, 15).isoformat()},
            expect=200,
        )
        await gateway.app[OUTBOX].settle()  # the push only, no sync in between

        event = fake.event(SALON, event_id)
        assert event["start"]["dateTime"] == at(3, 14).isoformat()  # moved
        assert event["attendees"][0]["responseStatus"] == "accepted"  # answer kept
        fake.drop_notifications = False
        await gateway.settle()
        seen = await gateway.api("GET", f"/bookings/{booking['id']}", expect=200)
        assert seen["attendees"][0]["partstat"] == "ACCEPTED"
        assert fake.event(SALON, event_id)["attendees"][0]["responseStatus"] == "accepted"


async def test_the_gateway_never_writes_an_answer_it_did_not_learn_from_google(
    tmp_path: Path, store: Store, fake: FakeGoogle, mail: tuple[Recorder, int]
) -> None:
    """An answer that reached the gateway another way (an iTIP REPLY) is the
    booking's, not Google's: Google keeps what the guest told Google."""
    async with running_gateway(tmp_path, store, fake, mail, resources=RESOURCES) as gateway:
        await gateway.connect("salon", SALON)
        booking = await gateway.book(
            "salon", at(4, 10), at(4, 11), "Cut", booker={"name": "Zoë", "email": ZOE}
        )
        await gateway.settle()
        event_id = google_event_id(booking["id"])
        answer = reply(booking["uid"], "ACCEPTED", organizer="bookings@gateway.test")
        async with gateway.http.post(
            f"{gateway.url}/api/v1/itip",
            data=answer.encode(),
            headers={"Authorization": f"Bearer {API_TOKEN}", "Content-Type": "text/calendar"},
        ) as answered:
            assert answered.status == 200, await answered.text()
        seen = await gateway.api("GET", f"/bookings/{booking['id']}", expect=200)
        assert seen["attendees"][0]["partstat"] == "ACCEPTED"
        await gateway.api(
            "PATCH", f"/bookings/{booking['id']}", {"title": "Cut and dry"}, expect=200
        )
        await gateway.settle()
        event = fake.event(SALON, event_id)
        assert event["summary"] == "Cut and dry"
        # Zoë said nothing in Google: Google still shows her answer as open.
        assert event["attendees"][0]["responseStatus"] == "needsAction"
