"""Mail to bookers: iMIP invitations (RFC 6047) around the iTIP text that
``gateway.ical`` writes, "add to calendar" links, signed RSVP links, and the
SMTP sender. Never imports icalendar: calendar text arrives ready-made.

* ``links``: Google / Outlook.com / Office 365 / Yahoo links and the .ics URL;
* ``imip``: the MIME message of an invitation, and plain notices;
* ``rsvp``: HMAC-signed accept/decline tokens;
* ``sender``: ``SmtpSender`` (aiosmtplib) and its retry classification.
"""

from gateway.mail.imip import build_invitation, build_plain_mail
from gateway.mail.links import calendar_links
from gateway.mail.rsvp import InvalidRsvpToken, RsvpClaim, rsvp_url, sign_rsvp, verify_rsvp
from gateway.mail.sender import MailDeliveryError, SmtpConfig, SmtpSender

__all__ = [
    "InvalidRsvpToken",
    "MailDeliveryError",
    "RsvpClaim",
    "SmtpConfig",
    "SmtpSender",
    "build_invitation",
    "build_plain_mail",
    "calendar_links",
    "rsvp_url",
    "sign_rsvp",
    "verify_rsvp",
]
