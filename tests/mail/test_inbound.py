"""Finding bookers' iTIP REPLYs in the e-mails that come back: the shapes
Apple Mail, Gmail and Outlook send (built here with the stdlib ``email``
package), forwards, odd attachments, and broken mail that must not raise."""

from __future__ import annotations

import base64
import email.policy
import re
from email.message import EmailMessage

import pytest

from gateway.core.model import PartStat
from gateway.ical import parse_reply
from gateway.mail import inbound
from gateway.mail.inbound import itip_parts, sender_of
from tests.mail import ORGANIZER

UID = "b1@gateway.test"
NAME = "Zoë Müller"
ADDRESS = "zoe@example.com"
# Longer than 75 octets, so it is folded (RFC 5545 3.1), with non-ASCII text.
COMMENT = "Ich komme gern \u2013 bis Dienstag! Grüße aus Köln, 東京 und überall, wirklich sehr gern"


def reply(
    partstat: str = "ACCEPTED",
    *,
    uid: str = UID,
    method: str | None = "REPLY",
    comment: str = COMMENT,
) -> str:
    """An iTIP REPLY the way calendar clients write one: CRLF, folded lines."""
    lines = [
        "BEGIN:VCALENDAR",
        "VERSION:2.0",
        "PRODID:-//Apple Inc.//macOS 15.1//EN",
        *([f"METHOD:{method}"] if method else []),
        "BEGIN:VEVENT",
        f"UID:{uid}",
        "DTSTAMP:20261105T120000Z",
        "SEQUENCE:0",
        "DTSTART:20261201T080000Z",
        "DTEND:20261201T090000Z",
        "SUMMARY:Haircut",
        f"ORGANIZER;CN=Anna Schmidt:mailto:{ORGANIZER}",
        f'ATTENDEE;CN="{NAME}";PARTSTAT={partstat}:mailto:{ADDRESS}',
        f"COMMENT:{comment}",
        "END:VEVENT",
        "END:VCALENDAR",
    ]
    return "".join(_fold(line) + "\r\n" for line in lines)


def _fold(line: str) -> str:
    """RFC 5545 3.1: at most 75 octets a line, continued after CRLF + space."""
    out, current = [], b""
    for char in line:
        encoded = char.encode("utf-8")
        if len(current) + len(encoded) > 74:
            out.append(current.decode("utf-8"))
            current = b""
        current += encoded
    out.append(current.decode("utf-8"))
    return "\r\n ".join(out)


def headers(message: EmailMessage, subject: str = "Accepted: Haircut") -> EmailMessage:
    message["From"] = f"{NAME} <{ADDRESS}>"
    message["To"] = ORGANIZER
    message["Subject"] = subject
    return message


def wire(message: EmailMessage) -> bytes:
    """The message as it arrives over IMAP: CRLF line ends."""
    return message.as_bytes(policy=email.policy.SMTP)


def calendar(text: str) -> bytes:
    """Calendar text as clients attach it: bytes, so the ``email`` package
    keeps its CRLFs (it rewrites the line ends of str content)."""
    return text.encode("utf-8")


def assert_reply(text: str, partstat: PartStat = PartStat.ACCEPTED) -> None:
    parsed = parse_reply(text)
    assert (parsed.uid, parsed.attendee_email, parsed.partstat) == (UID, ADDRESS, partstat)
    assert COMMENT in re.sub(r"\r?\n[ \t]", "", text)  # decoded, unfolded, all there


# -- client shapes ---------------------------------------------------------------------


def apple_mail(partstat: str = "ACCEPTED") -> EmailMessage:
    """multipart/mixed: a note and the calendar, quoted-printable."""
    message = headers(EmailMessage())
    message.set_content(f"{NAME} has accepted your invitation.\n")
    message.add_attachment(
        reply(partstat),
        subtype="calendar",
        charset="utf-8",
        cte="quoted-printable",
        params={"method": "REPLY"},
        disposition="inline",
        filename="iCal-20261105-120000.ics",
    )
    return message


