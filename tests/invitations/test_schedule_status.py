"""SCHEDULE-STATUS (RFC 6638 3.2.9) and the server's SEQUENCE (RFC 5546
2.1.4) on events a calendar app writes with the resource as ORGANIZER, seen
as a python-caldav user sees them, with invitations going to a real SMTP
server on loopback. The rules are tabled in ``tests/core/test_sequence.py``
and ``tests/test_ical_schedule_status.py``."""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator
from pathlib import Path

import caldav
import icalendar
import pytest

from tests.backends import Store
from tests.caldav.test_interop_python_caldav import in_thread
from tests.invitations.test_caldav_scheduling import ANNA, MAX, PASSWORD, Staff, staff_gateway
from tests.invitations.test_imip_e2e import ZOE
from tests.net import LOOPBACK
from tests.smtp import Recorder

UID = "colour-two@app.example"
REFUSED = "reject-550@example.com"  # the SMTP recorder refuses the mailbox
BLOCKED = "reject-554@example.com"  # ... and this one's transaction


def two(
    *,
    start: str = "20301203T090000Z",
    end: str = "20301203T100000Z",
    sequence: int = 0,
    title: str = "Colour",
    first: str = ZOE,
    second: str = MAX,
) -> str:
    """Anna's event with two attendees; the app wrote a SCHEDULE-STATUS of
    its own on the first, which is not the app's to write."""
    return (
        "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//test//status//EN\r\n"
        f"BEGIN:VEVENT\r\nUID:{UID}\r\nDTSTAMP:20301101T000000Z\r\n"
        f"DTSTART:{start}\r\nDTEND:{end}\r\nSUMMARY:{title}\r\nSEQUENCE:{sequence}\r\n"
        f"ORGANIZER;CN=Anna:mailto:{ANNA}\r\n"
        f"ATTENDEE;CN=First;SCHEDULE-STATUS=2.0:mailto:{first}\r\n"
        f"ATTENDEE;CN=Second:mailto:{second}\r\n"
        "END:VEVENT\r\nEND:VCALENDAR\r\n"
    )


class App:
    """python-caldav signed in as the staff member, on Anna's calendar."""

    def __init__(self, staff: Staff) -> None:
        self.staff = staff
        base = f"http://{LOOPBACK}:{staff.server.port}"
        client = caldav.DAVClient(url=f"{base}/dav/", username="staff", password=PASSWORD)
        self.calendar = client.calendar(url=f"{base}/dav/calendars/anna/")

    async def save(self, ics: str) -> None:
        """Saved as written: python-caldav raises SEQUENCE on each save
        unless told not to, as some apps do not."""
        await in_thread(lambda: self.calendar.save_event(ics, increase_seqno=False))

    async def read(self) -> tuple[icalendar.cal.Component, str]:
        """The stored VEVENT and its ETag, as the app fetches them."""

        def fetch() -> tuple[str, str]:
            found = self.calendar.event_by_uid(UID)
            response = found.client.request(str(found.url))
            return response.raw, str(response.headers.get("ETag"))

        raw, etag = await in_thread(fetch)
        (vevent,) = icalendar.Calendar.from_ical(raw).walk("VEVENT")
        return vevent, etag


def statuses(vevent: icalendar.cal.Component) -> dict[str, str | None]:
    found = vevent.get("ATTENDEE")
    attendees = found if isinstance(found, list) else [found]
    return {str(a).removeprefix("mailto:"): a.params.get("SCHEDULE-STATUS") for a in attendees}


def sequences(staff: Staff, address: str) -> list[int]:
    return [int(str(vevent["SEQUENCE"])) for _, vevent in staff.itip(address)]


@pytest.fixture
async def app(tmp_path: Path, store: Store, mail: tuple[Recorder, int]) -> AsyncIterator[App]:
    async with staff_gateway(tmp_path, store, mail) as staff:
        yield App(staff)


