"""iMIP (RFC 6047) e-mails carrying a booking's iTIP message, and plain notices.

An invitation is built the way the big calendar services send theirs, which
every mail and calendar client understands::

    multipart/mixed
      multipart/alternative
        text/plain                    what happened, when, where, links
        text/html                     the same, escaped
        text/calendar; method=...     the iTIP message (RFC 6047 2.4)
      application/ics  invite.ics     the same calendar as an attachment

The calendar parts are base64 (RFC 6047 2.3 allows any transfer encoding):
the iCalendar text keeps its CRLFs and folded lines byte for byte, and no
relay rewraps or re-encodes it. The message itself is written with
``email.policy.SMTP`` (CRLF line ends).

The human-readable parts are written in the language of the resource the
booking belongs to (``language``, from the settings): the words through the
gettext catalog of ``gateway.look.i18n``, dates through ``gateway.look.dates``.
The calendar parts are the same in every language.

This module receives the calendar text from ``gateway.ical``; it never reads
or writes iCalendar itself.
"""

from __future__ import annotations

import hashlib
import html
import re
from datetime import UTC, datetime
from email.headerregistry import Address
from email.message import EmailMessage
from email.policy import SMTP
from email.utils import format_datetime, make_msgid

from gateway.core.invitations import CalendarLinks, InvitationKind
from gateway.core.model import Attendee, Booking
from gateway.look.dates import format_when
from gateway.look.i18n import translations
from gateway.settings import Language

ATTACHMENT_NAME = "invite.ics"

_CONTROL = re.compile(r"[\x00-\x1f\x7f\u2028\u2029]+")
_METHOD_LINE = re.compile(r"^METHOD:(.*?)\r?$", re.MULTILINE | re.IGNORECASE)


# -- invitations -----------------------------------------------------------------------


def build_invitation(
    *,
    calendar: str,
    kind: InvitationKind,
    booking: Booking,
    attendee: Attendee,
    organizer_address: str,
    organizer_name: str,
    links: CalendarLinks | None = None,
    accept_url: str | None = None,
    decline_url: str | None = None,
    date: datetime | None = None,
    language: Language,
    resend: int | None = None,
    occurrence: str = "",
) -> EmailMessage:
    """The iMIP message telling ``attendee`` about ``booking``.

    ``calendar`` is the iTIP text from ``gateway.ical.render_itip`` for
    ``kind``; its METHOD must be ``kind`` (RFC 6047 2.4: the Content-Type's
    method parameter and the METHOD property must agree). ``links`` (add to a
    web calendar, download the .ics) and ``accept_url``/``decline_url`` (signed
    RSVP links) are offered with a REQUEST only. ``date`` defaults to now.
    ``language``: that of the texts (the resource's, ``Settings.language``).
    ``resend``: see ``invitation_message_id``. ``occurrence``: the
    RECURRENCE-ID of the one occurrence a CANCEL is about; ``booking`` then
    has that occurrence's times, which the texts name."""
    method = _calendar_method(calendar)
    if method != kind.value:
        raise ValueError(f"the calendar says METHOD:{method}, the invitation is a {kind.value}")
    message = _headers(
        to=_address(attendee.email, attendee.name),
        subject=invitation_subject(kind, booking, language),
        sender=_address(organizer_address, organizer_name),
        date=date,
        message_id=invitation_message_id(
            booking, attendee.email, kind, organizer_address, resend, occurrence
        ),
    )
    # RFC 6047 3: replies (iTIP REPLY from a calendar client, or a person's
    # answer) go to the organizer the gateway acts as.
    message["Reply-To"] = _address(organizer_address, organizer_name)
    texts = _InvitationText(
        kind, booking, organizer_name, links, accept_url, decline_url, language, bool(occurrence)
    )
    message.set_content(texts.plain())
    message.add_alternative(texts.html(), subtype="html")
    data = calendar.encode("utf-8")
    message.add_alternative(
        data,
        maintype="text",
        subtype="calendar",
        cte="base64",
        params={"method": kind.value, "charset": "UTF-8"},
    )
    # Google's and Outlook's own invitations attach the same text as
    # application/ics: clients that do not read the inline part offer it as a
    # file, and those that do are not shown a second invitation.
    message.add_attachment(
        data,
        maintype="application",
        subtype="ics",
        cte="base64",
        filename=ATTACHMENT_NAME,
    )
    # The language of the texts (RFC 3282); set last, because adding parts
    # moves a message's Content-* headers into its first part.
    message["Content-Language"] = language
    return _tidy(message)


