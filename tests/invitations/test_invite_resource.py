"""Booking a resource by inviting it (issue 16 item 4), end to end: a
calendar app (python-caldav over real HTTP) writes a meeting into Anna's
calendar that invites the room's address; the room, which accepts
invitations, books itself or declines, the answer shows in the meeting read
back, and an organizer outside the gateway gets the iMIP REPLY on a real
SMTP server on loopback. The rules are tabled in
``tests/core/test_resource_invitations.py``."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import caldav
import icalendar
import pytest
import vobject
from caldav.lib import error as caldav_error

from gateway.web.auth import hash_password
from tests.backends import Store
from tests.caldav.test_interop_python_caldav import in_thread
from tests.invitations import served
from tests.invitations.test_imip_e2e import LINK_KEY, ORGANIZER, Gateway
from tests.net import LOOPBACK, free_port
from tests.smtp import Recorder

PASSWORD = "staff-secret-pw"
ROOM = "room1@example.com"
BOSS = "boss@elsewhere.example"  # an organizer outside the gateway
FEED_TOKEN = "room-feed-token-0123456789abcdef"
UID = "planning@app.example"


def meeting(
    *,
    start: str = "20301203T090000Z",
    end: str = "20301203T100000Z",
    sequence: int = 0,
    organizer: str = BOSS,
    room: str = f"ATTENDEE;CUTYPE=ROOM;CN=Room 1;PARTSTAT=NEEDS-ACTION;RSVP=TRUE:mailto:{ROOM}\r\n",
    uid: str = UID,
) -> str:
    """What Thunderbird writes for a meeting with the room as a location."""
    return (
        "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//test//invite resource//EN\r\n"
        f"BEGIN:VEVENT\r\nUID:{uid}\r\nDTSTAMP:20301101T000000Z\r\n"
        f"DTSTART:{start}\r\nDTEND:{end}\r\nSUMMARY:Planning\r\nSEQUENCE:{sequence}\r\n"
        f"ORGANIZER;CN=Organizer:mailto:{organizer}\r\n"
        "ATTENDEE;CN=Zoë;PARTSTAT=NEEDS-ACTION:mailto:zoe@example.com\r\n"
        f"{room}END:VEVENT\r\nEND:VCALENDAR\r\n"
    )


class Staff(Gateway):
    @property
    def url(self) -> str:
        return f"http://{LOOPBACK}:{self.server.port}"

    def calendar(self, resource: str) -> Any:
        client = caldav.DAVClient(
            url=f"{self.url}/dav/", username="staff", password=PASSWORD, timeout=10
        )
        return client.calendar(url=f"{self.url}/dav/calendars/{resource}/")

    async def dav(self, job: Callable[[Staff], Any]) -> Any:
        return await in_thread(job, self)

    async def save(self, resource: str, ics: str) -> None:
        await self.dav(lambda s: s.calendar(resource).save_event(ics))

    async def room_spans(self) -> list[tuple[str, str, str]]:
        """(start, end, SUMMARY) of each event in the room's calendar."""

        def read(s: Staff) -> list[tuple[str, str, str]]:
            found = []
            for event in s.calendar("room").events():
                vevent = event.icalendar_component
                found.append(
                    (
                        f"{vevent.decoded('DTSTART'):%H:%M}",
                        f"{vevent.decoded('DTEND'):%H:%M}",
                        str(vevent["SUMMARY"]),
                    )
                )
            return sorted(found)

        result: list[tuple[str, str, str]] = await self.dav(read)
        return result

    async def room_as_anna_sees_it(self) -> Any:
        """The room's ATTENDEE in the meeting read back from Anna's calendar."""

        def read(s: Staff) -> Any:
            vevent = s.calendar("anna").event_by_uid(UID).icalendar_component
            return next(a for a in vevent["ATTENDEE"] if ROOM in str(a))

        return await self.dav(read)

    def replies(self) -> list[tuple[EmailMessage, icalendar.Component, Any]]:
        """Each REPLY to the organizer: (the mail, its VEVENT, vobject's VEVENT)."""
        found = []
        for message in self.mail.to(BOSS):
            (part,) = [p for p in message.walk() if p.get_content_type() == "text/calendar"]
            assert part.get_param("method") == "REPLY"
            raw = part.get_payload(decode=True)
            assert isinstance(raw, bytes)
            text = raw.decode("utf-8")
            calendar = icalendar.Calendar.from_ical(text)
            assert str(calendar["METHOD"]) == "REPLY"
            (vevent,) = calendar.walk("VEVENT")
            second = vobject.readOne(text)
            assert second.method.value == "REPLY"
            found.append((message, vevent, second.vevent))
        return found


@asynccontextmanager
async def gateway(
    tmp_path: Path, store: Store, mail: tuple[Recorder, int], *, accepts: bool = True
) -> AsyncIterator[Staff]:
    recorder, smtp_port = mail
    port = free_port()
    text = f"""\
server: {{host: {LOOPBACK}, port: {port}, base_url: "http://{LOOPBACK}:{port}"}}
storage: {{url: "{store.url}"}}
outbox: {{initial_retry_delay: 0.01, max_retry_delay: 0.05}}
mail:
  smtp_host: {LOOPBACK}
  smtp_port: {smtp_port}
  security: none
  from_address: {ORGANIZER}
  from_name: Salon Bookings
invitations: {{link_key: {LINK_KEY}}}
resources:
  - {{id: anna, name: Anna Schmidt, email: anna@example.com, timezone: UTC}}
  - id: room
    name: Room 1
    email: {ROOM}
    timezone: UTC
    accept_invitations: {"true" if accepts else "false"}
    feed_tokens: [{FEED_TOKEN}]
users:
  - name: staff
    password_hash: "{hash_password(PASSWORD)}"
    access: {{anna: read-write, room: read-write}}
"""
    async with served(tmp_path, text, port) as (server, http):
        yield Staff(server, http, recorder)


