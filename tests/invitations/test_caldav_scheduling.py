"""Implicit scheduling (RFC 6638): events a calendar app writes over CalDAV
with the resource as ORGANIZER invite their attendees, through the same
outbox and mail as API bookings, received by a real SMTP server on loopback.
The rules themselves are tabled in ``tests/core/test_effects.py``."""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import icalendar
import pytest

from gateway.web.auth import hash_password
from tests.backends import Store
from tests.invitations import served
from tests.invitations.test_imip_e2e import ZOE, Gateway, calendar_parts, config
from tests.net import LOOPBACK, free_port
from tests.smtp import Recorder

PASSWORD = "staff-secret-pw"
ANNA = "anna@example.com"  # the resource's address in ``config``
MAX = "max@example.com"
OBJECT = "/dav/calendars/anna/haircut.ics"


def event(
    *,
    start: str = "20301203T090000Z",
    end: str = "20301203T100000Z",
    sequence: int = 0,
    attendees: str = f"ATTENDEE;CN=Zoë;PARTSTAT=NEEDS-ACTION:mailto:{ZOE}\r\n",
    organizer: str = ANNA,
    status: str = "",
) -> str:
    """What Apple Calendar writes for "Haircut, Zoë" on the shop's calendar."""
    return (
        "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//test//scheduling//EN\r\n"
        "BEGIN:VEVENT\r\nUID:haircut-zoe@app.example\r\nDTSTAMP:20301101T000000Z\r\n"
        f"DTSTART:{start}\r\nDTEND:{end}\r\nSUMMARY:Haircut\r\nSEQUENCE:{sequence}\r\n"
        f"ORGANIZER;CN=Anna:mailto:{organizer}\r\n{attendees}{status}"
        "END:VEVENT\r\nEND:VCALENDAR\r\n"
    )


class Staff(Gateway):
    async def put(self, ics: str) -> None:
        await self.dav("PUT", ics)

    async def dav(self, method: str, ics: str | None = None) -> None:
        token = base64.b64encode(f"staff:{PASSWORD}".encode()).decode()
        async with self.http.request(
            method,
            f"http://{LOOPBACK}:{self.server.port}{OBJECT}",
            data=ics.encode("utf-8") if ics is not None else None,
            headers={"Authorization": f"Basic {token}", "Content-Type": "text/calendar"},
        ) as reply:
            assert reply.status in (201, 204), await reply.text()

    def itip(self, address: str) -> list[tuple[str, icalendar.cal.Component]]:
        """(METHOD, the VEVENT) of each message to ``address``, in order."""
        found = []
        for message in self.mail.to(address):
            inline, _ = calendar_parts(message)
            raw = inline.get_payload(decode=True)
            assert isinstance(raw, bytes)
            calendar = icalendar.Calendar.from_ical(raw.decode("utf-8"))
            (vevent,) = calendar.walk("VEVENT")
            found.append((str(calendar["METHOD"]), vevent))
        return found


@asynccontextmanager
async def staff_gateway(
    tmp_path: Path,
    store: Store,
    mail: tuple[Recorder, int],
    implicit: bool = True,
    imap: str = "",
) -> AsyncIterator[Staff]:
    """``imap``: the mail section's imap line, as ``config`` takes it."""
    recorder, smtp_port = mail
    port = free_port()
    text = config(store, port, smtp_port, imap)
    if not implicit:
        text = "defaults: {implicit_scheduling: false}\n" + text
    text += (
        f'users: [{{name: staff, password_hash: "{hash_password(PASSWORD)}", '
        "access: {anna: read-write}}]\n"
    )
    async with served(tmp_path, text, port) as (server, http):
        yield Staff(server, http, recorder)


@pytest.fixture
async def staff(tmp_path: Path, store: Store, mail: tuple[Recorder, int]) -> AsyncIterator[Staff]:
    async with staff_gateway(tmp_path, store, mail) as gateway:
        yield gateway


