"""A fresh look at Google before a booking is accepted.

Busy time imported from Google is as old as the last sync of the calendar:
push notifications get lost, polls are minutes apart, so an event made in
Google a moment ago may not be a busy block yet, and the slot would be sold
twice. Before a booking claims time on a resource that imports from Google
(``from_google``, ``two_way``), and when the last successful sync of its
calendar is older than ``google.freshness_seconds``, the calendar is synced
first (within ``google.freshness_deadline``), and only then is the booking
checked for double bookings as usual.

This module decides, on plain values: whether a change needs the look
(``look_needed``, ``claims_new_time``) and what a failed look means for the
booking (``after_look``, per resource ``when_stale``: accept and log the
risk, or refuse with 503 and Retry-After). ``FreshnessGuard`` runs the
decision around the port ``BusyTimeFreshness``, which ``google_bridge``
implements with its sync worker (one sync per calendar in flight, shared by
concurrent bookings). It does not sync, does not know Google, and writes
nothing: ``BookingService`` logs the accepted risk in the booking's own
transaction.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Protocol

from .errors import BusyTimeUnverified
from .mirror import Connection, LogKind, MirrorPolicy, SyncLogEntry
from .model import BookingStatus, CalendarObject, ParsedObject
from .ports import MirrorReads

log = logging.getLogger("calgateway.google")

# Retry-After after a failed look (Google unavailable, quota, reconnect
# needed): the sync worker tries again at its next round, not at once.
FAILED_RETRY_AFTER = 30


class WhenStale(StrEnum):
    """What a booking does when Google cannot be reached in time."""

    ACCEPT = "accept"  # go ahead; a WARNING log line and a sync-log entry say so
    REFUSE = "refuse"  # 503 with Retry-After; nothing is written


class LookOutcome(StrEnum):
    SYNCED = "synced"  # a sync finished (just now, or within the freshness)
    TIMED_OUT = "timed_out"  # the deadline passed first (the sync goes on)
    FAILED = "failed"  # Google unavailable, quota, reconnect needed, ...


class Verdict(StrEnum):
    GO = "go"  # the busy time is fresh: decide the booking as usual
    GO_AT_RISK = "go_at_risk"  # decide it on the busy time there is, and say so
    REFUSE = "refuse"  # refuse it, nothing written


@dataclass(frozen=True, slots=True)
class Look:
    """What a fresh look at Google gave; ``reason`` says why it failed, for people."""

    outcome: LookOutcome
    reason: str = ""


class BusyTimeFreshness(Protocol):
    """Brings the busy time a resource imports from Google up to date."""

    async def refresh(self, resource_id: str, *, max_age: timedelta, deadline: timedelta) -> Look:
        """Sync the resource's calendar unless a sync finished within
        ``max_age``; give up waiting after ``deadline`` (TIMED_OUT). Never
        raises for Google's failures: they are a FAILED look."""
        ...


@dataclass(frozen=True, slots=True)
class FreshnessRules:
    """The settings: ``max_age`` zero means never look."""

    max_age: timedelta
    deadline: timedelta
    when_stale: Mapping[str, WhenStale] = field(default_factory=dict)
    default: WhenStale = WhenStale.ACCEPT

    def policy(self, resource_id: str) -> WhenStale:
        return self.when_stale.get(resource_id, self.default)


def busy_time_age(connection: Connection | None, now: datetime) -> timedelta | None:
    """How old the imported busy time is: since the last successful sync
    (None: never synced)."""
    if connection is None or connection.last_sync_at is None:
        return None
    return now - connection.last_sync_at


def look_needed(
    *, pulls: bool, connection: Connection | None, now: datetime, max_age: timedelta
) -> bool:
    """Whether a booking must wait for a fresh look at Google: the resource
    imports from Google, its calendar is connected, and the last successful
    sync is older than ``max_age`` (or never happened, or lies in the future:
    a clock set back must not make old busy time look fresh)."""
    if max_age <= timedelta(0) or not pulls or connection is None or not connection.connected:
        return False
    age = busy_time_age(connection, now)
    return age is None or age < timedelta(0) or age > max_age


