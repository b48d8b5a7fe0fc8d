"""``gateway.ical.limits``: which recurrence rules a booking calendar takes,
as tables (issue 12 item 1). Each row is a rule and the verdict: None for
accepted, else the RFC 4791 5.3.2.1 precondition and words the message
must hold."""

from __future__ import annotations

import pytest

from gateway.ical.limits import (
    MAX_INSTANCES,
    VALID_DATA,
    RecurrenceLimits,
    RuleFacts,
    judge_instances,
    judge_overrides,
    judge_rule,
    judge_zone_rule,
)

LIMITS = RecurrenceLimits()  # the documented defaults
DAY = 86400.0


def facts(rule: str, until_seconds: float | None = None, where: str = "VEVENT RRULE") -> RuleFacts:
    parts = {}
    for item in rule.split(";"):
        name, _, values = item.partition("=")
        parts[name] = tuple(values.split(","))
    return RuleFacts(where, parts, until_seconds)


EVENT_RULES: list[tuple[str, float | None, tuple[str, str] | None]] = [
    # What booking calendars hold: accepted.
    ("FREQ=WEEKLY;BYDAY=MO,TH", None, None),
    ("FREQ=DAILY", None, None),
    ("FREQ=MONTHLY;BYDAY=2TU;COUNT=24", None, None),
    ("FREQ=YEARLY;COUNT=10000", None, None),
    ("FREQ=DAILY;UNTIL=21000101T000000Z", 74 * 365 * DAY, None),
    # COUNT beyond max_instances, whatever the FREQ.
    ("FREQ=YEARLY;COUNT=10001", None, (MAX_INSTANCES, "limits.max_instances")),
    ("FREQ=DAILY;COUNT=1000000000", None, (MAX_INSTANCES, "1000000000 instances")),
    # Sub-daily without end: never.
    ("FREQ=SECONDLY", None, (MAX_INSTANCES, "more often than daily without end")),
    ("FREQ=MINUTELY;INTERVAL=30", None, (MAX_INSTANCES, "max_sub_daily_occurrences")),
    ("FREQ=HOURLY;BYDAY=MO", None, (MAX_INSTANCES, "COUNT or UNTIL")),
    # Sub-daily bounded by COUNT: up to max_sub_daily_occurrences.
    ("FREQ=HOURLY;COUNT=1000", None, None),
    ("FREQ=HOURLY;COUNT=1001", None, (MAX_INSTANCES, "1001 occurrences")),
    ("FREQ=SECONDLY;COUNT=60", None, None),
    # Sub-daily bounded by UNTIL: every step from DTSTART to UNTIL counts.
    ("FREQ=HOURLY;UNTIL=x", 999 * 3600.0, None),  # 1000 steps
    ("FREQ=HOURLY;UNTIL=x", 1000 * 3600.0, (MAX_INSTANCES, "up to 1001")),
    ("FREQ=HOURLY;INTERVAL=2;UNTIL=x", 1998 * 3600.0, None),
    ("FREQ=MINUTELY;UNTIL=x", 7 * DAY, (MAX_INSTANCES, "up to 10081")),
    # BYSECOND / BYMINUTE multiply each step.
    ("FREQ=HOURLY;BYMINUTE=0,30;UNTIL=x", 499 * 3600.0, None),
    ("FREQ=HOURLY;BYMINUTE=0,30;UNTIL=x", 500 * 3600.0, (MAX_INSTANCES, "up to 1002")),
    ("FREQ=HOURLY;BYMINUTE=0,1,2,3,4,5,6,7,8,9;BYSECOND=0,30;UNTIL=x", 40 * 3600.0, None),
    (
        "FREQ=HOURLY;BYMINUTE=0,1,2,3,4,5,6,7,8,9;BYSECOND=0,30;UNTIL=x",
        50 * DAY,
        (MAX_INSTANCES, ""),
    ),
    # UNTIL before DTSTART: only DTSTART.
    ("FREQ=SECONDLY;UNTIL=x", -DAY, None),
    # Not rules at all.
    ("FREQ=SOMETIMES", None, (VALID_DATA, "no valid FREQ")),
    ("COUNT=3", None, (VALID_DATA, "no valid FREQ")),
    ("FREQ=DAILY;INTERVAL=0", None, (VALID_DATA, "invalid INTERVAL")),
    ("FREQ=DAILY;COUNT=many", None, (VALID_DATA, "invalid COUNT")),
    # Parts RFC 5545 3.3.10 does not name (issue 13 item 2): a typo would
    # silently drop the end or the days of the series.
    ("FREQ=DAILY;UNTL=20260110T000000Z", None, (VALID_DATA, "UNTL=20260110T000000Z")),
    ("FREQ=DAILY;UNTL=20260110T000000Z", None, (VALID_DATA, "did you mean UNTIL?")),
    ("FREQ=WEEKLY;BYDAYS=MO", None, (VALID_DATA, "did you mean BYDAY?")),
    ("FREQ=DAILY;COUNT=3;X-NAME=1", None, (VALID_DATA, "X-NAME=1, which is not an RRULE part")),
    ("RSCALE=GREGORIAN;FREQ=YEARLY;SKIP=FORWARD", None, (VALID_DATA, "RSCALE=GREGORIAN")),
    ("FREQ=DAILY;COUNT=3;WKST=MO", None, None),
    # COUNT and UNTIL "MUST NOT occur in the same recur".
    ("FREQ=DAILY;COUNT=3;UNTIL=x", DAY, (VALID_DATA, "both COUNT and UNTIL")),
]


