"""The outbox handler that tells a booker about their booking (iMIP).

One outbox item is one attendee and one change (created, rescheduled,
updated, cancelled). The message describes the booking as it is when the
item runs: a REQUEST with the booking's SEQUENCE, or a CANCEL once it is
cancelled (RFC 5546 3.2.2, 3.2.5). An item whose SEQUENCE is older than the
booking's is skipped, because the item queued with the newer change follows
and says everything (no outdated REQUEST lands after a newer one). Retries
after an SMTP failure send the same message again, with the same
Message-ID, so a duplicate after a crash can be recognised. An invitation
that cannot be written (an address e-mail cannot carry) or that the server
refuses for good is closed as failed, never retried (``notices.deliver``).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping
from datetime import datetime

from gateway.core.admin_actions import RESENT
from gateway.core.clock import utc_now as _utc_now
from gateway.core.invitations import invitation_kind, same_address
from gateway.core.model import Attendee, Booking, OutboxItem, PartStat, Resource
from gateway.core.ports import OutboxJournal, ReadPort
from gateway.ical import render_itip
from gateway.links.signer import LinkSigner
from gateway.settings import Language

from .imip import build_invitation
from .notices import deliver, written
from .sender import SmtpSender

log = logging.getLogger("calgateway.mail")


# (booking, attendee) -> True when Google tells this attendee instead of us.
GooglePath = Callable[[Booking, Attendee], Awaitable[bool]]


async def _never(booking: Booking, attendee: Attendee) -> bool:
    return False


class InvitationMailer:
    def __init__(
        self,
        store: ReadPort,
        resources: Mapping[str, Resource],
        sender: SmtpSender,
        *,
        language: Callable[[str], Language],
        organizer_address: str,
        organizer_name: str,
        links: LinkSigner | None,
        google_path: GooglePath | None = None,
        clock: Callable[[], datetime] = _utc_now,
        journal: OutboxJournal | None = None,
    ) -> None:
        self._store = store
        self._resources = dict(resources)
        # resource id -> the language its bookers read (Settings.language)
        self._language = language
        self._sender = sender
        self._organizer_address = organizer_address
        self._organizer_name = organizer_name
        self._links = links
        self._google_path = google_path or _never
        self._clock = clock
        self._journal = journal
        self.sent = 0

    @property
    def links_missing(self) -> bool:
        return self._links is None

    async def send(self, item: OutboxItem) -> None:
        payload = item.effect.payload
        obj = await self._store.get_by_id(item.effect.booking_id)
        if obj is None:
            return  # deleted through CalDAV: nothing left to describe
        booking = obj.booking
        if booking.sequence > int(payload.get("sequence", 0)):
            return  # a newer change is queued behind this one and says it all
        address = str(payload.get("attendee", ""))
        attendee = next((a for a in booking.attendees if same_address(a.email, address)), None)
        resource = self._resources.get(booking.resource_id)
        if attendee is None or resource is None:
            return  # no longer an attendee (or resource) of this booking
        if await self._google_path(booking, attendee):
            return  # Google's own invitation reaches this attendee
        kind = invitation_kind(booking)
        calendar = render_itip(obj, resource, kind, self._organizer_address, self._clock())
        links = self._links
        message = written(
            lambda: build_invitation(
                calendar=calendar,
                kind=kind,
                booking=booking,
                attendee=attendee,
                organizer_address=self._organizer_address,
                # The resource is who the booker meets; the address is the gateway's.
                organizer_name=resource.name,
                links=links.calendar_links(booking) if links else None,
                accept_url=links.answer(booking, attendee, PartStat.ACCEPTED) if links else None,
                decline_url=links.answer(booking, attendee, PartStat.DECLINED) if links else None,
                language=self._language(resource.id),
                resend=item.id if payload.get("action") == RESENT else None,
            )
        )
        await deliver(self._sender, message, item, self._journal)
        self.sent += 1
        log.info(
            "invitation sent",
            extra={"booking": booking.id, "method": kind.value, "sequence": booking.sequence},
        )
