"""Calendar objects that once stalled the server (issue 12 item 1), and
objects as an older version stored them, before the ``limits`` existed.

Shared by the tests (small counts) and bench/attacks/recurrence.py (the
full-size figures of the issue).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from gateway.core.model import FAR_FUTURE, Booking, CalendarObject, TimeSpan
from gateway.core.ports import MirrorRepository


def vcalendar(*components: str) -> str:
    lines = ["BEGIN:VCALENDAR", "VERSION:2.0", "PRODID:-//test//recurrence//EN"]
    for component in components:
        lines.extend(component.strip().splitlines())
    lines.append("END:VCALENDAR")
    return "\r\n".join(lines) + "\r\n"


def vevent(uid: str, *props: str) -> str:
    return "\n".join(
        ["BEGIN:VEVENT", f"UID:{uid}", "DTSTAMP:20260101T000000Z", *props, "END:VEVENT"]
    )


def series(uid: str, rule: str, start: str = "20260105T090000Z", minutes: int = 30) -> str:
    """One recurring event: ``rule`` is the RRULE value."""
    first = datetime.strptime(start, "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)
    end = (first + timedelta(minutes=minutes)).strftime("%Y%m%dT%H%M%SZ")
    return vcalendar(
        vevent(uid, f"DTSTART:{start}", f"DTEND:{end}", "SUMMARY:series", f"RRULE:{rule}")
    )


def secondly(uid: str = "secondly@attack", start: str = "20260105T090000Z") -> str:
    return series(uid, "FREQ=SECONDLY", start, minutes=1)


def minutely_since_2000(uid: str = "minutely@attack") -> str:
    return series(uid, "FREQ=MINUTELY", "20000101T000000Z", minutes=1)


def secondly_zone(uid: str = "zone@attack") -> str:
    """A daily event in a zone whose STANDARD/DAYLIGHT rules fire every second."""
    zone = "\n".join(
        [
            "BEGIN:VTIMEZONE",
            "TZID:Attack/Secondly",
            "BEGIN:STANDARD",
            "DTSTART:19700101T000000",
            "TZOFFSETFROM:+0100",
            "TZOFFSETTO:+0000",
            "RRULE:FREQ=SECONDLY",
            "END:STANDARD",
            "BEGIN:DAYLIGHT",
            "DTSTART:19700101T000000",
            "TZOFFSETFROM:+0000",
            "TZOFFSETTO:+0100",
            "RRULE:FREQ=SECONDLY;INTERVAL=2",
            "END:DAYLIGHT",
            "END:VTIMEZONE",
        ]
    )
    return vcalendar(
        zone,
        vevent(
            uid,
            "DTSTART;TZID=Attack/Secondly:20260105T090000",
            "DTEND;TZID=Attack/Secondly:20260105T100000",
            "RRULE:FREQ=DAILY;COUNT=3",
        ),
    )


def overridden(count: int, uid: str = "overrides@attack") -> str:
    """A daily series with ``count`` overridden instances (each moved by 30 min)."""
    first = datetime(2026, 1, 5, 9, tzinfo=UTC)
    stamp = "%Y%m%dT%H%M%SZ"
    components = [
        vevent(
            uid,
            f"DTSTART:{first.strftime(stamp)}",
            f"DTEND:{(first + timedelta(hours=1)).strftime(stamp)}",
            "RRULE:FREQ=DAILY",
        )
    ]
    for day in range(count):
        was = first + timedelta(days=day)
        moved = was + timedelta(minutes=30)
        components.append(
            vevent(
                uid,
                f"RECURRENCE-ID:{was.strftime(stamp)}",
                f"DTSTART:{moved.strftime(stamp)}",
                f"DTEND:{(moved + timedelta(hours=1)).strftime(stamp)}",
            )
        )
    return vcalendar(*components)


def legacy_object(
    ics: str,
    *,
    uid: str,
    start: datetime,
    end: datetime,
    resource_id: str = "anna",
    timezone: str = "UTC",
    href: str | None = None,
) -> CalendarObject:
    """A recurring object as a version without the limits stored it: the
    text as sent, its first occurrence, an index span to FAR_FUTURE."""
    booking = Booking(
        id=f"legacy-{uid}",
        resource_id=resource_id,
        uid=uid,
        title="series",
        start=start,
        end=end,
        timezone=timezone,
        created=datetime(2026, 1, 1, tzinfo=UTC),
        updated=datetime(2026, 1, 1, tzinfo=UTC),
        recurring=True,
    )
    return CalendarObject(
        booking=booking, ics=ics, span=TimeSpan(start, FAR_FUTURE), href=href or f"{uid}.ics"
    )


def secondly_2090(uid: str = "secondly-2090@attack") -> CalendarObject:
    """The issue's case: a SECONDLY series starting in 2090, stored directly
    (the old PUT check looked only two years ahead)."""
    start = datetime(2090, 1, 1, 9, tzinfo=UTC)
    return legacy_object(
        secondly(uid, "20900101T090000Z"), uid=uid, start=start, end=start + timedelta(minutes=1)
    )


async def store_legacy(repo: MirrorRepository, obj: CalendarObject) -> None:
    """Write ``obj`` straight into the store, past every check of the service."""
    async with repo.transaction() as tx:
        await tx.save(obj)
