"""A guest's answer given in Google reaches an event a calendar app wrote
(issue 16 item 2): only the guest's PARTSTAT changes in the app's own text,
and the app sees a new ETag with the schedule tag unchanged."""

from __future__ import annotations

from pathlib import Path

from fake_google.calendar import FakeGoogle
from gateway.core.mirror import google_event_id
from tests.backends import Store
from tests.conftest import ADMIN_PASSWORD, basic
from tests.google.harness import running_gateway
from tests.smtp import Recorder

SALON = "salon.calendar@example.com"
ZOE = "zoe@example.com"
RESOURCES = """\
  - id: salon
    name: Salon
    email: salon@example.com
    invitations: {via: google}
"""
EVENT = """\
BEGIN:VCALENDAR\r
VERSION:2.0\r
PRODID:-//Example Corp.//Calendar App 7.1//EN\r
BEGIN:VEVENT\r
UID:app-made-cut@example.com\r
DTSTAMP:20261201T080000Z\r
DTSTART:20301203T090000Z\r
DTEND:20301203T100000Z\r
SUMMARY:Cut\r
X-APP-COLOUR:teal\r
ORGANIZER;CN=Salon:mailto:salon@example.com\r
ATTENDEE;CN=Zoë;PARTSTAT=NEEDS-ACTION;X-APP-SEAT=3:mailto:zoe@example.com\r
BEGIN:VALARM\r
ACTION:DISPLAY\r
DESCRIPTION:Cut\r
TRIGGER:-PT15M\r
END:VALARM\r
END:VEVENT\r
END:VCALENDAR\r
"""


async def test_a_google_answer_changes_only_the_partstat_of_an_app_written_event(
    tmp_path: Path, store: Store, fake: FakeGoogle, mail: tuple[Recorder, int]
) -> None:
    async with running_gateway(tmp_path, store, fake, mail, resources=RESOURCES) as gateway:
        await gateway.connect("salon", SALON)
        auth = basic("admin", ADMIN_PASSWORD)
        url = f"{gateway.url}/dav/calendars/salon/cut.ics"
        headers = {"Content-Type": "text/calendar; charset=utf-8", **auth}
        async with gateway.http.put(url, data=EVENT, headers=headers) as put:
            assert put.status == 201, await put.text()
        await gateway.settle()
        async with gateway.http.get(url, headers=auth) as got:
            before_text, before_etag = await got.text(), got.headers["ETag"]
            tag = got.headers["Schedule-Tag"]
        booking = await gateway.bookings.get(
            (await gateway.repo.get_by_href("salon", "cut.ics")).booking.id
        )
        event = fake.event(SALON, google_event_id(booking.id))
        (guest,) = event["attendees"]
        assert guest["email"] == ZOE and guest["responseStatus"] == "needsAction"

        # Zoë accepts in Google Calendar.
        fake.user_update(
            SALON, event["id"], {"attendees": [{**guest, "responseStatus": "accepted"}]}
        )
        await gateway.settle()

        async with gateway.http.get(url, headers=auth) as got:
            after_text, after_etag = await got.text(), got.headers["ETag"]
            assert got.headers["Schedule-Tag"] == tag  # not the organizer's change
        assert after_etag != before_etag
        changed = [
            (old, new)
            for old, new in zip(_unfolded(before_text), _unfolded(after_text), strict=True)
            if old != new
        ]
        assert len(changed) == 1, changed
        old, new = changed[0]
        assert old.startswith("ATTENDEE") and "PARTSTAT=NEEDS-ACTION" in old
        assert new == old.replace("PARTSTAT=NEEDS-ACTION", "PARTSTAT=ACCEPTED")
        assert "X-APP-COLOUR:teal" in after_text and "TRIGGER:-PT15M" in after_text
        assert gateway.mail.to(ZOE) == []  # Google told her, not us


def _unfolded(text: str) -> list[str]:
    """The content lines of ``text`` (RFC 5545 3.1 folding undone)."""
    return text.replace("\r\n ", "").splitlines()
