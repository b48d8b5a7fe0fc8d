"""Answers reach the calendar app that made the booking (issue 16, item 2).

A staff member's calendar app (python-caldav, over HTTP) writes an event on
the shop's calendar with the shop as ORGANIZER and Zoë as attendee; the
gateway mails her the invitation (a real SMTP server on loopback); she
answers through the accept link in that mail (real HTTP to the RSVP page) or
with an iTIP REPLY by e-mail (fetched over IMAP from a loopback server). On
its next sync the app sees the object changed: her PARTSTAT, a new ETag, and
everything else as the app wrote it (its X- property, its alarm).

Google guests' answers are not here: the Google bridge turns them into the
same ``BookingService.apply_reply`` as these two, and its harness
(``tests/google/harness.py``) runs without the CalDAV side."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import caldav
import icalendar
import pytest

from gateway.app import REPLY_INBOX
from tests.backends import Store
from tests.caldav.test_interop_python_caldav import in_thread
from tests.fakes.imap_server import FakeImapServer
from tests.invitations.test_caldav_scheduling import PASSWORD, Staff, staff_gateway
from tests.invitations.test_imap_replies import PASSWORD as IMAP_PASSWORD
from tests.invitations.test_imap_replies import reply_to
from tests.invitations.test_imip_e2e import ORGANIZER, ZOE
from tests.net import LOOPBACK
from tests.smtp import Recorder

UID = "answers-zoe@app.example"


def app_event(organizer: str) -> str:
    """What the app writes: its own X- property and alarm beside the fields
    the gateway reads."""
    return (
        "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//test//answers//EN\r\n"
        f"BEGIN:VEVENT\r\nUID:{UID}\r\nDTSTAMP:20301101T000000Z\r\n"
        "DTSTART:20301203T090000Z\r\nDTEND:20301203T100000Z\r\nSUMMARY:Haircut\r\n"
        "SEQUENCE:0\r\nX-APPLE-TRAVEL-ADVISORY-BEHAVIOR:AUTOMATIC\r\n"
        f"ORGANIZER;CN=Anna:mailto:{organizer}\r\n"
        f"ATTENDEE;CN=Zoë;PARTSTAT=NEEDS-ACTION;X-APP-SEEN=1:mailto:{ZOE}\r\n"
        "BEGIN:VALARM\r\nACTION:DISPLAY\r\nDESCRIPTION:Haircut soon\r\n"
        "TRIGGER:-PT15M\r\nX-WR-ALARMUID:alarm-1\r\nEND:VALARM\r\n"
        "END:VEVENT\r\nEND:VCALENDAR\r\n"
    )


class App:
    """The staff member's calendar app: python-caldav on Anna's calendar."""

    def __init__(self, staff: Staff) -> None:
        base = f"http://{LOOPBACK}:{staff.server.port}"
        client = caldav.DAVClient(
            url=f"{base}/dav/", username="staff", password=PASSWORD, timeout=10
        )
        self.calendar = client.calendar(url=f"{base}/dav/calendars/anna/")
        self.token: str | None = None

    async def write(self, ics: str) -> None:
        await in_thread(self.calendar.save_event, ics)

    async def sync(self) -> list[tuple[str, str]]:
        """(ETag, text) of each object changed since the last sync."""

        def changes() -> list[tuple[str, str]]:
            found = self.calendar.objects_by_sync_token(self.token, load_objects=True)
            self.token = found.sync_token
            return [(str(o.props.get("{DAV:}getetag", "")), str(o.data)) for o in found]

        return await in_thread(changes)

    async def get(self) -> tuple[str, str]:
        """(ETag, text) of a plain GET of the object."""

        def read() -> tuple[str, str]:
            obj = self.calendar.event_by_uid(UID)
            response = self.calendar.client.request(str(obj.url))
            return str(response.headers.get("ETag", "")), str(response.raw)

        return await in_thread(read)


def partstat(text: str) -> str:
    (event,) = icalendar.Calendar.from_ical(text).walk("VEVENT")
    return str(event["ATTENDEE"].params["PARTSTAT"])


def check_kept(before: str, after: str) -> None:
    """Everything the app wrote is still there, but the PARTSTAT (and the
    revision stamps RFC 5545 3.8.7 asks a changed object to carry)."""
    (old,) = icalendar.Calendar.from_ical(before).walk("VEVENT")
    (new,) = icalendar.Calendar.from_ical(after).walk("VEVENT")
    assert str(new["X-APPLE-TRAVEL-ADVISORY-BEHAVIOR"]) == "AUTOMATIC"
    (alarm,) = new.walk("VALARM")
    assert str(alarm["X-WR-ALARMUID"]) == "alarm-1"
    assert str(alarm["TRIGGER"].to_ical(), "ascii") == "-PT15M"
    assert new["ORGANIZER"] == old["ORGANIZER"]
    assert new["ORGANIZER"].params == old["ORGANIZER"].params
    assert str(new["ATTENDEE"].params["X-APP-SEEN"]) == "1"
    assert "ROLE" not in new["ATTENDEE"].params  # nothing added for her either
    for name in ("UID", "SUMMARY", "SEQUENCE", "DTSTART", "DTEND", "DTSTAMP"):
        assert new[name].to_ical() == old[name].to_ical(), name
    assert "STATUS" not in new and "TRANSP" not in new


@pytest.fixture
async def imap() -> AsyncIterator[FakeImapServer]:
    async with FakeImapServer({ORGANIZER: IMAP_PASSWORD}) as server:
        yield server


@pytest.fixture
async def staff(
    tmp_path: Path, store: Store, mail: tuple[Recorder, int], imap: FakeImapServer
) -> AsyncIterator[Staff]:
    settings = (
        f"  imap: {{host: {LOOPBACK}, port: {imap.port}, security: none, "
        f"username: {ORGANIZER}, password: {IMAP_PASSWORD}, poll_interval: 3600}}\n"
    )
    async with staff_gateway(tmp_path, store, mail, imap=settings) as gateway:
        yield gateway


def accept_link(invitation: Any) -> str:
    """The accept link of the invitation's text part."""
    body = invitation.get_body(("plain",)).get_content()
    links = re.findall(r"http://\S+/rsvp/\S+", body)
    assert links, body
    return str(links[0])


