"""``gateway.ical.walk``: rules restarted near the window give exactly the
instances of the rule walked from DTSTART (Hypothesis against plain
dateutil and plain recurring_ical_events on small windows), the budget ends
every walk, and recurring_ical_events' rules really are the bounded ones."""

from __future__ import annotations

import warnings
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import recurring_ical_events
from dateutil.rrule import (  # type: ignore[import-untyped]
    DAILY,
    HOURLY,
    MINUTELY,
    MONTHLY,
    SECONDLY,
    WEEKLY,
    YEARLY,
    rrule,
    weekday,
)
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from gateway.core.errors import ExpansionLimit
from gateway.core.model import TimeSpan
from gateway.ical.common import _parse_calendar
from gateway.ical.expand import Loaded, event_span
from gateway.ical.limits import RecurrenceLimits
from gateway.ical.walk import BoundedRule, Budget, near
from tests.recurrence import secondly, series

ZONES = [None, UTC, ZoneInfo("Europe/Berlin"), ZoneInfo("America/New_York")]
PERIOD = {
    SECONDLY: timedelta(seconds=1),
    MINUTELY: timedelta(minutes=1),
    HOURLY: timedelta(hours=1),
    DAILY: timedelta(days=1),
    WEEKLY: timedelta(weeks=1),
    MONTHLY: timedelta(days=30),
    YEARLY: timedelta(days=365),
}


@st.composite
def rules(draw: st.DrawFn) -> tuple[rrule, datetime, datetime]:
    """A rule (any FREQ, INTERVAL, BYxxx parts, COUNT or UNTIL, in UTC, a
    zone with DST or floating) and a small window somewhere after its start."""
    freq = draw(st.sampled_from(list(PERIOD)))
    zone = draw(st.sampled_from(ZONES))
    start = draw(st.datetimes(datetime(2020, 1, 1), datetime(2030, 1, 1))).replace(
        microsecond=0, tzinfo=zone
    )
    kwargs: dict[str, Any] = {"dtstart": start, "interval": draw(st.integers(1, 4))}
    small = st.lists(st.integers(0, 59), min_size=1, max_size=3, unique=True)
    if draw(st.booleans()):
        days = draw(st.lists(st.integers(0, 6), min_size=1, max_size=3, unique=True))
        if freq in (MONTHLY, YEARLY) and draw(st.booleans()):
            kwargs["byweekday"] = [weekday(d, draw(st.sampled_from([1, 2, -1]))) for d in days]
        else:
            kwargs["byweekday"] = days
    if freq in (MONTHLY, YEARLY, DAILY) and draw(st.booleans()):
        kwargs["bymonthday"] = draw(st.lists(st.integers(1, 28), min_size=1, max_size=3))
    if freq in (YEARLY, MONTHLY, DAILY) and draw(st.booleans()):
        kwargs["bymonth"] = draw(st.lists(st.integers(1, 12), min_size=1, max_size=4))
    if draw(st.booleans()):
        kwargs["byhour"] = draw(st.lists(st.integers(0, 23), min_size=1, max_size=3))
    if freq != SECONDLY and draw(st.booleans()):
        kwargs["byminute"] = draw(small)
    if freq not in (SECONDLY, MINUTELY) and draw(st.booleans()):
        kwargs["bysecond"] = draw(small)
    if "byweekday" in kwargs and freq in (WEEKLY, MONTHLY) and draw(st.booleans()):
        kwargs["bysetpos"] = [draw(st.sampled_from([1, -1, 2]))]
    period = PERIOD[freq] * kwargs["interval"]
    # At most 60 years from the start, at most 3000 periods.
    most = min(3000, timedelta(days=60 * 365) // period)
    end = draw(st.sampled_from(["none", "count", "until"]))
    if end == "count":
        kwargs["count"] = draw(st.integers(1, 300))
    elif end == "until":
        kwargs["until"] = start + period * draw(st.integers(0, most))
    try:
        rule = rrule(freq, cache=True, **kwargs)
    except ValueError:
        assume(False)
    after = (
        start
        + period * draw(st.integers(-5, most))
        + timedelta(seconds=draw(st.integers(0, 86400)))
    )
    before = after + min(period * draw(st.integers(0, 40)), timedelta(days=400))
    before += timedelta(minutes=draw(st.integers(0, 90)))
    return rule, after, before


@settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(rules())
def test_a_rule_restarted_near_the_window_has_the_same_instances(
    case: tuple[rrule, datetime, datetime],
) -> None:
    rule, after, before = case
    expected = rule.between(after, before, inc=True)
    assert near(rule, after).between(after, before, inc=True) == expected


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    freq=st.sampled_from(["MINUTELY", "HOURLY", "DAILY", "WEEKLY", "MONTHLY", "YEARLY"]),
    interval=st.integers(1, 3),
    extra=st.sampled_from(["", ";BYDAY=MO,WE", ";BYMONTHDAY=1,15", ";COUNT=40", ";BYHOUR=9,17"]),
    tzid=st.sampled_from(["", "Europe/Berlin", "America/New_York"]),
    offset=st.integers(0, 1500),
    length=st.integers(1, 72),
)
def test_bounded_expansion_equals_plain_recurring_ical_events(
    freq: str, interval: int, extra: str, tzid: str, offset: int, length: int
) -> None:
    """The instances ``Loaded`` finds in a window (with its budget and its
    restarted rules) are those plain recurring_ical_events finds."""
    start = "DTSTART:20260105T093000Z" if not tzid else f"DTSTART;TZID={tzid}:20260105T093000"
    text = "\r\n".join(
        [
            "BEGIN:VCALENDAR",
            "VERSION:2.0",
            "PRODID:-//t//t//EN",
            "BEGIN:VEVENT",
            "UID:w@test",
            "DTSTAMP:20260101T000000Z",
            start,
            "DURATION:PT45M",
            f"RRULE:FREQ={freq};INTERVAL={interval}{extra}",
            "EXDATE:20260107T093000Z",
            "END:VEVENT",
            "END:VCALENDAR",
            "",
        ]
    )
    unit = {"MINUTELY": 1 / 60, "HOURLY": 1, "DAILY": 24, "WEEKLY": 168}.get(freq, 720)
    window_start = datetime(2026, 1, 5, tzinfo=UTC) + timedelta(hours=unit * offset)
    window = TimeSpan(window_start, window_start + timedelta(hours=length))
    zone = ZoneInfo("Europe/Berlin")

    def spans(found: Any) -> set[tuple[datetime, datetime]]:
        result = set()
        for component in found:
            span = event_span(component, zone)
            assert span is not None
            if span.overlaps(window):
                result.add((span.start, span.end))
        return result

    loaded = Loaded(_parse_calendar(text), zone)
    with loaded.session("w@test"):
        ours = spans(i.component for i in loaded.instances("VEVENT", window))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        plain = recurring_ical_events.of(_parse_calendar(text)).between(
            window.start - timedelta(days=1), window.end + timedelta(days=1)
        )
    assert ours == spans(plain)


