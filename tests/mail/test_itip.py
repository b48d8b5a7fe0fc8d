"""iTIP messages: REQUEST and CANCEL written from stored objects (checked
with icalendar and vobject), REPLYs read from the shapes real clients send,
and the rule deciding whether a reply updates a booking."""

from __future__ import annotations

import re
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import icalendar
import pytest
import vobject

from gateway.core.invitations import (
    InvalidReply,
    InvitationKind,
    ItipReply,
    invitation_kind,
    reply_applies,
)
from gateway.core.model import (
    Attendee,
    Booking,
    BookingStatus,
    CalendarObject,
    PartStat,
)
from gateway.ical import ICalCodec, parse_reply, render_itip
from tests.mail import ANNA, BERLIN, ORGANIZER, ZOE, make_booking, moved, stored, with_lines

NOW = datetime(2026, 11, 5, 13, 30, 15, tzinfo=BERLIN)
REQUEST, CANCEL = InvitationKind.REQUEST, InvitationKind.CANCEL
BOB = Attendee("Bob@Example.org", "Bob Jones", PartStat.ACCEPTED)


def rich_object(booking: Booking) -> CalendarObject:
    """A stored object a client decorated: a VALARM and X- properties, which
    the codec keeps on every later render."""
    first = stored(booking).ics
    decorated = with_lines(
        first,
        "END:VEVENT",
        [
            "X-APPLE-TRAVEL-ADVISORY-BEHAVIOR:AUTOMATIC",
            "X-BOOKING-REF:order-1001",
            "BEGIN:VALARM",
            "ACTION:DISPLAY",
            "DESCRIPTION:Reminder",
            "TRIGGER:-PT15M",
            "END:VALARM",
        ],
    )
    decorated = decorated.replace("ATTENDEE;", "ATTENDEE;SCHEDULE-STATUS=1.2;CUTYPE=INDIVIDUAL;", 1)
    return stored(booking, decorated)


def itip(obj: CalendarObject, kind: InvitationKind, now: datetime = NOW) -> str:
    return render_itip(obj, ANNA, kind, ORGANIZER, now)


def ical_event(text: str) -> tuple[icalendar.Calendar, icalendar.Event]:
    calendar = icalendar.Calendar.from_ical(text)
    events = calendar.walk("VEVENT")
    return calendar, events[0]


def params(prop: Any) -> dict[str, str]:
    return {k.upper(): str(v) for k, v in prop.params.items()}


def tzids_used(text: str) -> set[str]:
    unfolded = re.sub(r"\r\n[ \t]", "", text)
    return set(re.findall(r';TZID="?([^";:]+)"?[;:]', unfolded))


def vtimezone_ids(text: str) -> list[str]:
    return re.findall(r"^TZID:(.*)\r$", re.sub(r"\r\n[ \t]", "", text), re.MULTILINE)


def assert_wire_format(text: str) -> None:
    """RFC 5545 3.1: CRLF line ends, lines folded at 75 octets."""
    assert "\n" not in text.replace("\r\n", "")
    assert "\r" not in text.replace("\r\n", "")
    for line in text.split("\r\n"):
        assert len(line.encode("utf-8")) <= 75, line


# -- REQUEST -------------------------------------------------------------------------------


def test_request_from_a_stored_object() -> None:
    booking = make_booking(attendees=(ZOE, BOB), sequence=0)
    text = itip(rich_object(booking), REQUEST)
    assert_wire_format(text)
    calendar, event = ical_event(text)

    assert str(calendar["METHOD"]) == "REQUEST"
    assert str(calendar["VERSION"]) == "2.0"
    assert len(calendar.walk("VEVENT")) == 1
    assert str(event["UID"]) == booking.uid
    assert int(event["SEQUENCE"]) == 0
    assert event.decoded("DTSTAMP") == NOW.astimezone(UTC)
    assert "DTSTAMP:20261105T123015Z\r\n" in text
    assert event.decoded("DTSTART") == booking.start
    assert event.decoded("DTEND") == booking.end
    assert str(event["SUMMARY"]) == "Haircut"

    organizer = event["ORGANIZER"]
    assert str(organizer) == f"mailto:{ORGANIZER}"
    assert params(organizer) == {"CN": "Anna Schmidt"}

    attendees = {str(a): params(a) for a in event["ATTENDEE"]}
    assert attendees["mailto:zoe@example.com"] == {
        "CN": "Zoë Müller",
        "ROLE": "REQ-PARTICIPANT",
        "PARTSTAT": "NEEDS-ACTION",
        "RSVP": "TRUE",
        "CUTYPE": "INDIVIDUAL",  # what the client said is kept...
    }  # ...but SCHEDULE-STATUS, which belongs to the CalDAV store, is not
    assert attendees["mailto:Bob@Example.org"]["PARTSTAT"] == "ACCEPTED"
    assert attendees["mailto:Bob@Example.org"]["RSVP"] == "TRUE"

    # The organizer's reminders stay home; the client's X- properties travel.
    assert "VALARM" not in text
    assert str(event["X-BOOKING-REF"]) == "order-1001"
    assert "X-APPLE-TRAVEL-ADVISORY-BEHAVIOR:AUTOMATIC" in text

    # One VTIMEZONE per TZID, before the event.
    assert tzids_used(text) == {"Europe/Berlin"}
    assert vtimezone_ids(text) == ["Europe/Berlin"]
    assert text.index("BEGIN:VTIMEZONE") < text.index("BEGIN:VEVENT")


