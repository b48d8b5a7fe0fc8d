"""Password-guessing backoff: given the wrong passwords seen lately from a
client address and for a user name, and the time, may a new sign-in have its
password checked, and if not, for how long is it refused (HTTP 429 with
``Retry-After``, RFC 6585 4).

The rule (documented in config/README.md, section ``auth``):

- every client address and every user name keeps its own record of wrong
  passwords;
- ``max_failures_per_*`` wrong passwords within ``failure_window`` seconds
  start a lockout of ``lockout_seconds``; each further lockout of the same
  streak lasts twice as long, at most ``max_lockout_seconds``; counting then
  starts afresh;
- an attempt while its address or its user name is locked out is refused for
  the longer of the two remaining times, before any hash is computed; refused
  attempts change nothing (they cost the server nothing either);
- a record with no wrong password for ``failure_window`` seconds and no lockout
  running is forgotten: the streak, and the doubling, end;
- a right password clears its user name's record (the owner has shown who
  they are) but not its address's: an attacker holding one valid account
  cannot launder guesses at other names through it.

Addresses are grouped as an attacker would hold them: an IPv6 client by its
/64 network (one customer's allocation), an IPv4-mapped one as IPv4.

Memory is bounded: the configured user names have one record each; addresses
and unknown user names share at most ``max_entries`` records, the least
recently failed dropped first, so rotating names or addresses cannot grow it.

What this module does not do: check passwords, cache verified credentials
(``gateway.web.auth``), order the checks that wait (``gateway.web.check_queue``),
or know about HTTP. It reads no clock of its own: ``FailureBook`` is given one.
"""

from __future__ import annotations

import hashlib
import ipaddress
import math
from collections import OrderedDict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from typing import Literal

from gateway.settings import AuthSettings

Scope = Literal["address", "user"]

# Records of addresses and unknown user names kept at once (a few hundred
# bytes each): beyond it the least recently failed is forgotten.
MAX_TRACKED = 10_000
# Doubling stops mattering long before this; it keeps 2**n a finite float.
_MAX_DOUBLINGS = 32


@dataclass(frozen=True, slots=True)
class Policy:
    max_failures_per_address: int = 10
    max_failures_per_user: int = 10
    failure_window: float = 300.0
    lockout_seconds: float = 30.0
    max_lockout_seconds: float = 900.0

    @classmethod
    def from_settings(cls, auth: AuthSettings) -> Policy:
        return cls(
            max_failures_per_address=auth.max_failures_per_address,
            max_failures_per_user=auth.max_failures_per_user,
            failure_window=auth.failure_window,
            lockout_seconds=auth.lockout_seconds,
            max_lockout_seconds=auth.max_lockout_seconds,
        )

    def limit(self, scope: Scope) -> int:
        return self.max_failures_per_address if scope == "address" else self.max_failures_per_user


@dataclass(frozen=True, slots=True)
class Record:
    """Wrong passwords of one address or one user name."""

    # When the wrong passwords since the last lockout came, oldest first
    # (only those within the window matter).
    failures: tuple[float, ...] = ()
    # Lockouts in this streak, and when the current one ends.
    lockouts: int = 0
    locked_until: float = -math.inf
    # Wrong passwords in this streak, for the log and for ordering the queue.
    streak: int = 0


FRESH = Record()


def remaining(record: Record, now: float) -> float:
    """Seconds the record's lockout still runs (0: not locked out)."""
    return max(0.0, record.locked_until - now)


def forgotten(record: Record, now: float, policy: Policy) -> bool:
    """Quiet for a whole window: nothing of the record matters any more."""
    last = max(record.locked_until, record.failures[-1] if record.failures else -math.inf)
    return now >= last + policy.failure_window


def after_failure(record: Record, now: float, limit: int, policy: Policy) -> Record:
    """The record once a wrong password came at ``now``."""
    if forgotten(record, now, policy):
        record = FRESH
    recent = (*(t for t in record.failures if t > now - policy.failure_window), now)
    record = replace(record, failures=recent, streak=record.streak + 1)
    if len(recent) < limit:
        return record
    lockout = min(
        policy.lockout_seconds * 2.0 ** min(record.lockouts, _MAX_DOUBLINGS),
        policy.max_lockout_seconds,
    )
    return replace(
        record,
        failures=(),
        lockouts=record.lockouts + 1,
        # A check already under way when another began the lockout may add
        # to it; it never shortens it.
        locked_until=max(record.locked_until, now + lockout),
    )


