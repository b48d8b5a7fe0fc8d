"""A real SMTP server on loopback (aiosmtpd) that keeps what it receives."""

from __future__ import annotations

import email
import email.policy
from collections.abc import Iterator
from contextlib import contextmanager
from email.message import EmailMessage
from typing import Any

from aiosmtpd.controller import Controller

from tests.net import LOOPBACK, free_port


class Recorder:
    """Keeps every message; refuses recipients whose local part names an SMTP
    reply ("reject-550@..."), and can be told to refuse everything for a
    while (``down``: a 451 on RCPT, like a server in trouble)."""

    def __init__(self) -> None:
        self.envelopes: list[Any] = []
        self.down = False

    async def handle_RCPT(
        self, server: Any, session: Any, envelope: Any, address: str, rcpt_options: list[str]
    ) -> str:
        if self.down:
            return "451 4.3.0 try again later"
        if address.startswith("reject-"):
            code = address.split("@")[0].removeprefix("reject-")
            return f"{code} mailbox unavailable"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.envelopes.append(envelope)
        return "250 Message accepted for delivery"

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
        controller.stop()
