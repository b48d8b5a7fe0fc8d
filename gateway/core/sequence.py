"""Which changes of a scheduled object must raise its SEQUENCE (RFC 5546
2.1.4, RFC 5545 3.8.7.4): the one rule, read by the service when it stores
a CalDAV write it schedules and by ``gateway.core.effects`` when it decides
who hears of a change.

RFC 5546 2.1.4 counts as significant, and so as raising SEQUENCE, a change
of DTSTART, DTEND, DURATION, DUE, RRULE, RDATE, EXDATE or STATUS: the
attendee's earlier answer was about something else. A new title,
description or place is still worth telling (an update with the same
SEQUENCE) but asks nobody again.

Not here: whether the gateway schedules the object at all
(``gateway.core.effects.schedules``) and how the text is rewritten
(``gateway.ical.schedule_status.with_sequence``).
"""

from __future__ import annotations

from .model import Booking


def raises_sequence(before: Booking, after: Booking, *, recurrence_changed: bool) -> bool:
    """Whether going from ``before`` to ``after`` is a significant change:
    the first occurrence's start or end (DTSTART, DTEND, DURATION), the
    recurrence (``recurrence_changed``: the series' ``Scheduling.recurrence``
    differs, its rules, EXDATEs or overridden occurrences; a single event
    becoming a series or back counts too) or STATUS."""
    return (
        (before.start, before.end) != (after.start, after.end)
        or before.status != after.status
        or before.recurring != after.recurring
        or recurrence_changed
    )


def details_changed(before: Booking, after: Booking) -> bool:
    """Whether something an attendee sees changed that raises no SEQUENCE:
    title, description, place, or the zone the times are written in."""

    def seen(b: Booking) -> tuple[object, ...]:
        return (b.title, b.description, b.location, b.timezone)

    return seen(before) != seen(after)


def sequence_after(before: Booking, after: Booking, *, recurrence_changed: bool) -> int:
    """The SEQUENCE the stored object gets when the gateway schedules the
    change: the client's when it raised it above ``before``'s; one more than
    ``before``'s for a significant change it did not raise it for; else
    ``before``'s (a client that lowered it would make its attendees' apps
    ignore the update as outdated, RFC 5546 2.1.5)."""
    if after.sequence > before.sequence:
        return after.sequence
    if raises_sequence(before, after, recurrence_changed=recurrence_changed):
        return before.sequence + 1
    return before.sequence