def test_request_reads_the_same_in_vobject() -> None:
    booking = make_booking(title="Beratung 💬 相談", attendees=(ZOE, BOB), sequence=3)
    text = itip(rich_object(booking), REQUEST)
    parsed = vobject.readOne(text)
    assert parsed.method.value == "REQUEST"
    event = parsed.vevent
    assert event.uid.value == booking.uid
    assert event.sequence.value == "3"
    assert event.summary.value == "Beratung 💬 相談"
    assert event.dtstamp.value == NOW.astimezone(UTC)
    assert event.dtstart.value == booking.start
    assert event.dtstart.value.utcoffset() == timedelta(hours=1)
    assert event.organizer.value == f"mailto:{ORGANIZER}"
    assert event.organizer.params["CN"] == ["Anna Schmidt"]
    by_address = {a.value: a.params for a in event.attendee_list}
    zoe = by_address["mailto:zoe@example.com"]
    assert zoe["PARTSTAT"] == ["NEEDS-ACTION"]
    assert zoe["RSVP"] == ["TRUE"]
    assert zoe["ROLE"] == ["REQ-PARTICIPANT"]
    assert zoe["CN"] == ["Zoë Müller"]
    assert not hasattr(event, "valarm")


def test_a_year_0000_created_and_last_modified_are_carried_as_stored() -> None:
    """Issue 13 item 4: a client's CREATED and LAST-MODIFIED in year 0000
    (RFC 5545 3.3.5 grammar; Python's datetime cannot hold it) are kept in
    the stored object, and the message made from it reads in both parsers."""
    booking = make_booking(attendees=(ZOE,))
    first = stored(booking)
    text = re.sub(r"CREATED:\d{8}T\d{6}Z", "CREATED:00000101T000000Z", first.ics)
    text = re.sub(r"LAST-MODIFIED:\d{8}T\d{6}Z", "LAST-MODIFIED:00000101T000000Z", text)
    assert "CREATED:00000101T000000Z" in text and "LAST-MODIFIED:00000101T000000Z" in text
    obj = replace(first, ics=text)
    message = itip(obj, REQUEST)
    assert "CREATED:00000101T000000Z\r\n" in message
    _, event = ical_event(message)
    assert event.decoded("DTSTAMP") == NOW.astimezone(UTC)  # the message's own (RFC 5546)
    assert vobject.readOne(message).vevent.uid.value == booking.uid


def test_a_reschedule_is_a_request_with_the_next_sequence() -> None:
    booking = make_booking()
    first = stored(booking)
    later = moved(
        booking,
        start=booking.start + timedelta(hours=2),
        end=booking.end + timedelta(hours=2),
    )
    second = stored(later, first.ics)
    one, two = ical_event(itip(first, REQUEST))[1], ical_event(itip(second, REQUEST))[1]
    assert str(one["UID"]) == str(two["UID"])
    assert (int(one["SEQUENCE"]), int(two["SEQUENCE"])) == (0, 1)
    assert two.decoded("DTSTART") == datetime(2026, 12, 1, 11, tzinfo=BERLIN)


def test_request_for_a_cancelled_booking_is_refused() -> None:
    booking = make_booking(status=BookingStatus.CANCELLED, sequence=1)
    with pytest.raises(ValueError, match="CANCEL"):
        itip(stored(booking), REQUEST)


