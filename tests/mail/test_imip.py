"""iMIP e-mails: the MIME tree, CRLF on the wire, headers, escaping, and the
calendar part read back with the stdlib parser, icalendar and vobject."""

from __future__ import annotations

import email
import email.policy
import re
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from email.policy import SMTP
from email.utils import parsedate_to_datetime

import icalendar
import pytest
import vobject

from gateway.core.invitations import CalendarLinks, InvitationKind
from gateway.core.model import Attendee, Booking, BookingStatus
from gateway.ical import render_itip
from gateway.links.add_to_calendar import calendar_links
from gateway.mail import build_invitation, build_plain_mail
from gateway.mail.imip import invitation_message_id
from gateway.settings import Language
from tests.mail import ANNA, BERLIN, ORGANIZER, ZOE, make_booking, moved, stored

NOW = datetime(2026, 11, 5, 12, 0, tzinfo=UTC)
ICS_URL = "https://gateway.example/bookings/b1.ics"
ACCEPT = "https://gateway.example/rsvp/accept-token"
DECLINE = "https://gateway.example/rsvp/decline-token"


def invitation(
    booking: Booking,
    kind: InvitationKind = InvitationKind.REQUEST,
    *,
    attendee: Attendee = ZOE,
    links: CalendarLinks | None = None,
    answers: bool = True,
    date: datetime = NOW,
    language: Language = "en",
) -> tuple[EmailMessage, str]:
    calendar = render_itip(stored(booking), ANNA, kind, ORGANIZER, NOW)
    message = build_invitation(
        calendar=calendar,
        kind=kind,
        booking=booking,
        attendee=attendee,
        organizer_address=ORGANIZER,
        organizer_name="Anna Schmidt",
        links=links or calendar_links(booking, ICS_URL),
        accept_url=ACCEPT if answers else None,
        decline_url=DECLINE if answers else None,
        date=date,
        language=language,
    )
    return message, calendar


def wire(message: EmailMessage) -> bytes:
    return message.as_bytes(policy=SMTP)


def reparse(message: EmailMessage) -> EmailMessage:
    parsed = email.message_from_bytes(wire(message), policy=email.policy.default)
    assert isinstance(parsed, EmailMessage)
    return parsed


def tree(part: EmailMessage) -> object:
    if part.is_multipart():
        return (part.get_content_type(), [tree(p) for p in part.iter_parts()])
    return part.get_content_type()


def parts(message: EmailMessage) -> dict[str, EmailMessage]:
    """The leaves by content type (each appears once in an invitation)."""
    found: dict[str, EmailMessage] = {}
    for part in message.walk():
        if not part.is_multipart():
            assert part.get_content_type() not in found
            found[part.get_content_type()] = part  # type: ignore[assignment]
    return found


BOOKING = make_booking(
    title="Beratung 💬 相談 <Haar> & Bart",
    location="Hauptstraße 1 — 東京 🗼",
    description='Bring "nothing".\n<script>alert(1)</script>',
)


def test_mime_tree() -> None:
    message, _ = invitation(BOOKING)
    parsed = reparse(message)
    assert tree(parsed) == (
        "multipart/mixed",
        [
            ("multipart/alternative", ["text/plain", "text/html", "text/calendar"]),
            "application/ics",
        ],
    )
    assert parsed["MIME-Version"] == "1.0"
    for part in parsed.walk():
        if part is not parsed:
            assert "MIME-Version" not in part


def test_crlf_on_the_wire_and_short_lines() -> None:
    message, _ = invitation(BOOKING)
    data = wire(message)
    assert b"\n" not in data.replace(b"\r\n", b"")
    assert b"\r" not in data.replace(b"\r\n", b"")
    # RFC 5322 2.1.1: at most 998 characters, 78 recommended.
    assert max(len(line) for line in data.split(b"\r\n")) <= 78
    # 7-bit clean: every part is transfer-encoded, so no relay needs 8BITMIME.
    assert data.isascii()


