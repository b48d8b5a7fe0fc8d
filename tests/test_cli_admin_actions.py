"""``calgateway outbox list|retry|give-up`` and ``calgateway bookings
resend-invitation`` beside a running server (issue 15): the commands write
the database the server has open; the server's outbox worker, which polls
for items other processes made due, runs what they made due.

The server retries a failed item only after an hour, so an e-mail that
arrives within seconds of ``outbox retry`` was sent because of it."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
from aiohttp import web

from gateway.app import create_app
from gateway.settings import load_settings
from tests.conftest import API_TOKEN, AppClient, settings_yaml
from tests.replicas.cluster import eventually
from tests.samples import SLOT
from tests.smtp import Recorder, smtp_server
from tests.test_cli import COMMAND, REPO

WITHIN = 20.0
API = {"Authorization": f"Bearer {API_TOKEN}"}


@dataclass
class Live:
    client: AppClient
    mail: Recorder
    config: Path

    async def cli(self, *args: str) -> tuple[int, str, str]:
        """The command, run beside the server (without blocking its loop)."""
        proc = await asyncio.create_subprocess_exec(
            *COMMAND,
            *args,
            "--config",
            str(self.config),
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            cwd=REPO,
        )
        out, err = await asyncio.wait_for(proc.communicate(), timeout=60)
        assert proc.returncode is not None
        return proc.returncode, out.decode(), err.decode()

    async def book(self, booker: str, day: int) -> str:
        body = {
            **SLOT,
            "start": f"2026-12-{day:02d}T09:00:00+01:00",
            "end": f"2026-12-{day:02d}T10:00:00+01:00",
            "booker": {"name": "Booker", "email": booker},
        }
        resp = await self.client.post("/api/v1/bookings", json=body, headers=API)
        assert resp.status == 201, await resp.text()
        return str((await resp.json())["id"])

    async def stuck(self, booker: str, day: int) -> tuple[str, int]:
        """A booking whose invitation the mail server refused for now."""
        self.mail.down = True
        booking = await self.book(booker, day)

        async def tried() -> bool:
            resp = await self.client.get("/api/v1/outbox?state=pending", headers=API)
            return any(
                e["booking_id"] == booking and e["attempts"] == 1
                for e in (await resp.json())["entries"]
            )

        await eventually(tried, "a first failed attempt", WITHIN)
        self.mail.down = False
        resp = await self.client.get("/api/v1/outbox", headers=API)
        (item,) = [e["id"] for e in (await resp.json())["entries"] if e["booking_id"] == booking]
        return booking, int(item)

    async def messages_to(self, address: str, count: int) -> None:
        async def arrived() -> bool:
            return len(self.mail.to(address)) >= count

        await eventually(arrived, f"{count} message(s) to {address}", WITHIN)


@pytest.fixture
async def live(
    tmp_path: Path,
    db_path: Path,
    aiohttp_client: Callable[[web.Application], Awaitable[AppClient]],
) -> AsyncIterator[Live]:
    with smtp_server() as (recorder, port):
        extra = f"""\
outbox: {{initial_retry_delay: 3600, max_retry_delay: 3600, poll_interval: 0.2}}
mail:
  smtp_host: 127.0.0.1
  smtp_port: {port}
  security: none
  from_address: bookings@gateway.test
"""
        config = tmp_path / "live.yaml"
        config.write_text(settings_yaml(db_path, mail=False, extra=extra), encoding="utf-8")
        client = await aiohttp_client(create_app(load_settings(config)))
        yield Live(client, recorder, config)


def _rows(out: str) -> list[list[str]]:
    return [line.split() for line in out.splitlines()]


async def test_list_retry_and_give_up_beside_the_server(live: Live) -> None:
    _, item = await live.stuck("zoe@example.com", 1)
    _, other = await live.stuck("yves@example.com", 2)

    code, out, err = await live.cli("outbox", "list")
    assert code == 0, err
    header, *lines = out.splitlines()
    assert header.split()[:5] == ["ID", "STATE", "ATTEMPTS", "NEXT/FAILED", "RESOURCE"]
    assert len(lines) == 2
    assert lines[0].split()[:3] == [str(item), "pending", "1"]
    assert "Invitation e-mail to zoe@example.com for 'Haircut' (Tue 1 Dec 2026 09:00)" in lines[0]

    code, out, err = await live.cli("outbox", "give-up", str(other))
    assert code == 0, err
    assert out.startswith(f"Outbox item {other} given up")
    code, out, err = await live.cli("outbox", "retry", str(item))
    assert code == 0, err
    assert "at most 0.2 s" in out
    await live.messages_to("zoe@example.com", 1)  # within the server's poll, not an hour

    code, out, err = await live.cli("outbox", "list", "--state", "failed")
    assert code == 0, err
    (_, failed) = out.splitlines()
    assert failed.split()[:2] == [str(other), "failed"]
    assert "given up by" in failed and "(command line)" in failed
    assert live.mail.to("yves@example.com") == []

    async def done() -> bool:
        code, out, _ = await live.cli("outbox", "list", "--state", "pending")
        return code == 0 and out.startswith("No outbox item is pending")

    await eventually(done, "the retried item done", WITHIN)
    code, _, err = await live.cli("outbox", "retry", str(item))
    assert code == 2
    assert f"outbox item {item} is done already" in err


async def test_resend_invitation_beside_the_server(live: Live) -> None:
    booking = await live.book("zoe@example.com", 3)
    await live.messages_to("zoe@example.com", 1)
    code, out, err = await live.cli("bookings", "resend-invitation", booking)
    assert code == 0, err
    assert out.startswith(f"Invitation of booking {booking} queued again to zoe@example.com")
    await live.messages_to("zoe@example.com", 2)


async def test_unknown_things_are_named(live: Live) -> None:
    code, _, err = await live.cli("outbox", "retry", "424242")
    assert (code, err.strip()) == (2, "calgateway: outbox item '424242' not found")
    code, _, err = await live.cli("outbox", "give-up", "x1")
    assert code == 2 and "not an outbox item id: 'x1'" in err
    code, _, err = await live.cli("bookings", "resend-invitation", "nope")
    assert (code, err.strip()) == (2, "calgateway: booking 'nope' not found")
    code, out, err = await live.cli("outbox", "list", "--state", "failed")
    assert (code, out) == (0, "No outbox item is failed.\n"), err
