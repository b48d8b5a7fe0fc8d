"""The outbox handler for plain notices (``MAIL`` items): the Google-connect
invitation and confirmation e-mails, for example."""

from __future__ import annotations

from email.message import EmailMessage

from gateway.core.model import OutboxItem
from gateway.core.outbox import PermanentFailure

from .imip import build_plain_mail
from .sender import MailDeliveryError, SmtpSender


class NoticeMailer:
    def __init__(self, sender: SmtpSender, *, from_address: str, from_name: str) -> None:
        self._sender = sender
        self._from_address = from_address
        self._from_name = from_name

    async def send(self, item: OutboxItem) -> None:
        payload = item.effect.payload
        domain = self._from_address.rpartition("@")[2] or "calgateway"
        message = build_plain_mail(
            to=str(payload["to"]),
            to_name=str(payload.get("to_name", "")),
            subject=str(payload["subject"]),
            text=str(payload["text"]),
            from_address=self._from_address,
            from_name=self._from_name,
            # One id per outbox item: a message re-sent after a crash between
            # delivery and bookkeeping can be recognised as the same one.
            message_id=f"<notice-{item.id}@{domain}>",
        )
        await deliver(self._sender, message)


async def deliver(sender: SmtpSender, message: EmailMessage) -> None:
    """Send for an outbox item: a refusal for good (5xx) closes the item, any
    other failure propagates and is retried with backoff."""
    try:
        await sender.send(message)
    except MailDeliveryError as exc:
        if not exc.transient:
            raise PermanentFailure(str(exc)) from exc
        raise