def test_naive_now_is_refused() -> None:
    with pytest.raises(ValueError, match="aware"):
        itip(stored(make_booking()), REQUEST, now=datetime(2026, 11, 5, 12))


# -- CANCEL --------------------------------------------------------------------------------


def test_cancel() -> None:
    booking = make_booking(attendees=(ZOE, BOB))
    first = rich_object(booking)
    cancelled = moved(booking, status=BookingStatus.CANCELLED)
    assert invitation_kind(cancelled) is CANCEL and invitation_kind(booking) is REQUEST
    text = itip(stored(cancelled, first.ics), CANCEL)
    assert_wire_format(text)
    calendar, event = ical_event(text)
    assert str(calendar["METHOD"]) == "CANCEL"
    assert str(event["STATUS"]) == "CANCELLED"
    assert str(event["UID"]) == booking.uid
    assert int(event["SEQUENCE"]) == 1
    assert event.decoded("DTSTAMP") == NOW.astimezone(UTC)
    # RFC 5546 3.2.5: every attendee of a cancelled event is listed; none is
    # asked to answer.
    attendees = {str(a): params(a) for a in event["ATTENDEE"]}
    assert set(attendees) == {"mailto:zoe@example.com", "mailto:Bob@Example.org"}
    assert {p["RSVP"] for p in attendees.values()} == {"FALSE"}
    assert "VALARM" not in text
    parsed = vobject.readOne(text)
    assert parsed.method.value == "CANCEL"
    assert parsed.vevent.status.value == "CANCELLED"


def test_cancel_even_when_the_stored_status_was_not_updated() -> None:
    # The stored object still says CONFIRMED (say, a CalDAV DELETE): the
    # message must say CANCELLED regardless.
    booking = make_booking()
    obj = stored(booking)
    text = itip(replace(obj, booking=moved(booking, status=BookingStatus.CANCELLED)), CANCEL)
    assert str(ical_event(text)[1]["STATUS"]) == "CANCELLED"


# -- series, zones ----------------------------------------------------------------------


SERIES = """\
BEGIN:VCALENDAR
VERSION:2.0
PRODID:-//Apple Inc.//macOS 15//EN
BEGIN:VEVENT
UID:series-1
DTSTAMP:20261101T000000Z
DTSTART;TZID=America/New_York:20261201T090000
DTEND;TZID=Europe/Berlin:20261201T160000
RRULE:FREQ=WEEKLY;COUNT=5
EXDATE;TZID=Asia/Kolkata:20261208T193000
SUMMARY:Weekly coaching
SEQUENCE:2
ORGANIZER;SCHEDULE-AGENT=CLIENT:mailto:anna@example.com
ATTENDEE;CN=Zoë Müller;PARTSTAT=ACCEPTED:mailto:zoe@example.com
BEGIN:VALARM
ACTION:AUDIO
TRIGGER:-PT5M
END:VALARM
END:VEVENT
BEGIN:VEVENT
UID:series-1
DTSTAMP:20261101T000000Z
RECURRENCE-ID;TZID=America/New_York:20261215T090000
DTSTART;TZID=America/New_York:20261215T100000
DTEND;TZID=America/New_York:20261215T110000
SUMMARY:Weekly coaching (later)
SEQUENCE:5
ATTENDEE;CN=Zoë Müller;PARTSTAT=ACCEPTED:mailto:zoe@example.com
END:VEVENT
END:VCALENDAR
""".replace("\n", "\r\n")


def caldav_object(ics: str) -> CalendarObject:
    """A client's object as the CalDAV PUT path stores it."""
    parsed = ICalCodec().parse(ics, "Europe/Berlin")
    booking = parsed.booking(id=parsed.uid, resource_id="anna", created=NOW, updated=NOW)
    return CalendarObject(booking, ics, parsed.span)


