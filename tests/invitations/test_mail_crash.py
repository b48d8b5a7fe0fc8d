"""kill -9 in the middle of sending mail, with `calgateway serve` as a real
process and a real SMTP server (issue 12, item 10).

Booking A's message is acknowledged and the server is killed while QUIT is
still unanswered: A was marked done on the acknowledgement, so the next
start never sends it again. Booking B's message was received but its
acknowledgement is still pending when the server is killed: B was marked
"sending" before the first byte went out, so the next start knows it may
have gone out, says so, and sends it again with the SAME Message-ID."""

from __future__ import annotations

import signal
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from tests.backends import Store
from tests.conftest import API_TOKEN, settings_yaml
from tests.samples import SLOT
from tests.serving import serving
from tests.smtp import Recorder, smtp_server

A = "alice@example.com"
B = "bob@example.com"


@pytest.fixture
def mail() -> Iterator[tuple[Recorder, int]]:
    with smtp_server() as server:
        yield server


def config(tmp_path: Path, store: Store, smtp_port: int) -> Path:
    extra = f"""\
outbox: {{initial_retry_delay: 0.05, max_retry_delay: 0.2, poll_interval: 0.2}}
mail:
  smtp_host: 127.0.0.1
  smtp_port: {smtp_port}
  security: none
  from_address: bookings@gateway.test
"""
    path = tmp_path / "gateway.yaml"
    path.write_text(settings_yaml(store.url, mail=False, extra=extra), encoding="utf-8")
    return path


async def book(url: str, booker: str, day: int) -> None:
    body = {
        **SLOT,
        "start": f"2027-02-{day:02d}T09:00:00+01:00",
        "end": f"2027-02-{day:02d}T10:00:00+01:00",
        "booker": {"name": booker.split("@")[0], "email": booker},
    }
    async with (
        aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as http,
        http.post(
            f"{url}/api/v1/bookings", json=body, headers={"Authorization": f"Bearer {API_TOKEN}"}
        ) as resp,
    ):
        assert resp.status == 201, await resp.text()


async def health(url: str) -> Any:
    async with (
        aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as http,
        http.get(f"{url}/healthz") as resp,
    ):
        return await resp.json()


async def test_kill_9_while_sending_resends_only_what_may_be_lost(
    tmp_path: Path, store: Store, mail: tuple[Recorder, int]
) -> None:
    recorder, port = mail
    path = config(tmp_path, store, port)

    recorder.hold_quit_for = A
    async with serving(path) as server:
        await book(server.url, A, 1)
        await recorder.wait_held("quit")  # A acknowledged, QUIT unanswered
        state = await health(server.url)
        # Done on the acknowledgement, in a commit of its own.
        assert (state["outbox_pending"], state["outbox_sending"]) == (0, 0)
        server.signal(signal.SIGKILL)
        await server.process.wait()
    recorder.hold_quit_for = None

    recorder.hold_data_for = B
    async with serving(path) as server:
        await book(server.url, B, 2)
        await recorder.wait_held("data")  # B received, no acknowledgement yet
        state = await health(server.url)
        # Marked sending before the first byte went out.
        assert (state["outbox_pending"], state["outbox_sending"]) == (1, 1)
        server.signal(signal.SIGKILL)
        await server.process.wait()
    recorder.release()
    assert sum(recorder.message_ids(B).values()) == 1

    async with serving(path) as server:
        await server.wait_for_log(lambda e: e.get("msg") == "invitation sent")
        warned = await server.wait_for_log(
            lambda e: str(e.get("msg", "")).startswith("sending again a message that may have")
        )
        state = await health(server.url)
        assert (state["outbox_pending"], state["outbox_sending"]) == (0, 0)
    # A: acknowledged and marked done before the kill: never sent again.
    assert sum(recorder.message_ids(A).values()) == 1
    # B: maybe sent: sent again, recognisably the same message.
    b_ids = recorder.message_ids(B)
    assert list(b_ids.values()) == [2]
    assert warned["message_id"] == next(iter(b_ids))
