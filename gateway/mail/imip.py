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

This module receives the calendar text from ``gateway.ical``; it never reads
or writes iCalendar itself.
"""

from __future__ import annotations

import hashlib
import html
import re
from datetime import UTC, date, datetime, timedelta
from email.headerregistry import Address
from email.message import EmailMessage
from email.policy import SMTP
from email.utils import format_datetime, make_msgid
from zoneinfo import ZoneInfo

from gateway.core.invitations import CalendarLinks, InvitationKind, is_all_day, local_dates
from gateway.core.model import Attendee, Booking

ATTACHMENT_NAME = "invite.ics"

_DAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
_MONTHS = (
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
)
_DASH = "\u2013"
_RANGE = f" {_DASH} "
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
) -> EmailMessage:
    """The iMIP message telling ``attendee`` about ``booking``.

    ``calendar`` is the iTIP text from ``gateway.ical.render_itip`` for
    ``kind``; its METHOD must be ``kind`` (RFC 6047 2.4: the Content-Type's
    method parameter and the METHOD property must agree). ``links`` (add to a
    web calendar, download the .ics) and ``accept_url``/``decline_url`` (signed
    RSVP links) are offered with a REQUEST only. ``date`` defaults to now."""
    method = _calendar_method(calendar)
    if method != kind.value:
        raise ValueError(f"the calendar says METHOD:{method}, the invitation is a {kind.value}")
    message = _headers(
        to=_address(attendee.email, attendee.name),
        subject=invitation_subject(kind, booking),
        sender=_address(organizer_address, organizer_name),
        date=date,
        message_id=invitation_message_id(booking, attendee.email, kind, organizer_address),
    )
    # RFC 6047 3: replies (iTIP REPLY from a calendar client, or a person's
    # answer) go to the organizer the gateway acts as.
    message["Reply-To"] = _address(organizer_address, organizer_name)
    texts = _InvitationText(kind, booking, organizer_name, links, accept_url, decline_url)
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
    return _tidy(message)


def invitation_subject(kind: InvitationKind, booking: Booking) -> str:
    title = _one_line(booking.title) or "Booking"
    when = when_text(booking, short=True)
    if kind is InvitationKind.CANCEL:
        return f"Cancelled: {title} @ {when}"
    if booking.sequence > 0:
        return f"Updated invitation: {title} @ {when}"
    return f"Invitation: {title} @ {when}"


def invitation_message_id(
    booking: Booking, attendee_email: str, kind: InvitationKind, organizer_address: str
) -> str:
    """A Message-ID (RFC 5322 3.6.4) that is the same for every retry of one
    invitation (booking, recipient, SEQUENCE, method) and differs otherwise,
    so that a resend after a lost acknowledgement is recognisably the same
    message. The booking id and address are hashed: they may hold characters a
    msg-id may not."""
    digest = hashlib.sha256(f"{booking.id}\x1f{attendee_email.casefold()}".encode()).hexdigest()[
        :32
    ]
    domain = _domain(organizer_address)
    return f"<imip.{digest}.{booking.sequence}.{kind.value.lower()}@{domain}>"


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
    ) -> None:
        self.booking = booking
        self.title = booking.title.strip() or "Booking"
        self.organizer = organizer_name
        is_request = kind is InvitationKind.REQUEST
        if not is_request:
            self.lead = "This booking has been cancelled."
        elif booking.sequence > 0:
            self.lead = "This booking has changed. These details replace the earlier ones."
        else:
            self.lead = f"You are booked with {organizer_name}." if organizer_name else ""
        self.links: list[tuple[str, str]] = []
        if is_request and links is not None:
            self.links = [
                ("Google Calendar", links.google),
                ("Outlook.com", links.outlook),
                ("Office 365", links.office365),
                ("Yahoo Calendar", links.yahoo),
                ("Download (.ics)", links.ics),
            ]
            self.links = [(label, url) for label, url in self.links if url]
        self.answers: list[tuple[str, str]] = []
        if is_request:
            self.answers = [
                (label, url)
                for label, url in (("Accept", accept_url), ("Decline", decline_url))
                if url
            ]

    def _facts(self) -> list[tuple[str, str]]:
        facts = [("When", when_text(self.booking))]
        if self.booking.location:
            facts.append(("Where", self.booking.location))
        if self.organizer:
            facts.append(("With", self.organizer))
        return facts

    def plain(self) -> str:
        lines = [self.title, ""]
        if self.lead:
            lines += [self.lead, ""]
        lines += [f"{label}: {value}" for label, value in self._facts()]
        if self.booking.description:
            lines += ["", self.booking.description]
        if self.answers:
            lines += ["", "Will you come?"]
            lines += [f"{label}: {url}" for label, url in self.answers]
        if self.links:
            lines += ["", "Add it to your calendar:"]
            lines += [f"{label}: {url}" for label, url in self.links]
        return "\n".join(lines) + "\n"

    def html(self) -> str:
        parts = [
            '<!DOCTYPE html>\n<html><head><meta charset="utf-8"></head><body>',
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
            parts.append("<p>Will you come? " + " | ".join(_a(*a) for a in self.answers) + "</p>")
        if self.links:
            parts.append("<p>Add it to your calendar:</p><ul>")
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


def when_text(booking: Booking, *, short: bool = False) -> str:
    """The booking's time in its own zone, in English, e.g. "Tuesday, 1
    December 2026, 09:00 to 10:00 (Europe/Berlin)" with an en dash; all-day
    bookings show their days."""
    if is_all_day(booking):
        first, after_last = local_dates(booking)
        last = after_last - timedelta(days=1)
        days = [_day(first, short)] if last == first else [_day(first, short), _day(last, short)]
        return f"{_RANGE.join(days)} (all day)"
    zone = ZoneInfo(booking.timezone)
    start, end = booking.start.astimezone(zone), booking.end.astimezone(zone)
    if short:
        return f"{_day(start.date(), True)} {start:%H:%M} ({booking.timezone})"
    if start.date() == end.date():
        span = f"{_day(start.date(), False)}, {start:%H:%M}{_DASH}{end:%H:%M}"
    else:
        begin = f"{_day(start.date(), False)}, {start:%H:%M}"
        span = f"{begin}{_RANGE}{_day(end.date(), False)}, {end:%H:%M}"
    return f"{span} ({booking.timezone})"


def _day(day: date, short: bool) -> str:
    weekday, month = _DAYS[day.weekday()], _MONTHS[day.month - 1]
    if short:
        return f"{weekday[:3]} {day.day} {month[:3]} {day.year}"
    return f"{weekday}, {day.day} {month} {day.year}"
