"""The outbox handler that tells a booker about their booking (iMIP).

One outbox item is one attendee and one change (created, rescheduled,
updated, cancelled; ``gateway.core.effects`` decides which). The message
describes the booking as it is when the item runs: a REQUEST with the
booking's SEQUENCE, or a CANCEL once it is cancelled or to an attendee taken
off it (RFC 5546 3.2.2, 3.2.5). An item whose SEQUENCE is older than the
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
from dataclasses import replace
from datetime import datetime

from gateway.core.clock import utc_now as _utc_now
from gateway.core.errors import GatewayError
from gateway.core.invitations import InvitationKind, invitation_kind, same_address
from gateway.core.model import (
    Attendee,
    Booking,
    BookingStatus,
    CalendarObject,
    OutboxItem,
    PartStat,
    Resource,
)
from gateway.core.outbox import PermanentFailure, payload_as
from gateway.core.outbox_payloads import InvitationPayload, InviteAction
from gateway.core.ports import OutboxJournal, ReadPort
from gateway.core.schedule_status import SENT, refusal_code
from gateway.ical import ICalCodec, render_itip
from gateway.ical.itip import occurrence_times
from gateway.links.signer import LinkSigner
from gateway.settings import Language

from .imip import build_invitation
from .notices import deliver, written
from .sender import MailDeliveryError, SmtpSender

log = logging.getLogger("calgateway.mail")


# (booking, attendee) -> True when Google tells this attendee instead of us.
GooglePath = Callable[[Booking, Attendee], Awaitable[bool]]


# (booking id, attendee, SEQUENCE, SCHEDULE-STATUS code) -> written or not.
ScheduleStatus = Callable[[str, str, int, str], Awaitable[bool]]


async def _never(booking: Booking, attendee: Attendee) -> bool:
    return False


def _deleted_object(item: OutboxItem, resource: Resource, now: datetime) -> CalendarObject | None:
    """The object a CalDAV DELETE removed, from the text its item carries,
    as cancelled with the next SEQUENCE (RFC 5546 3.2.5), or None."""
    text = payload_as(item, InvitationPayload).deleted
    if not text:
        return None
    try:
        parsed = ICalCodec().parse(text, resource.timezone)
    except GatewayError as exc:
        log.warning(
            "cancellation not written", extra={"booking": item.effect.booking_id, "why": str(exc)}
        )
        return None
    booking = parsed.booking(
        id=item.effect.booking_id, resource_id=resource.id, created=now, updated=now
    )
    booking = replace(booking, status=BookingStatus.CANCELLED, sequence=booking.sequence + 1)
    return CalendarObject(booking=booking, ics=text, span=parsed.span)


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
        schedule_status: ScheduleStatus | None = None,
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
        # BookingService.record_schedule_status: (booking id, attendee,
        # SEQUENCE, code) written back to the organizer's object.
        self._schedule_status = schedule_status
        self.sent = 0

    def _deleted(self, item: OutboxItem) -> CalendarObject | None:
        resource = self._resources.get(item.effect.resource_id)
        if resource is None:
            return None
        return _deleted_object(item, resource, self._clock())

    async def _record(self, booking: Booking, attendee: Attendee, code: str) -> None:
        """Tell the organizer's object how sending went (SCHEDULE-STATUS,
        ``gateway.core.schedule_status``). The message has gone out (or
        never will) whatever happens here: a failure to write the status is
        logged, not raised, so that it cannot send the message again."""
        if self._schedule_status is None:
            return
        try:
            await self._schedule_status(booking.id, attendee.email, booking.sequence, code)
        except Exception:
            log.exception(
                "schedule status not written",
                extra={"booking": booking.id, "attendee": attendee.email, "code": code},
            )

    @property
    def links_missing(self) -> bool:
        return self._links is None

    async def send(self, item: OutboxItem) -> None:
        payload = payload_as(item, InvitationPayload)
        obj = await self._store.get_by_id(item.effect.booking_id)
        if obj is None:
            obj = self._deleted(item)
            if obj is None:
                return  # deleted, and nothing left to describe
        elif obj.booking.sequence > payload.sequence:
            return  # a newer change is queued behind this one and says it all
        booking = obj.booking
        address = payload.attendee
        attendee = next((a for a in booking.attendees if same_address(a.email, address)), None)
        kind = invitation_kind(booking)
        if attendee is None and address and payload.action is InviteAction.CANCELLED:
            # Taken off the booking (a CalDAV client's edit): a CANCEL that
            # names them alone (RFC 5546 3.2.5 "uninvite").
            attendee = Attendee(address)
            booking = replace(booking, attendees=(attendee,))
            obj = replace(obj, booking=booking)
            kind = InvitationKind.CANCEL
        resource = self._resources.get(booking.resource_id)
        if attendee is None or resource is None:
            return  # no longer an attendee (or resource) of this booking
        if await self._google_path(booking, attendee):
            # Google's own invitation reaches this attendee: the message is
            # handed over (the booking's Google write follows this item in
            # its outbox order), as far as the gateway can tell it, "sent".
            await self._record(booking, attendee, SENT)
            return
        # One occurrence of a series cancelled (RFC 5546 3.2.5 with
        # RECURRENCE-ID); the booking a whole CANCEL is about is cancelled.
        occurrence = payload.recurrence_id if payload.action is InviteAction.CANCELLED else ""
        if occurrence and kind is InvitationKind.REQUEST:
            kind = InvitationKind.CANCEL
        else:
            occurrence = ""
        calendar = render_itip(
            obj, resource, kind, self._organizer_address, self._clock(), occurrence
        )
        told = booking
        if occurrence:
            start, end = occurrence_times(obj, occurrence, resource.timezone)
            told = replace(booking, start=start, end=end)
        links = self._links
        try:
            message = written(
                lambda: build_invitation(
                    calendar=calendar,
                    kind=kind,
                    booking=told,
                    attendee=attendee,
                    organizer_address=self._organizer_address,
                    # The resource is who the booker meets; the address is the gateway's.
                    organizer_name=resource.name,
                    links=links.calendar_links(booking) if links else None,
                    accept_url=(
                        links.answer(booking, attendee, PartStat.ACCEPTED) if links else None
                    ),
                    decline_url=(
                        links.answer(booking, attendee, PartStat.DECLINED) if links else None
                    ),
                    language=self._language(resource.id),
                    # An admin's resend: a Message-ID of its own (imip.invitation_message_id).
                    resend=item.id if payload.action is InviteAction.RESENT else None,
                    occurrence=occurrence,
                )
            )
            await deliver(self._sender, message, item, self._journal)
        except PermanentFailure as exc:
            cause = exc.__cause__
            refused = cause.code if isinstance(cause, MailDeliveryError) else None
            unwritable = not isinstance(cause, MailDeliveryError)
            await self._record(booking, attendee, refusal_code(refused, unwritable=unwritable))
            raise
        await self._record(booking, attendee, SENT)
        self.sent += 1
        log.info(
            "invitation sent",
            extra={"booking": booking.id, "method": kind.value, "sequence": booking.sequence},
        )