def test_series_request_carries_overrides_and_every_zone() -> None:
    obj = caldav_object(SERIES)
    text = itip(obj, REQUEST)
    assert_wire_format(text)
    calendar, _ = ical_event(text)
    events = calendar.walk("VEVENT")
    assert len(events) == 2
    master = next(e for e in events if "RECURRENCE-ID" not in e)
    override = next(e for e in events if "RECURRENCE-ID" in e)
    assert int(master["SEQUENCE"]) == 2
    assert int(override["SEQUENCE"]) == 5  # never lowered
    for event in events:
        assert str(event["ORGANIZER"]) == f"mailto:{ORGANIZER}"
        assert "SCHEDULE-AGENT" not in event["ORGANIZER"].params
        assert event.decoded("DTSTAMP") == NOW.astimezone(UTC)
    assert "VALARM" not in text
    # DTSTART, DTEND and EXDATE name three zones: each has its VTIMEZONE.
    assert tzids_used(text) == {"America/New_York", "Europe/Berlin", "Asia/Kolkata"}
    assert sorted(vtimezone_ids(text)) == ["America/New_York", "Asia/Kolkata", "Europe/Berlin"]
    parsed = vobject.readOne(text)
    starts = sorted(e.dtstart.value for e in parsed.vevent_list)
    assert starts[0] == datetime(2026, 12, 1, 9, tzinfo=ZoneInfo("America/New_York"))
    assert starts[0].utcoffset() == timedelta(hours=-5)


def test_series_cancel_sends_the_master_only() -> None:
    obj = caldav_object(SERIES)
    cancelled = replace(
        obj,
        booking=moved(obj.booking, status=BookingStatus.CANCELLED),
    )
    text = itip(cancelled, CANCEL)
    calendar, event = ical_event(text)
    assert len(calendar.walk("VEVENT")) == 1
    assert "RECURRENCE-ID" not in event
    assert int(event["SEQUENCE"]) == 3
    assert str(event["STATUS"]) == "CANCELLED"
    assert "America/New_York" in vtimezone_ids(text)


def test_outlook_zone_names_get_a_vtimezone_of_their_own_name() -> None:
    ics = """\
BEGIN:VCALENDAR
VERSION:2.0
PRODID:Microsoft Exchange Server 2010
BEGIN:VEVENT
UID:outlook-1
DTSTAMP:20261101T000000Z
DTSTART;TZID=W. Europe Standard Time:20261201T090000
DTEND;TZID=W. Europe Standard Time:20261201T100000
SUMMARY:Termin
ATTENDEE;CN=Zoë;PARTSTAT=NEEDS-ACTION:mailto:zoe@example.com
END:VEVENT
END:VCALENDAR
""".replace("\n", "\r\n")
    text = itip(caldav_object(ics), REQUEST)
    assert vtimezone_ids(text) == ["W. Europe Standard Time"]
    parsed = vobject.readOne(text)
    assert parsed.vevent.dtstart.value.utcoffset() == timedelta(hours=1)
    assert ical_event(text)[1].decoded("DTSTART") == datetime(2026, 12, 1, 8, tzinfo=UTC)


def test_a_clients_own_vtimezone_is_kept() -> None:
    ics = """\
BEGIN:VCALENDAR
VERSION:2.0
PRODID:-//Example//Custom//EN
BEGIN:VTIMEZONE
TZID:Custom Office Time
BEGIN:STANDARD
DTSTART:19700101T000000
TZOFFSETFROM:+0300
TZOFFSETTO:+0300
TZNAME:COT
END:STANDARD
END:VTIMEZONE
BEGIN:VEVENT
UID:custom-1
DTSTAMP:20261101T000000Z
DTSTART;TZID=Custom Office Time:20261201T090000
DTEND;TZID=Custom Office Time:20261201T100000
SUMMARY:Custom
END:VEVENT
END:VCALENDAR
""".replace("\n", "\r\n")
    text = itip(caldav_object(ics), REQUEST)
    assert vtimezone_ids(text) == ["Custom Office Time"]
    assert "TZNAME:COT" in text
    assert vobject.readOne(text).vevent.dtstart.value.utcoffset() == timedelta(hours=3)


def test_utc_booking_needs_no_vtimezone() -> None:
    booking = make_booking(
        start=datetime(2026, 12, 1, 9, tzinfo=UTC),
        end=datetime(2026, 12, 1, 10, tzinfo=UTC),
        timezone="UTC",
    )
    text = itip(stored(booking), REQUEST)
    assert "BEGIN:VTIMEZONE" not in text
    assert "DTSTART:20261201T090000Z" in text


