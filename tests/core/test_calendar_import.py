"""The import's own rules (gateway.core.calendar_import), as tables."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from gateway.core.calendar_import import (
    ImportOutcome,
    ImportPiece,
    ImportReport,
    ImportStatus,
    counts_line,
    describe,
    import_href,
    outcome_of,
)
from gateway.core.errors import (
    BookingConflict,
    ExpansionLimit,
    GatewayError,
    ImportedObject,
    InvalidCalendarData,
    NotFound,
    RecurrenceLimit,
    UidConflict,
)
from gateway.core.model import TimeSpan

PIECE = ImportPiece("u@x", 12, "BEGIN:VCALENDAR...")
NINE = TimeSpan(datetime(2026, 1, 5, 9, tzinfo=UTC), datetime(2026, 1, 5, 10, tzinfo=UTC))


@pytest.mark.parametrize(
    ("uid", "href"),
    [
        ("abc-123@example.com", "abc-123@example.com.ics"),
        ("A.b_c~d+e=f", "A.b_c~d+e=f.ics"),
        # Not a clean path segment: named by the hash, the same every run.
        ("a/b", "c14cddc033f64b9dea80ea675cf280a015e67251.ics"),
        ("with space", None),
        ("040000008200E00074C5B7101A82E008" * 8, None),  # longer than 200
        ("zoë", None),
    ],
)
def test_import_names(uid: str, href: str | None) -> None:
    name = import_href(uid)
    if href is not None:
        assert name == href
    else:
        assert name != f"{uid}.ics"
        assert len(name) == 44 and name.endswith(".ics")
    assert import_href(uid) == name  # deterministic: a second run finds it
    assert import_href(uid, taken=True) != f"{uid}.ics"


@pytest.mark.parametrize(
    ("error", "status", "words"),
    [
        (
            BookingConflict("anna", [NINE]),
            ImportStatus.DOUBLE_BOOKING,
            "overlaps busy time of 'anna' at 2026-01-05T09:00:00Z/2026-01-05T10:00:00Z",
        ),
        (
            InvalidCalendarData("supported-calendar-component", "VTODO components cannot"),
            ImportStatus.INVALID,
            "supported-calendar-component: VTODO components cannot",
        ),
        (
            RecurrenceLimit("max-instances", "more than 10000"),
            ImportStatus.INVALID,
            "max-instances: more than 10000",
        ),
        (ExpansionLimit("u@x", "too long to expand"), ImportStatus.INVALID, "too long"),
        (UidConflict("u@x", "a.ics"), ImportStatus.UID_CONFLICT, "already used"),
        (ImportedObject("g.ics"), ImportStatus.UID_CONFLICT, "imported from Google"),
    ],
)
def test_what_each_refusal_means_in_the_report(
    error: GatewayError, status: ImportStatus, words: str
) -> None:
    outcome = outcome_of(PIECE, error)
    assert outcome is not None
    assert (outcome.uid, outcome.line, outcome.status) == ("u@x", 12, status)
    assert words in outcome.message
    assert outcome.conflicts == ((NINE,) if status is ImportStatus.DOUBLE_BOOKING else ())
    assert status.refused


def test_an_error_that_is_no_verdict_on_the_object_is_not_reported_as_one() -> None:
    assert outcome_of(PIECE, NotFound("resource", "x")) is None


def test_many_conflicts_are_shown_five_and_counted() -> None:
    spans = [TimeSpan(NINE.start.replace(day=d), NINE.end.replace(day=d)) for d in range(1, 9)]
    outcome = outcome_of(PIECE, BookingConflict("anna", spans))
    assert outcome is not None
    assert outcome.message.endswith("2026-01-05T10:00:00Z and 3 more")
    assert len(outcome.conflicts) == 8


def test_counts_name_every_status_and_the_line_only_those_found() -> None:
    report = ImportReport(
        "anna",
        False,
        (
            ImportOutcome("a", 1, ImportStatus.STORED),
            ImportOutcome("b", 5, ImportStatus.STORED),
            ImportOutcome("c", 9, ImportStatus.DOUBLE_BOOKING, "overlaps"),
        ),
    )
    assert report.counts() == {
        "stored": 2,
        "updated": 0,
        "unchanged": 0,
        "double-booking": 1,
        "invalid": 0,
        "uid-conflict": 0,
    }
    assert report.refused == 1
    assert counts_line(report.counts()) == "2 stored, 1 double-booking"
    assert counts_line(ImportReport("anna", True, ()).counts()) == "nothing"
    assert describe(report.outcomes[2]) == "double-booking line 9 c: overlaps"
    assert not ImportStatus.UNCHANGED.refused and not ImportStatus.UPDATED.refused