def invitation_subject(kind: InvitationKind, booking: Booking, language: Language) -> str:
    _ = translations(language).gettext
    title = _one_line(booking.title) or _("Booking")
    when = when_text(booking, language, short=True)
    if kind is InvitationKind.CANCEL:
        return _("Cancelled: %(title)s @ %(when)s") % {"title": title, "when": when}
    if booking.sequence > 0:
        return _("Updated invitation: %(title)s @ %(when)s") % {"title": title, "when": when}
    return _("Invitation: %(title)s @ %(when)s") % {"title": title, "when": when}


def invitation_message_id(
    booking: Booking,
    attendee_email: str,
    kind: InvitationKind,
    organizer_address: str,
    resend: int | None = None,
    occurrence: str = "",
) -> str:
    """A Message-ID (RFC 5322 3.6.4) that is the same for every retry of one
    invitation (booking, recipient, SEQUENCE, method) and differs otherwise,
    so that a resend after a lost acknowledgement is recognisably the same
    message. The booking id and address are hashed: they may hold characters a
    msg-id may not.

    ``resend``: the outbox item of an admin's "send the invitation again". It
    gets a Message-ID of its own (still the same for each retry of that
    item): mail services such as Gmail silently drop a message whose
    Message-ID they already hold, so a booker whose first copy went to spam
    would never see the resend. The calendar part is the same invitation
    (UID, SEQUENCE), which calendar clients fold into the one they have.

    ``occurrence``: the RECURRENCE-ID of a CANCEL for one occurrence; one
    change may cancel several, each its own message."""
    digest = hashlib.sha256(f"{booking.id}\x1f{attendee_email.casefold()}".encode()).hexdigest()[
        :32
    ]
    domain = _domain(organizer_address)
    again = f".resend{resend}" if resend is not None else ""
    if occurrence:
        again += ".on" + hashlib.sha256(occurrence.encode()).hexdigest()[:16]
    return f"<imip.{digest}.{booking.sequence}.{kind.value.lower()}{again}@{domain}>"


class _InvitationText:
    """The human-readable parts of an invitation, plain and HTML."""

    def __init__(
        self,
        kind: InvitationKind,
        booking: Booking,
        organizer_name: str,
        links: CalendarLinks | None,
        accept_url: str | None,
        decline_url: str | None,
        language: Language,
        occurrence: bool = False,
    ) -> None:
        _ = self._ = translations(language).gettext
        self.language = language
        self.booking = booking
        self.title = booking.title.strip() or _("Booking")
        self.organizer = organizer_name
        is_request = kind is InvitationKind.REQUEST
        if not is_request and occurrence:
            self.lead = _(
                "This date of the series has been cancelled. The other dates stay as they are."
            )
        elif not is_request:
            self.lead = _("This booking has been cancelled.")
        elif booking.sequence > 0:
            self.lead = _("This booking has changed. These details replace the earlier ones.")
        elif organizer_name:
            self.lead = _("You are booked with %(name)s.") % {"name": organizer_name}
        else:
            self.lead = ""
        self.links: list[tuple[str, str]] = []
        if is_request and links is not None:
            self.links = [
                (_("Google Calendar"), links.google),
                (_("Outlook.com"), links.outlook),
                (_("Office 365"), links.office365),
                (_("Yahoo Calendar"), links.yahoo),
                (_("Download (.ics)"), links.ics),
            ]
            self.links = [(label, url) for label, url in self.links if url]
        self.answers: list[tuple[str, str]] = []
        if is_request:
            self.answers = [
                (label, url)
                for label, url in ((_("Accept"), accept_url), (_("Decline"), decline_url))
                if url
            ]

    def _facts(self) -> list[tuple[str, str]]:
        _ = self._
        facts = [(_("When"), when_text(self.booking, self.language))]
        if self.booking.location:
            facts.append((_("Where"), self.booking.location))
        if self.organizer:
            facts.append((_("With"), self.organizer))
        return facts

    def plain(self) -> str:
        lines = [self.title, ""]
        if self.lead:
            lines += [self.lead, ""]
        lines += [f"{label}: {value}" for label, value in self._facts()]
        if self.booking.description:
            lines += ["", self.booking.description]
        if self.answers:
            lines += ["", self._("Will you come?")]
            lines += [f"{label}: {url}" for label, url in self.answers]
        if self.links:
            lines += ["", self._("Add it to your calendar:")]
            lines += [f"{label}: {url}" for label, url in self.links]
        return "\n".join(lines) + "\n"

    def html(self) -> str:
        parts = [
            f'<!DOCTYPE html>\n<html lang="{self.language}">',
            '<head><meta charset="utf-8"></head><body>',
            f"<h1>{_h(self.title)}</h1>",
        ]
        if self.lead:
            parts.append(f"<p>{_h(self.lead)}</p>")
        parts.append("<table>")
        parts += [
            f'<tr><th align="left">{_h(label)}</th><td>{_h(value)}</td></tr>'
            for label, value in self._facts()
        ]
        parts.append("</table>")
        if self.booking.description:
            parts.append(f"<p>{_h(self.booking.description).replace(chr(10), '<br>')}</p>")
        if self.answers:
            question = _h(self._("Will you come?"))
            parts.append(f"<p>{question} " + " | ".join(_a(*a) for a in self.answers) + "</p>")
        if self.links:
            parts.append(f"<p>{_h(self._('Add it to your calendar:'))}</p><ul>")
            parts += [f"<li>{_a(label, url)}</li>" for label, url in self.links]
            parts.append("</ul>")
        parts.append("</body></html>")
        return "\n".join(parts) + "\n"