def gmail() -> EmailMessage:
    """multipart/mixed > multipart/alternative (text, HTML, calendar base64)
    plus the same calendar as an application/ics attachment."""
    message = headers(EmailMessage())
    message.set_content(f"{NAME} has accepted this invitation.\n")
    message.add_alternative(f"<p>{NAME} has accepted this invitation.</p>", subtype="html")
    message.add_alternative(
        calendar(reply()),
        maintype="text",
        subtype="calendar",
        cte="base64",
        params={"charset": "UTF-8", "method": "REPLY"},
    )
    message.add_attachment(
        reply().encode("utf-8"), maintype="application", subtype="ics", filename="invite.ics"
    )
    return message


def outlook() -> EmailMessage:
    """multipart/alternative: text, HTML, calendar (base64, utf-8)."""
    message = headers(EmailMessage())
    message.set_content("Zoë hat zugesagt.\n")
    message.add_alternative("<html><body>Zoë hat zugesagt.</body></html>", subtype="html")
    message.add_alternative(
        calendar(reply()),
        maintype="text",
        subtype="calendar",
        cte="base64",
        params={"charset": "utf-8", "method": "REPLY"},
    )
    return message


def test_apple_mail_quoted_printable() -> None:
    raw = wire(apple_mail())
    assert b"quoted-printable" in raw
    [text] = itip_parts(raw)
    assert_reply(text)
    assert text.startswith("BEGIN:VCALENDAR")


def test_gmail_inline_and_attachment_give_one_reply() -> None:
    raw = wire(gmail())
    assert b"application/ics" in raw and b"invite.ics" in raw
    # The same object twice in one e-mail is handed over once.
    [text] = itip_parts(raw)
    assert_reply(text)


def test_outlook_base64_inline() -> None:
    [text] = itip_parts(wire(outlook()))
    assert_reply(text)
    assert "\r\n" in text  # line ends as the sender wrote them


def test_outlook_application_ics_attachment_only() -> None:
    message = headers(EmailMessage())
    message.set_content("Accepted.\n")
    message.add_attachment(
        reply("DECLINED").encode("utf-8"),
        maintype="application",
        subtype="ics",
        filename="invite.ics",
    )
    [text] = itip_parts(wire(message))
    assert_reply(text, PartStat.DECLINED)


def test_forwarded_reply_inside_message_rfc822() -> None:
    forward = EmailMessage()
    forward["From"] = "assistant@example.com"
    forward["To"] = ORGANIZER
    forward["Subject"] = "Fwd: Accepted: Haircut"
    forward.set_content("See the attached answer.\n")
    forward.add_attachment(apple_mail("TENTATIVE"))  # message/rfc822
    raw = wire(forward)
    assert b"message/rfc822" in raw
    [text] = itip_parts(raw)
    assert_reply(text, PartStat.TENTATIVE)


def test_forwarded_message_sent_base64() -> None:
    # RFC 2046 5.2.1 forbids encoding message/rfc822, some webmailers do it.
    inner = base64.encodebytes(wire(outlook())).replace(b"\n", b"\r\n")
    raw = (
        b"From: assistant@example.com\r\nMIME-Version: 1.0\r\n"
        b'Content-Type: multipart/mixed; boundary="b"\r\n\r\n'
        b"--b\r\nContent-Type: text/plain\r\n\r\nFYI\r\n"
        b"--b\r\nContent-Type: message/rfc822\r\nContent-Transfer-Encoding: base64\r\n\r\n"
        + inner
        + b"--b--\r\n"
    )
    [text] = itip_parts(raw)
    assert_reply(text)


def test_ics_named_attachment_with_a_generic_type() -> None:
    message = headers(EmailMessage())
    message.set_content("My answer is attached.\n")
    message.add_attachment(
        reply().encode("utf-8"),
        maintype="application",
        subtype="octet-stream",
        filename="Invite.ICS",
    )
    # Named .ics but declared an image: not a calendar.
    message.add_attachment(
        reply("DECLINED").encode("utf-8"), maintype="image", subtype="png", filename="x.ics"
    )
    # A generic type without the .ics name: not a calendar either.
    message.add_attachment(
        reply("DECLINED").encode("utf-8"),
        maintype="application",
        subtype="octet-stream",
        filename="notes.txt",
    )
    [text] = itip_parts(wire(message))
    assert_reply(text)


