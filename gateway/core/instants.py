"""Which instants the booking API accepts.

Python's datetime stops at years 1 and 9999: a time near either end, once
shifted to another zone or moved by a duration (``astimezone``, a window's
default end, an index span), raises ``OverflowError``. A booking business
has no use for such dates, so the API takes instants from 1900 up to (not
including) 2200, far from both ends; anything outside is a 4xx naming the
field, before any arithmetic can overflow. (The same range keeps busy blocks
imported from Google sane.)

Only the range is decided here; parsing ISO 8601 is the caller's.
"""

from __future__ import annotations

from datetime import UTC, datetime

EARLIEST = datetime(1900, 1, 1, tzinfo=UTC)
LATEST = datetime(2200, 1, 1, tzinfo=UTC)  # exclusive


def instant_problem(value: datetime) -> str | None:
    """Why the aware ``value`` is refused, or None when it is in range.
    Naive values are the caller's to refuse (their meaning is unknown)."""
    offset = value.utcoffset()
    if offset is None:
        return None
    # Compared as naive UTC wall times: converting ``value`` itself could
    # overflow, which is what this check exists to prevent.
    try:
        utc = value.replace(tzinfo=None) - offset
    except OverflowError:
        utc = None
    if utc is None or not EARLIEST.replace(tzinfo=None) <= utc < LATEST.replace(tzinfo=None):
        return f"must lie between {EARLIEST.year} and {LATEST.year - 1} (got {value.isoformat()})"
    return None
