"""Invitations end to end: bookings made through the API, e-mails received by
a real SMTP server on loopback, every message parsed back with the standard
library's e-mail parser, icalendar and vobject."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime, timedelta
from email.message import EmailMessage
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import aiohttp
import icalendar
import pytest
import vobject
from aiohttp import web
from aiohttp.test_utils import TestServer

from gateway.web.keys import OUTBOX, REPOSITORY
from tests.backends import Store
from tests.conftest import API_TOKEN
from tests.invitations import served
from tests.net import LOOPBACK, free_port
from tests.smtp import Recorder

BERLIN = ZoneInfo("Europe/Berlin")
LINK_KEY = "invitation-link-key-for-tests-0123456789abcdef"
ORGANIZER = "bookings@gateway.test"
ZOE = "zoe@example.com"


def at(day: int, hour: int) -> datetime:
    base = datetime.now(BERLIN).replace(hour=hour, minute=0, second=0, microsecond=0)
    return base + timedelta(days=day)


def config(store: Store, port: int, smtp_port: int, imap: str = "", languages: str = "") -> str:
    """``languages``: e.g. "de/en", the default language and Anna's own."""
    default, _, anna = languages.partition("/")
    defaults = f"defaults: {{language: {default}}}\n" if default else ""
    own = f", language: {anna}" if anna else ""
    return f"""\
{defaults}server: {{host: {LOOPBACK}, port: {port}, base_url: "http://{LOOPBACK}:{port}"}}
storage: {{url: "{store.url}"}}
api_tokens: [{{name: frontend, token: {API_TOKEN}}}]
outbox: {{initial_retry_delay: 0.01, max_retry_delay: 0.05}}
mail:
  smtp_host: {LOOPBACK}
  smtp_port: {smtp_port}
  security: none
  from_address: {ORGANIZER}
  from_name: Salon Bookings
{imap}invitations: {{link_key: {LINK_KEY}}}
resources:
  - {{id: anna, name: Anna Schmidt, email: anna@example.com, timezone: Europe/Berlin{own}}}
  - {{id: ben, name: Ben Miller, email: ben@example.com, timezone: America/New_York}}
"""


class Gateway:
    def __init__(self, server: TestServer, http: aiohttp.ClientSession, mail: Recorder) -> None:
        self.server = server
        self.http = http
        self.mail = mail

    @property
    def app(self) -> web.Application:
        return self.server.app

    async def api(self, method: str, path: str, body: Any = None, expect: int = 200) -> Any:
        async with self.http.request(
            method,
            f"http://{LOOPBACK}:{self.server.port}/api/v1{path}",
            json=body,
            headers={"Authorization": f"Bearer {API_TOKEN}"},
        ) as reply:
            data = await reply.json()
            assert reply.status == expect, data
            return data

    async def book(self, start: datetime, end: datetime, **extra: Any) -> Any:
        body = {
            "resource": "anna",
            "start": start.isoformat(),
            "end": end.isoformat(),
            "title": "Färben & Schneiden",
            "location": "Salon, Chair 2",
            "description": "Bring the photo 📷",
            "booker": {"name": "Zoë Müller", "email": ZOE},
            **extra,
        }
        return await self.api("POST", "/bookings", body, expect=201)

    async def settle(self) -> None:
        async with asyncio.timeout(30):
            await self.app[OUTBOX].settle()

    async def retry_now(self) -> None:
        """Make retries waiting for their backoff due now, then run them
        (instead of waiting out the backoff in the test)."""
        async with self.app[REPOSITORY].transaction() as tx:
            for resource in ("anna", "ben"):
                await tx.release_outbox(resource)
        await self.settle()


@asynccontextmanager
async def running(
    tmp_path: Path,
    store: Store,
    mail: tuple[Recorder, int],
    port: int,
    imap: str = "",
    languages: str = "",
) -> AsyncIterator[Gateway]:
    recorder, smtp_port = mail
    text = config(store, port, smtp_port, imap, languages)
    async with served(tmp_path, text, port) as (server, http):
        yield Gateway(server, http, recorder)


@pytest.fixture
async def gateway(
    tmp_path: Path, store: Store, mail: tuple[Recorder, int]
) -> AsyncIterator[Gateway]:
    async with running(tmp_path, store, mail, free_port()) as gw:
        yield gw