@pytest.fixture
async def staff(tmp_path: Path, store: Store, mail: tuple[Recorder, int]) -> AsyncIterator[Staff]:
    async with gateway(tmp_path, store, mail) as running:
        yield running


async def test_an_invited_room_books_itself_and_answers_accepted(staff: Staff) -> None:
    await staff.save("anna", meeting())
    await staff.settle()

    # The room's calendar holds the meeting, as an object of its own.
    assert await staff.room_spans() == [("09:00", "10:00", "Planning")]
    # Anna's copy says the room accepted, delivered (RFC 6638 3.2.9).
    room = await staff.room_as_anna_sees_it()
    assert room.params["PARTSTAT"] == "ACCEPTED"
    assert room.params["SCHEDULE-STATUS"] == "1.2"
    assert room.params["CUTYPE"] == "ROOM"  # the rest as the app wrote it

    # The room's time is taken: a second booking over it is refused.
    def double(s: Staff) -> None:
        s.calendar("room").save_event(meeting(uid="other@app.example", room=""))

    with pytest.raises(caldav_error.PutError, match="409"):
        await staff.dav(double)

    # Nor can a client take the UID form of the room's own bookings.
    def squat(s: Staff) -> None:
        s.calendar("anna").save_event(meeting(uid="invited-x@invitations.calgateway", room=""))

    with pytest.raises(caldav_error.PutError, match="409"):
        await staff.dav(squat)

    # ... and shows in the room's feed and free-busy.
    async with staff.http.get(f"{staff.url}/feeds/room.ics?token={FEED_TOKEN}") as reply:
        assert reply.status == 200
        assert "SUMMARY:Planning" in await reply.text()

    def freebusy(s: Staff) -> Any:
        return s.calendar("room").freebusy_request(
            datetime(2030, 12, 3, tzinfo=UTC),
            datetime(2030, 12, 4, tzinfo=UTC),
        )

    busy = (await staff.dav(freebusy)).icalendar_component
    periods = busy["FREEBUSY"] if isinstance(busy["FREEBUSY"], list) else [busy["FREEBUSY"]]
    assert [f"{p.dt[0]:%H:%M}-{p.dt[1]:%H:%M}" for p in periods] == ["09:00-10:00"]

    # The outside organizer gets the room's REPLY; the room gets no invitation.
    ((message, vevent, second),) = staff.replies()
    assert ROOM in str(message["From"])
    assert str(vevent["UID"]) == UID
    assert vevent["ATTENDEE"].params["PARTSTAT"] == "ACCEPTED"
    assert str(vevent["REQUEST-STATUS"]).startswith("2.0;")
    assert second.attendee.params["PARTSTAT"] == ["ACCEPTED"]
    assert second.request_status.value[0] == "2.0"
    assert staff.mail.to(ROOM) == []


async def test_a_busy_room_declines_with_the_busy_time(staff: Staff) -> None:
    await staff.save("room", meeting(uid="cleaning@app.example", room="", start="20301203T093000Z"))
    await staff.save("anna", meeting())  # the organizer's own write succeeds
    await staff.settle()

    assert await staff.room_spans() == [("09:30", "10:00", "Planning")]  # only the cleaning
    room = await staff.room_as_anna_sees_it()
    assert room.params["PARTSTAT"] == "DECLINED"
    ((_, vevent, second),) = staff.replies()
    assert vevent["ATTENDEE"].params["PARTSTAT"] == "DECLINED"
    assert str(vevent["REQUEST-STATUS"]) == (
        "4.0;Event conflict. Date-time is busy.;20301203T093000Z/20301203T100000Z"
    )
    assert second.request_status.value[0] == "4.0"


async def test_moving_and_deleting_the_meeting_moves_and_frees_the_room(staff: Staff) -> None:
    await staff.save("anna", meeting(organizer="anna@example.com"))
    assert await staff.room_spans() == [("09:00", "10:00", "Planning")]

    def move(s: Staff) -> None:
        event = s.calendar("anna").event_by_uid(UID)
        event.data = meeting(
            organizer="anna@example.com",
            start="20301203T140000Z",
            end="20301203T150000Z",
            sequence=1,
        )
        event.save()

    await staff.dav(move)
    assert await staff.room_spans() == [("14:00", "15:00", "Planning")]
    # The old time is free again.
    await staff.save("room", meeting(uid="free@app.example", room=""))

    await staff.dav(lambda s: s.calendar("anna").event_by_uid(UID).delete())
    assert await staff.room_spans() == [("09:00", "10:00", "Planning")]  # the other one only
    await staff.settle()
    # Organized inside the gateway: nobody outside to reply to, and the
    # room's address is never mailed an invitation.
    assert staff.replies() == []
    assert staff.mail.to(ROOM) == []


async def test_a_room_that_does_not_accept_invitations_books_nothing(
    tmp_path: Path, store: Store, mail: tuple[Recorder, int]
) -> None:
    async with gateway(tmp_path, store, mail, accepts=False) as staff:
        await staff.save("anna", meeting(organizer="anna@example.com"))
        await staff.settle()
        assert await staff.room_spans() == []
        room = await staff.room_as_anna_sees_it()
        assert room.params["PARTSTAT"] == "NEEDS-ACTION"
        # An ordinary attendee: implicit scheduling mails it, as before.
        assert len(staff.mail.to(ROOM)) == 1
