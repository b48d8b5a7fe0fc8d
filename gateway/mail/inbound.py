"""Reading bookers' answers out of the e-mails that come back to the gateway.

An attendee's calendar answers an invitation with an iTIP REPLY (RFC 5546
3.2.3) carried by iMIP (RFC 6047). What actually arrives varies by client:

* Apple Mail / Calendar: ``multipart/mixed`` with a ``text/plain`` note and a
  ``text/calendar; method=REPLY`` part, often quoted-printable;
* Gmail: ``multipart/mixed`` > ``multipart/alternative`` (text, HTML,
  ``text/calendar; method=REPLY``, base64) plus the same calendar again as an
  ``application/ics`` attachment named ``invite.ics``;
* Outlook / Exchange: ``multipart/alternative`` with ``text/calendar;
  method=REPLY`` (base64, often ``charset=utf-8``, sometimes declared with
  the wrong charset), or the calendar only as an attachment;
* forwards: any of the above inside a ``message/rfc822`` attachment;
* odd webmailers: an ``.ics``-named attachment typed
  ``application/octet-stream`` or ``text/plain``.

``itip_parts`` finds them all; the booking service reads each with
``gateway.ical.parse_reply``. Like the rest of ``gateway.mail`` this never
imports icalendar: an object counts as an iTIP message when it has a METHOD
property (RFC 5545 3.7.2: without one, no scheduling transaction may be
assumed, the object is a mere snapshot), which one look at the unfolded
content lines tells.
"""

from __future__ import annotations

import base64
import binascii
import logging
import quopri
import re
from email import message_from_bytes
from email.message import Message
from email.policy import compat32, default
from email.utils import getaddresses

from gateway.core.text import UnreadableText, decode

log = logging.getLogger(__name__)

# Content types that are iCalendar by declaration. iMIP uses text/calendar
# (RFC 6047 2.4); application/ics is what Outlook and Gmail put on the
# attachment copy (not registered, but everywhere).
CALENDAR_TYPES = frozenset({"text/calendar", "application/ics", "application/x-ics"})
# Types that say nothing about the content, for which an ".ics" file name
# decides. A part without (or with an unreadable) Content-Type is text/plain
# (RFC 2045 5.2), so it is covered too.
GENERIC_TYPES = frozenset(
    {
        "application/octet-stream",
        "application/download",
        "application/force-download",
        "application/x-download",
        "application/unknown",
        "binary/octet-stream",
        "text/plain",
    }
)
# Attached messages, looked into as messages (RFC 2046 5.2.1; message/global
# is the RFC 6532 variant with UTF-8 headers).
_ATTACHED_MESSAGE_TYPES = frozenset({"message/rfc822", "message/global"})

# Hostile or broken mail must not exhaust the stack or the CPU.
MAX_DEPTH = 16
MAX_PARTS = 500

_LINE = re.compile(r"[^\r\n]*(?:\r\n|\r|\n)|[^\r\n]+\Z")
# RFC 5545 3.1: a CRLF followed by one space or tab is a fold. Bare LF and CR
# line ends (mail gateways rewrite them) are accepted as well.
_FOLD = re.compile(r"(?:\r\n|\r|\n)[ \t]")
_NEWLINE = re.compile(r"\r\n|\r|\n")
# RFC 5545 3.7.2: METHOD, possibly with (iana or x-) parameters, and a value.
# Property names are case-insensitive (RFC 5545 3.1).
_METHOD = re.compile(r"METHOD(?:;[^:]*)?:\s*\S", re.IGNORECASE)


def itip_parts(raw: bytes) -> list[str]:
    """Every iTIP message (an iCalendar object with a METHOD) in the e-mail
    ``raw``, as text, in the order the parts appear.

    Looks at ``text/calendar`` and ``application/ics`` parts and at
    ``.ics``-named attachments of a generic type, at any depth of nested
    multiparts and inside attached ``message/rfc822`` messages; undoes any
    Content-Transfer-Encoding (RFC 2045 6; iMIP allows all of them) and the
    declared charset (UTF-8 when none is declared, RFC 5545 3.1.4, and when
    the declared one does not fit the bytes). A part holding several
    VCALENDAR objects gives each one that has a METHOD. The same object sent
    twice in one e-mail (Gmail's inline part and ``invite.ics`` attachment)
    is returned once. Never raises: from malformed mail it returns what it
    could read."""
    try:
        root = message_from_bytes(raw, policy=default)
    except Exception:  # the parser is lenient; this is a last resort
        log.warning("unreadable e-mail (%d bytes) skipped", len(raw), exc_info=True)
        return []
    found: list[str] = []
    seen: set[str] = set()
    for part in _leaves(root):
        try:
            text = _calendar_text(part)
        except Exception:  # one broken part must not hide the others
            log.warning("skipped an unreadable MIME part", exc_info=True)
            continue
        if text is None:
            continue
        for obj in _itip_objects(text):
            key = _NEWLINE.sub("\n", obj).strip()
            if key not in seen:
                seen.add(key)
                found.append(obj)
    return found


