"""Mail to bookers: iMIP invitations (RFC 6047) around the iTIP text that
``gateway.ical`` writes, and the SMTP sender. Never imports icalendar:
calendar text arrives ready-made. The links a mail carries (signed RSVP
tokens, "add to calendar") are made by ``gateway.links``.

* ``imip``: the MIME message of an invitation, and plain notices;
* ``notice_texts``: the words of the notices to a resource's owner;
* both in the resource's language (``gateway.look``: catalogs, dates);
* ``sender``: ``SmtpSender`` (aiosmtplib) and its retry classification.
"""

from gateway.mail.imip import build_invitation, build_plain_mail
from gateway.mail.sender import MailDeliveryError, SmtpConfig, SmtpSender

__all__ = [
    "MailDeliveryError",
    "SmtpConfig",
    "SmtpSender",
    "build_invitation",
    "build_plain_mail",
]