async def test_each_attendee_reads_pending_then_sent_with_a_new_etag(app: App) -> None:
    mail = app.staff.mail
    mail.hold_data_for = ZOE  # her message waits for the server's answer
    await app.save(two())
    await mail.wait_held("data")
    pending, queued_etag = await app.read()
    # Not sent yet; the app's own 2.0 is gone (the server sets it).
    assert statuses(pending)[ZOE] == "1.0"

    mail.release()
    await app.staff.settle()
    assert [m for m, _ in app.staff.itip(ZOE)] == ["REQUEST"]
    assert [m for m, _ in app.staff.itip(MAX)] == ["REQUEST"]
    sent, sent_etag = await app.read()
    assert statuses(sent) == {ZOE: "1.1", MAX: "1.1"}
    assert sent_etag != queued_etag
    # The invitation itself carries no store-only parameter (RFC 6638 3.2.9).
    (_, mailed) = app.staff.itip(ZOE)[0]
    assert "SCHEDULE-STATUS" not in mailed.to_ical().decode()

    # The app saves its own text again (with its 2.0): the server's values
    # stay, nothing is stored anew and nobody is mailed.
    await app.save(two())
    await app.staff.settle()
    again, again_etag = await app.read()
    assert statuses(again) == {ZOE: "1.1", MAX: "1.1"}
    assert again_etag == sent_etag
    assert len(app.staff.mail.messages()) == 2


async def test_a_refused_address_reads_back_as_failed(app: App) -> None:
    await app.save(two(first=REFUSED, second=BLOCKED))
    await app.staff.settle()
    assert app.staff.mail.messages() == []
    failed, _ = await app.read()
    assert statuses(failed) == {REFUSED: "3.7", BLOCKED: "5.1"}


async def test_a_put_answered_with_the_servers_values_has_no_etag(app: App) -> None:
    """RFC 4791 5.3.4: the object stored is not what was sent, so the app
    must fetch it; the same text sent again changes nothing."""
    token = base64.b64encode(f"staff:{PASSWORD}".encode()).decode()
    url = f"http://{LOOPBACK}:{app.staff.server.port}/dav/calendars/anna/colour.ics"
    headers = {"Authorization": f"Basic {token}", "Content-Type": "text/calendar"}
    for status in (201, 204):
        async with app.staff.http.put(url, data=two().encode(), headers=headers) as reply:
            assert reply.status == status, await reply.text()
            assert "ETag" not in reply.headers
    await app.staff.settle()
    assert len(app.staff.itip(ZOE)) == 1


async def test_a_move_raises_sequence_and_a_new_title_keeps_it(app: App) -> None:
    await app.save(two())
    await app.staff.settle()
    # Moved in an app that does not raise SEQUENCE itself.
    await app.save(two(start="20301203T140000Z", end="20301203T150000Z"))
    await app.staff.settle()
    moved, _ = await app.read()
    assert int(str(moved["SEQUENCE"])) == 1
    assert sequences(app.staff, ZOE) == [0, 1]
    assert sequences(app.staff, MAX) == [0, 1]
    assert statuses(moved) == {ZOE: "1.1", MAX: "1.1"}

    # Retitled only: an update with the SEQUENCE as it is.
    await app.save(two(start="20301203T140000Z", end="20301203T150000Z", title="Colour & cut"))
    await app.staff.settle()
    retitled, _ = await app.read()
    assert int(str(retitled["SEQUENCE"])) == 1
    assert str(retitled["SUMMARY"]) == "Colour & cut"
    assert sequences(app.staff, ZOE) == [0, 1, 1]
    assert str(app.staff.itip(ZOE)[2][1]["SUMMARY"]) == "Colour & cut"


async def test_an_attendee_the_app_schedules_keeps_the_apps_status(app: App) -> None:
    text = two().replace(
        f"ATTENDEE;CN=Second:mailto:{MAX}",
        f"ATTENDEE;CN=Second;SCHEDULE-AGENT=CLIENT;SCHEDULE-STATUS=2.0:mailto:{MAX}",
    )
    await app.save(text)
    await app.staff.settle()
    stored, _ = await app.read()
    assert statuses(stored) == {ZOE: "1.1", MAX: "2.0"}
    assert app.staff.itip(MAX) == []