def test_single_part_text_calendar_message() -> None:
    message = headers(EmailMessage())
    message.set_content(
        calendar(reply()), maintype="text", subtype="calendar", params={"method": "REPLY"}
    )
    [text] = itip_parts(wire(message))
    assert_reply(text)


# -- what counts as an iTIP message --------------------------------------------------


def test_ics_without_method_is_ignored() -> None:
    message = headers(EmailMessage(), "My calendar")
    message.set_content("Here is my calendar export.\n")
    message.add_attachment(
        reply(method=None).encode("utf-8"),
        maintype="text",
        subtype="calendar",
        filename="export.ics",
    )
    assert itip_parts(wire(message)) == []


def test_method_inside_a_component_does_not_count() -> None:
    text = reply(method=None).replace("BEGIN:VEVENT\r\n", "BEGIN:VEVENT\r\nMETHOD:REPLY\r\n")
    message = headers(EmailMessage())
    message.set_content(text, subtype="calendar")
    assert itip_parts(wire(message)) == []


def test_folded_and_lower_case_method_line() -> None:
    text = reply().replace("METHOD:REPLY\r\n", "meth\r\n od:REPLY\r\n")
    message = headers(EmailMessage())
    message.set_content(calendar(text), maintype="text", subtype="calendar")
    [found] = itip_parts(wire(message))
    assert found == text


def test_every_itip_object_of_a_part_in_order() -> None:
    text = reply("ACCEPTED", uid="one") + reply(method=None) + reply("DECLINED", uid="two")
    message = headers(EmailMessage())
    message.set_content(calendar(text), maintype="text", subtype="calendar")
    found = itip_parts(wire(message))
    assert [parse_reply(t).uid for t in found] == ["one", "two"]
    assert found == [reply("ACCEPTED", uid="one"), reply("DECLINED", uid="two")]


def two_answers() -> EmailMessage:
    message = headers(EmailMessage())
    message.set_content("Two answers.\n")
    for partstat in ("DECLINED", "ACCEPTED"):
        message.add_attachment(
            calendar(reply(partstat)),
            maintype="text",
            subtype="calendar",
            params={"method": "REPLY"},
        )
    return message


def test_different_replies_in_one_mail_are_all_returned_in_order() -> None:
    found = itip_parts(wire(two_answers()))
    assert [parse_reply(t).partstat for t in found] == [PartStat.DECLINED, PartStat.ACCEPTED]


# -- charsets ----------------------------------------------------------------------------


def test_declared_charset_is_used() -> None:
    text = reply(comment="Grüße aus Köln")
    raw = (
        b"From: zoe@example.com\r\nMIME-Version: 1.0\r\n"
        b"Content-Type: text/calendar; method=REPLY; charset=iso-8859-1\r\n"
        b"Content-Transfer-Encoding: 8bit\r\n\r\n" + text.encode("latin-1")
    )
    assert itip_parts(raw) == [text]


# punycode, idna and base64 are Python codecs but no charsets: they raise
# other errors than a decode error, or turn the text into anything.
@pytest.mark.parametrize(
    "charset", [None, "us-ascii", "x-unknown-charset", "punycode", "idna", "base64", "undefined"]
)
def test_utf8_behind_a_missing_or_wrong_charset(charset: str | None) -> None:
    content_type = "text/calendar; method=REPLY" + (f"; charset={charset}" if charset else "")
    raw = (
        f"From: zoe@example.com\r\nMIME-Version: 1.0\r\nContent-Type: {content_type}\r\n"
        "Content-Transfer-Encoding: 8bit\r\n\r\n"
    ).encode() + ("\ufeff" + reply()).encode("utf-8")
    [found] = itip_parts(raw)
    assert found == reply()  # the byte order mark is gone too


# -- broken mail -----------------------------------------------------------------------