def sender_of(raw: bytes) -> str:
    """The first address of the From header of ``raw``, lower-cased; ``''``
    when there is none or it cannot be read. Never raises.

    Note that From is whatever the sender wrote: it identifies nobody unless
    the receiving server checked it (SPF/DKIM/DMARC)."""
    try:
        header = message_from_bytes(raw, policy=default)["From"]
        if header is not None:
            for address in header.addresses:
                if address.addr_spec and address.addr_spec != "<>":
                    return str(address.addr_spec).lower()
            return ""
    except Exception:  # the header registry chokes on some malformed values
        log.debug("unparsable From header, falling back to parseaddr", exc_info=True)
    try:
        # compat32 hands out the header as written, without parsing it.
        values = message_from_bytes(raw, policy=compat32).get_all("From") or []
        for _name, address in getaddresses([str(v) for v in values]):
            if address:
                return address.strip().lower()
    except Exception:
        log.debug("no From address found", exc_info=True)
    return ""


# -- MIME walk -------------------------------------------------------------------------


def _leaves(root: Message) -> list[Message]:
    """The non-multipart parts under ``root``, depth first in document order,
    descending into attached messages; at most ``MAX_PARTS`` of them and
    ``MAX_DEPTH`` levels deep (an explicit stack: no recursion)."""
    leaves: list[Message] = []
    stack: list[tuple[Message, int]] = [(root, 0)]
    visited = 0
    while stack and visited < MAX_PARTS:
        part, depth = stack.pop()
        visited += 1
        try:
            children = _children(part)
        except Exception:
            log.warning("skipped an unreadable MIME structure", exc_info=True)
            continue
        if children is None:
            leaves.append(part)
        elif depth < MAX_DEPTH:
            stack.extend((child, depth + 1) for child in reversed(children))
    return leaves


def _children(part: Message) -> list[Message] | None:
    """The parts inside ``part``, or None for a leaf."""
    # get_payload() of a leaf decodes it in its declared charset, which
    # raises for some (punycode): only containers are asked for theirs.
    content_type = part.get_content_type()
    if content_type in _ATTACHED_MESSAGE_TYPES:
        payload = part.get_payload()
        inner = payload[0] if isinstance(payload, list) and payload else None
        if not isinstance(inner, Message):
            return []
        encoded = _encoded_attached_message(part, inner)
        return [encoded if encoded is not None else inner]
    if part.is_multipart():
        payload = part.get_payload()
        if isinstance(payload, list):
            return [p for p in payload if isinstance(p, Message)]
    return None


def _encoded_attached_message(part: Message, inner: Message) -> Message | None:
    """An attached message sent base64 or quoted-printable (RFC 2046 5.2.1
    forbids it, some webmailers do it anyway). The parser then reads the
    encoded text as a message without headers; decode it and parse again."""
    cte = str(part.get("Content-Transfer-Encoding", "")).strip().lower()
    if cte not in ("base64", "quoted-printable") or list(inner.keys()):
        return None
    body = inner.get_payload()
    if not isinstance(body, str):
        return None
    data = body.encode("ascii", "surrogateescape")
    try:
        decoded = base64.b64decode(data) if cte == "base64" else quopri.decodestring(data)
    except (binascii.Error, ValueError):
        return None
    return message_from_bytes(decoded, policy=default)


def _calendar_text(part: Message) -> str | None:
    """The decoded text of ``part`` if it is a calendar, else None."""
    content_type = part.get_content_type()
    if content_type not in CALENDAR_TYPES:
        if content_type not in GENERIC_TYPES:
            return None
        filename = part.get_filename()
        if not filename or not filename.strip().lower().endswith(".ics"):
            return None
    data = part.get_payload(decode=True)
    if not isinstance(data, bytes):
        return None
    return _decode(data, part.get_content_charset())


def _decode(data: bytes, declared: str | None) -> str:
    """``data`` as text: in the declared charset if it decodes, else UTF-8
    (RFC 5545 3.1.4's default; also the usual truth behind a wrong
    "us-ascii" label), else UTF-8 with replacement characters."""
    for charset in (declared, "utf-8"):
        if not charset:
            continue
        try:
            # Not bytes.decode: a "charset" like punycode or base64 is no
            # charset, and some codecs raise other errors than decode errors.
            return decode(data, charset).lstrip("\ufeff")
        except UnreadableText:
            continue
    return data.decode("utf-8", "replace").lstrip("\ufeff")


# -- iCalendar objects -----------------------------------------------------------------


def _itip_objects(text: str) -> list[str]:
    """The VCALENDAR objects in ``text`` that carry a METHOD, each as written
    (folded lines and line ends kept). An object cut off before its
    END:VCALENDAR (a truncated mail) is left out: a lenient parser could read
    a wrong answer out of what is left of it."""
    objects: list[str] = []
    current: list[str] | None = None
    for line in _LINE.findall(text):
        name = line.rstrip("\r\n").rstrip().upper()
        if current is None:
            if name == "BEGIN:VCALENDAR":
                current = [line]
            continue
        current.append(line)
        if name == "END:VCALENDAR":
            objects.append("".join(current))
            current = None
    return [obj for obj in objects if _has_method(obj)]


def _has_method(obj: str) -> bool:
    """Whether METHOD is a property of the VCALENDAR itself (RFC 5545 3.4,
    3.7.2), not of a component inside it."""
    depth = 0
    for line in _NEWLINE.split(_FOLD.sub("", obj)):
        upper = line.upper()
        if upper.startswith("BEGIN:"):
            depth += 1
        elif upper.startswith("END:"):
            depth -= 1
        elif depth == 1 and _METHOD.match(line):
            return True
    return False
