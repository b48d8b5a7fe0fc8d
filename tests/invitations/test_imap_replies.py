"""Answers by e-mail: the booker's calendar client sends an iTIP REPLY to the
gateway's address; the gateway polls that mailbox over IMAP (the real
imaplib against a loopback IMAP server) and updates the booking."""

from __future__ import annotations

from collections.abc import AsyncIterator
from email.message import EmailMessage
from email.policy import SMTP
from pathlib import Path

import icalendar
import pytest

from gateway.app import REPLY_INBOX
from gateway.web.keys import REPOSITORY
from tests.backends import Store
from tests.fakes.imap_server import FakeImapServer
from tests.invitations.test_imip_e2e import ORGANIZER, ZOE, Gateway, at, calendar_parts, running
from tests.net import LOOPBACK, free_port
from tests.smtp import Recorder

PASSWORD = "imap-secret-password"


@pytest.fixture
async def imap() -> AsyncIterator[FakeImapServer]:
    async with FakeImapServer({ORGANIZER: PASSWORD}) as server:
        yield server


@pytest.fixture
async def gateway(
    tmp_path: Path, store: Store, mail: tuple[Recorder, int], imap: FakeImapServer
) -> AsyncIterator[Gateway]:
    settings = (
        f"  imap: {{host: {LOOPBACK}, port: {imap.port}, security: none, "
        f"username: {ORGANIZER}, password: {PASSWORD}, poll_interval: 3600}}\n"
    )
    async with running(tmp_path, store, mail, free_port(), imap=settings) as gw:
        yield gw


def reply_to(invitation: EmailMessage, partstat: str, *, outlook: bool = False) -> bytes:
    """What a calendar client sends back: the REQUEST turned into a REPLY
    with only the answering attendee (RFC 5546 3.2.3)."""
    inline, _ = calendar_parts(invitation)
    raw = inline.get_payload(decode=True)
    assert isinstance(raw, bytes)
    request = icalendar.Calendar.from_ical(raw.decode("utf-8"))
    reply = icalendar.Calendar()
    reply.add("prodid", "-//Test client//EN")
    reply.add("version", "2.0")
    reply.add("method", "REPLY")
    (event,) = request.walk("VEVENT")
    answer = icalendar.Event()
    for name in ("UID", "SEQUENCE", "DTSTART", "DTEND", "DTSTAMP"):
        answer.add(name, event.decoded(name) if name != "UID" else str(event[name]))
    if not outlook:  # Outlook leaves ORGANIZER out of its replies
        answer.add("organizer", event["ORGANIZER"])
    attendee = icalendar.vCalAddress(f"MAILTO:{ZOE.upper()}")
    attendee.params["PARTSTAT"] = partstat
    answer.add("attendee", attendee)
    reply.add_component(answer)
    message = EmailMessage(policy=SMTP)
    message["From"] = ZOE
    message["To"] = ORGANIZER
    message["Subject"] = f"{partstat.title()}: {event['SUMMARY']}"
    message.set_content(f"Zoë has {partstat.lower()} your invitation.")
    message.add_alternative(
        reply.to_ical(), maintype="text", subtype="calendar", params={"method": "REPLY"}
    )
    return message.as_bytes()


async def partstat(gateway: Gateway, booking_id: str) -> str:
    booking = await gateway.api("GET", f"/bookings/{booking_id}")
    return str(booking["attendees"][0]["partstat"])


async def test_an_emailed_reply_updates_the_booking(gateway: Gateway, imap: FakeImapServer) -> None:
    booking = await gateway.book(at(3, 10), at(3, 11))
    await gateway.settle()
    (invitation,) = gateway.mail.to(ZOE)
    imap.deliver("INBOX", reply_to(invitation, "ACCEPTED", outlook=True))
    imap.deliver("INBOX", b"From: someone@example.com\r\nSubject: hi\r\n\r\nThanks!\r\n")

    assert await gateway.app[REPLY_INBOX].poll_once() == 2
    assert await partstat(gateway, booking["id"]) == "ACCEPTED"
    assert all("\\Seen" in m.flags for m in imap.messages("INBOX"))
    assert await gateway.app[REPLY_INBOX].poll_once() == 0  # nothing handled twice

    # After a reschedule the old answer is stale: logged and dropped.
    await gateway.api(
        "PATCH",
        f"/bookings/{booking['id']}",
        {"start": at(4, 9).isoformat(), "end": at(4, 10).isoformat()},
    )
    imap.deliver("INBOX", reply_to(invitation, "DECLINED"))
    await gateway.app[REPLY_INBOX].poll_once()
    assert await partstat(gateway, booking["id"]) == "NEEDS-ACTION"  # reset by the move
    log = await gateway.app[REPOSITORY].sync_log("anna")
    assert any("ignored" in e.message and "SEQUENCE" in e.message for e in log)

    # The answer to the new invitation counts.
    await gateway.settle()
    moved = gateway.mail.to(ZOE)[-1]
    imap.deliver("INBOX", reply_to(moved, "DECLINED"))
    await gateway.app[REPLY_INBOX].poll_once()
    assert await partstat(gateway, booking["id"]) == "DECLINED"