async def test_a_calendar_apps_event_invites_updates_and_cancels_its_attendee(
    staff: Staff,
) -> None:
    await staff.put(event())
    await staff.settle()
    ((method, sent),) = staff.itip(ZOE)
    assert method == "REQUEST"
    assert str(sent["UID"]) == "haircut-zoe@app.example"
    assert str(sent["SUMMARY"]) == "Haircut"
    assert str(sent["ATTENDEE"]).lower() == f"mailto:{ZOE}"

    # Moved in the app (which raises SEQUENCE, RFC 5546 2.1.4): an update.
    await staff.put(event(start="20301203T140000Z", end="20301203T150000Z", sequence=1))
    await staff.settle()
    method, moved = staff.itip(ZOE)[1]
    assert method == "REQUEST"
    assert int(str(moved["SEQUENCE"])) == 1
    assert moved.decoded("DTSTART").hour == 14

    # Only the app's own data changed (same fields): nobody is mailed again.
    await staff.put(event(start="20301203T140000Z", end="20301203T150000Z", sequence=1) + "")
    await staff.settle()
    assert len(staff.itip(ZOE)) == 2

    # Cancelled in the app.
    cancelled = event(
        start="20301203T140000Z", end="20301203T150000Z", sequence=2, status="STATUS:CANCELLED\r\n"
    )
    await staff.put(cancelled)
    await staff.settle()
    method, gone = staff.itip(ZOE)[2]
    assert method == "CANCEL"
    assert str(gone["STATUS"]) == "CANCELLED"
    assert len(staff.itip(ZOE)) == 3


async def test_deleting_the_event_in_the_app_cancels_it_for_its_attendees(staff: Staff) -> None:
    await staff.put(event(sequence=4))
    await staff.settle()
    await staff.dav("DELETE")
    await staff.settle()
    method, gone = staff.itip(ZOE)[1]
    assert method == "CANCEL"
    assert str(gone["UID"]) == "haircut-zoe@app.example"
    assert str(gone["STATUS"]) == "CANCELLED"
    assert int(str(gone["SEQUENCE"])) == 5  # after the deleted one's (RFC 5546 3.2.5)
    assert str(gone["ATTENDEE"]).lower() == f"mailto:{ZOE}"
    assert len(staff.itip(ZOE)) == 2


async def test_an_attendee_added_is_invited_and_one_removed_is_uninvited(staff: Staff) -> None:
    both = f"ATTENDEE;CN=Zoë:mailto:{ZOE}\r\nATTENDEE;CN=Max:mailto:{MAX}\r\n"
    await staff.put(event())
    await staff.settle()
    # Added without raising SEQUENCE (not a significant change): only Max hears.
    await staff.put(event(attendees=both))
    await staff.settle()
    assert [m for m, _ in staff.itip(MAX)] == ["REQUEST"]
    assert [m for m, _ in staff.itip(ZOE)] == ["REQUEST"]  # nothing changed for her

    await staff.put(event(attendees=f"ATTENDEE;CN=Max:mailto:{MAX}\r\n"))
    await staff.settle()
    method, uninvited = staff.itip(ZOE)[1]
    assert method == "CANCEL"
    assert str(uninvited["ATTENDEE"]).lower() == f"mailto:{ZOE}"  # her alone
    assert [m for m, _ in staff.itip(MAX)] == ["REQUEST"]


async def test_schedule_agent_client_and_foreign_organizers_are_left_to_the_app(
    staff: Staff,
) -> None:
    await staff.put(
        event(
            attendees=(
                f"ATTENDEE;SCHEDULE-AGENT=CLIENT:mailto:{ZOE}\r\n"
                f"ATTENDEE;SCHEDULE-AGENT=SERVER:mailto:{MAX}\r\n"
            )
        )
    )
    await staff.settle()
    assert staff.itip(ZOE) == []
    assert [m for m, _ in staff.itip(MAX)] == ["REQUEST"]

    await staff.dav("DELETE")
    await staff.put(event(organizer="boss@elsewhere.example"))
    await staff.settle()
    assert staff.itip(ZOE) == []


async def test_implicit_scheduling_turned_off_mails_nobody(
    tmp_path: Path, store: Store, mail: tuple[Recorder, int]
) -> None:
    async with staff_gateway(tmp_path, store, mail, implicit=False) as staff:
        await staff.put(event())
        await staff.settle()
        assert staff.mail.messages() == []
