"""Whether Google, not an e-mail from the gateway, tells a booker about a
booking (settings ``invitations.via``). Decided when the invitation is due:
if the Google path cannot work right now (not connected, waiting for a
reconnect, anonymous details), the e-mail goes out instead."""

from __future__ import annotations

from gateway.core.mirror import InvitePath
from gateway.core.mirror_admin import MirrorAdmin
from gateway.core.model import Attendee, Booking
from gateway.core.ports import MirrorReads


class GoogleInvitePath:
    def __init__(self, repository: MirrorReads, admin: MirrorAdmin) -> None:
        self._repo = repository
        self._admin = admin

    async def __call__(self, booking: Booking, attendee: Attendee) -> bool:
        policy = self._admin.policy(booking.resource_id)
        if policy.invitations is InvitePath.EMAIL or not policy.direction.pushes:
            return False
        own = await self._repo.get_connection(booking.resource_id)
        if own is None or not own.connected or own.warning is not None:
            return False
        if policy.invitations is InvitePath.GOOGLE:
            # The attendee is a guest of the Google event; Google invites them.
            return policy.guests_in_google
        guest = await self._repo.connection_by_account(attendee.email.lower())
        return guest is not None and guest.connected and guest.warning is None
