"""The outbox handler that mails a resource's answer to an invitation
(``RESOURCE_REPLY`` items, ``gateway.core.resource_invitations``): an iMIP
REPLY (RFC 6047 2.4, RFC 5546 3.2.3) from the resource's address to the
organizer outside the gateway whose event invited it, with a line for
people and the REPLY as text/calendar (method=REPLY) for their calendar.

The item carries the answer as given, so a retry (or a run after later
changes) sends the same message, with the same Message-ID.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable, Mapping
from datetime import datetime
from email.headerregistry import Address
from email.message import EmailMessage
from email.policy import SMTP
from email.utils import format_datetime

from gateway.core.clock import utc_now as _utc_now
from gateway.core.model import OutboxItem, PartStat, Resource, TimeSpan
from gateway.core.outbox import PermanentFailure, payload_as
from gateway.core.outbox_payloads import ResourceReplyPayload
from gateway.core.ports import OutboxJournal
from gateway.ical.itip_reply import render_reply
from gateway.look.dates import format_when
from gateway.look.i18n import translations
from gateway.settings import Language

from .notices import deliver, written
from .sender import SmtpSender

log = logging.getLogger("calgateway.mail")


class ResourceReplyMailer:
    def __init__(
        self,
        resources: Mapping[str, Resource],
        sender: SmtpSender,
        *,
        language: Callable[[str], Language],
        journal: OutboxJournal | None = None,
        clock: Callable[[], datetime] = _utc_now,
    ) -> None:
        self._resources = dict(resources)
        self._sender = sender
        # resource id -> the language of its mails (Settings.language)
        self._language = language
        self._journal = journal
        self._clock = clock

    async def send(self, item: OutboxItem) -> None:
        payload = payload_as(item, ResourceReplyPayload)
        resource = self._resources.get(item.effect.resource_id)
        if resource is None:
            raise PermanentFailure(f"no resource {item.effect.resource_id!r} to answer for")
        try:
            partstat = PartStat(payload.partstat)
            span = TimeSpan(
                datetime.fromisoformat(payload.start), datetime.fromisoformat(payload.end)
            )
        except ValueError as exc:
            raise PermanentFailure(f"this reply cannot be written: {exc}") from exc
        calendar = render_reply(
            uid=payload.uid,
            sequence=payload.sequence,
            organizer=payload.organizer,
            attendee=payload.attendee,
            attendee_name=resource.name,
            partstat=partstat,
            statuses=payload.statuses,
            title=payload.title,
            span=span,
            now=self._clock(),
        )
        message = written(
            lambda: build_reply(
                calendar=calendar,
                payload=payload,
                resource=resource,
                span=span,
                language=self._language(resource.id),
                date=self._clock(),
            )
        )
        await deliver(self._sender, message, item, self._journal)
        log.info(
            "resource answered an invitation",
            extra={"booking": item.effect.booking_id, "partstat": payload.partstat},
        )


def build_reply(
    *,
    calendar: str,
    payload: ResourceReplyPayload,
    resource: Resource,
    span: TimeSpan,
    language: Language,
    date: datetime,
) -> EmailMessage:
    """The REPLY mail: multipart/alternative of a text for people and the
    calendar text (RFC 6047 2.4: Content-Type method=REPLY, as its METHOD)."""
    _ = translations(language).gettext
    accepted = payload.partstat == PartStat.ACCEPTED.value
    title = " ".join(payload.title.split()) or _("Booking")
    when = format_when(span.start, span.end, resource.timezone, language)
    if accepted:
        subject = _("Accepted: %(title)s") % {"title": title}
        text = _("%(resource)s accepted %(title)s, %(when)s.") % {
            "resource": resource.name,
            "title": title,
            "when": when,
        }
    else:
        subject = _("Declined: %(title)s") % {"title": title}
        text = _("%(resource)s declined %(title)s, %(when)s: %(why)s") % {
            "resource": resource.name,
            "title": title,
            "when": when,
            "why": "; ".join(s.split(";", 1)[-1] for s in payload.statuses),
        }
    domain = resource.email.rpartition("@")[2] or "calgateway.invalid"
    digest = hashlib.sha256(
        "\x1f".join((payload.uid, payload.attendee.casefold(), payload.partstat)).encode()
    ).hexdigest()[:32]
    message = EmailMessage(policy=SMTP)
    message["From"] = Address(display_name=resource.name, addr_spec=resource.email)
    message["To"] = Address(addr_spec=payload.organizer)
    message["Subject"] = subject
    message["Date"] = format_datetime(date)
    # One per answer (UID, resource, SEQUENCE, PARTSTAT): a retry is the same message.
    message["Message-ID"] = f"<reply.{digest}.{payload.sequence}@{domain}>"
    message.set_content(text + "\n")
    message.add_alternative(
        calendar.encode("utf-8"),
        maintype="text",
        subtype="calendar",
        cte="base64",
        params={"method": "REPLY", "charset": "UTF-8"},
    )
    message["Content-Language"] = language
    for part in message.walk():
        if part is not message:
            del part["MIME-Version"]
        if part.is_multipart():
            part.set_boundary(f"=_{part.get_content_subtype()}_{digest[:24]}")
    return message