def calendar_parts(message: EmailMessage) -> tuple[EmailMessage, EmailMessage]:
    """(inline text/calendar, invite.ics attachment), checking the tree."""
    assert message.get_content_type() == "multipart/mixed"
    alternative, attachment = message.get_payload()  # type: ignore[misc]
    assert alternative.get_content_type() == "multipart/alternative"
    kinds = [p.get_content_type() for p in alternative.get_payload()]
    assert kinds == ["text/plain", "text/html", "text/calendar"]
    inline = alternative.get_payload()[2]
    assert attachment.get_filename() == "invite.ics"
    assert attachment.get_content_disposition() == "attachment"
    return inline, attachment


def check_itip(message: EmailMessage, method: str, sequence: int, uid: str) -> icalendar.Event:
    inline, attachment = calendar_parts(message)
    assert inline.get_param("method") == method
    assert str(inline.get_param("charset")).upper() == "UTF-8"
    raw = inline.get_payload(decode=True)
    assert isinstance(raw, bytes)
    assert raw == attachment.get_payload(decode=True)  # the same calendar twice
    text = raw.decode("utf-8")
    assert "\r\n" in text and "\n" not in text.replace("\r\n", "")  # CRLF throughout
    calendar = icalendar.Calendar.from_ical(text)
    assert str(calendar["METHOD"]) == method
    (event,) = calendar.walk("VEVENT")
    assert str(event["UID"]) == uid
    assert int(event["SEQUENCE"]) == sequence
    stamp = event.decoded("DTSTAMP")
    assert stamp.tzinfo is not None and stamp.utcoffset() == timedelta(0)
    organizer = event["ORGANIZER"]
    assert str(organizer).lower() == f"mailto:{ORGANIZER}"
    assert organizer.params["CN"] == "Anna Schmidt"
    attendee = event["ATTENDEE"]
    assert str(attendee).lower() == f"mailto:{ZOE}"
    assert attendee.params["CN"] == "Zoë Müller"
    assert attendee.params["ROLE"] == "REQ-PARTICIPANT"
    # Every TZID used has its VTIMEZONE (RFC 5545 3.2.19).
    zones = {str(z["TZID"]) for z in calendar.walk("VTIMEZONE")}
    used = {str(event[p].params["TZID"]) for p in ("DTSTART", "DTEND") if "TZID" in event[p].params}
    assert used <= zones
    # A second parser agrees.
    parsed = vobject.readOne(text)
    assert parsed.method.value == method
    assert parsed.vevent.uid.value == uid
    assert int(parsed.vevent.sequence.value) == sequence
    return event


async def test_create_reschedule_cancel_each_send_one_imip_message(gateway: Gateway) -> None:
    booking = await gateway.book(at(3, 10), at(3, 11))
    await gateway.settle()
    (created,) = gateway.mail.to(ZOE)
    # From the gateway's address, named after whom the booker meets.
    assert str(created["From"]) == f"Anna Schmidt <{ORGANIZER}>"
    assert str(created["Reply-To"]).endswith(f"<{ORGANIZER}>")
    event = check_itip(created, "REQUEST", 0, booking["uid"])
    assert event["ATTENDEE"].params["PARTSTAT"] == "NEEDS-ACTION"
    assert event["ATTENDEE"].params["RSVP"] == "TRUE"
    assert event.decoded("DTSTART") == at(3, 10)
    text = created.get_body(preferencelist=("plain",))
    assert text is not None
    body = text.get_content()
    assert "Färben & Schneiden" in body and "calendar.google.com" in body
    assert "/rsvp/" in body and "/invites/" in body
    assert booking["links"]["google"].startswith("https://calendar.google.com/")

    await gateway.api(
        "PATCH",
        f"/bookings/{booking['id']}",
        {"start": at(4, 14).isoformat(), "end": at(4, 15).isoformat()},
    )
    await gateway.settle()
    moved = gateway.mail.to(ZOE)[1]
    event = check_itip(moved, "REQUEST", 1, booking["uid"])
    assert event.decoded("DTSTART") == at(4, 14)

    await gateway.api("DELETE", f"/bookings/{booking['id']}")
    await gateway.settle()
    cancelled = gateway.mail.to(ZOE)[2]
    event = check_itip(cancelled, "CANCEL", 2, booking["uid"])
    assert str(event["STATUS"]) == "CANCELLED"
    assert len(gateway.mail.to(ZOE)) == 3
    # Each message has its own stable id.
    assert len({str(m["Message-ID"]) for m in gateway.mail.to(ZOE)}) == 3