@pytest.mark.parametrize(
    "raw",
    [
        b"",
        b"\x00\xff\xfe garbage \r\n\r\n\x80\x81",
        b"Content-Type: multipart/mixed\r\n\r\nno boundary at all\r\n",
        b'Content-Type: multipart/mixed; boundary="x"\r\n\r\n--x\r\n',
        b"Content-Type: text/calendar\r\nContent-Transfer-Encoding: base64\r\n\r\n!!not*base64",
        b"Content-Type: text/calendar; charset=\xff\xfe\r\n\r\nBEGIN:VCALENDAR\r\n",
        b"Content-Type: message/rfc822\r\n\r\n",
        b"Content-Type: message/rfc822\r\nContent-Transfer-Encoding: base64\r\n\r\n%%%%\r\n",
        b"From: =?utf-8?q?broken\r\nContent-Type: ;;;\r\n\r\nbody",
        b"Content-Type: text/calendar\r\n\r\nBEGIN:VCALENDAR\r\nEND:VEVENT\r\nEND:VEVENT\r\n",
    ],
)
def test_broken_mime_does_not_raise(raw: bytes) -> None:
    assert itip_parts(raw) == []


def test_deeply_nested_multiparts_do_not_raise() -> None:
    depth = 400
    raw = b"Content-Type: text/plain\r\n\r\n"
    opening = b"".join(
        b'Content-Type: multipart/mixed; boundary="b%d"\r\n\r\n--b%d\r\n' % (i, i)
        for i in range(depth)
    )
    closing = b"".join(b"\r\n--b%d--\r\n" % i for i in reversed(range(depth)))
    assert itip_parts(opening + raw + closing) == []


def test_truncated_mail_still_gives_what_is_there() -> None:
    raw = wire(gmail())
    # Cut inside the invite.ics attachment: the inline calendar is whole.
    cut = raw[: raw.index(b"invite.ics") + 200]
    [text] = itip_parts(cut)
    assert_reply(text)


def test_a_calendar_cut_off_before_its_end_is_left_out() -> None:
    text = reply()
    cut = text[: text.index("PARTSTAT")]  # METHOD is there, the answer is not
    message = headers(EmailMessage())
    message.set_content(calendar(cut), maintype="text", subtype="calendar")
    assert itip_parts(wire(message)) == []


def test_unreadable_part_does_not_hide_the_others() -> None:
    raw = (
        b'From: zoe@example.com\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary="b"'
        b"\r\n\r\n--b\r\nContent-Type: text/calendar; charset=utf-8\r\n"
        b"Content-Transfer-Encoding: base64\r\n\r\n@@@@ not base64 @@@@\r\n"
        b"--b\r\nContent-Type: text/calendar; method=REPLY; charset=utf-8\r\n"
        b"Content-Transfer-Encoding: base64\r\n\r\n"
        + base64.encodebytes(reply().encode()).replace(b"\n", b"\r\n")
        + b"--b--\r\n"
    )
    [text] = itip_parts(raw)
    assert_reply(text)


def test_a_part_that_fails_to_decode_does_not_hide_the_others(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    real_decode = inbound._decode
    calls = []

    def flaky(data: bytes, declared: str | None) -> str:
        calls.append(data)
        if len(calls) == 1:
            raise RuntimeError("some decoder bug")
        return real_decode(data, declared)

    monkeypatch.setattr(inbound, "_decode", flaky)
    found = itip_parts(wire(two_answers()))
    assert len(calls) == 2
    assert [parse_reply(t).partstat for t in found] == [PartStat.ACCEPTED]


# -- sender --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        (f"{NAME} <Zoe@Example.COM>", "zoe@example.com"),
        ("=?utf-8?q?Zo=C3=AB_M=C3=BCller?= <zoe@example.com>", "zoe@example.com"),
        ("zoe@example.com", "zoe@example.com"),
        ('"Müller, Zoë" <zoe@example.com>, other@example.com', "zoe@example.com"),
        ("Friends: zoe@example.com;", "zoe@example.com"),
        ("<>", ""),
        ("", ""),
    ],
)
def test_sender_of(header: str, expected: str) -> None:
    raw = f"From: {header}\r\nSubject: hi\r\n\r\nbody\r\n".encode()
    assert sender_of(raw) == expected


def test_sender_of_real_replies() -> None:
    assert sender_of(wire(apple_mail())) == ADDRESS
    assert sender_of(wire(gmail())) == ADDRESS


@pytest.mark.parametrize(
    "raw",
    [b"", b"Subject: no sender\r\n\r\nbody", b"\x00\xff", b"From: <<<@@>>>\r\n\r\n"],
)
def test_sender_of_without_a_usable_from(raw: bytes) -> None:
    assert sender_of(raw) == ""