async def by_link(staff: Staff, imap: FakeImapServer, invitation: Any) -> None:
    link = accept_link(invitation)
    async with staff.http.get(link) as page:
        assert page.status == 200, await page.text()
    async with staff.http.post(link) as page:
        assert page.status == 200, await page.text()


async def by_mail(staff: Staff, imap: FakeImapServer, invitation: Any) -> None:
    imap.deliver("INBOX", reply_to(invitation, "ACCEPTED"))
    assert await staff.app[REPLY_INBOX].poll_once() == 1


@pytest.mark.parametrize("organizer", ["anna@example.com", ORGANIZER], ids=["resource", "sender"])
@pytest.mark.parametrize("answer", [by_link, by_mail], ids=["link", "imip"])
async def test_an_answer_reaches_the_app_on_its_next_sync(
    staff: Staff, imap: FakeImapServer, organizer: str, answer: Any
) -> None:
    app = App(staff)
    await app.write(app_event(organizer))
    await staff.settle()
    (invitation,) = staff.mail.to(ZOE)
    ((etag, written),) = await app.sync()
    assert partstat(written) == "NEEDS-ACTION"

    await answer(staff, imap, invitation)

    ((new_etag, synced),) = await app.sync()
    assert partstat(synced) == "ACCEPTED"
    assert new_etag and new_etag != etag
    check_kept(written, synced)
    got_etag, got = await app.get()
    assert (got_etag, partstat(got)) == (new_etag, "ACCEPTED")
    await staff.settle()
    assert len(staff.mail.to(ZOE)) == 1  # an answer mails nobody
