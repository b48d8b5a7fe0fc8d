"""Bookers' answers through the real app: the signed RSVP pages, the .ics
download and inbound iTIP replies in the API.

The settings are the shared test YAML plus a link key and a mail section
whose SMTP port nobody listens on: no test here needs mail, the outbox's
invitations just fail and wait for a retry."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import aiohttp
import icalendar
from aiohttp.test_utils import TestClient, TestServer

from gateway.app import create_app
from gateway.core.model import PartStat
from gateway.links.tokens import rsvp_url, sign_rsvp
from gateway.settings import load_settings
from tests.conftest import settings_yaml
from tests.net import LOOPBACK, free_port
from tests.samples import SLOT

Client = TestClient[Any, Any]


@asynccontextmanager
async def served(
    tmp_path: Path, text: str, port: int
) -> AsyncIterator[tuple[TestServer, aiohttp.ClientSession]]:
    """The gateway of the settings ``text`` serving on ``port`` (loopback),
    with a client session; both closed on leaving."""
    path = tmp_path / "gateway.yaml"
    path.write_text(text, encoding="utf-8")
    server = TestServer(create_app(load_settings(path)), host=LOOPBACK, port=port)
    await server.start_server()
    http = aiohttp.ClientSession()
    try:
        yield server, http
    finally:
        await http.close()
        await server.close()


LINK_KEY = "rsvp-link-key-for-the-tests-0123456789abcdefghij"
ORGANIZER = "bookings@gateway.test"
PUBLIC_URL = "http://gateway.test"  # server.base_url of the shared test YAML


def invitation_yaml(db_path: Path | str, *, link_key: str | None = LINK_KEY) -> str:
    extra = f"""\
mail:
  smtp_host: 127.0.0.1
  smtp_port: {free_port()}
  security: none
  from_address: {ORGANIZER}
  timeout: 2
"""
    if link_key is not None:
        extra += f"invitations:\n  link_key: {link_key}\n"
    return settings_yaml(db_path, mail=False) + extra


async def book(client: Client, headers: dict[str, str], **changes: Any) -> Any:
    resp = await client.post("/api/v1/bookings", json={**SLOT, **changes}, headers=headers)
    assert resp.status == 201, await resp.text()
    return await resp.json()


async def booking_json(client: Client, headers: dict[str, str], booking_id: str) -> Any:
    resp = await client.get(f"/api/v1/bookings/{booking_id}", headers=headers)
    assert resp.status == 200
    return await resp.json()


async def partstat_of(client: Client, headers: dict[str, str], booking_id: str) -> str:
    booking = await booking_json(client, headers, booking_id)
    return str(booking["booker"]["partstat"])


def rsvp_path(
    booking: dict[str, Any],
    partstat: PartStat,
    *,
    sequence: int | None = None,
    email: str = "zoe@example.com",
    key: str = LINK_KEY,
) -> str:
    """The path of the accept/decline link an invitation for ``booking`` (as
    the API shows it) carries, made with the same signer the mails use."""
    token = sign_rsvp(
        key.encode("utf-8"),
        booking["id"],
        email,
        booking["sequence"] if sequence is None else sequence,
        partstat,
    )
    return urlsplit(rsvp_url(PUBLIC_URL, token)).path


def reply(
    uid: str,
    partstat: str = "ACCEPTED",
    *,
    sequence: int = 0,
    dtstamp: datetime = datetime(2026, 11, 20, 10, 0, tzinfo=UTC),
    attendee: str = "mailto:zoe@example.com",
    organizer: str | None = ORGANIZER,
) -> str:
    """Zoë's REPLY as her calendar client writes it at ``dtstamp``; with
    ``organizer=None`` without ORGANIZER, as Outlook does."""
    calendar = icalendar.Calendar()
    calendar.add("PRODID", "-//Test client//EN")
    calendar.add("VERSION", "2.0")
    calendar.add("METHOD", "REPLY")
    event = icalendar.Event()
    event.add("UID", uid)
    event.add("SEQUENCE", sequence)
    event.add("DTSTAMP", dtstamp)
    event.add("DTSTART", datetime(2026, 12, 1, 8, 0, tzinfo=UTC))
    event.add("SUMMARY", "Haircut")
    address = icalendar.vCalAddress(attendee)
    address.params["PARTSTAT"] = partstat
    address.params["CN"] = "Zoë Müller"
    event.add("ATTENDEE", address)
    if organizer is not None:
        event.add("ORGANIZER", icalendar.vCalAddress(f"mailto:{organizer}"))
    calendar.add_component(event)
    return bytes(calendar.to_ical()).decode("utf-8")
