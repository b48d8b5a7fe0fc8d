"""One occurrence of a series cancelled or moved in a calendar app (python-
caldav over real HTTP, the resource as ORGANIZER): the attendees get a
CANCEL naming that occurrence (RFC 5546 3.2.5, RECURRENCE-ID) or an update
of the series, by real SMTP on loopback. The rules are tabled in
``tests/core/test_effects.py``; the CANCEL's text in
``tests/test_ical_itip_occurrence.py``."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import caldav
import icalendar
import pytest
from caldav.lib import error

from tests.backends import Store
from tests.caldav.test_interop_python_caldav import in_thread
from tests.invitations.test_caldav_scheduling import PASSWORD, Staff, staff_gateway
from tests.invitations.test_imip_e2e import ZOE, calendar_parts
from tests.net import LOOPBACK
from tests.smtp import Recorder

UID = "weekly-zoe@app.example"
SECOND = "RECURRENCE-ID:20301210T090000Z\r\n"


def series(*, sequence: int, exdate: str = "", override: str = "") -> str:
    """What a calendar app writes for "Haircut every Tuesday, Zoë": four
    weeks from 3 December 2030, 09:00 UTC."""
    head = (
        f"UID:{UID}\r\nDTSTAMP:20301101T000000Z\r\nSUMMARY:Haircut\r\n"
        f"ORGANIZER;CN=Anna:mailto:anna@example.com\r\n"
        f"ATTENDEE;CN=Zoë;PARTSTAT=NEEDS-ACTION:mailto:{ZOE}\r\n"
    )
    master = (
        f"BEGIN:VEVENT\r\n{head}SEQUENCE:{sequence}\r\n"
        "DTSTART:20301203T090000Z\r\nDTEND:20301203T100000Z\r\n"
        f"RRULE:FREQ=WEEKLY;COUNT=4\r\n{exdate}END:VEVENT\r\n"
    )
    moved = f"BEGIN:VEVENT\r\n{head}SEQUENCE:{sequence}\r\n{override}END:VEVENT\r\n"
    return (
        "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//test//occurrences//EN\r\n"
        f"{master}{moved if override else ''}END:VCALENDAR\r\n"
    )


# The third Tuesday moved to 14:00.
THIRD_MOVED = (
    "RECURRENCE-ID:20301217T090000Z\r\nDTSTART:20301217T140000Z\r\nDTEND:20301217T150000Z\r\n"
)


class App:
    """python-caldav as the staff's calendar app, on Anna's calendar."""

    def __init__(self, staff: Staff) -> None:
        url = f"http://{LOOPBACK}:{staff.server.port}/dav/"
        self.client = caldav.DAVClient(url=url, username="staff", password=PASSWORD, timeout=10)
        self.calendar = self.client.calendar(url=f"{url}calendars/anna/")

    async def write(self, text: str) -> None:
        def save() -> None:
            try:
                event = self.calendar.event_by_uid(UID)
            except error.NotFoundError:
                self.calendar.save_event(text)
                return
            event.data = text
            event.save()

        await in_thread(save)


def messages(staff: Staff) -> list[tuple[str, list[icalendar.cal.Component], str, str]]:
    """(METHOD, the VEVENTs, subject, plain text) of each message to Zoë."""
    found = []
    for message in staff.mail.to(ZOE):
        inline, _ = calendar_parts(message)
        raw = inline.get_payload(decode=True)
        assert isinstance(raw, bytes)
        calendar = icalendar.Calendar.from_ical(raw.decode("utf-8"))
        plain = message.get_body(("plain",))
        assert plain is not None
        text = plain.get_content()
        subject = str(message["Subject"]).strip()
        found.append((str(calendar["METHOD"]), calendar.walk("VEVENT"), subject, text))
    return found


def _utc(event: Any, name: str) -> datetime:
    value = event.decoded(name)
    assert isinstance(value, datetime)
    return value.astimezone(UTC)


@pytest.fixture
async def staff(tmp_path: Path, store: Store, mail: tuple[Recorder, int]) -> AsyncIterator[Staff]:
    async with staff_gateway(tmp_path, store, mail) as gateway:
        yield gateway


async def test_an_occurrence_cancelled_or_moved_in_the_app_is_told_to_the_attendee(
    staff: Staff,
) -> None:
    app = App(staff)
    await app.write(series(sequence=0))
    await staff.settle()
    [(method, (invited,), _, _)] = messages(staff)
    assert method == "REQUEST"

    # The second Tuesday deleted in the app: an EXDATE, SEQUENCE raised.
    await app.write(series(sequence=1, exdate="EXDATE:20301210T090000Z\r\n"))
    await staff.settle()
    assert len(messages(staff)) == 2  # the CANCEL alone, no update besides
    method, (gone,), subject, text = messages(staff)[1]
    assert method == "CANCEL"
    assert _utc(gone, "RECURRENCE-ID") == datetime(2030, 12, 10, 9, 0, tzinfo=UTC)
    assert _utc(gone, "DTSTART") == datetime(2030, 12, 10, 9, 0, tzinfo=UTC)
    assert str(gone["STATUS"]) == "CANCELLED"
    # Raised (python-caldav raises it on each save, the gateway for a
    # change of the series): the attendee's app takes it as the newer news.
    assert int(str(gone["SEQUENCE"])) > int(str(invited["SEQUENCE"]))
    assert "RRULE" not in gone
    # Which date (in the zone the app wrote, UTC), not the series' first.
    assert subject == "Cancelled: Haircut @ Tue, 10 Dec 2030, 09:00 (Coordinated Universal Time)"
    assert "This date of the series has been cancelled" in text
    assert "10 December 2030, 09:00" in text

    # The third Tuesday moved to the afternoon: an update of the series.
    await app.write(series(sequence=2, exdate="EXDATE:20301210T090000Z\r\n", override=THIRD_MOVED))
    await staff.settle()
    method, events, _, _ = messages(staff)[2]
    assert method == "REQUEST"
    assert len(events) == 2  # the master with its override (RFC 5546 3.2.2)
    moved = next(e for e in events if "RECURRENCE-ID" in e)
    assert _utc(moved, "DTSTART") == datetime(2030, 12, 17, 14, 0, tzinfo=UTC)

    # ... and then cancelled: a CANCEL of that occurrence, at its new time.
    await app.write(
        series(
            sequence=3,
            exdate="EXDATE:20301210T090000Z\r\n",
            override=THIRD_MOVED + "STATUS:CANCELLED\r\n",
        )
    )
    await staff.settle()
    assert len(messages(staff)) == 4
    method, (gone,), _, _ = messages(staff)[3]
    assert method == "CANCEL"
    assert _utc(gone, "RECURRENCE-ID") == datetime(2030, 12, 17, 9, 0, tzinfo=UTC)
    assert _utc(gone, "DTSTART") == datetime(2030, 12, 17, 14, 0, tzinfo=UTC)
    assert int(str(gone["SEQUENCE"])) > int(str(moved["SEQUENCE"]))
    assert str(gone["STATUS"]) == "CANCELLED"