def claims_new_time(parsed: ParsedObject, previous: CalendarObject | None, ics: str) -> bool:
    """Whether a CalDAV PUT may claim time the calendar did not hold before
    (a new object, or one moved): only those are checked for double
    bookings, so only those need the look. An edit of a single event's
    title does not; any change of a recurring one may (a new RRULE can keep
    the same overall span)."""
    if parsed.transparent or parsed.status is BookingStatus.CANCELLED:
        return False
    if previous is None:
        return True
    if previous.ics == ics:
        return False  # a repeated PUT changes nothing
    return (
        not previous.booking.blocks_time
        or previous.span != parsed.span
        or previous.booking.recurring
        or parsed.recurring
    )


def after_look(outcome: LookOutcome, when_stale: WhenStale) -> Verdict:
    """A booking's fate after the look."""
    if outcome is LookOutcome.SYNCED:
        return Verdict.GO
    return Verdict.GO_AT_RISK if when_stale is WhenStale.ACCEPT else Verdict.REFUSE


def retry_after(outcome: LookOutcome, deadline: timedelta) -> int:
    """Seconds a refused client is asked to wait: after a timeout the sync
    goes on and is likely done by then; after a failure the worker's next
    try is further away."""
    if outcome is LookOutcome.TIMED_OUT:
        return math.ceil(deadline.total_seconds()) + 1
    return FAILED_RETRY_AFTER


def _age_words(age: timedelta | None) -> str:
    if age is None:
        return "never synced"
    return f"{age.total_seconds():.0f} s old"


@dataclass(frozen=True, slots=True)
class StaleRisk:
    """A booking accepted on busy time that could not be brought up to date."""

    resource_id: str
    age: timedelta | None  # of the busy time it was decided on; None: never synced
    reason: str

    def sentence(self) -> str:
        return (
            f"Accepted on busy time from Google that is {_age_words(self.age)}: {self.reason}. "
            "An event made in Google since then may overlap it"
        )

    def log_entry(self, booking_id: str, at: datetime) -> SyncLogEntry:
        return SyncLogEntry(
            self.resource_id, LogKind.WARNING, self.sentence() + ".", at, booking_id=booking_id
        )

    def warn(self, booking_id: str) -> None:
        """The one WARNING line in the process log."""
        log.warning(
            "booking accepted on stale Google busy time",
            extra={
                "resource": self.resource_id,
                "booking": booking_id,
                "busy_time_age_s": None if self.age is None else round(self.age.total_seconds()),
                "reason": self.reason,
            },
        )


class FreshnessGuard:
    """Runs the decision: reads the connection, looks when needed, and
    returns the risk to log (accept) or raises ``BusyTimeUnverified``
    (refuse). Called by ``BookingService`` before its transaction, so that
    nothing is written when the booking is refused and no write lock is held
    while Google is asked."""

    def __init__(
        self,
        reads: MirrorReads,
        source: BusyTimeFreshness,
        rules: FreshnessRules,
        policy: Callable[[str], MirrorPolicy],
        clock: Callable[[], datetime],
    ) -> None:
        self._reads = reads
        self._source = source
        self._rules = rules
        self._policy = policy
        self._clock = clock

    async def ensure(self, resource_id: str) -> StaleRisk | None:
        pulls = self._policy(resource_id).direction.pulls
        if not pulls or self._rules.max_age <= timedelta(0):
            return None  # no read at all for resources that import nothing
        connection = await self._reads.get_connection(resource_id)
        now = self._clock()
        if not look_needed(
            pulls=pulls, connection=connection, now=now, max_age=self._rules.max_age
        ):
            return None
        look = await self._source.refresh(
            resource_id, max_age=self._rules.max_age, deadline=self._rules.deadline
        )
        verdict = after_look(look.outcome, self._rules.policy(resource_id))
        if verdict is Verdict.GO:
            return None
        age = busy_time_age(connection, now)
        if verdict is Verdict.REFUSE:
            raise BusyTimeUnverified(
                resource_id,
                f"the busy time of {resource_id!r} imported from Google is {_age_words(age)} "
                f"and Google could not be asked now ({look.reason}); nothing was saved, "
                "try again shortly",
                retry_after(look.outcome, self._rules.deadline),
            )
        return StaleRisk(resource_id, age, look.reason)
