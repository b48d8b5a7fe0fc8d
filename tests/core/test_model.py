"""Pure logic of the domain values."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone

import pytest

from gateway.core.mirror import Direction, pushes_booking
from gateway.core.model import (
    Booking,
    BookingDraft,
    CalendarObject,
    TimeSpan,
    etag_for,
    merge_spans,
)

T0 = datetime(2026, 12, 1, 9, tzinfo=UTC)
H = timedelta(hours=1)


def span(a: float, b: float) -> TimeSpan:
    return TimeSpan(T0 + a * H, T0 + b * H)


def test_half_open_spans_touching_do_not_overlap() -> None:
    assert not span(0, 1).overlaps(span(1, 2))
    assert span(0, 1).overlaps(span(0.5, 2))
    assert span(0, 3).overlaps(span(1, 2))


@pytest.mark.parametrize(
    ("event", "window", "meets"),
    [
        # RFC 4791 9.9, the DTEND and DURATION > 0 rows: start < end AND end > start.
        ((0, 1), (0.5, 2), True),
        ((0, 1), (1, 2), False),
        ((0, 1), (-1, 0), False),
        # The instant rows: start <= DTSTART AND end > DTSTART.
        ((1, 1), (1, 2), True),
        ((1, 1), (0, 1), False),
        ((1, 1), (0, 2), True),
        ((1, 1), (1, 1), False),  # a range of no length holds nothing
    ],
)
def test_meets_is_the_time_range_rule(
    event: tuple[float, float], window: tuple[float, float], meets: bool
) -> None:
    assert span(*event).meets(span(*window)) is meets


def test_span_refuses_naive_and_reversed_times() -> None:
    with pytest.raises(ValueError, match="aware"):
        TimeSpan(datetime(2026, 1, 1), datetime(2026, 1, 2))
    with pytest.raises(ValueError, match="before"):
        span(2, 1)


def test_merge_joins_overlapping_and_touching_spans_across_zones() -> None:
    plus_one = timezone(timedelta(hours=1))
    shifted = TimeSpan((T0 + H).astimezone(plus_one), (T0 + 2 * H).astimezone(plus_one))
    merged = merge_spans([span(5, 6), span(0, 1), shifted, span(1.5, 3), span(5.5, 5.75)])
    assert merged == [span(0, 3), span(5, 6)]
    assert all(s.start.tzinfo is UTC for s in merged)


def test_fingerprint_ignores_how_an_instant_is_written() -> None:
    plus_one = timezone(timedelta(hours=1))
    a = BookingDraft("anna", "Cut", T0, T0 + H)
    b = BookingDraft("anna", "Cut", T0.astimezone(plus_one), (T0 + H).astimezone(plus_one))
    assert a.fingerprint() == b.fingerprint()
    assert a.fingerprint() != BookingDraft("anna", "Cut", T0, T0 + 2 * H).fingerprint()


@pytest.mark.parametrize(
    ("direction", "in_google", "pushed"),
    [
        (Direction.TWO_WAY, False, True),
        (Direction.TO_GOOGLE, False, True),
        (Direction.FROM_GOOGLE, False, False),
        (Direction.OFF, False, False),
        # Written to Google before the direction changed: it follows its booking.
        (Direction.FROM_GOOGLE, True, True),
        (Direction.OFF, True, True),
        (Direction.TWO_WAY, True, True),
    ],
)
def test_which_booking_changes_are_written_to_google(
    direction: Direction, in_google: bool, pushed: bool
) -> None:
    assert pushes_booking(direction, in_google) is pushed


def _object(ics: str) -> CalendarObject:
    booking = Booking("b1", "anna", "u1", "Cut", T0, T0 + timedelta(hours=1), "UTC", T0, T0)
    return CalendarObject(booking, ics, TimeSpan(T0, T0 + timedelta(hours=1)), "u1.ics", "tag")


def test_the_etag_is_the_texts_however_often_it_is_read_and_after_replace() -> None:
    obj = _object("BEGIN:VCALENDAR\r\nEND:VCALENDAR\r\n")
    assert obj.etag == etag_for(obj.ics)
    assert obj.etag == etag_for(obj.ics)  # the kept one
    changed = replace(obj, ics="BEGIN:VCALENDAR\r\nX-A:1\r\nEND:VCALENDAR\r\n")
    assert changed.etag == etag_for(changed.ics) != obj.etag
    # Not a value of its own: equal objects, read or not, are equal and hash alike.
    fresh = _object(obj.ics)
    assert fresh == obj and hash(fresh) == hash(obj)
    assert "_etag" not in repr(obj)


def test_a_stored_object_is_the_object_with_the_etag_its_store_wrote() -> None:
    obj = _object("BEGIN:VCALENDAR\r\nEND:VCALENDAR\r\n")
    stored = CalendarObject.stored(obj.booking, obj.ics, obj.span, obj.href, "tag", obj.etag)
    assert stored == obj and stored.etag == obj.etag
    # An empty schedule tag is the ETag's, as for any new object.
    untagged = CalendarObject.stored(obj.booking, obj.ics, obj.span, obj.href, "", obj.etag)
    assert untagged.schedule_tag == obj.etag