@pytest.mark.parametrize(
    ("languages", "anna", "ben"),
    [("", "en", "en"), ("de", "de", "de"), ("de/en", "en", "de"), ("en/de", "de", "en")],
)
async def test_invitations_are_written_in_the_resources_language(
    tmp_path: Path,
    store: Store,
    mail: tuple[Recorder, int],
    languages: str,
    anna: str,
    ben: str,
) -> None:
    words = {
        "en": ("Invitation: ", "When: ", "Accept: ", "Cancelled: ", "(Central European"),
        "de": ("Einladung: ", "Wann: ", "Zusagen: ", "Abgesagt: ", "(Mitteleuropäische"),
    }
    async with running(tmp_path, store, mail, free_port(), languages=languages) as gateway:
        booking = await gateway.book(at(3, 10), at(3, 11))
        await gateway.book(at(3, 10), at(3, 11), resource="ben", booker={"email": "bo@example.com"})
        await gateway.settle()
        await gateway.api("DELETE", f"/bookings/{booking['id']}")
        await gateway.settle()
    for address, language, zone in ((ZOE, anna, "Berlin"), ("bo@example.com", ben, "New York")):
        invitation, *cancellation = gateway.mail.to(address)
        subject, when, accept, cancelled, zone_name = words[language]
        text = invitation.get_body(preferencelist=("plain",))
        assert text is not None, zone
        assert str(invitation["Subject"]).startswith(subject), zone
        assert when in text.get_content() and accept in text.get_content(), zone
        html = invitation.get_body(preferencelist=("html",))
        assert html is not None and f'<html lang="{language}">' in html.get_content()
        if address == ZOE:  # Berlin's zone, named in the reader's language
            assert zone_name in str(invitation["Subject"])
            (cancel,) = cancellation
            assert str(cancel["Subject"]).startswith(cancelled)


async def test_an_smtp_outage_during_creation_still_delivers_exactly_one(
    gateway: Gateway,
) -> None:
    gateway.mail.down = True  # the server answers 451 to every recipient
    booking = await gateway.book(at(5, 9), at(5, 10))
    await gateway.settle()
    assert gateway.mail.to(ZOE) == []
    assert await gateway.app[REPOSITORY].pending_outbox() == 1  # kept, retrying

    gateway.mail.down = False
    await gateway.retry_now()
    (message,) = gateway.mail.to(ZOE)
    check_itip(message, "REQUEST", 0, booking["uid"])
    await gateway.settle()
    assert len(gateway.mail.to(ZOE)) == 1


async def test_a_restart_loses_no_pending_invitation_and_sends_none_twice(
    tmp_path: Path, store: Store, mail: tuple[Recorder, int]
) -> None:
    port = free_port()
    recorder = mail[0]
    recorder.down = True
    async with running(tmp_path, store, mail, port) as gateway:
        first = await gateway.book(at(6, 9), at(6, 10))
        await gateway.settle()
        second = await gateway.book(at(6, 11), at(6, 12))
        # Stopped before the second was even tried.
    recorder.down = False
    async with running(tmp_path, store, mail, port) as gateway:
        await gateway.retry_now()
        uids = sorted(str(check_itip(m, "REQUEST", 0, m_uid(m))["UID"]) for m in recorder.to(ZOE))
        assert uids == sorted([first["uid"], second["uid"]])
    async with running(tmp_path, store, mail, port) as gateway:
        await gateway.retry_now()
    assert len(recorder.to(ZOE)) == 2


def m_uid(message: EmailMessage) -> str:
    inline, _ = calendar_parts(message)
    raw = inline.get_payload(decode=True)
    assert isinstance(raw, bytes)
    (event,) = icalendar.Calendar.from_ical(raw.decode()).walk("VEVENT")
    return str(event["UID"])
