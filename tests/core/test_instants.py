"""The API's range of instants (gateway.core.instants): a table of edges, and
for any aware datetime, an accepted one can be shifted without overflow."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gateway.core.instants import instant_problem

PLUS_14 = timezone(timedelta(hours=14))
MINUS_14 = timezone(timedelta(hours=-14))


@pytest.mark.parametrize(
    ("value", "accepted"),
    [
        (datetime(2026, 12, 1, 9, tzinfo=UTC), True),
        (datetime(1900, 1, 1, tzinfo=UTC), True),
        (datetime(1899, 12, 31, 23, 59, tzinfo=UTC), False),
        (datetime(1900, 1, 1, 13, 59, tzinfo=PLUS_14), False),  # 1899 in UTC
        (datetime(2199, 12, 31, 23, 59, tzinfo=UTC), True),
        (datetime(2200, 1, 1, tzinfo=UTC), False),
        (datetime(2199, 12, 31, 10, tzinfo=MINUS_14), False),  # 2200 in UTC
        (datetime(1, 1, 1, tzinfo=PLUS_14), False),  # before year 1 in UTC
        (datetime(9999, 12, 31, 23, tzinfo=MINUS_14), False),  # after 9999 in UTC
        (datetime(2026, 12, 1, 9), True),  # naive: the caller's to refuse
    ],
)
def test_range(value: datetime, accepted: bool) -> None:
    assert (instant_problem(value) is None) is accepted


def test_the_problem_says_the_range_and_the_value() -> None:
    assert instant_problem(datetime(9999, 12, 31, 22, tzinfo=MINUS_14)) == (
        "must lie between 1900 and 2199 (got 9999-12-31T22:00:00-14:00)"
    )


@given(st.datetimes(timezones=st.sampled_from([UTC, PLUS_14, MINUS_14, timezone(timedelta(0))])))
def test_an_accepted_instant_can_be_shifted(value: datetime) -> None:
    if instant_problem(value) is None:
        for zone in (PLUS_14, MINUS_14):
            shifted = value.astimezone(zone) + timedelta(days=400)
            assert shifted - timedelta(days=800) < value
