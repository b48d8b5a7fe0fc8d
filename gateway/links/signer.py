"""Signed links in invitations and API answers: accept/decline (RSVP) and
the .ics download, all under the server's public URL."""

from __future__ import annotations

from dataclasses import dataclass

from gateway.core.invitations import CalendarLinks
from gateway.core.model import Attendee, Booking, PartStat
from gateway.links.add_to_calendar import calendar_links
from gateway.links.tokens import download_url, rsvp_url, sign_download, sign_rsvp


@dataclass(frozen=True, slots=True)
class LinkSigner:
    """Signed links in invitations: accept/decline and the .ics download."""

    key: bytes
    base_url: str

    def download(self, booking_id: str) -> str:
        return download_url(self.base_url, sign_download(self.key, booking_id))

    def answer(self, booking: Booking, attendee: Attendee, partstat: PartStat) -> str:
        token = sign_rsvp(self.key, booking.id, attendee.email, booking.sequence, partstat)
        return rsvp_url(self.base_url, token)

    def calendar_links(self, booking: Booking) -> CalendarLinks:
        return calendar_links(booking, self.download(booking.id))