def test_all_day_booking_keeps_its_dates() -> None:
    ics = """\
BEGIN:VCALENDAR
VERSION:2.0
PRODID:-//Example//EN
BEGIN:VEVENT
UID:day-1
DTSTAMP:20261101T000000Z
DTSTART;VALUE=DATE:20261201
DTEND;VALUE=DATE:20261203
SUMMARY:Workshop
ATTENDEE:MAILTO:Zoe@Example.com
END:VEVENT
END:VCALENDAR
""".replace("\n", "\r\n")
    text = itip(caldav_object(ics), REQUEST)
    event = ical_event(text)[1]
    assert event.decoded("DTSTART") == date(2026, 12, 1)
    assert event.decoded("DTEND") == date(2026, 12, 3)
    assert params(event["ATTENDEE"])["RSVP"] == "TRUE"
    assert vobject.readOne(text).vevent.dtstart.value == date(2026, 12, 1)


# -- REPLY ---------------------------------------------------------------------------------


def crlf(text: str) -> str:
    return text.replace("\n", "\r\n")


APPLE_REPLY = crlf("""\
BEGIN:VCALENDAR
METHOD:REPLY
PRODID:-//Apple Inc.//macOS 15.1//EN
VERSION:2.0
BEGIN:VEVENT
ATTENDEE;CN=Zoë Müller;CUTYPE=INDIVIDUAL;EMAIL=zoe@example.com;PARTSTAT=ACC
 EPTED:mailto:zoe@example.com
DTEND;TZID=Europe/Berlin:20261201T100000
DTSTAMP:20261105T120000Z
DTSTART;TZID=Europe/Berlin:20261201T090000
ORGANIZER;CN=Anna Schmidt:mailto:bookings@gateway.example
REQUEST-STATUS:2.0;Success
SEQUENCE:2
SUMMARY:Haircut
UID:b1@gateway.test
END:VEVENT
END:VCALENDAR
""")

GOOGLE_REPLY = crlf("""\
BEGIN:VCALENDAR
PRODID:-//Google Inc//Google Calendar 70.9054//EN
VERSION:2.0
CALSCALE:GREGORIAN
METHOD:REPLY
BEGIN:VTIMEZONE
TZID:Europe/Berlin
X-LIC-LOCATION:Europe/Berlin
BEGIN:STANDARD
TZOFFSETFROM:+0200
TZOFFSETTO:+0100
TZNAME:CET
DTSTART:19701025T030000
RRULE:FREQ=YEARLY;BYMONTH=10;BYDAY=-1SU
END:STANDARD
END:VTIMEZONE
BEGIN:VEVENT
DTSTART;TZID=Europe/Berlin:20261201T090000
DTEND;TZID=Europe/Berlin:20261201T100000
DTSTAMP:20261105T121500Z
ORGANIZER;CN=Anna Schmidt:mailto:bookings@gateway.example
UID:b1@gateway.test
ATTENDEE;CUTYPE=INDIVIDUAL;ROLE=REQ-PARTICIPANT;PARTSTAT=DECLINED;CN=zoe@
 example.com;X-NUM-GUESTS=0:mailto:zoe@example.com
COMMENT:Sorry\\, I cannot make it.
CREATED:20261105T110000Z
LAST-MODIFIED:20261105T121500Z
SEQUENCE:0
STATUS:CONFIRMED
SUMMARY:Haircut
TRANSP:OPAQUE
END:VEVENT
END:VCALENDAR
""")

OUTLOOK_REPLY = crlf("""\
BEGIN:VCALENDAR
METHOD:REPLY
PRODID:Microsoft Exchange Server 2010
VERSION:2.0
BEGIN:VTIMEZONE
TZID:W. Europe Standard Time
BEGIN:STANDARD
DTSTART:16010101T030000
TZOFFSETFROM:+0200
TZOFFSETTO:+0100
RRULE:FREQ=YEARLY;INTERVAL=1;BYDAY=-1SU;BYMONTH=10
END:STANDARD
BEGIN:DAYLIGHT
DTSTART:16010101T020000
TZOFFSETFROM:+0100
TZOFFSETTO:+0200
RRULE:FREQ=YEARLY;INTERVAL=1;BYDAY=-1SU;BYMONTH=3
END:DAYLIGHT
END:VTIMEZONE
BEGIN:VEVENT
ATTENDEE;PARTSTAT=TENTATIVE;CN=Zoe Mueller:MAILTO:Zoe@Example.COM
COMMENT;LANGUAGE=en-US:Maybe\\, depends on the train.\\n
UID:b1@gateway.test
SUMMARY;LANGUAGE=en-US:Tentative: Haircut
DTSTART;TZID=W. Europe Standard Time:20261201T090000
DTEND;TZID=W. Europe Standard Time:20261201T100000
CLASS:PUBLIC
PRIORITY:5
DTSTAMP:20261105T122000Z
TRANSP:OPAQUE
STATUS:CONFIRMED
X-MICROSOFT-CDO-REPLYTIME:20261105T122000Z
X-MICROSOFT-CDO-OWNERAPPTID:-1
END:VEVENT
END:VCALENDAR
""")


