"""The admin's outbox and invitation actions over the JSON API (issue 15):
list, retry now, give up, send an invitation again. Through the real app,
its outbox worker, its store (each backend) and a real SMTP server on
loopback.

The worker polls only once an hour and retries only after an hour here, so
a message that arrives within seconds of an action was sent because of it:
the action woke the worker.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from gateway.app import create_app
from gateway.settings import load_settings
from tests.backends import Store
from tests.conftest import ADMIN_PASSWORD, API_TOKEN, READER_TOKEN, AppClient, basic, settings_yaml
from tests.replicas.cluster import eventually
from tests.samples import SLOT
from tests.smtp import Recorder, smtp_server

ZOE = "zoe@example.com"
WITHIN = 10.0  # seconds: every wait for the worker is bounded by this
API = {"Authorization": f"Bearer {API_TOKEN}"}
ADMIN = basic("admin", ADMIN_PASSWORD)
READER = {"Authorization": f"Bearer {READER_TOKEN}"}


@dataclass
class Gateway:
    client: AppClient
    mail: Recorder
    store: Store

    async def book(self, *, day: int = 1, booker: str = ZOE) -> str:
        body = {
            **SLOT,
            "start": f"2026-12-{day:02d}T09:00:00+01:00",
            "end": f"2026-12-{day:02d}T10:00:00+01:00",
            "booker": {"name": "Zoë", "email": booker},
        }
        resp = await self.client.post("/api/v1/bookings", json=body, headers=API)
        assert resp.status == 201, await resp.text()
        return str((await resp.json())["id"])

    async def outbox(self, query: str = "", headers: dict[str, str] = API) -> list[Any]:
        resp = await self.client.get(f"/api/v1/outbox{query}", headers=headers)
        assert resp.status == 200, await resp.text()
        entries: list[Any] = (await resp.json())["entries"]
        return entries

    async def post(self, path: str, status: int, headers: dict[str, str] = API) -> dict[str, Any]:
        resp = await self.client.post(f"/api/v1{path}", headers=headers)
        assert resp.status == status, await resp.text()
        body: dict[str, Any] = await resp.json()
        return body

    async def messages_to(self, address: str, count: int) -> None:
        async def arrived() -> bool:
            return len(self.mail.to(address)) >= count

        await eventually(arrived, f"{count} message(s) to {address}", WITHIN)

    async def state_of(self, item_id: int) -> dict[str, Any] | None:
        for entry in await self.outbox():
            if entry["id"] == item_id:
                return dict(entry)
        return None


MakeGateway = Callable[..., Awaitable[Gateway]]


@pytest.fixture
async def gateway(
    tmp_path: Path,
    store: Store,
    aiohttp_client: Callable[[web.Application], Awaitable[AppClient]],
) -> AsyncIterator[MakeGateway]:
    with smtp_server() as (recorder, port):

        async def make(*, mail: bool = True) -> Gateway:
            extra = (
                "outbox: {initial_retry_delay: 3600, max_retry_delay: 3600, poll_interval: 3600}\n"
            )
            if mail:
                extra += f"""\
mail:
  smtp_host: 127.0.0.1
  smtp_port: {port}
  security: none
  from_address: bookings@gateway.test