@pytest.mark.parametrize("kind", list(InvitationKind))
def test_calendar_part_is_the_itip_text(kind: InvitationKind) -> None:
    booking = (
        moved(BOOKING, status=BookingStatus.CANCELLED) if kind is InvitationKind.CANCEL else BOOKING
    )
    message, calendar = invitation(booking, kind)
    found = parts(reparse(message))
    inline = found["text/calendar"]
    assert inline.get_param("method") == kind.value
    assert inline.get_content_charset() == "utf-8"
    assert inline.get_content_disposition() is None  # inline, part of the body
    assert inline["Content-Transfer-Encoding"] == "base64"
    data = inline.get_payload(decode=True)
    assert isinstance(data, bytes)
    # Byte for byte, CRLFs and folding included.
    assert data == calendar.encode("utf-8")
    text = data.decode("utf-8")

    ical = icalendar.Calendar.from_ical(text)
    assert str(ical["METHOD"]) == inline.get_param("method")
    assert str(ical.walk("VEVENT")[0]["SUMMARY"]) == BOOKING.title
    vcal = vobject.readOne(text)
    assert vcal.method.value == kind.value
    assert vcal.vevent.location.value == BOOKING.location

    attachment = found["application/ics"]
    assert attachment.get_content_disposition() == "attachment"
    assert attachment.get_filename() == "invite.ics"
    assert attachment.get_payload(decode=True) == calendar.encode("utf-8")


def test_headers() -> None:
    message, _ = invitation(BOOKING)
    parsed = reparse(message)
    assert parsed["From"].addresses[0].addr_spec == ORGANIZER
    assert parsed["From"].addresses[0].display_name == "Anna Schmidt"
    assert parsed["To"].addresses[0].addr_spec == "zoe@example.com"
    assert parsed["To"].addresses[0].display_name == "Zoë Müller"
    assert parsed["Reply-To"].addresses[0].addr_spec == ORGANIZER
    assert str(parsed["Subject"]) == (
        "Invitation: Beratung 💬 相談 <Haar> & Bart @ Tue, 1 Dec 2026, 09:00 "
        "(Central European Standard Time)"
    )
    assert parsedate_to_datetime(str(parsed["Date"])) == NOW
    assert re.fullmatch(r"<imip\.[0-9a-f]{32}\.0\.request@gateway\.example>", parsed["Message-ID"])


def test_subjects_follow_the_kind_and_sequence() -> None:
    updated = moved(
        BOOKING, start=BOOKING.start + timedelta(days=1), end=BOOKING.end + timedelta(days=1)
    )
    assert str(reparse(invitation(updated)[0])["Subject"]).startswith("Updated invitation: ")
    cancelled = moved(BOOKING, status=BookingStatus.CANCELLED)
    cancel, _ = invitation(cancelled, InvitationKind.CANCEL)
    assert str(reparse(cancel)["Subject"]).startswith("Cancelled: ")


def test_message_id_is_stable_per_invitation() -> None:
    one, _ = invitation(BOOKING, date=NOW)
    retry, _ = invitation(BOOKING, date=NOW + timedelta(minutes=5))
    assert one["Message-ID"] == retry["Message-ID"]
    others = {
        invitation(moved(BOOKING))[0]["Message-ID"],
        invitation(moved(BOOKING, status=BookingStatus.CANCELLED), InvitationKind.CANCEL)[0][
            "Message-ID"
        ],
        invitation(BOOKING, attendee=Attendee("bob@example.org", "Bob"))[0]["Message-ID"],
        invitation_message_id(
            make_booking(id="b2"), "zoe@example.com", InvitationKind.REQUEST, ORGANIZER
        ),
    }
    assert one["Message-ID"] not in others
    assert len(others) == 4
    # The recipient's address case does not make a different message.
    assert (
        invitation_message_id(BOOKING, "ZOE@example.com", InvitationKind.REQUEST, ORGANIZER)
        == one["Message-ID"]
    )


def test_text_parts() -> None:
    message, _ = invitation(BOOKING)
    found = parts(reparse(message))
    plain = found["text/plain"].get_content()
    assert "Beratung 💬 相談 <Haar> & Bart" in plain
    assert (
        "When: Tuesday, 1 December 2026, 09:00\u201310:00 (Central European Standard Time)" in plain
    )
    assert "Where: Hauptstraße 1 — 東京 🗼" in plain
    links = calendar_links(BOOKING, ICS_URL)
    for url in (*links.as_dict().values(), ACCEPT, DECLINE):
        assert url in plain

    html = found["text/html"].get_content()
    assert "<script>" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "Beratung 💬 相談 &lt;Haar&gt; &amp; Bart" in html
    assert "Bring &quot;nothing&quot;.<br>" in html
    # URLs in attributes are escaped too ("&" between parameters).
    assert f'href="{links.google.replace("&", "&amp;")}"' in html
    assert f'href="{ACCEPT}"' in html


