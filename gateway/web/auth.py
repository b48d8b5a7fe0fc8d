"""Who is calling: HTTP Basic over configured users, or a bearer API token.

Password hashes are argon2 (or bcrypt, for admins coming from htpasswd files).
Verifying one costs tens of milliseconds of CPU by design, so it runs in a
worker thread and a successful check is remembered for a short while (keyed by
a digest of the credentials, never the password itself): CalDAV clients send
credentials on every request.

Credentials not remembered so far go through two guards before any hash is
computed: the backoff of ``gateway.web.backoff`` (429 while the client's
address or the user name is locked out) and the bounded, fair queue of
``gateway.web.check_queue`` (429 or 503 when full). Both answer with
``SignInRefused``, which each front end turns into its own answer. Remembered
credentials pass neither guard: a client already signed in keeps working
whatever an attacker does. Refusals are logged with the address, the user
name and the counts, never the password.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import functools
import hashlib
import hmac
import logging
import math
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal

import bcrypt
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from gateway.settings import Settings

from .backoff import FailureBook, Policy, Verdict, address_key
from .check_queue import CheckQueue, QueueFull
from .password_cost import NEW_HASH_PARAMETERS, BcryptCost, DummyCost, dummy_cost

log = logging.getLogger("calgateway.auth")

Access = Literal["read", "read-write"]
ALL_RESOURCES = "*"
# A verified name and password are trusted again until they go unused this
# long (each use restarts the clock): a syncing client re-checked every few
# minutes would cost an argon2 run each time.
_CACHE_SECONDS = 300.0
_CACHE_MAX = 1024
# A check takes the memory its hash asks for: 19 MiB for the hashes
# `calgateway hash-password` makes (older ones, argon2-cffi's default: 64 MiB);
# this many checks at once bound the memory a burst of sign-ins (or of wrong
# passwords) can take. Two cores do no more at once.
MAX_PARALLEL_CHECKS = 2
# Retry-After when the queue of checks has no place: a check takes at most a
# few tenths of a second, so places come free within one.
BUSY_RETRY_AFTER = 1

_hasher = PasswordHasher.from_parameters(NEW_HASH_PARAMETERS)
_DUMMY_PASSWORD = b"calgateway-dummy-password"


def make_dummy_hash(cost: DummyCost) -> str:
    """A hash of a fixed password at ``cost``: what an unknown user name is
    checked against (see ``password_cost.dummy_cost``)."""
    if isinstance(cost, BcryptCost):
        return bcrypt.hashpw(_DUMMY_PASSWORD, bcrypt.gensalt(cost.rounds)).decode("ascii")
    return PasswordHasher.from_parameters(cost).hash(_DUMMY_PASSWORD)


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


class SignInRefused(Exception):
    """A sign-in answered without checking its password: 429 (too many
    attempts) or 503 (too many checks waiting), with ``Retry-After``."""

    def __init__(self, status: Literal[429, 503], retry_after: float, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.retry_after = max(1, math.ceil(retry_after))
        self.message = message

    @property
    def title(self) -> str:
        return "Too many sign-in attempts" if self.status == 429 else "Sign-ins busy"

    @property
    def headers(self) -> dict[str, str]:
        return {"Retry-After": str(self.retry_after)}


# What a queued check comes back with: the password was right or wrong, or it
# was not checked after all (a lockout began while it waited).
_Checked = bool | Verdict


class Authenticator:
    def __init__(
        self,
        users: Sequence[_User],
        tokens: Sequence[_Token],
        *,
        clock: Callable[[], float] = time.monotonic,
        policy: Policy | None = None,
        check_queue: int = 32,
    ) -> None:
        self._users = {u.name: u for u in users}
        self._tokens = tuple(tokens)
        self._clock = clock
        self._verified: dict[bytes, float] = {}
        self._checking: dict[bytes, asyncio.Future[_Checked]] = {}
        self._failures = FailureBook(policy or Policy(), clock, known_users=self._users)
        self._busy_logged_at = -math.inf
        # Made on first need (in a worker thread): hashing here would cost
        # every start a password check's memory and time.
        self._dummy_cost = dummy_cost(u.password_hash for u in users)
        self._dummy: str | None = None
        self._queue: CheckQueue[_Checked] = CheckQueue(
            limit=check_queue, workers=MAX_PARALLEL_CHECKS, strikes=self._failures.strikes
        )

    @classmethod
    def from_settings(cls, settings: Settings) -> Authenticator:
        users = [_User(u.name, u.password_hash, dict(u.access)) for u in settings.users]
        tokens = [
            _Token(t.name, _digest(t.token.get_secret_value()), dict(t.access))
            for t in settings.api_tokens
        ]
        return cls(
            users,
            tokens,
            policy=Policy.from_settings(settings.auth),
            check_queue=settings.auth.check_queue,
        )

    async def authenticate(
        self, authorization: str | None, *, address: str | None = None
    ) -> Principal | None:
        """The caller named by an ``Authorization`` header sent from
        ``address`` (the peer's IP address), or None; raises
        ``SignInRefused`` when a password is not checked at all."""
        if not authorization:
            return None
        scheme, _, credentials = authorization.strip().partition(" ")
        scheme = scheme.lower()
        if scheme == "bearer":
            return self._by_token(credentials.strip())
        if scheme == "basic":
            return await self._by_password(credentials.strip(), address)
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

    async def _by_password(self, credentials: str, address: str | None) -> Principal | None:
        try:
            decoded = base64.b64decode(credentials, validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError):
            return None
        name, sep, password = decoded.partition(":")
        if not sep:
            return None
        return await self._by_name(name, password, address)

    async def sign_in(
        self, name: str, password: str, *, address: str | None = None
    ) -> Principal | None:
        """A name and password from a sign-in form (the admin console), checked
        like HTTP Basic credentials: the same backoff, queue and cache, the same
        ``SignInRefused``."""
        return await self._by_name(name, password, address)

    async def _by_name(self, name: str, password: str, remote: str | None) -> Principal | None:
        user = self._users.get(name)
        cache_key = hashlib.sha256(f"{name}\x00{password}".encode()).digest()
        now = self._clock()
        expires = self._verified.get(cache_key)
        if user is not None and expires is not None and expires > now:
            self._verified[cache_key] = now + _CACHE_SECONDS
            return Principal(user.name, "user", user.access)
        # Only credentials not remembered need the address's key (an IP
        # address parsed): a signed-in client's requests skip it.
        address = address_key(remote)
        verdict = self._failures.decide(address, name)
        if not verdict.allowed:
            raise self._refused(verdict, address, name)
        # A CalDAV client opens several connections at once, all with the same
        # credentials: they share one check instead of running argon2 (tens of
        # MiB and of milliseconds each) side by side.
        pending = self._checking.get(cache_key)
        if pending is None:
            stored = user.password_hash if user is not None else None
            try:
                pending = self._queue.submit(
                    address, name, functools.partial(self._check, stored, password, address, name)
                )
            except QueueFull as full:
                raise self._busy(full, address, name) from None
            self._checking[cache_key] = pending
            pending.add_done_callback(lambda done: self._settled(cache_key, done))
        try:
            outcome = await asyncio.shield(pending)
        except QueueFull as full:
            raise self._busy(full, address, name) from None
        if isinstance(outcome, Verdict):
            raise self._refused(outcome, address, name)
        if user is None or not outcome:
            return None
        if len(self._verified) >= _CACHE_MAX:
            self._verified.clear()
        self._verified[cache_key] = now + _CACHE_SECONDS
        return Principal(user.name, "user", user.access)

    def _dummy_hash(self) -> str:
        """Verified against when the user name is unknown, at the cost of the
        configured users' hashes, so that a wrong name costs as much time and
        memory as a wrong password and response times do not reveal which
        names exist."""
        if self._dummy is None:
            self._dummy = make_dummy_hash(self._dummy_cost)
        return self._dummy

    def _settled(self, cache_key: bytes, done: asyncio.Future[_Checked]) -> None:
        self._checking.pop(cache_key, None)
        if not done.cancelled():
            done.exception()  # retrieved: its callers may all be gone

    async def _check(
        self, password_hash: str | None, password: str, address: str, name: str
    ) -> _Checked:
        """One password check in a worker thread, when the queue gives it its
        turn (None: an unknown name, checked against a dummy all the same)."""
        # Asked again: the address or the name may have been locked out by the
        # checks that ran while this one waited.
        verdict = self._failures.decide(address, name)
        if not verdict.allowed:
            return verdict
        ok = await asyncio.to_thread(
            lambda: verify_password(password_hash or self._dummy_hash(), password)
        )
        if ok and password_hash is not None:
            self._failures.succeeded(name)
            return True
        for lockout in self._failures.failed(address, name):
            log.warning(
                "sign-in locked out",
                extra={
                    "scope": lockout.scope,
                    "address": address,
                    "user": _printable(name),
                    "failures": lockout.failures,
                    "lockout_seconds": round(lockout.seconds, 1),
                },
            )
        return False

    def _refused(self, verdict: Verdict, address: str, name: str) -> SignInRefused:
        # Each refusal at debug level: the lockout's beginning was logged at
        # warning level, and an attacker must not be able to flood the log.
        if log.isEnabledFor(logging.DEBUG):
            log.debug(
                "sign-in refused",
                extra={
                    "scope": verdict.scope,
                    "address": address,
                    "user": _printable(name),
                    "failures": self._failures.strikes(address),
                    "retry_after": math.ceil(verdict.retry_after),
                },
            )
        if verdict.scope == "address":
            message = "too many wrong passwords from this address"
        else:
            message = (
                "too many wrong passwords for this user name; clients already signed in"
                " keep working"
            )
        return SignInRefused(429, verdict.retry_after, message)

    def _busy(self, full: QueueFull, address: str, name: str) -> SignInRefused:
        now = self._clock()
        # One warning a minute at most tells the operator the queue overflows.
        quiet = now - self._busy_logged_at < 60.0
        if not quiet:
            self._busy_logged_at = now
        log.log(
            logging.DEBUG if quiet else logging.WARNING,
            "sign-in refused: password checks queue full",
            extra={
                "scope": "queue",
                "address": address,
                "user": _printable(name),
                "failures": self._failures.strikes(address),
                "retry_after": BUSY_RETRY_AFTER,
            },
        )
        if full.by_address:
            return SignInRefused(
                429, BUSY_RETRY_AFTER, "too many sign-ins at once from this address"
            )
        return SignInRefused(
            503, BUSY_RETRY_AFTER, "too many sign-ins are waiting for a password check"
        )


def _printable(name: str) -> str:
    """A user name as the log shows it: bounded, no control characters."""
    shown = "".join(c if c.isprintable() else "?" for c in name[:64])
    return shown + ("…" if len(name) > 64 else "")


def _digest(token: str) -> bytes:
    return hashlib.sha256(token.encode("utf-8")).digest()
