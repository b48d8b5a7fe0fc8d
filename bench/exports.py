"""A calendar export as a staff member's old calendar app would write it:
years of one-hour appointments in Europe/Berlin with its VTIMEZONE, long
folded descriptions, alarms, weekly series, transparent all-day entries,
and a few appointments booked twice into the same hour (which an import
must refuse as double bookings).

``calendar_export(n)`` returns the file and the truth about it: which UIDs
a first import stores and which it refuses, with the span each one clashes
with. Used by ``bench.import_calendar`` and by the import tests.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

BERLIN = ZoneInfo("Europe/Berlin")
FIRST_DAY = date(2023, 1, 2)  # a Monday
SLOTS_PER_DAY = 8  # 09:00 to 17:00

VTIMEZONE = [
    "BEGIN:VTIMEZONE",
    "TZID:Europe/Berlin",
    "BEGIN:DAYLIGHT",
    "TZOFFSETFROM:+0100",
    "TZOFFSETTO:+0200",
    "TZNAME:CEST",
    "DTSTART:19700329T020000",
    "RRULE:FREQ=YEARLY;BYMONTH=3;BYDAY=-1SU",
    "END:DAYLIGHT",
    "BEGIN:STANDARD",
    "TZOFFSETFROM:+0200",
    "TZOFFSETTO:+0100",
    "TZNAME:CET",
    "DTSTART:19701025T030000",
    "RRULE:FREQ=YEARLY;BYMONTH=10;BYDAY=-1SU",
    "END:STANDARD",
    "END:VTIMEZONE",
]


@dataclass(frozen=True)
class Export:
    text: str
    stored: frozenset[str]  # UIDs a first import stores
    # UID -> the (UTC) span of the appointment it was booked over
    double_booked: dict[str, tuple[datetime, datetime]]

    @property
    def objects(self) -> int:
        return len(self.stored) + len(self.double_booked)


def _fold(line: str) -> list[str]:
    """RFC 5545 3.1: at most 75 octets a line, continuations start with a space."""
    out: list[str] = []
    data = line.encode("utf-8")
    limit = 75
    while len(data) > limit:
        cut = limit
        while cut > 0 and (data[cut] & 0xC0) == 0x80:  # not inside a character
            cut -= 1
        out.append(data[:cut].decode("utf-8"))
        data = b" " + data[cut:]
        limit = 75
    out.append(data.decode("utf-8"))
    return out


def _local(moment: datetime) -> str:
    return moment.strftime("%Y%m%dT%H%M%S")


def _slot(index: int) -> datetime:
    """The start of working slot ``index``: weekdays, 09:00 to 17:00 Berlin."""
    day, hour = divmod(index, SLOTS_PER_DAY)
    week, weekday = divmod(day, 5)
    on = FIRST_DAY + timedelta(weeks=week, days=weekday)
    return datetime(on.year, on.month, on.day, 9 + hour, tzinfo=BERLIN)


def _event(uid: str, start: datetime, end: datetime, n: int, extra: list[str]) -> list[str]:
    lines = [
        "BEGIN:VEVENT",
        f"UID:{uid}",
        "DTSTAMP:20240101T120000Z",
        f"DTSTART;TZID=Europe/Berlin:{_local(start)}",
        f"DTEND;TZID=Europe/Berlin:{_local(end)}",
        f"SUMMARY:Appointment {n} with Zoë Müller",
        *_fold(
            f"DESCRIPTION:Customer {n} asked for the usual treatment\\; notes from the "
            "front desk: prefers mornings\\, allergic to lavender oil\\, pays by card. "
            "Remind the day before."
        ),
        *extra,
        "END:VEVENT",
    ]
    return lines


def calendar_export(n: int, *, seed_every: int = 40) -> Export:
    """An export of ``n`` calendar objects; every ``seed_every``-th one is
    booked into the hour of the one before it."""
    lines = [
        "BEGIN:VCALENDAR",
        "VERSION:2.0",
        "PRODID:-//Example Corp.//Old Calendar 7.1//EN",
        "CALSCALE:GREGORIAN",
        "METHOD:PUBLISH",
        "X-WR-CALNAME:Anna",
        *VTIMEZONE,
    ]
    stored: set[str] = set()
    double: dict[str, tuple[datetime, datetime]] = {}
    slot = 0
    series = 0
    previous: tuple[datetime, datetime] | None = None
    for k in range(n):
        uid = f"{k:05d}-{k * 7919 % 100003:05d}@old-calendar.example"
        if k % 100 == 50:
            # A public holiday: all day, transparent (blocks nothing).
            day = FIRST_DAY + timedelta(days=k)
            lines += [
                "BEGIN:VEVENT",
                f"UID:{uid}",
                "DTSTAMP:20240101T120000Z",
                f"DTSTART;VALUE=DATE:{day:%Y%m%d}",
                f"DTEND;VALUE=DATE:{day + timedelta(days=1):%Y%m%d}",
                "SUMMARY:Holiday",
                "TRANSP:TRANSPARENT",
                "END:VEVENT",
            ]
            stored.add(uid)
            continue
        if k % 50 == 25:
            # A weekly series at 18:00, four weeks, each in weeks of its own.
            start = datetime.combine(
                FIRST_DAY + timedelta(weeks=4 * series, days=series % 5),
                datetime.min.time(),
                BERLIN,
            ).replace(hour=18)
            series += 1
            lines += _event(
                uid, start, start + timedelta(hours=1), k, ["RRULE:FREQ=WEEKLY;COUNT=4"]
            )
            stored.add(uid)
            continue
        if k % seed_every == seed_every - 1 and previous is not None:
            start, end = previous  # the hour of the appointment before
            lines += _event(uid, start, end, k, [])
            double[uid] = (start.astimezone(UTC), end.astimezone(UTC))
            continue
        start = _slot(slot)
        slot += 1
        end = start + timedelta(hours=1)
        alarm = (
            [
                "BEGIN:VALARM",
                "ACTION:DISPLAY",
                "DESCRIPTION:Reminder",
                "TRIGGER:-PT15M",
                "END:VALARM",
            ]
            if k % 3 == 0
            else []
        )
        lines += _event(uid, start, end, k, alarm)
        stored.add(uid)
        previous = (start, end)
    lines.append("END:VCALENDAR")
    return Export("\r\n".join(lines) + "\r\n", frozenset(stored), double)