def test_apple_reply() -> None:
    reply = parse_reply(APPLE_REPLY)
    assert reply == ItipReply(
        uid="b1@gateway.test",
        attendee_email="zoe@example.com",
        partstat=PartStat.ACCEPTED,
        sequence=2,
        dtstamp=datetime(2026, 11, 5, 12, tzinfo=UTC),
        recurrence_id=None,
        organizer_email="bookings@gateway.example",
        comment="",
    )


def test_google_reply() -> None:
    reply = parse_reply(GOOGLE_REPLY)
    assert reply.partstat is PartStat.DECLINED
    assert reply.attendee_email == "zoe@example.com"
    assert reply.sequence == 0
    assert reply.comment == "Sorry, I cannot make it."
    assert reply.dtstamp == datetime(2026, 11, 5, 12, 15, tzinfo=UTC)


def test_outlook_reply_without_organizer_nor_sequence() -> None:
    reply = parse_reply(OUTLOOK_REPLY)
    assert reply.organizer_email is None
    assert reply.sequence == 0
    assert reply.attendee_email == "Zoe@Example.COM"
    assert reply.partstat is PartStat.TENTATIVE
    assert reply.comment.startswith("Maybe, depends on the train.")


def test_reply_to_our_own_request_round_trips() -> None:
    booking = make_booking(sequence=4)
    request = itip(stored(booking), REQUEST)
    calendar = icalendar.Calendar.from_ical(request)
    calendar["METHOD"] = "REPLY"
    event = calendar.walk("VEVENT")[0]
    attendee = event["ATTENDEE"]
    attendee.params["PARTSTAT"] = "ACCEPTED"
    text = calendar.to_ical().decode()
    reply = parse_reply(text)
    assert (reply.uid, reply.sequence, reply.partstat) == (booking.uid, 4, PartStat.ACCEPTED)
    assert reply_applies(booking, reply) == (True, "applies")


def reply_text(*event_lines: str, method: str = "REPLY") -> str:
    lines = ["BEGIN:VCALENDAR", "VERSION:2.0", "PRODID:-//test//EN"]
    if method:
        lines.append(f"METHOD:{method}")
    lines += ["BEGIN:VEVENT", *event_lines, "END:VEVENT", "END:VCALENDAR", ""]
    return "\r\n".join(lines)


BASIC = ["UID:b1@gateway.test", "DTSTAMP:20261105T120000Z"]


def test_lowercase_mailto_and_defaults() -> None:
    reply = parse_reply(reply_text(*BASIC, "ATTENDEE:mailto:zoe@example.com"))
    assert reply.attendee_email == "zoe@example.com"
    # No PARTSTAT: NEEDS-ACTION (RFC 5545 3.2.12 default).
    assert reply.partstat is PartStat.NEEDS_ACTION
    assert reply.sequence == 0


def test_unknown_partstat_reads_as_needs_action() -> None:
    reply = parse_reply(reply_text(*BASIC, "ATTENDEE;PARTSTAT=X-MAYBE:mailto:zoe@example.com"))
    assert reply.partstat is PartStat.NEEDS_ACTION


def test_urn_uuid_attendee_with_email_parameter() -> None:
    reply = parse_reply(
        reply_text(
            *BASIC,
            "ATTENDEE;EMAIL=zoe@example.com;PARTSTAT=ACCEPTED:urn:uuid:"
            "0b8b2a70-7e6b-4b8a-9d0e-3d6b3c1f2a11",
        )
    )
    assert reply.attendee_email == "zoe@example.com"


def test_reply_about_one_occurrence() -> None:
    reply = parse_reply(
        reply_text(
            *BASIC,
            "RECURRENCE-ID;TZID=Europe/Berlin:20261208T090000",
            "ATTENDEE;PARTSTAT=DECLINED:mailto:zoe@example.com",
        )
    )
    assert reply.recurrence_id == datetime(2026, 12, 8, 9, tzinfo=BERLIN)


