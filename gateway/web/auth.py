"""Who is calling: HTTP Basic over configured users, or a bearer API token.

Password hashes are argon2 (or bcrypt, for admins coming from htpasswd files).
Verifying one costs tens of milliseconds of CPU by design, so it runs in a
worker thread and a successful check is remembered for a short while (keyed by
a digest of the credentials, never the password itself): CalDAV clients send
credentials on every request.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import functools
import hashlib
import hmac
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal

import bcrypt
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from gateway.settings import Settings

Access = Literal["read", "read-write"]
ALL_RESOURCES = "*"
# A verified name and password are trusted again until they go unused this
# long (each use restarts the clock): a syncing client re-checked every few
# minutes would cost an argon2 run each time.
_CACHE_SECONDS = 300.0
_CACHE_MAX = 1024
# argon2 with the library's defaults (RFC 9106's second recommendation) takes
# 64 MiB per check; this many checks at once bound the memory a burst of
# sign-ins (or of wrong passwords) can take. Two cores do no more at once.
MAX_PARALLEL_CHECKS = 2

_hasher = PasswordHasher()


@functools.cache
def _dummy_hash() -> str:
    """Verified against when the user name is unknown, so a wrong name costs
    as much time as a wrong password and response times do not reveal which
    names exist. Made on first need: hashing at import would cost every
    start 64 MiB and a tenth of a second."""
    return _hasher.hash("calgateway-dummy-password")


def hash_password(password: str) -> str:
    """An argon2id hash for the ``users[].password_hash`` setting."""
    return _hasher.hash(password)


def verify_password(password_hash: str, password: str) -> bool:
    if password_hash.startswith("$2"):
        try:
            return bcrypt.checkpw(password.encode("utf-8"), password_hash.encode("ascii"))
        except ValueError:
            return False
    try:
        return _hasher.verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


@dataclass(frozen=True, slots=True)
class Principal:
    """An authenticated caller and the resources it may see or change."""

    name: str
    kind: Literal["user", "token"]
    access: Mapping[str, Access] = field(default_factory=dict)

    def _grant(self, resource_id: str) -> Access | None:
        return self.access.get(resource_id) or self.access.get(ALL_RESOURCES)

    def can_read(self, resource_id: str) -> bool:
        return self._grant(resource_id) is not None

    def can_write(self, resource_id: str) -> bool:
        return self._grant(resource_id) == "read-write"

    @property
    def key(self) -> str:
        """Scope for per-caller state such as idempotency keys."""
        return f"{self.kind}:{self.name}"


@dataclass(frozen=True, slots=True)
class _User:
    name: str
    password_hash: str
    access: Mapping[str, Access]


@dataclass(frozen=True, slots=True)
class _Token:
    name: str
    digest: bytes
    access: Mapping[str, Access]


class Authenticator:
    def __init__(
        self,
        users: Sequence[_User],
        tokens: Sequence[_Token],
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._users = {u.name: u for u in users}
        self._tokens = tuple(tokens)
        self._clock = clock
        self._verified: dict[bytes, float] = {}
        self._checking: dict[bytes, asyncio.Future[bool]] = {}
        self._check_slots = asyncio.Semaphore(MAX_PARALLEL_CHECKS)

    @classmethod
    def from_settings(cls, settings: Settings) -> Authenticator:
        users = [_User(u.name, u.password_hash, dict(u.access)) for u in settings.users]
        tokens = [
            _Token(t.name, _digest(t.token.get_secret_value()), dict(t.access))
            for t in settings.api_tokens
        ]
        return cls(users, tokens)

    async def authenticate(self, authorization: str | None) -> Principal | None:
        """The caller named by an ``Authorization`` header, or None."""
        if not authorization:
            return None
        scheme, _, credentials = authorization.strip().partition(" ")
        scheme = scheme.lower()
        if scheme == "bearer":
            return self._by_token(credentials.strip())
        if scheme == "basic":
            return await self._by_password(credentials.strip())
        return None

    def _by_token(self, token: str) -> Principal | None:
        # Compare against every token without stopping early (constant time
        # in the position of the match).
        presented = _digest(token)
        found: _Token | None = None
        for candidate in self._tokens:
            if hmac.compare_digest(candidate.digest, presented):
                found = candidate
        if found is None:
            return None
        return Principal(found.name, "token", found.access)

    async def _by_password(self, credentials: str) -> Principal | None:
        try:
            decoded = base64.b64decode(credentials, validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError):
            return None
        name, sep, password = decoded.partition(":")
        if not sep:
            return None
        user = self._users.get(name)
        cache_key = hashlib.sha256(f"{name}\x00{password}".encode()).digest()
        now = self._clock()
        expires = self._verified.get(cache_key)
        if user is not None and expires is not None and expires > now:
            self._verified[cache_key] = now + _CACHE_SECONDS
            return Principal(user.name, "user", user.access)
        # A CalDAV client opens several connections at once, all with the same
        # credentials: they share one check instead of running argon2 (64 MiB
        # and tens of milliseconds each) side by side.
        pending = self._checking.get(cache_key)
        if pending is None:
            stored = user.password_hash if user is not None else None
            pending = asyncio.ensure_future(self._check(stored, password))
            self._checking[cache_key] = pending
            pending.add_done_callback(lambda _: self._checking.pop(cache_key, None))
        ok = await asyncio.shield(pending)
        if user is None or not ok:
            return None
        if len(self._verified) >= _CACHE_MAX:
            self._verified.clear()
        self._verified[cache_key] = now + _CACHE_SECONDS
        return Principal(user.name, "user", user.access)

    async def _check(self, password_hash: str | None, password: str) -> bool:
        """One password check in a worker thread, at most
        ``MAX_PARALLEL_CHECKS`` at a time (None: an unknown name)."""
        async with self._check_slots:
            return await asyncio.to_thread(
                lambda: verify_password(password_hash or _dummy_hash(), password)
            )


def _digest(token: str) -> bytes:
    return hashlib.sha256(token.encode("utf-8")).digest()
