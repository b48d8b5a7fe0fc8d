"""The outbox handler for plain notices (``MAIL`` items): the Google-connect
invitation and confirmation e-mails, for example, worded in the resource's
language (``notice_texts``); and ``deliver``, the one way every mail handler
sends for an outbox item."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from email.message import EmailMessage

from gateway.core.model import OutboxItem
from gateway.core.outbox import PermanentFailure, payload_as
from gateway.core.outbox_payloads import MailPayload
from gateway.core.ports import OutboxJournal
from gateway.settings import Language

from .imip import build_plain_mail
from .notice_texts import UnknownNotice, notice_text
from .sender import MailDeliveryError, SmtpSender, classify

log = logging.getLogger("calgateway.mail")


class NoticeMailer:
    def __init__(
        self,
        sender: SmtpSender,
        *,
        from_address: str,
        from_name: str,
        language: Callable[[str], Language],
        journal: OutboxJournal | None = None,
    ) -> None:
        self._sender = sender
        self._from_address = from_address
        self._from_name = from_name
        # resource id -> the language its owner reads (Settings.language)
        self._language = language
        self._journal = journal

    async def send(self, item: OutboxItem) -> None:
        payload = payload_as(item, MailPayload)
        domain = self._from_address.rpartition("@")[2] or "calgateway"
        subject, text = self._words(item, payload)
        message = written(
            lambda: build_plain_mail(
                to=payload.to,
                to_name=payload.to_name,
                subject=subject,
                text=text,
                from_address=self._from_address,
                from_name=self._from_name,
                # One id per outbox item: a message re-sent after a crash between
                # delivery and bookkeeping can be recognised as the same one.
                message_id=f"<notice-{item.id}@{domain}>",
            )
        )
        await deliver(self._sender, message, item, self._journal)

    def _words(self, item: OutboxItem, payload: MailPayload) -> tuple[str, str]:
        """(subject, text): a ``notice`` worded now, in the resource's
        language; an item queued with its words (before notices were
        worded when sent) as it is."""
        if not payload.notice:
            return payload.subject, payload.text
        try:
            return notice_text(
                payload.notice,
                dict(payload.values),
                payload.to_name,
                self._language(item.effect.resource_id),
            )
        except (UnknownNotice, KeyError, ValueError) as exc:
            # Queued by another version, or incomplete: no retry can word it.
            raise PermanentFailure(f"this notice cannot be written: {exc}") from exc


def written(build: Callable[[], EmailMessage]) -> EmailMessage:
    """The message ``build`` writes; one it cannot write (an address that
    e-mail cannot carry) is a permanent failure, never retried."""
    try:
        return build()
    except Exception as exc:
        failure = classify(exc)
        if failure is None:
            raise
        raise PermanentFailure(str(failure)) from exc


async def deliver(
    sender: SmtpSender,
    message: EmailMessage,
    item: OutboxItem,
    journal: OutboxJournal | None,
) -> None:
    """Send for an outbox item: a refusal for good (5xx) closes the item, any
    other failure propagates and is retried with backoff.

    With a ``journal`` the item is marked sending (committed) before the
    first byte goes out and done (committed) right after the server's
    acknowledgement (``gateway.core.outbox`` says why and what a restart
    does with an item left marked)."""
    if item.maybe_done:
        log.warning(
            "sending again a message that may have gone out before the last stop",
            extra={"item": item.id, "message_id": str(message["Message-ID"])},
        )
    accepted: Callable[[], Awaitable[None]] | None = None
    if journal is not None:
        await journal.mark_outbox_sending(item.id)

        async def accepted() -> None:
            await journal.complete_outbox(item.id)

    try:
        await sender.send(message, accepted)
    except MailDeliveryError as exc:
        if not exc.transient:
            raise PermanentFailure(str(exc)) from exc
        raise