def test_several_attendees_one_of_whom_answered() -> None:
    reply = parse_reply(
        reply_text(
            *BASIC,
            "ATTENDEE;PARTSTAT=NEEDS-ACTION:mailto:bob@example.org",
            "ATTENDEE;PARTSTAT=ACCEPTED:mailto:zoe@example.com",
        )
    )
    assert (reply.attendee_email, reply.partstat) == ("zoe@example.com", PartStat.ACCEPTED)


def test_dtstamp_in_a_zone_is_read_in_utc() -> None:
    reply = parse_reply(
        reply_text(
            "UID:x",
            "DTSTAMP;TZID=Europe/Berlin:20261105T130000",
            "ATTENDEE:mailto:zoe@example.com",
        )
    )
    assert reply.dtstamp == datetime(2026, 11, 5, 12, tzinfo=UTC)
    assert reply.dtstamp.tzinfo is UTC


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "empty"),
        ("this is not a calendar", "not iCalendar"),
        (reply_text(*BASIC, "ATTENDEE:mailto:z@x", method="REQUEST"), "METHOD:REPLY"),
        (reply_text(*BASIC, "ATTENDEE:mailto:z@x", method=""), "no METHOD"),
        (
            "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:x\r\nMETHOD:REPLY\r\nEND:VCALENDAR\r\n",
            "no VEVENT",
        ),
        (reply_text("DTSTAMP:20261105T120000Z", "ATTENDEE:mailto:z@x"), "no UID"),
        (reply_text(*BASIC), "no ATTENDEE"),
        (reply_text("UID:x", "ATTENDEE:mailto:z@x"), "no DTSTAMP"),
        (reply_text(*BASIC, "ATTENDEE:mailto:z@x", "SEQUENCE:two"), "SEQUENCE"),
        (reply_text(*BASIC, "ATTENDEE:mailto:z@x", "SEQUENCE:-1"), "negative"),
        (
            reply_text(
                *BASIC,
                "ATTENDEE;PARTSTAT=ACCEPTED:mailto:a@x",
                "ATTENDEE;PARTSTAT=DECLINED:mailto:b@x",
            ),
            "2 attendees",
        ),
        (reply_text(*BASIC, "ATTENDEE:urn:uuid:1234"), "no e-mail"),
    ],
)
def test_unusable_replies(text: str, message: str) -> None:
    with pytest.raises(InvalidReply, match=message) as caught:
        parse_reply(text)
    assert isinstance(caught.value, ValueError)


# -- reply_applies ----------------------------------------------------------------------


def a_reply(**changes: Any) -> ItipReply:
    values: dict[str, Any] = {
        "uid": "b1@gateway.test",
        "attendee_email": "zoe@example.com",
        "partstat": PartStat.ACCEPTED,
        "sequence": 2,
        "dtstamp": datetime(2026, 11, 5, 12, tzinfo=UTC),
    }
    values.update(changes)
    return ItipReply(**values)


BOOKING_AT_2 = make_booking(sequence=2)


def test_a_matching_reply_applies() -> None:
    assert reply_applies(BOOKING_AT_2, a_reply()) == (True, "applies")


def test_attendee_address_is_compared_case_blind() -> None:
    ok, _ = reply_applies(BOOKING_AT_2, a_reply(attendee_email=" ZOE@Example.COM "))
    assert ok


@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        ({"uid": "other@gateway.test"}, "UID"),
        ({"attendee_email": "mallory@example.com"}, "not an attendee"),
        ({"sequence": 1}, "stale"),
        ({"sequence": 3}, "never sent"),
        ({"recurrence_id": datetime(2026, 12, 8, 9, tzinfo=BERLIN)}, "single occurrence"),
    ],
)
def test_replies_that_do_not_apply(changes: dict[str, Any], reason: str) -> None:
    ok, why = reply_applies(BOOKING_AT_2, a_reply(**changes))
    assert not ok
    assert reason in why


def test_stale_reason_names_both_sequences() -> None:
    _, why = reply_applies(BOOKING_AT_2, a_reply(sequence=0))
    assert "SEQUENCE 0" in why and "SEQUENCE 2" in why


def test_no_reply_applies_to_a_cancelled_booking() -> None:
    cancelled = replace(BOOKING_AT_2, status=BookingStatus.CANCELLED)
    assert reply_applies(cancelled, a_reply()) == (False, "the booking is cancelled")


def test_outlook_reply_applies_without_organizer() -> None:
    reply = parse_reply(OUTLOOK_REPLY)
    booking = make_booking(sequence=0)
    assert reply_applies(booking, reply) == (True, "applies")
