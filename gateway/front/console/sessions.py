"""Console sessions in a signed cookie: what the cookie holds, how it is
signed, and when it no longer lets its holder in. Pure functions, no I/O.

The cookie is ``<payload>.<signature>``: the payload is base64url JSON
(user name, session id, issue time, last use, a fingerprint of the user's
password hash), the signature HMAC-SHA256 under the server's session key
(``AdminActions.session_key``: the same on every replica, kept across
restarts). The server keeps no session table, so a session ends when

- its signature does not verify (another key, a changed byte);
- it was not used for ``IDLE_LIMIT`` (each use renews the cookie), or it is
  older than ``MAX_AGE`` whatever its use;
- its user is no longer in ``users[]`` or no longer ``admin: true``, or the
  user's password hash changed (a password change, applied by SIGHUP,
  signs every browser of that user out).

Sign-out deletes the cookie in the browser; a copy taken before it would
stay valid until one of the above ends it. What this module does not do:
read or set cookies (``gateway.front.console.guard``) or check passwords
(``gateway.web.auth``).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Literal

IDLE_LIMIT = timedelta(hours=12)
MAX_AGE = timedelta(days=7)
# A cookie is renewed (its last use moved to now) at most this often, so a
# page with many requests does not send a new cookie with each one.
RENEW_AFTER = timedelta(minutes=1)


@dataclass(frozen=True, slots=True)
class Session:
    user: str
    id: str  # random; the CSRF token is bound to it (``csrf``)
    issued: datetime
    seen: datetime  # last use
    fingerprint: str  # of the user's password hash when the session began


@dataclass(frozen=True, slots=True)
class Admin:
    """A user of the settings as the console judges a session against it."""

    name: str
    password_hash: str
    admin: bool


Ended = Literal["invalid", "idle", "too old", "no admin", "password changed"]


def fingerprint(key: bytes, password_hash: str) -> str:
    """Keyed, so the cookie (readable by its holder) tells nothing about the hash."""
    digest = hmac.new(key, b"password:" + password_hash.encode("utf-8"), hashlib.sha256)
    return digest.hexdigest()[:32]


def new_session(key: bytes, admin: Admin, now: datetime) -> Session:
    return Session(
        user=admin.name,
        id=secrets.token_urlsafe(16),
        issued=now,
        seen=now,
        fingerprint=fingerprint(key, admin.password_hash),
    )


def sign(key: bytes, purpose: str, payload: Mapping[str, object]) -> str:
    """``payload`` as ``<base64url JSON>.<base64url HMAC>``; ``purpose`` is in
    the MAC, so a value signed for one cookie is no good as another."""
    body = _b64(json.dumps(payload, separators=(",", ":"), sort_keys=True).encode("utf-8"))
    return f"{body}.{_b64(_mac(key, purpose, body))}"


def unsign(key: bytes, purpose: str, value: str) -> dict[str, object] | None:
    """The payload of a value ``sign`` made with this key and purpose, else None."""
    body, dot, signature = value.partition(".")
    if not dot:
        return None
    try:
        given = base64.urlsafe_b64decode(signature + "=" * (-len(signature) % 4))
        if not hmac.compare_digest(given, _mac(key, purpose, body)):
            return None
        payload = json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
    except (binascii.Error, ValueError):
        return None
    return payload if isinstance(payload, dict) else None


def encode(key: bytes, session: Session) -> str:
    return sign(
        key,
        "session",
        {
            "u": session.user,
            "id": session.id,
            "i": int(session.issued.timestamp()),
            "s": int(session.seen.timestamp()),
            "f": session.fingerprint,
        },
    )


def decode(key: bytes, value: str) -> Session | None:
    """The session a cookie holds if its signature is ours, else None."""
    payload = unsign(key, "session", value)
    if payload is None:
        return None
    user, sid, issued, seen, fp = (payload.get(k) for k in ("u", "id", "i", "s", "f"))
    if not (
        isinstance(user, str)
        and isinstance(sid, str)
        and isinstance(issued, int)
        and isinstance(seen, int)
        and isinstance(fp, str)
    ):
        return None
    try:
        return Session(user, sid, _at(issued), _at(seen), fp)
    except (OverflowError, OSError, ValueError):
        return None


def verify(key: bytes, value: str, admins: Mapping[str, Admin], now: datetime) -> Session | Ended:
    """The session of a cookie if it still lets its holder in, else why not."""
    session = decode(key, value)
    if session is None:
        return "invalid"
    if now - session.seen > IDLE_LIMIT:
        return "idle"
    if now - session.issued > MAX_AGE:
        return "too old"
    admin = admins.get(session.user)
    if admin is None or not admin.admin:
        return "no admin"
    expected = fingerprint(key, admin.password_hash)
    if not hmac.compare_digest(expected, session.fingerprint):
        return "password changed"
    return session


def renewed(session: Session, now: datetime) -> Session | None:
    """The session with its last use moved to now, when it is time to send
    the cookie again; None when the cookie the browser has is recent enough."""
    if now - session.seen < RENEW_AFTER:
        return None
    return replace(session, seen=now)


def _mac(key: bytes, purpose: str, body: str) -> bytes:
    return hmac.new(key, f"{purpose}\x00{body}".encode("ascii"), hashlib.sha256).digest()


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _at(timestamp: int) -> datetime:
    return datetime.fromtimestamp(timestamp, UTC)
