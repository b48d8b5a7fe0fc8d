"""Mail faults an operator meets (issue 12, items 10 and 11), through the
real app, its outbox worker, its store (each backend) and a real SMTP server on
loopback: a slow final acknowledgement is one message, not two; a message
whose acknowledgement never came is sent again with the SAME Message-ID; a
permanent refusal (550, an address e-mail cannot carry) is never retried,
and /healthz counts it as failed."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from gateway.app import create_app
from gateway.core.model import OutboxEffect
from gateway.core.outbox_payloads import MailPayload
from gateway.settings import load_settings
from gateway.web.keys import OUTBOX, REPOSITORY
from tests.backends import Store
from tests.conftest import AppClient, settings_yaml
from tests.samples import SLOT
from tests.smtp import Recorder, smtp_server

ZOE = "zoe@example.com"


@dataclass
class Mailing:
    client: AppClient
    mail: Recorder
    store: Store

    @property
    def app(self) -> web.Application:
        return self.client.app

    async def book(self, booker: str = ZOE, n: int = 0) -> str:
        body = {
            **SLOT,
            "start": f"2027-01-{1 + n:02d}T09:00:00+01:00",
            "end": f"2027-01-{1 + n:02d}T10:00:00+01:00",
            "booker": {"name": "Zoë", "email": booker},
        }
        headers = {"Authorization": "Bearer test-api-token-0123456789abcdef"}
        resp = await self.client.post("/api/v1/bookings", json=body, headers=headers)
        assert resp.status == 201, await resp.text()
        return str((await resp.json())["id"])

    async def drained(self, *, or_messages: int | None = None, within: float = 15.0) -> None:
        """Until the outbox has nothing left to do (or ``or_messages`` have
        arrived: a retry in progress shows as a second message)."""

        async def look() -> None:
            while True:
                await self.app[OUTBOX].settle()
                counts = await self.app[REPOSITORY].outbox_counts()
                if counts["pending"] == 0:
                    return
                if or_messages is not None and len(self.mail.envelopes) >= or_messages:
                    return
                await asyncio.sleep(0.02)  # a retry falls due in a moment

        await asyncio.wait_for(look(), within)

    def outbox(self) -> list[dict[str, Any]]:
        return self.store.rows("SELECT * FROM outbox ORDER BY id")


MakeMailing = Callable[..., Awaitable[Mailing]]


@pytest.fixture
def recorder() -> Iterator[tuple[Recorder, int]]:
    with smtp_server() as server:
        yield server


@pytest.fixture
async def mailing(
    tmp_path: Path,
    store: Store,
    recorder: tuple[Recorder, int],
    aiohttp_client: Callable[[web.Application], Awaitable[AppClient]],
) -> AsyncIterator[MakeMailing]:
    mail, port = recorder

    async def make(smtp_timeout: float = 5.0, data_timeout: float = 60.0) -> Mailing:
        extra = f"""\
outbox: {{initial_retry_delay: 0.01, max_retry_delay: 0.05, poll_interval: 0.05}}
mail:
  smtp_host: 127.0.0.1
  smtp_port: {port}
  security: none
  from_address: bookings@gateway.test
  timeout: {smtp_timeout}
  data_timeout: {data_timeout}
"""
        config = tmp_path / "gateway.yaml"
        config.write_text(settings_yaml(store.url, mail=False, extra=extra), encoding="utf-8")
        client = await aiohttp_client(create_app(load_settings(config)))
        return Mailing(client, mail, store)

    yield make


async def test_a_slow_acknowledgement_is_one_message_not_two(mailing: MakeMailing) -> None:
    gateway = await mailing(smtp_timeout=0.5, data_timeout=5.0)
    gateway.mail.data_delay = 1.5  # past mail.timeout, within mail.data_timeout
    await gateway.book()
    await gateway.drained(or_messages=2)
    assert len(gateway.mail.envelopes) == 1
    [item] = gateway.outbox()
    assert item["done_at"] is not None and item["failed_at"] is None
    assert item["attempts"] == 0


async def test_a_message_sent_again_keeps_its_message_id(mailing: MakeMailing) -> None:
    """The first acknowledgement comes after data_timeout: the message was
    delivered but the gateway cannot know, so it sends it again; the copy
    has the same Message-ID, so mail stores and calendars can fold it."""
    gateway = await mailing(smtp_timeout=5.0, data_timeout=0.3)
    gateway.mail.data_delay = 1.0
    gateway.mail.slow_answers = 1  # only the first answer is late
    await gateway.book()
    await gateway.drained()
    ids = gateway.mail.message_ids(ZOE)
    assert sum(ids.values()) == 2
    assert len(ids) == 1
    [first, second] = gateway.mail.messages()
    # The same invitation (its Date says when each copy was written).
    assert (first["Subject"], first["To"]) == (second["Subject"], second["To"])
    [item] = gateway.outbox()
    assert item["attempts"] == 1
    assert "may have been delivered" in item["last_error"]


async def test_a_550_refusal_is_never_retried_and_shows_as_failed(
    mailing: MakeMailing, caplog: pytest.LogCaptureFixture
) -> None:
    gateway = await mailing()
    with caplog.at_level(logging.INFO, logger="calgateway.outbox"):
        await gateway.book("reject-550@example.com")
        await gateway.drained()
    [item] = gateway.outbox()
    assert item["failed_at"] is not None and item["attempts"] == 1  # tried once, never again
    assert "550" in item["last_error"]
    assert gateway.mail.envelopes == []
    said = [r.getMessage() for r in caplog.records]
    assert said.count("outbox item failed for good") == 1
    assert "outbox item failed, will retry" not in said
    health = await (await gateway.client.get("/healthz")).json()
    assert (health["outbox_pending"], health["outbox_failed"]) == (0, 1)


async def test_an_address_email_cannot_carry_is_never_retried(mailing: MakeMailing) -> None:
    """A non-ASCII local part cannot be written into a message here (Python's
    e-mail package refuses it): the same failure every time, so the item is
    closed as failed at once instead of being retried for ever."""
    gateway = await mailing()
    effect = OutboxEffect(
        "anna", "", MailPayload(to="zoë@example.com", subject="Connect", text="Hello")
    )
    async with gateway.app[REPOSITORY].transaction() as tx:
        await tx.enqueue(effect)
    gateway.app[OUTBOX].wake()
    await gateway.drained()
    [item] = gateway.outbox()
    assert item["failed_at"] is not None and item["attempts"] == 1  # tried once, never again
    assert "non-ASCII" in item["last_error"] or "not an e-mail address" in item["last_error"]
    health = await (await gateway.client.get("/healthz")).json()
    assert health["outbox_failed"] == 1
