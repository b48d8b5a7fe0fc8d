"""Signed accept/decline links for bookers without a calendar client.

A token names the booking, the attendee, the booking's SEQUENCE when the
invitation was sent and the answer the link gives; an HMAC-SHA256 over those
proves the gateway made it. The SEQUENCE makes a link from an older
invitation stale exactly like an iTIP REPLY to an older SEQUENCE (RFC 5546
2.1.5), so tokens need no expiry of their own. Served at
``{base_url}/rsvp/{token}``.

The attendee is named opaquely (version 2): by a keyed hash of their address
(``attendee_tag``: HMAC-SHA256 with the link key, truncated to 128 bits),
never by the address itself. A URL ends up in browser histories, proxy and
server logs and referrers; this one tells none of them who the booker is.
The page finds the attendee by recomputing the tag over the booking's
attendees (``attendee_of``); without the key nobody can test a guessed
address against a token.

Version 1 tokens (in invitations sent before version 2) carried the address
in readable base64 JSON. They are still accepted and read as if they named
the attendee by tag: refusing them would break every answer link in mails
already in inboxes for upcoming bookings, while accepting them reveals
nothing new (the address is in that URL whether we answer it or not). No new
version 1 token is made, and each one stops working on its own like any
other: at the booking's next SEQUENCE, or when it is cancelled or gone.

The booking is named by its id, never by its UID: an answer through a link
goes to exactly the booking the invitation was about, even where another
calendar holds an object with the same UID (stored before UIDs were unique
across the gateway). Version 1 tokens have carried the id from the start, so
every link already sent is routed this way; the id also fixes the resource
(a booking id names one object for life).

Token: ``base64url(JSON claim) "." base64url(HMAC-SHA256(key, context || claim))``,
without padding, so it is one URL path segment.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from gateway.core.invitations import ItipReply, mailbox
from gateway.core.model import Attendee, PartStat

# The answers a link can give; NEEDS-ACTION and DELEGATED are not answers a
# click can express.
ANSWERS = frozenset({PartStat.ACCEPTED, PartStat.DECLINED, PartStat.TENTATIVE})

MIN_KEY_BYTES = 32
# 128 bits: no two attendees of one booking share a tag by chance, and
# guessing one without the key is hopeless.
TAG_BYTES = 16

# Binds the MAC to this use, so a key shared with another signer cannot be
# made to vouch for an RSVP.
_CONTEXT = b"calgateway rsvp v1\x00"
_DOWNLOAD_CONTEXT = b"calgateway download v1\x00"
_ATTENDEE_CONTEXT = b"calgateway attendee v1\x00"
_VERSION = 2
_LEGACY_VERSION = 1  # carried the address: read, never written (module doc)
_B64URL = re.compile(r"[A-Za-z0-9_-]*")


class InvalidRsvpToken(ValueError):
    """A token that is malformed, was not made with this key, or was altered."""


@dataclass(frozen=True, slots=True)
class RsvpClaim:
    """What a valid token says. ``attendee_tag`` names the attendee
    (``attendee_tag()``); only ``attendee_of`` turns it into one."""

    booking_id: str
    attendee_tag: bytes
    sequence: int
    partstat: PartStat

    def as_reply(self, uid: str, attendee_email: str, now: datetime) -> ItipReply:
        """The claim, answered for the attendee it names, as the iTIP REPLY
        it stands for, so that one rule
        (``gateway.core.invitations.reply_applies``) judges both."""
        return ItipReply(
            uid=uid,
            attendee_email=attendee_email,
            partstat=self.partstat,
            sequence=self.sequence,
            dtstamp=now,
        )


def attendee_tag(key: bytes, attendee_email: str) -> bytes:
    """The keyed hash that names an attendee in a token: the same for every
    spelling of one mailbox (``gateway.core.invitations.mailbox``)."""
    _check_key(key)
    message = _ATTENDEE_CONTEXT + mailbox(attendee_email).encode("utf-8")
    return hmac.new(key, message, hashlib.sha256).digest()[:TAG_BYTES]


def attendee_of(key: bytes, claim: RsvpClaim, attendees: Iterable[Attendee]) -> Attendee | None:
    """The attendee the claim names, or None when no attendee of the
    booking has that tag (no longer invited)."""
    for attendee in attendees:
        if hmac.compare_digest(attendee_tag(key, attendee.email), claim.attendee_tag):
            return attendee
    return None


def sign_rsvp(
    key: bytes, booking_id: str, attendee_email: str, sequence: int, partstat: PartStat
) -> str:
    """A URL-safe token for one answer of one attendee to one SEQUENCE; the
    address is not in it (module doc)."""
    _check_key(key)
    if partstat not in ANSWERS:
        raise ValueError(f"an RSVP link cannot answer {partstat.value}")
    if sequence < 0:
        raise ValueError("sequence must not be negative")
    claim = {
        "v": _VERSION,
        "b": booking_id,
        "t": _b64(attendee_tag(key, attendee_email)),
        "s": sequence,
        "p": partstat.value,
    }
    body = _b64(json.dumps(claim, separators=(",", ":"), ensure_ascii=False).encode("utf-8"))
    return f"{body}.{_b64(_mac(key, body))}"


def verify_rsvp(key: bytes, token: str) -> RsvpClaim:
    """The claim of a token this key signed; ``InvalidRsvpToken`` otherwise."""
    _check_key(key)
    body, dot, signature = token.partition(".")
    if not dot or not body or not signature:
        raise InvalidRsvpToken("malformed RSVP token")
    try:
        given = _unb64(signature)
        _unb64(body)
    except ValueError as exc:
        raise InvalidRsvpToken("malformed RSVP token") from exc
    # Compared in constant time, before the claim is even looked at.
    if not hmac.compare_digest(given, _mac(key, body)):
        raise InvalidRsvpToken("the RSVP token's signature does not match")
    try:
        claim = json.loads(_unb64(body).decode("utf-8"))
        if claim["v"] == _VERSION:
            tag = _unb64(_str(claim["t"]))
            if len(tag) != TAG_BYTES:
                raise ValueError("attendee tag of the wrong length")
        elif claim["v"] == _LEGACY_VERSION:
            tag = attendee_tag(key, _str(claim["a"]))
        else:
            raise InvalidRsvpToken(f"unsupported RSVP token version {claim['v']!r}")
        result = RsvpClaim(
            booking_id=_str(claim["b"]),
            attendee_tag=tag,
            sequence=_nonnegative(claim["s"]),
            partstat=PartStat(claim["p"]),
        )
    except InvalidRsvpToken:
        raise
    except (ValueError, KeyError, TypeError) as exc:
        # Signed by us yet unreadable: only a bug or a leaked key gets here.
        raise InvalidRsvpToken("the RSVP token's claim is unreadable") from exc
    if result.partstat not in ANSWERS:
        raise InvalidRsvpToken(f"an RSVP link cannot answer {result.partstat.value}")
    return result


def rsvp_url(base_url: str, token: str) -> str:
    return f"{base_url.rstrip('/')}/rsvp/{token}"


def sign_download(key: bytes, booking_id: str) -> str:
    """A URL-safe token for downloading one booking's invitation (.ics):
    whoever has the e-mail may add the booking to any calendar."""
    _check_key(key)
    body = _b64(booking_id.encode("utf-8"))
    return f"{body}.{_b64(_mac(key, body, _DOWNLOAD_CONTEXT))}"


def verify_download(key: bytes, token: str) -> str:
    """The booking id of a download token this key signed."""
    _check_key(key)
    body, dot, signature = token.partition(".")
    try:
        given = _unb64(signature) if dot else b""
        booking_id = _unb64(body).decode("utf-8")
    except (ValueError, UnicodeDecodeError) as exc:
        raise InvalidRsvpToken("malformed download token") from exc
    if not booking_id or not hmac.compare_digest(given, _mac(key, body, _DOWNLOAD_CONTEXT)):
        raise InvalidRsvpToken("the download token's signature does not match")
    return booking_id


def download_url(base_url: str, token: str) -> str:
    return f"{base_url.rstrip('/')}/invites/{token}/invite.ics"


def _check_key(key: bytes) -> None:
    if len(key) < MIN_KEY_BYTES:
        # RFC 2104 3: a key shorter than the hash output weakens the MAC.
        raise ValueError(f"the RSVP key must have at least {MIN_KEY_BYTES} bytes")


def _mac(key: bytes, body: str, context: bytes = b"") -> bytes:
    return hmac.new(key, (context or _CONTEXT) + body.encode("ascii"), hashlib.sha256).digest()


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    """Strict decoding: only the canonical spelling of some bytes is accepted,
    so no two tokens (say, differing in the unused low bits of the last
    character) carry the same signature."""
    if not _B64URL.fullmatch(text):
        raise ValueError("not base64url")
    try:
        data = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except binascii.Error as exc:
        raise ValueError("not base64url") from exc
    if _b64(data) != text:
        raise ValueError("not canonical base64url")
    return data


def _str(value: object) -> str:
    if not isinstance(value, str):
        raise TypeError("expected a string")
    return value


def _nonnegative(value: object) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise TypeError("expected a non-negative integer")
    return value