"""
            config = tmp_path / "gateway.yaml"
            config.write_text(settings_yaml(store.url, mail=False, extra=extra), encoding="utf-8")
            client = await aiohttp_client(create_app(load_settings(config)))
            return Gateway(client, recorder, store)

        yield make


async def _stuck_invitation(gw: Gateway) -> dict[str, Any]:
    """Book while the mail server refuses for now: the invitation waits an
    hour for its retry."""
    gw.mail.down = True
    booking = await gw.book()

    async def tried() -> bool:
        entries = await gw.outbox("?state=pending")
        return bool(entries) and entries[0]["attempts"] == 1

    await eventually(tried, "first failed attempt", WITHIN)
    (entry,) = await gw.outbox()
    assert entry["booking_id"] == booking
    gw.mail.down = False
    return dict(entry)


async def test_a_waiting_item_is_listed_in_words_and_retry_sends_it_now(
    gateway: MakeGateway, caplog: pytest.LogCaptureFixture
) -> None:
    gw = await gateway()
    entry = await _stuck_invitation(gw)
    assert entry["kind"] == "invitation"
    assert entry["description"] == (
        f"Invitation e-mail to {ZOE} for 'Haircut' (Tue 1 Dec 2026 09:00)"
    )
    assert entry["state"] == "pending"
    assert entry["resource_id"] == "anna"
    assert "451" in entry["last_error"]
    assert entry["next_attempt"] is not None and entry["failed_at"] is None
    assert gw.mail.to(ZOE) == []

    with caplog.at_level(logging.INFO, logger="calgateway.admin"):
        after = await gw.post(f"/outbox/{entry['id']}/retry", 200)
    assert after["id"] == entry["id"] and after["state"] in ("pending", "sending")
    await gw.messages_to(ZOE, 1)  # an hour early: the action woke the worker

    async def done() -> bool:
        return await gw.outbox() == []

    await eventually(done, "item done", WITHIN)
    [record] = [r for r in caplog.records if r.name == "calgateway.admin"]
    assert record.__dict__["by"] == "API token frontend"
    assert record.__dict__["item"] == entry["id"]
    # Done: nothing to retry or give up.
    problem = await gw.post(f"/outbox/{entry['id']}/retry", 409)
    assert "done already" in problem["detail"]
    await gw.post(f"/outbox/{entry['id']}/give-up", 409)


async def test_a_given_up_item_never_runs_until_retried(gateway: MakeGateway) -> None:
    gw = await gateway()
    entry = await _stuck_invitation(gw)
    closed = await gw.post(f"/outbox/{entry['id']}/give-up", 200, headers=ADMIN)
    assert closed["state"] == "failed"
    assert closed["last_error"] == "given up by admin"
    assert closed["failed_at"] is not None and closed["next_attempt"] is None
    assert [e["id"] for e in await gw.outbox("?state=failed")] == [entry["id"]]
    assert await gw.outbox("?state=pending") == []
    # Giving up twice: it has failed already.
    problem = await gw.post(f"/outbox/{entry['id']}/give-up", 409)
    assert "failed already" in problem["detail"]
    # The mail server is up again, and a booking's mail goes out, but not this one.
    await gw.book(day=2, booker="yves@example.com")
    await gw.messages_to("yves@example.com", 1)
    assert gw.mail.to(ZOE) == []

    reopened = await gw.post(f"/outbox/{entry['id']}/retry", 200)
    assert reopened["state"] in ("pending", "sending") and reopened["failed_at"] is None
    assert reopened["attempts"] == 1 and reopened["last_error"] == "given up by admin"
    await gw.messages_to(ZOE, 1)


async def test_resend_queues_the_current_invitation_again(gateway: MakeGateway) -> None:
    gw = await gateway()
    booking = await gw.book()
    await gw.messages_to(ZOE, 1)
    answer = await gw.post(f"/bookings/{booking}/invitation", 202)
    assert answer == {"attendees": [ZOE]}
    await gw.messages_to(ZOE, 2)
    first, second = gw.mail.to(ZOE)
    assert first["Subject"] == second["Subject"]
    # The same invitation (RFC 5546 2.1.5: same UID and SEQUENCE) ...
    assert calendar_identity(first) == calendar_identity(second)
    # ... in a message of its own: Gmail drops one whose Message-ID it holds.
    assert first["Message-ID"] != second["Message-ID"]

    resp = await gw.client.delete(f"/api/v1/bookings/{booking}", headers=API)
    assert resp.status in (200, 204), await resp.text()
    problem = await gw.post(f"/bookings/{booking}/invitation", 409)
    assert "cancelled" in problem["detail"]
    await gw.post("/bookings/no-such-booking/invitation", 404)


async def test_resend_without_mail_settings_says_why(gateway: MakeGateway) -> None:
    gw = await gateway(mail=False)
    booking = await gw.book()
    problem = await gw.post(f"/bookings/{booking}/invitation", 409)
    assert "invitations are off" in problem["detail"]


async def test_bad_ids_and_queries_are_named(gateway: MakeGateway) -> None:
    gw = await gateway()
    for item in ("999999", "abc", "0", "-1", "1e3", "9" * 30):
        problem = await gw.post(f"/outbox/{item}/retry", 404)
        assert "not found" in problem["detail"]
        await gw.post(f"/outbox/{item}/give-up", 404)
    for query, field in (("?state=done", "state"), ("?limit=0", "limit"), ("?limit=x", "limit")):
        resp = await gw.client.get(f"/api/v1/outbox{query}", headers=API)
        assert resp.status == 400
        assert (await resp.json())["errors"][0]["field"] == field


async def test_read_only_callers_see_and_change_nothing(gateway: MakeGateway) -> None:
    gw = await gateway()
    entry = await _stuck_invitation(gw)
    reader = READER
    assert await gw.outbox(headers=reader) == []
    problem = await gw.post(f"/outbox/{entry['id']}/retry", 403, headers=reader)
    assert "read-only" in problem["detail"]
    await gw.post(f"/outbox/{entry['id']}/give-up", 403, headers=reader)
    await gw.post(f"/bookings/{entry['booking_id']}/invitation", 403, headers=reader)
    resp = await gw.client.get("/api/v1/outbox")
    assert resp.status == 401
    (still,) = await gw.outbox()
    assert (still["state"], still["attempts"]) == ("pending", 1)


def calendar_identity(message: EmailMessage) -> tuple[str, ...]:
    """The UID and SEQUENCE lines of a mail's text/calendar part."""
    [part] = [p for p in message.walk() if p.get_content_type() == "text/calendar"]
    payload = part.get_payload(decode=True)
    assert isinstance(payload, bytes)
    lines = payload.decode("utf-8").splitlines()
    return tuple(line for line in lines if line.startswith(("UID:", "SEQUENCE:")))
