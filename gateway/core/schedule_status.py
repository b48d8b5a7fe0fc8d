"""The SCHEDULE-STATUS codes the server writes on an organizer's ATTENDEE
(RFC 6638 3.2.9, codes of 7.3 after RFC 5546 3.6's REQUEST-STATUS).

iMIP (RFC 6047) is store and forward: once the mail server has taken the
message nobody can tell whether it reached the attendee's calendar, so the
best the gateway can say is 1.1 "sent" (RFC 6638 7.3: "the scheduling
message has been successfully sent ... but delivery to the recipient is
not yet confirmed"), never 2.0 "delivered".

Not here: where the codes are written (``BookingService``) and when
(``gateway.mail.invitations``).
"""

from __future__ import annotations

PENDING = "1.0"
"""A message is queued for the attendee (RFC 6638 7.3: "pending")."""
SENT = "1.1"
"""The mail server accepted the message (RFC 6638 7.3: "sent")."""
INVALID_USER = "3.7"
"""The address is no calendar user e-mail can reach (RFC 5546 3.6: "Invalid
calendar user")."""
NOT_DELIVERED = "5.1"
"""Refused for good (RFC 6638 7.3: "could not be delivered")."""

# RFC 5321 4.2.2/4.2.3: replies that refuse the mailbox itself (unavailable
# or unknown, not local, name not allowed), rather than the message.
_ADDRESS_REFUSALS = frozenset({550, 551, 553})


def refusal_code(smtp_code: int | None, *, unwritable: bool = False) -> str:
    """The SCHEDULE-STATUS of a message refused for good: 3.7 when the
    address cannot be written in a message (``unwritable``) or the mail
    server refuses the mailbox, 5.1 for any other refusal."""
    if unwritable or smtp_code in _ADDRESS_REFUSALS:
        return INVALID_USER
    return NOT_DELIVERED