def test_cancel_offers_no_links_and_no_answers() -> None:
    cancelled = moved(BOOKING, status=BookingStatus.CANCELLED)
    message, _ = invitation(cancelled, InvitationKind.CANCEL)
    found = parts(reparse(message))
    plain = found["text/plain"].get_content()
    assert "cancelled" in plain
    assert "calendar.google.com" not in plain and ACCEPT not in plain
    assert "calendar.google.com" not in found["text/html"].get_content()


def test_all_day_and_multi_day_times() -> None:
    all_day = make_booking(
        start=datetime(2026, 12, 1, tzinfo=BERLIN),
        end=datetime(2026, 12, 3, tzinfo=BERLIN),
    )
    plain = parts(reparse(invitation(all_day)[0]))["text/plain"].get_content()
    assert "When: Tuesday, 1 December 2026 \u2013 Wednesday, 2 December 2026 (all day)" in plain
    overnight = make_booking(
        start=datetime(2026, 12, 1, 22, tzinfo=BERLIN),
        end=datetime(2026, 12, 2, 1, 30, tzinfo=BERLIN),
    )
    plain = parts(reparse(invitation(overnight)[0]))["text/plain"].get_content()
    assert (
        "When: Tuesday, 1 December 2026, 22:00 \u2013 Wednesday, 2 December 2026, 01:30 "
        "(Central European Standard Time)" in plain
    )


def test_german_invitation() -> None:
    message, calendar = invitation(BOOKING, language="de")
    parsed = reparse(message)
    assert str(parsed["Subject"]) == (
        "Einladung: Beratung 💬 相談 <Haar> & Bart @ Di., 1. Dez. 2026, 09:00 "
        "(Mitteleuropäische Normalzeit)"
    )
    found = parts(parsed)
    plain = found["text/plain"].get_content()
    assert "Sie haben einen Termin bei Anna Schmidt." in plain
    assert (
        "Wann: Dienstag, 1. Dezember 2026, 09:00\u201310:00 Uhr (Mitteleuropäische Normalzeit)"
        in plain
    )
    assert "Wo: Hauptstraße 1 — 東京 🗼" in plain
    assert "Mit: Anna Schmidt" in plain
    assert f"Kommen Sie?\r\nZusagen: {ACCEPT}\r\nAbsagen: {DECLINE}" in plain
    links = calendar_links(BOOKING, ICS_URL)
    assert "In Ihren Kalender eintragen:" in plain
    assert f"Google Kalender: {links.google}" in plain
    assert f"Herunterladen (.ics): {links.ics}" in plain
    html = found["text/html"].get_content()
    assert '<html lang="de">' in html
    assert parsed["Content-Language"] == "de"
    assert f'<a href="{ACCEPT}">Zusagen</a>' in html
    assert '<th align="left">Wann</th>' in html
    # The calendar is the same in every language.
    assert found["text/calendar"].get_payload(decode=True) == calendar.encode("utf-8")
    english = parts(reparse(invitation(BOOKING)[0]))
    assert '<html lang="en">' in english["text/html"].get_content()
    assert english["text/calendar"].get_payload(decode=True) == calendar.encode("utf-8")


def test_german_updates_and_cancellations() -> None:
    updated = moved(
        BOOKING, start=BOOKING.start + timedelta(days=1), end=BOOKING.end + timedelta(days=1)
    )
    parsed = reparse(invitation(updated, language="de")[0])
    assert str(parsed["Subject"]).startswith("Aktualisierte Einladung: ")
    plain = parts(parsed)["text/plain"].get_content()
    assert "Dieser Termin hat sich geändert. Diese Angaben ersetzen die früheren." in plain
    cancelled = moved(BOOKING, status=BookingStatus.CANCELLED)
    parsed = reparse(invitation(cancelled, InvitationKind.CANCEL, language="de")[0])
    assert str(parsed["Subject"]) == (
        "Abgesagt: Beratung 💬 相談 <Haar> & Bart @ Di., 1. Dez. 2026, 09:00 "
        "(Mitteleuropäische Normalzeit)"
    )
    plain = parts(parsed)["text/plain"].get_content()
    assert "Dieser Termin wurde abgesagt." in plain
    assert "Kommen Sie?" not in plain and "Zusagen" not in plain
    all_day = make_booking(
        start=datetime(2026, 12, 1, tzinfo=BERLIN), end=datetime(2026, 12, 2, tzinfo=BERLIN)
    )
    plain = parts(reparse(invitation(all_day, language="de")[0]))["text/plain"].get_content()
    assert "Wann: Dienstag, 1. Dezember 2026 (ganztägig)" in plain