@pytest.mark.parametrize(("rule", "until", "verdict"), EVENT_RULES)
def test_event_rules(rule: str, until: float | None, verdict: tuple[str, str] | None) -> None:
    refusal = judge_rule(facts(rule, until), LIMITS)
    if verdict is None:
        assert refusal is None
        return
    assert refusal is not None
    assert refusal.precondition == verdict[0]
    assert verdict[1] in refusal.message
    assert "VEVENT RRULE:" in refusal.message  # names the property and the rule


def test_event_rule_limits_come_from_the_settings() -> None:
    strict = RecurrenceLimits(max_instances=10, max_sub_daily_occurrences=0)
    assert judge_rule(facts("FREQ=DAILY;COUNT=11"), strict) is not None
    assert judge_rule(facts("FREQ=HOURLY;COUNT=1"), strict) is not None
    lax = RecurrenceLimits(max_sub_daily_occurrences=100_000)
    assert judge_rule(facts("FREQ=MINUTELY;UNTIL=x", 7 * DAY), lax) is None


ZONE_RULES: list[tuple[str, str | None]] = [
    # What real VTIMEZONEs say (RFC 5545 3.6.5 examples, Outlook, khal).
    ("FREQ=YEARLY;BYMONTH=10;BYDAY=-1SU", None),
    ("FREQ=YEARLY;BYMONTH=3;BYDAY=2SU;UNTIL=20060402T070000Z", None),
    ("FREQ=YEARLY;BYDAY=1SU;BYMONTH=4;COUNT=20", None),
    ("FREQ=YEARLY;BYMINUTE=0;BYHOUR=2;BYDAY=-1SU;BYMONTH=10", None),
    ("FREQ=YEARLY;BYMONTH=4;BYDAY=SU;BYMONTHDAY=8,9,10,11,12,13,14", None),
    ("FREQ=YEARLY;BYMONTH=3;BYMONTHDAY=21", None),
    ("FREQ=YEARLY;BYYEARDAY=80", None),
    ("FREQ=YEARLY", None),
    # What no zone does.
    ("FREQ=SECONDLY", "FREQ=YEARLY"),
    ("FREQ=DAILY;COUNT=2", "FREQ=YEARLY"),
    ("FREQ=MONTHLY;BYDAY=-1SU", "FREQ=YEARLY"),
    ("FREQ=YEARLY;INTERVAL=2;BYMONTH=3;BYDAY=-1SU", "INTERVAL must be 1"),
    ("FREQ=YEARLY;BYDAY=SU", "53 times a year"),
    ("FREQ=YEARLY;BYMONTH=1,2,3,4,5,6,7,8,9,10,11,12;BYDAY=-1SU,1SU", "24 times a year"),
    ("FREQ=YEARLY;BYMONTH=3;BYDAY=-1SU;BYHOUR=1,2", "BYHOUR may name one time only"),
    ("FREQ=YEARLY;BYMONTH=3;BYDAY=-1SU;X-NAME=1", "X-NAME has no place"),
    ("BYMONTH=3", "no valid FREQ"),
]


@pytest.mark.parametrize(("rule", "words"), ZONE_RULES)
def test_zone_rules(rule: str, words: str | None) -> None:
    refusal = judge_zone_rule(facts(rule, where="VTIMEZONE STANDARD RRULE"))
    if words is None:
        assert refusal is None
        return
    assert refusal is not None
    assert refusal.precondition == VALID_DATA
    assert words in refusal.message
    assert refusal.message.startswith("VTIMEZONE STANDARD RRULE:")


@pytest.mark.parametrize(
    ("count", "refused"), [(0, False), (1000, False), (1001, True), (5000, True)]
)
def test_overrides(count: int, refused: bool) -> None:
    refusal = judge_overrides("s@test", count, LIMITS)
    assert (refusal is not None) == refused
    if refusal is not None:
        assert refusal.precondition == MAX_INSTANCES
        assert f"{count} overridden instances" in refusal.message
        assert "limits.max_overrides" in refusal.message


@pytest.mark.parametrize(
    ("count", "words"),
    [
        (10_000, None),
        (10_001, "more than 10000 instances"),
        (None, "more instances than can be counted"),
    ],
)
def test_instances(count: int | None, words: str | None) -> None:
    refusal = judge_instances("s@test", count, LIMITS)
    if words is None:
        assert refusal is None
        return
    assert refusal is not None
    assert refusal.precondition == MAX_INSTANCES
    assert words in refusal.message