# -- the budget ----------------------------------------------------------------------


def test_recurring_ical_events_walks_the_bounded_rules() -> None:
    """If a new recurring_ical_events moves its rules elsewhere, the bound
    would silently not apply: this fails first."""
    loaded = Loaded(_parse_calendar(secondly()), ZoneInfo("UTC"))
    query = loaded._query("VEVENT")
    rules = [rule for s in query.series for rule in s.recurrence.rrules]
    assert rules
    assert all(isinstance(rule, BoundedRule) for rule in rules)


def test_a_walk_past_the_steps_raises() -> None:
    limits = RecurrenceLimits(max_expansion_steps=5000)
    loaded = Loaded(_parse_calendar(secondly()), ZoneInfo("UTC"), limits)
    day = TimeSpan(datetime(2026, 3, 1, tzinfo=UTC), datetime(2026, 3, 2, tzinfo=UTC))
    with loaded.session("secondly@attack"), pytest.raises(ExpansionLimit, match="5000 steps"):
        list(loaded.instances("VEVENT", day))
    # The next request gets a fresh budget: a short window still answers.
    minute = TimeSpan(day.start, day.start + timedelta(seconds=30))
    with loaded.session("secondly@attack"):
        # One-minute events starting from 23:59:01 to 00:00:29 overlap it.
        assert len(list(loaded.instances("VEVENT", minute))) == 89


def test_a_walk_past_the_seconds_raises() -> None:
    now = [0.0]
    budget = Budget(RecurrenceLimits(expansion_seconds=2.0), "s@test", clock=lambda: now[0])
    budget.check()
    now[0] = 2.5
    with pytest.raises(ExpansionLimit, match="2 seconds"):
        budget.check()


def test_more_instances_than_allowed_raise_instead_of_a_short_answer() -> None:
    limits = RecurrenceLimits(max_instances=20)
    loaded = Loaded(_parse_calendar(series("d@test", "FREQ=DAILY")), ZoneInfo("UTC"), limits)
    month = TimeSpan(datetime(2026, 3, 1, tzinfo=UTC), datetime(2026, 4, 1, tzinfo=UTC))
    with loaded.session("d@test"), pytest.raises(ExpansionLimit, match="more than 20 instances"):
        list(loaded.instances("VEVENT", month))


def test_a_far_window_of_a_secondly_rule_is_cheap() -> None:
    """A SECONDLY rule asked about a minute 60 years after its start walks
    hours, not two billion seconds (dateutil alone never answers)."""
    limits = RecurrenceLimits(max_expansion_steps=20_000)
    loaded = Loaded(_parse_calendar(secondly()), ZoneInfo("UTC"), limits)
    start = datetime(2086, 7, 1, 12, tzinfo=UTC)
    minute = TimeSpan(start, start + timedelta(minutes=1))
    with loaded.session("secondly@attack"):
        found = list(loaded.instances("VEVENT", minute))
    starts = {i.component.decoded("DTSTART") for i in found}
    assert start in starts and start + timedelta(seconds=59) in starts
