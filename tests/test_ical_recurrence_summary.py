"""The series an object describes, read once by the parse
(``Scheduling.recurrence``): equal exactly when the series is the same, so
that "did the recurrence change" (RFC 5546 2.1.4) is one comparison."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from gateway.core.model import BookingStatus, Override, Recurrence
from gateway.ical.parse import parse_object

MASTER = (
    "BEGIN:VEVENT\r\nUID:u\r\nDTSTAMP:20300101T000000Z\r\n"
    "DTSTART;TZID=Europe/Berlin:20301203T090000\r\nDURATION:PT1H\r\n"
    "RRULE:FREQ=WEEKLY;COUNT=5\r\n{extra}END:VEVENT\r\n"
)
OVERRIDE = (
    "BEGIN:VEVENT\r\nUID:u\r\nDTSTAMP:20300101T000000Z\r\n"
    "RECURRENCE-ID;TZID=Europe/Berlin:20301210T090000\r\n"
    "DTSTART;TZID=Europe/Berlin:{start}\r\nDURATION:PT1H\r\n{extra}END:VEVENT\r\n"
)


def series(
    master: str = "", override: str | None = None, start: str = "20301210T090000"
) -> Recurrence:
    text = "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//t//EN\r\n" + MASTER.format(extra=master)
    if override is not None:
        text += OVERRIDE.format(start=start, extra=override)
    text += "END:VCALENDAR\r\n"
    return parse_object(text, "Europe/Berlin").scheduling.recurrence


def test_the_summary_names_rules_exclusions_and_overrides_in_utc() -> None:
    summary = series(
        "EXDATE;TZID=Europe/Berlin:20301217T090000,20301224T090000\r\n",
        "STATUS:CANCELLED\r\n",
        start="20301210T140000",
    )
    assert summary == Recurrence(
        rules=("RRULE:FREQ=WEEKLY;COUNT=5",),
        exdates=frozenset({"2030-12-17T08:00:00+00:00", "2030-12-24T08:00:00+00:00"}),
        overrides=(
            Override(
                "2030-12-10T08:00:00+00:00",
                datetime(2030, 12, 10, 13, tzinfo=UTC),
                datetime(2030, 12, 10, 14, tzinfo=UTC),
                BookingStatus.CANCELLED,
            ),
        ),
    )


def test_a_single_event_has_none() -> None:
    text = (
        "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//t//EN\r\nBEGIN:VEVENT\r\nUID:s\r\n"
        "DTSTAMP:20300101T000000Z\r\nDTSTART:20301203T090000Z\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n"
    )
    assert parse_object(text, "UTC").scheduling.recurrence == Recurrence()


@pytest.mark.parametrize(
    ("before", "after", "same"),
    [
        # The same exclusion written in UTC or in the zone, split or in one line.
        (
            (
                "EXDATE;TZID=Europe/Berlin:20301217T090000\r\nEXDATE;TZID=Europe/Berlin:20301224T090000\r\n",
            ),
            ("EXDATE:20301217T080000Z,20301224T080000Z\r\n",),
            True,
        ),
        (("",), ("EXDATE:20301217T080000Z\r\n",), False),  # one occurrence cancelled
        (("", ""), ("", "STATUS:CANCELLED\r\n"), False),  # one override cancelled
        (("", "", "20301210T090000"), ("", "", "20301210T150000"), False),  # one moved
        (("", "SUMMARY:A\r\n"), ("", "SUMMARY:B\r\n"), True),  # retitled: not the series
    ],
    ids=["same-exdates", "exdate-added", "override-cancelled", "override-moved", "retitled"],
)
def test_equal_exactly_when_the_series_is_the_same(
    before: tuple[str, ...], after: tuple[str, ...], same: bool
) -> None:
    assert (series(*before) == series(*after)) is same
