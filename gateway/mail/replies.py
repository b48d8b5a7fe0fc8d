"""Bookers' answers from the gateway's mailbox: every iTIP REPLY found in a
new message is handed to the booking service, which applies it when UID,
attendee and SEQUENCE match (RFC 5546 3.2.3) and logs it otherwise.

Mail that holds no usable answer (a person writing back, an out-of-office
notice, a garbled calendar) is logged and marked handled: only a failure of
the gateway itself (the database) leaves a message for the next poll.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from gateway.core.invitations import InvalidReply, ItipReply, ReplyOutcome
from gateway.ical import parse_reply

from .imap import ImapInbox, InboxError
from .inbound import itip_parts, sender_of

log = logging.getLogger("calgateway.mail")

ApplyReply = Callable[[ItipReply, str], Awaitable[ReplyOutcome]]


class ReplyInbox:
    def __init__(self, inbox: ImapInbox, apply: ApplyReply, *, poll_interval: float) -> None:
        self._inbox = inbox
        self._apply = apply
        self._interval = poll_interval
        self.applied = 0
        self.dropped = 0

    async def handle(self, raw: bytes) -> None:
        parts = itip_parts(raw)
        if not parts:
            log.info("mail without an answer ignored", extra={"sender": sender_of(raw)})
            self.dropped += 1
            return
        for text in parts:
            try:
                reply = parse_reply(text)
            except InvalidReply as exc:
                log.info(
                    "unusable reply ignored", extra={"sender": sender_of(raw), "why": str(exc)}
                )
                self.dropped += 1
                continue
            outcome = await self._apply(reply, "e-mail")
            if outcome.applied:
                self.applied += 1
            else:
                self.dropped += 1

    async def poll_once(self) -> int:
        return await self._inbox.poll(self.handle)

    async def run(self) -> None:
        """Poll every ``poll_interval`` seconds, the first time one interval
        after start (the server is up and answering before mail is read)."""
        while True:
            await asyncio.sleep(self._interval)  # the poll interval, not a wait for a result
            try:
                await self.poll_once()
            except asyncio.CancelledError:
                raise
            except InboxError as exc:
                # A wrong password will not fix itself: say so louder.
                level = logging.WARNING if exc.transient else logging.ERROR
                log.log(level, "mailbox poll failed", extra={"error": str(exc)})
            except Exception:
                log.exception("mailbox poll failed")
