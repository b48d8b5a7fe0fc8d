"""Notices to a resource's owner (the Google connect invitation, the
confirmation, the news that another resource took the account), worded when
sent in the resource's language and received by a real SMTP server."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from email.message import EmailMessage
from typing import Any

import pytest

from gateway.core.mirror import Notice
from gateway.core.model import OutboxEffect, OutboxItem
from gateway.core.outbox import PermanentFailure
from gateway.core.outbox_payloads import MailPayload
from gateway.mail import SmtpConfig, SmtpSender
from gateway.mail.notices import NoticeMailer
from gateway.settings import Language
from tests.net import LOOPBACK
from tests.smtp import Recorder, smtp_server

NOW = datetime(2026, 11, 5, 12, tzinfo=UTC)
LANGUAGES: dict[str, Language] = {"anna": "de", "ben": "en"}
URL = "https://gateway.example/google/connect/tok"


@pytest.fixture
def smtp() -> Iterator[tuple[Recorder, int]]:
    with smtp_server() as server:
        yield server


def mailer(port: int) -> NoticeMailer:
    config = SmtpConfig(
        host=LOOPBACK,
        port=port,
        security="none",
        timeout=5.0,
        from_address="bookings@gateway.example",
        from_name="Salon",
    )
    return NoticeMailer(
        SmtpSender(config),
        from_address=config.from_address,
        from_name="Salon",
        language=LANGUAGES.__getitem__,
    )


def item(resource: str, payload: dict[str, Any], number: int = 1) -> OutboxItem:
    mail = MailPayload(to=f"{resource}@example.com", to_name=resource.title(), **payload)
    return OutboxItem(number, OutboxEffect(resource, "", mail), 0, NOW)


def notice(kind: Notice, **values: str) -> dict[str, Any]:
    return {"notice": kind.value, "values": values}


async def sent(smtp: tuple[Recorder, int], *items: OutboxItem) -> list[EmailMessage]:
    recorder, port = smtp
    for one in items:
        await mailer(port).send(one)
    return recorder.messages()


def text(message: EmailMessage) -> str:
    body = message.get_body(preferencelist=("plain",))
    assert body is not None
    return body.get_content().replace("\r\n", "\n")


INVITE = notice(
    Notice.GOOGLE_INVITE, url=URL, expires="2026-11-08T12:00:00+00:00", zone="Europe/Berlin"
)


async def test_the_connect_invitation_in_german_and_english(smtp: tuple[Recorder, int]) -> None:
    german, english = await sent(smtp, item("anna", INVITE, 1), item("ben", INVITE, 2))
    assert str(german["Subject"]) == "Verbinden Sie Ihren Google Kalender"
    body = text(german)
    assert body.startswith("Guten Tag Anna,\n\nbitte verbinden Sie Ihren Google Kalender")
    assert f"\n\n{URL}\n\n" in body
    # The expiry in the resource's zone and language.
    assert "bis Sonntag, 8. November 2026, 13:00 (Mitteleuropäische Normalzeit)." in body

    assert str(english["Subject"]) == "Connect your Google Calendar"
    body = text(english)
    assert body.startswith("Hello Ben,\n\nplease connect your Google Calendar")
    assert "until Sunday, 8 November 2026, 13:00 (Central European Standard Time)." in body


async def test_confirmation_and_takeover(smtp: tuple[Recorder, int]) -> None:
    connected = notice(
        Notice.GOOGLE_CONNECTED, calendar="Salon", account="anna@gmail.com", taken_from="ben"
    )
    one = notice(
        Notice.GOOGLE_TAKEN_OVER,
        account="anna@gmail.com",
        taker="Anna (anna)",
        calendar="Salon",
        removed="1",
    )
    many = {**one, "values": {**one["values"], "removed": "12"}}
    messages = await sent(
        smtp, item("anna", connected, 1), item("anna", one, 2), item("ben", many, 3)
    )
    assert [str(m["Subject"]) for m in messages] == [
        "Google Kalender verbunden",
        "Ihre Termine stehen nicht mehr in Ihrem Google Kalender",
        "Your bookings are no longer in Google Calendar",
    ]
    assert "mit dem Google Kalender „Salon“ von anna@gmail.com abgeglichen" in text(messages[0])
    assert "vorher mit ben verbunden" in text(messages[0])
    # One event or many: the catalog's plural forms.
    assert "der 1 Termin, den das System dort für Sie eingetragen hatte, wird" in text(messages[1])
    assert "the 12 events written there for you are being removed" in text(messages[2])


async def test_a_notice_queued_with_its_words_is_sent_as_it_is(
    smtp: tuple[Recorder, int],
) -> None:
    # Items queued before notices were worded when sent.
    (message,) = await sent(smtp, item("anna", {"subject": "Connect", "text": "Hello\n"}))
    assert str(message["Subject"]) == "Connect"
    assert text(message) == "Hello\n"


@pytest.mark.parametrize(
    "payload",
    [{"notice": "teleport", "values": {}}, notice(Notice.GOOGLE_INVITE, url=URL)],
    ids=["unknown notice", "value missing"],
)
async def test_a_notice_that_cannot_be_worded_fails_for_good(
    smtp: tuple[Recorder, int], payload: dict[str, Any]
) -> None:
    recorder, port = smtp
    with pytest.raises(PermanentFailure, match="cannot be written"):
        await mailer(port).send(item("anna", payload))
    assert recorder.messages() == []