def _h(text: str) -> str:
    return html.escape(text, quote=True)


def _a(label: str, url: str) -> str:
    return f'<a href="{_h(url)}">{_h(label)}</a>'


# -- plain notices ---------------------------------------------------------------------


def build_plain_mail(
    *,
    to: str,
    subject: str,
    text: str,
    html: str | None = None,
    from_address: str,
    from_name: str = "",
    to_name: str = "",
    reply_to: str | None = None,
    date: datetime | None = None,
    message_id: str | None = None,
) -> EmailMessage:
    """A simple notice: text/plain, or multipart/alternative with ``html``
    (which the caller must have escaped)."""
    message = _headers(
        to=_address(to, to_name),
        subject=subject,
        sender=_address(from_address, from_name),
        date=date,
        message_id=message_id or make_msgid(domain=_domain(from_address)),
    )
    if reply_to:
        message["Reply-To"] = _address(reply_to, "")
    message.set_content(text)
    if html is not None:
        message.add_alternative(html, subtype="html")
    return _tidy(message)


# -- shared ----------------------------------------------------------------------------


def _headers(
    *, to: Address, subject: str, sender: Address, date: datetime | None, message_id: str
) -> EmailMessage:
    message = EmailMessage(policy=SMTP)
    message["From"] = sender
    message["To"] = to
    # The policy encodes non-ASCII as RFC 2047 encoded words; line breaks
    # would start a new header and are replaced.
    message["Subject"] = _one_line(subject)
    message["Date"] = format_datetime((date or datetime.now(UTC)).astimezone(UTC))
    message["Message-ID"] = message_id
    return message


def _tidy(message: EmailMessage) -> EmailMessage:
    """MIME-Version belongs to the message only (RFC 2045 4); the email
    package also writes it into every part it creates.

    Boundaries are derived from the Message-ID instead of drawn at random, so
    a retry of the same message is the same bytes. They start with "=_",
    which neither base64 nor quoted-printable text can contain (RFC 2045
    6.7, 6.8), and carry a digest no text part will spell by chance."""
    seed = hashlib.sha256(str(message["Message-ID"]).encode()).hexdigest()[:24]
    for part in message.walk():
        if part is not message:
            del part["MIME-Version"]
        if part.is_multipart():
            part.set_boundary(f"=_{part.get_content_subtype()}_{seed}")
    return message


def _address(address: str, name: str) -> Address:
    address = address.strip()
    local, at, domain = address.rpartition("@")
    if not at or not local or not domain or _CONTROL.search(address) or " " in address:
        raise ValueError(f"{address!r} is not an e-mail address")
    return Address(display_name=_one_line(name), addr_spec=address)


def _domain(address: str) -> str:
    return address.rpartition("@")[2].strip() or "calgateway.invalid"


def _one_line(text: str) -> str:
    return _CONTROL.sub(" ", text).strip()


def _calendar_method(calendar: str) -> str:
    match = _METHOD_LINE.search(calendar)
    return match.group(1).strip().upper() if match else ""


# -- dates for people ------------------------------------------------------------------


def when_text(booking: Booking, language: Language, *, short: bool = False) -> str:
    """The booking's time in its own zone, in ``language``, e.g. "Tuesday, 1
    December 2026, 09:00-10:00 (Central European Standard Time)"; all-day
    bookings show their days (``gateway.look.dates.format_when``)."""
    return format_when(booking.start, booking.end, booking.timezone, language, short=short)
