"""A real SMTP server on loopback (aiosmtpd) that keeps what it receives,
and can be slow or stop mid-conversation like servers in the wild."""

from __future__ import annotations

import asyncio
import email
import email.policy
import threading
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from email.message import EmailMessage
from typing import Any

from aiosmtpd.controller import Controller

from tests.net import LOOPBACK, free_port

# No hold lasts longer than this, whatever a test forgets to release.
HOLD_LIMIT_S = 30.0


class Recorder:
    """Keeps every message; refuses recipients whose local part names an SMTP
    reply ("reject-550@..."), and can be told to refuse everything for a
    while (``down``: a 451 on RCPT, like a server in trouble; ``refuse``:
    that reply, e.g. a 550, to every RCPT while set).

    Slow servers: ``data_delay`` seconds pass before the answer to the end
    of a message's data, for the first ``slow_answers`` messages (None:
    all). Stopping mid-conversation: a message to ``hold_data_for`` is kept
    (it counts as received) but its answer waits until ``release()``; after
    a message to ``hold_quit_for`` the answer to QUIT waits likewise.
    ``wait_held(...)`` (from the test's loop) returns once a hold is hit."""

    def __init__(self) -> None:
        self.envelopes: list[Any] = []
        self.down = False
        self.refuse: str | None = None
        self.data_delay = 0.0
        self.slow_answers: int | None = None
        self.hold_data_for: str | None = None
        self.hold_quit_for: str | None = None
        self._released = threading.Event()
        self._held = {"data": threading.Event(), "quit": threading.Event()}

    async def handle_RCPT(
        self, server: Any, session: Any, envelope: Any, address: str, rcpt_options: list[str]
    ) -> str:
        if self.down:
            return "451 4.3.0 try again later"
        if self.refuse is not None:
            return self.refuse
        if address.startswith("reject-"):
            code = address.split("@")[0].removeprefix("reject-")
            return f"{code} mailbox unavailable"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        # Kept before answering: a client that gives up waiting (or dies)
        # has still delivered the message, the worst case for duplicates.
        self.envelopes.append(envelope)
        session.last_recipients = list(envelope.rcpt_tos)
        if self.hold_data_for in envelope.rcpt_tos:
            await self._hold("data")
        if self.data_delay and (self.slow_answers is None or self.slow_answers > 0):
            if self.slow_answers is not None:
                self.slow_answers -= 1
            await asyncio.sleep(self.data_delay)  # the slow server under test
        return "250 Message accepted for delivery"

    async def handle_QUIT(self, server: Any, session: Any, envelope: Any) -> str:
        if self.hold_quit_for in getattr(session, "last_recipients", ()):
            await self._hold("quit")
        return "221 Bye"

    async def _hold(self, what: str) -> None:
        self._held[what].set()
        await asyncio.get_running_loop().run_in_executor(None, self._released.wait, HOLD_LIMIT_S)

    def release(self) -> None:
        """Let every held answer go (and any later one pass unheld)."""
        self._released.set()

    async def wait_held(self, what: str, within: float = 10.0) -> None:
        """Until a "data" or "quit" hold is hit."""
        if not await asyncio.to_thread(self._held[what].wait, within):
            raise AssertionError(f"no {what} hold within {within} s")

    def messages(self) -> list[EmailMessage]:
        """Every message received, parsed back with the standard library."""
        parsed = []
        for envelope in self.envelopes:
            raw = envelope.original_content
            message = email.message_from_bytes(raw, policy=email.policy.default)
            assert isinstance(message, EmailMessage)
            parsed.append(message)
        return parsed

    def to(self, address: str) -> list[EmailMessage]:
        return [m for m in self.messages() if address in str(m["To"])]

    def message_ids(self, address: str | None = None) -> Counter[str]:
        """How many times each Message-ID arrived (for ``address`` only)."""
        messages = self.to(address) if address else self.messages()
        return Counter(str(m["Message-ID"]) for m in messages)


@contextmanager
def smtp_server(**controller_options: Any) -> Iterator[tuple[Recorder, int]]:
    """A running server and its port; ``controller_options`` go to aiosmtpd's
    Controller (TLS contexts, authentication)."""
    recorder = Recorder()
    port = free_port()
    controller = Controller(recorder, hostname=LOOPBACK, port=port, **controller_options)
    controller.start()
    try:
        yield recorder, port
    finally:
        recorder.release()  # no held answer keeps the server from stopping
        controller.stop()