@dataclass(frozen=True, slots=True)
class Verdict:
    """May the password be checked? If not, for how long is it refused."""

    retry_after: float = 0.0
    scope: Scope | None = None

    @property
    def allowed(self) -> bool:
        return self.scope is None


ALLOWED = Verdict()


def decide(address: Record, user: Record, now: float) -> Verdict:
    """The one rule: an attempt is refused while its address or its user
    name is locked out, for the longer remaining time of the two."""
    by_address = remaining(address, now)
    by_user = remaining(user, now)
    if by_address == 0 and by_user == 0:
        return ALLOWED
    if by_address >= by_user:
        return Verdict(by_address, "address")
    return Verdict(by_user, "user")


@dataclass(frozen=True, slots=True)
class Lockout:
    """A lockout that has just begun (for the log)."""

    scope: Scope
    key: str
    failures: int
    seconds: float


def address_key(remote: str | None) -> str:
    """Whose failures an address counts as: IPv6 by /64, IPv4 as is."""
    if not remote:
        return "unknown"
    try:
        ip = ipaddress.ip_address(remote.split("%", 1)[0])
    except ValueError:
        return remote
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        return str(ipaddress.IPv6Network((ip, 64), strict=False))
    return str(ip)


def _short(key: str) -> str:
    """A key of bounded size: a header can carry a name of kilobytes."""
    if len(key) <= 64:
        return key
    return "#" + hashlib.blake2b(key.encode("utf-8", "surrogatepass"), digest_size=16).hexdigest()


class FailureBook:
    """The records of every address and user name, bounded, read with the
    given clock; each answer comes from the pure functions above."""

    def __init__(
        self,
        policy: Policy,
        clock: Callable[[], float],
        *,
        known_users: Iterable[str] = (),
        max_entries: int = MAX_TRACKED,
    ) -> None:
        self.policy = policy
        self._clock = clock
        self._known = frozenset(known_users)
        self._users: dict[str, Record] = {}
        # ("address", key) or ("user", unknown name), least recently failed first.
        self._others: OrderedDict[tuple[Scope, str], Record] = OrderedDict()
        self._max_entries = max_entries

    def __len__(self) -> int:
        return len(self._users) + len(self._others)

    def _record(self, scope: Scope, key: str) -> Record:
        if scope == "user" and key in self._known:
            return self._users.get(key, FRESH)
        return self._others.get((scope, _short(key)), FRESH)

    def _store(self, scope: Scope, key: str, record: Record) -> None:
        if scope == "user" and key in self._known:
            self._users[key] = record
            return
        self._others[(scope, _short(key))] = record
        self._others.move_to_end((scope, _short(key)))
        while len(self._others) > self._max_entries:
            self._others.popitem(last=False)

    def decide(self, address: str, user: str) -> Verdict:
        now = self._clock()
        return decide(self._record("address", address), self._record("user", user), now)

    def strikes(self, address: str, user: str | None = None) -> int:
        """Wrong passwords in the current streaks of ``address`` (and of the
        name ``user``)."""
        now = self._clock()
        records = [self._record("address", address)]
        if user is not None:
            records.append(self._record("user", user))
        return sum(0 if forgotten(r, now, self.policy) else r.streak for r in records)

    def failed(self, address: str, user: str) -> list[Lockout]:
        """Count a wrong password; the lockouts it began."""
        now = self._clock()
        begun: list[Lockout] = []
        scopes: tuple[tuple[Scope, str], ...] = (("address", address), ("user", user))
        for scope, key in scopes:
            before = self._record(scope, key)
            after = after_failure(before, now, self.policy.limit(scope), self.policy)
            self._store(scope, key, after)
            if after.locked_until > max(before.locked_until, now):
                seconds = after.locked_until - now
                begun.append(Lockout(scope, key, after.streak, seconds))
        return begun

    def succeeded(self, user: str) -> None:
        """A right password for ``user``: its streak is over."""
        self._users.pop(user, None)
        self._others.pop(("user", _short(user)), None)
