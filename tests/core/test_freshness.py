"""The fresh look at Google before a booking (``gateway.core.freshness``),
as tables: when a booking must wait for a sync, which CalDAV PUTs claim new
time, and what a failed look means under each policy."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from gateway.core.errors import BusyTimeUnverified
from gateway.core.freshness import (
    FAILED_RETRY_AFTER,
    FreshnessGuard,
    FreshnessRules,
    Look,
    LookOutcome,
    Verdict,
    WhenStale,
    after_look,
    claims_new_time,
    look_needed,
    retry_after,
)
from gateway.core.mirror import (
    Connection,
    ConnectionStatus,
    Direction,
    LogKind,
    MirrorPolicy,
    WarningReason,
)
from gateway.core.model import BookingStatus, CalendarObject, ParsedObject, TimeSpan

NOW = datetime(2026, 12, 1, 9, tzinfo=UTC)
FRESHNESS = timedelta(seconds=30)
S = timedelta(seconds=1)


def connection(
    age: timedelta | None, status: ConnectionStatus = ConnectionStatus.SYNCED
) -> Connection:
    return Connection(
        "anna",
        status,
        calendar_id="anna@example.com",
        last_sync_at=None if age is None else NOW - age,
    )


@pytest.mark.parametrize(
    ("age", "needed"),
    [
        (timedelta(0), False),
        (29.9 * S, False),
        (30 * S, False),  # "older than" the freshness: exactly 30 s is still fresh
        (30.001 * S, True),
        (timedelta(minutes=5), True),
        (None, True),  # never synced (the first import still running)
        (-5 * S, True),  # last sync "in the future": the clock was set back
    ],
)
def test_a_look_is_needed_when_the_busy_time_is_older_than_the_freshness(
    age: timedelta | None, needed: bool
) -> None:
    assert look_needed(pulls=True, connection=connection(age), now=NOW, max_age=FRESHNESS) is needed


@pytest.mark.parametrize(
    ("pulls", "conn", "max_age"),
    [
        (False, connection(timedelta(hours=1)), FRESHNESS),  # to_google / off: nothing imported
        (True, None, FRESHNESS),  # never connected
        (True, connection(timedelta(hours=1), ConnectionStatus.DISABLED), FRESHNESS),
        (True, connection(timedelta(hours=1), ConnectionStatus.INVITED), FRESHNESS),
        (True, connection(timedelta(hours=1)), timedelta(0)),  # freshness_seconds: 0
    ],
)
def test_no_look_without_imported_busy_time_or_with_the_check_off(
    pulls: bool, conn: Connection | None, max_age: timedelta
) -> None:
    assert look_needed(pulls=pulls, connection=conn, now=NOW, max_age=max_age) is False


def test_a_connection_with_a_warning_still_needs_the_look() -> None:
    """Reconnect needed or quota: the busy time ages all the same, and the
    failed look is what lets the policy decide."""
    stuck = replace(
        connection(timedelta(hours=2), ConnectionStatus.WARNING), warning=WarningReason.RECONNECT
    )
    assert look_needed(pulls=True, connection=stuck, now=NOW, max_age=FRESHNESS)


@pytest.mark.parametrize(
    ("outcome", "when_stale", "verdict"),
    [
        (LookOutcome.SYNCED, WhenStale.ACCEPT, Verdict.GO),
        (LookOutcome.SYNCED, WhenStale.REFUSE, Verdict.GO),
        (LookOutcome.TIMED_OUT, WhenStale.ACCEPT, Verdict.GO_AT_RISK),
        (LookOutcome.TIMED_OUT, WhenStale.REFUSE, Verdict.REFUSE),
        (LookOutcome.FAILED, WhenStale.ACCEPT, Verdict.GO_AT_RISK),
        (LookOutcome.FAILED, WhenStale.REFUSE, Verdict.REFUSE),
    ],
)
def test_what_a_look_means_for_the_booking(
    outcome: LookOutcome, when_stale: WhenStale, verdict: Verdict
) -> None:
    assert after_look(outcome, when_stale) is verdict


@pytest.mark.parametrize(
    ("outcome", "deadline", "seconds"),
    [
        (LookOutcome.TIMED_OUT, timedelta(seconds=2), 3),
        (LookOutcome.TIMED_OUT, timedelta(seconds=0.5), 2),
        (LookOutcome.FAILED, timedelta(seconds=2), FAILED_RETRY_AFTER),
    ],
)
def test_retry_after(outcome: LookOutcome, deadline: timedelta, seconds: int) -> None:
    assert retry_after(outcome, deadline) == seconds


# -- which CalDAV PUTs claim new time -------------------------------------------

H = timedelta(hours=1)
SPAN = TimeSpan(NOW, NOW + H)


def parsed(span: TimeSpan = SPAN, **changes: object) -> ParsedObject:
    base = ParsedObject(
        uid="u@example.com",
        component="VEVENT",
        title="Haircut",
        start=span.start,
        end=span.end,
        timezone="UTC",
        span=span,
    )
    return replace(base, **changes)  # type: ignore[arg-type]


def stored(p: ParsedObject, ics: str = "OLD") -> CalendarObject:
    booking = p.booking(id="b1", resource_id="anna", created=NOW, updated=NOW)
    return CalendarObject(booking=booking, ics=ics, span=p.span, href="u.ics")


MOVED = TimeSpan(NOW + H, NOW + 2 * H)


@pytest.mark.parametrize(
    ("new", "previous", "ics", "claims"),
    [
        (parsed(), None, "NEW", True),  # a new object
        (parsed(transparent=True), None, "NEW", False),  # free time blocks nothing
        (parsed(status=BookingStatus.CANCELLED), None, "NEW", False),
        (parsed(MOVED), stored(parsed()), "NEW", True),  # moved
        (parsed(title="Colour"), stored(parsed()), "NEW", False),  # renamed only
        (parsed(), stored(parsed()), "OLD", False),  # the same PUT again
        (parsed(), stored(parsed(transparent=True)), "NEW", True),  # free -> busy
        (parsed(recurring=True), stored(parsed(recurring=True)), "NEW", True),  # new RRULE
        (parsed(recurring=True), stored(parsed()), "NEW", True),
    ],
)
def test_which_puts_claim_new_time(
    new: ParsedObject, previous: CalendarObject | None, ics: str, claims: bool
) -> None:
    assert claims_new_time(new, previous, ics) is claims


# -- the guard, over a stub of the port ---------------------------------------------


class StubSource:
    def __init__(self, look: Look) -> None:
        self.look = look
        self.calls: list[str] = []

    async def refresh(self, resource_id: str, *, max_age: timedelta, deadline: timedelta) -> Look:
        self.calls.append(resource_id)
        return self.look


class Reads:
    def __init__(self, conn: Connection | None) -> None:
        self.conn = conn

    async def get_connection(self, resource_id: str) -> Connection | None:
        return self.conn


def guard(
    source: StubSource, age: timedelta | None, when_stale: WhenStale, direction: Direction
) -> FreshnessGuard:
    rules = FreshnessRules(FRESHNESS, timedelta(seconds=2), {"anna": when_stale})
    return FreshnessGuard(
        Reads(connection(age)),  # type: ignore[arg-type]
        source,
        rules,
        lambda _: MirrorPolicy(direction),
        lambda: NOW,
    )


async def test_guard_accepts_at_risk_with_the_age_and_reason() -> None:
    source = StubSource(Look(LookOutcome.TIMED_OUT, "Google did not answer within 2 s"))
    risk = await guard(source, 47 * S, WhenStale.ACCEPT, Direction.TWO_WAY).ensure("anna")
    assert source.calls == ["anna"]
    assert risk is not None
    entry = risk.log_entry("b1", NOW)
    assert entry.kind is LogKind.WARNING and entry.booking_id == "b1"
    assert "47 s old" in entry.message and "within 2 s" in entry.message


async def test_guard_refuses_under_the_refuse_policy() -> None:
    source = StubSource(Look(LookOutcome.FAILED, "Google could not be reached"))
    with pytest.raises(BusyTimeUnverified) as refused:
        await guard(source, None, WhenStale.REFUSE, Direction.FROM_GOOGLE).ensure("anna")
    assert refused.value.retry_after == FAILED_RETRY_AFTER
    assert "never synced" in refused.value.message


@pytest.mark.parametrize(
    ("age", "direction", "calls"),
    [
        (5 * S, Direction.TWO_WAY, 0),  # fresh
        (timedelta(hours=1), Direction.TO_GOOGLE, 0),  # imports nothing
        (timedelta(hours=1), Direction.OFF, 0),
        (timedelta(hours=1), Direction.FROM_GOOGLE, 1),
    ],
)
async def test_guard_looks_only_when_needed(
    age: timedelta, direction: Direction, calls: int
) -> None:
    source = StubSource(Look(LookOutcome.SYNCED))
    assert await guard(source, age, WhenStale.REFUSE, direction).ensure("anna") is None
    assert len(source.calls) == calls