def test_header_injection_is_defused() -> None:
    booking = make_booking(title="Haircut\r\nBcc: victim@example.net")
    attendee = Attendee("zoe@example.com", "Zoë\r\nBcc: other@example.net")
    parsed = reparse(invitation(booking, attendee=attendee)[0])
    assert "Bcc" not in parsed
    assert "\n" not in str(parsed["Subject"])
    assert parsed["To"].addresses[0].addr_spec == "zoe@example.com"


@pytest.mark.parametrize(
    "address", ["zoe", "zoe@", "@example.com", "zoe @example.com", "a@b\r\nX: y"]
)
def test_bad_addresses_are_refused(address: str) -> None:
    with pytest.raises(ValueError, match="e-mail address"):
        invitation(BOOKING, attendee=Attendee(address, "Zoe"))


def test_method_must_match_the_calendar() -> None:
    calendar = render_itip(stored(BOOKING), ANNA, InvitationKind.REQUEST, ORGANIZER, NOW)
    with pytest.raises(ValueError, match="METHOD:REQUEST"):
        build_invitation(
            calendar=calendar,
            kind=InvitationKind.CANCEL,
            booking=BOOKING,
            attendee=ZOE,
            organizer_address=ORGANIZER,
            organizer_name="Anna Schmidt",
            language="en",
        )


def test_without_links_or_answers() -> None:
    calendar = render_itip(stored(BOOKING), ANNA, InvitationKind.REQUEST, ORGANIZER, NOW)
    message = build_invitation(
        calendar=calendar,
        kind=InvitationKind.REQUEST,
        booking=BOOKING,
        attendee=ZOE,
        organizer_address=ORGANIZER,
        organizer_name="",
        language="en",
    )
    parsed = reparse(message)
    plain = parts(parsed)["text/plain"].get_content()
    assert "http" not in plain
    assert parsed["From"].addresses[0].display_name == ""
    assert parsedate_to_datetime(str(parsed["Date"])) <= datetime.now(UTC)


# -- plain notices ------------------------------------------------------------------------


def test_plain_mail_text_only() -> None:
    message = build_plain_mail(
        to="anna@example.com",
        subject="Verbinde deinen Kalender ✅",
        text="Hallo Anna,\nbitte hier klicken: https://gateway.example/google/connect/x\n",
        from_address=ORGANIZER,
        from_name="Calendar gateway",
        date=NOW,
    )
    data = wire(message)
    assert b"\n" not in data.replace(b"\r\n", b"")
    parsed = reparse(message)
    assert parsed.get_content_type() == "text/plain"
    assert str(parsed["Subject"]) == "Verbinde deinen Kalender ✅"
    # Whatever the transfer encoding, the lines end in CRLF once on the wire.
    assert parsed.get_content().replace("\r\n", "\n").startswith("Hallo Anna,\nbitte")
    assert parsed["Message-ID"].endswith("@gateway.example>")
    assert "Reply-To" not in parsed


def test_plain_mail_with_html() -> None:
    message = build_plain_mail(
        to="anna@example.com",
        to_name="Anna",
        subject="Hi",
        text="plain",
        html="<p>rich</p>",
        from_address=ORGANIZER,
        reply_to="support@gateway.example",
        message_id="<fixed@gateway.example>",
    )
    parsed = reparse(message)
    assert tree(parsed) == ("multipart/alternative", ["text/plain", "text/html"])
    assert parsed["Message-ID"] == "<fixed@gateway.example>"
    assert parsed["Reply-To"].addresses[0].addr_spec == "support@gateway.example"
    assert parts(parsed)["text/html"].get_content().rstrip() == "<p>rich</p>"
