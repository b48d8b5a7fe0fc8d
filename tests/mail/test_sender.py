"""The SMTP sender against a real SMTP server (aiosmtpd) on loopback: plain,
STARTTLS, implicit TLS and AUTH; and how failures are classified for the
outbox worker's retries."""

from __future__ import annotations

import asyncio
import email
import email.errors
import email.policy
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any

import aiosmtplib
import pytest
from aiosmtpd.smtp import AuthResult, LoginPassword

from gateway.core.errors import StorageFull
from gateway.core.invitations import InvitationKind
from gateway.ical import render_itip
from gateway.mail import MailDeliveryError, SmtpConfig, SmtpSender, build_invitation
from gateway.mail.sender import classify
from tests.mail import ANNA, ORGANIZER, ZOE, make_booking, stored
from tests.net import free_port
from tests.smtp import Recorder, smtp_server
from tests.tls import Certificate, make_certificate

HOST = "127.0.0.1"
NOW = datetime(2026, 11, 5, 12, tzinfo=UTC)


@dataclass
class Server:
    recorder: Recorder
    port: int


def start(controller_kwargs: dict[str, Any]) -> Iterator[Server]:
    with smtp_server(**controller_kwargs) as (recorder, port):
        yield Server(recorder, port)


@pytest.fixture
def server() -> Iterator[Server]:
    yield from start({})


def invitation(to: str = ZOE.email) -> Any:
    booking = make_booking(title="Beratung 💬 相談")
    calendar = render_itip(stored(booking), ANNA, InvitationKind.REQUEST, ORGANIZER, NOW)
    return build_invitation(
        calendar=calendar,
        kind=InvitationKind.REQUEST,
        booking=booking,
        attendee=replace(ZOE, email=to),
        organizer_address=ORGANIZER,
        organizer_name="Anna Schmidt",
        date=NOW,
        language="en",
    )


def config(port: int = 25, **changes: Any) -> SmtpConfig:
    values: dict[str, Any] = {
        "host": HOST,
        "port": port,
        "security": "none",
        "timeout": 5.0,
        "from_address": "bounces@gateway.example",
        "from_name": "Gateway",
    }
    values.update(changes)
    return SmtpConfig(**values)


def received_calendar(envelope: Any) -> bytes:
    parsed = email.message_from_bytes(envelope.content, policy=email.policy.default)
    for part in parsed.walk():
        if part.get_content_type() == "text/calendar":
            data = part.get_payload(decode=True)
            assert isinstance(data, bytes)
            return data
    raise AssertionError("no text/calendar part")


# -- delivery ---------------------------------------------------------------------------


async def test_message_arrives_intact(server: Server) -> None:
    message = invitation()
    await SmtpSender(config(server.port)).send(message)
    [envelope] = server.recorder.envelopes
    assert envelope.mail_from == "bounces@gateway.example"
    assert envelope.rcpt_tos == [ZOE.email]
    # What the server got is what we built, CRLF for CRLF.
    assert envelope.content == message.as_bytes(policy=email.policy.SMTP)
    calendar = received_calendar(envelope)
    assert calendar.startswith(b"BEGIN:VCALENDAR\r\n") and b"METHOD:REQUEST\r\n" in calendar


async def test_envelope_sender_defaults_to_from_header(server: Server) -> None:
    await SmtpSender(config(server.port, from_address="")).send(invitation())
    assert server.recorder.envelopes[0].mail_from == ORGANIZER


# -- TLS and AUTH ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> Certificate:
    return make_certificate(tmp_path_factory.mktemp("tls"))


def authenticator(
    server: Any, session: Any, envelope: Any, mechanism: str, auth_data: Any
) -> AuthResult:
    ok = isinstance(auth_data, LoginPassword) and (auth_data.login, auth_data.password) == (
        b"gateway",
        b"s3cret",
    )
    # handled=False: aiosmtpd answers 535 itself.
    return AuthResult(success=ok, handled=False)


@pytest.fixture
def starttls_server(certificate: Certificate) -> Iterator[Server]:
    yield from start(
        {
            "tls_context": certificate.server_context,
            "require_starttls": True,
            "auth_required": True,
            "authenticator": authenticator,
        }
    )


@pytest.fixture
def tls_server(certificate: Certificate) -> Iterator[Server]:
    yield from start({"ssl_context": certificate.server_context})


async def test_starttls_with_auth(starttls_server: Server, certificate: Certificate) -> None:
    sender = SmtpSender(
        config(
            starttls_server.port,
            security="starttls",
            username="gateway",
            password="s3cret",
            tls_context=certificate.client_context,
        )
    )
    await sender.send(invitation())
    assert len(starttls_server.recorder.envelopes) == 1


async def test_wrong_password_is_permanent(
    starttls_server: Server, certificate: Certificate
) -> None:
    sender = SmtpSender(
        config(
            starttls_server.port,
            security="starttls",
            username="gateway",
            password="wrong",
            tls_context=certificate.client_context,
        )
    )
    with pytest.raises(MailDeliveryError) as caught:
        await sender.send(invitation())
    assert (caught.value.transient, caught.value.code) == (False, 535)


async def test_untrusted_certificate_is_a_transient_failure(starttls_server: Server) -> None:
    # The default context verifies the self-signed certificate and fails;
    # the operator fixes the trust store, the outbox retries meanwhile.
    sender = SmtpSender(config(starttls_server.port, security="starttls", timeout=2.0))
    with pytest.raises(MailDeliveryError) as caught:
        await sender.send(invitation())
    assert caught.value.transient
    assert starttls_server.recorder.envelopes == []


async def test_starttls_required_but_not_offered_is_permanent(server: Server) -> None:
    with pytest.raises(MailDeliveryError) as caught:
        await SmtpSender(config(server.port, security="starttls")).send(invitation())
    assert not caught.value.transient
    assert server.recorder.envelopes == []


async def test_implicit_tls(tls_server: Server, certificate: Certificate) -> None:
    sender = SmtpSender(
        config(tls_server.port, security="tls", tls_context=certificate.client_context)
    )
    await sender.send(invitation())
    assert len(tls_server.recorder.envelopes) == 1


# -- failures -------------------------------------------------------------------------------


async def test_connection_refused_is_transient() -> None:
    with pytest.raises(MailDeliveryError) as caught:
        await SmtpSender(config(free_port())).send(invitation())
    assert caught.value.transient
    assert caught.value.code is None


@pytest.fixture
async def silent_server() -> AsyncIterator[int]:
    """Accepts connections and never says a word."""

    async def hold(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read()
        writer.close()

    server = await asyncio.start_server(hold, HOST, 0)
    port: int = server.sockets[0].getsockname()[1]
    yield port
    server.close()
    await server.wait_closed()


async def test_timeout_is_transient(silent_server: int) -> None:
    with pytest.raises(MailDeliveryError) as caught:
        await SmtpSender(config(silent_server, timeout=0.2)).send(invitation())
    assert caught.value.transient


async def test_recipient_refused_permanently(server: Server) -> None:
    with pytest.raises(MailDeliveryError) as caught:
        await SmtpSender(config(server.port)).send(invitation("reject-550@example.com"))
    assert (caught.value.transient, caught.value.code) == (False, 550)
    assert "reject-550@example.com" in str(caught.value)


async def test_recipient_refused_for_now(server: Server) -> None:
    with pytest.raises(MailDeliveryError) as caught:
        await SmtpSender(config(server.port)).send(invitation("reject-451@example.com"))
    assert (caught.value.transient, caught.value.code) == (True, 451)


async def test_partial_delivery_is_not_retried(server: Server) -> None:
    message = invitation()
    message["Cc"] = "reject-550@example.com"
    with pytest.raises(MailDeliveryError) as caught:
        await SmtpSender(config(server.port)).send(message)
    assert not caught.value.transient
    # Delivered to the recipient that was accepted: a retry would duplicate it.
    assert server.recorder.envelopes[0].rcpt_tos == [ZOE.email]


# -- configuration --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"security": "ssl"}, "security"),
        ({"port": 0}, "port"),
        ({"timeout": 0}, "timeout"),
        ({"username": "only-user"}, "together"),
    ],
)
def test_bad_configuration(changes: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        config(**({"port": 25} | changes))


def test_password_is_not_in_repr() -> None:
    assert "s3cret" not in repr(config(25, username="u", password="s3cret"))


# -- which failures are retried: one rule, as a table ---------------------------------------


def _refused(*codes: int) -> aiosmtplib.SMTPRecipientsRefused:
    return aiosmtplib.SMTPRecipientsRefused(
        [aiosmtplib.SMTPRecipientRefused(c, "no", f"r{c}@example.com") for c in codes]
    )


@pytest.mark.parametrize(
    ("error", "in_data", "outcome"),
    [
        # RFC 5321 4.2.1: 5yz for good, 4yz for now.
        (_refused(550), False, "permanent"),
        (_refused(451), False, "transient"),
        (_refused(550, 452), False, "transient"),  # a retry may reach the 452 one
        (aiosmtplib.SMTPDataError(554, "rejected"), True, "permanent"),
        (aiosmtplib.SMTPDataError(451, "try later"), True, "transient"),
        (aiosmtplib.SMTPSenderRefused(553, "no relay", "b@gateway.example"), False, "permanent"),
        (aiosmtplib.SMTPAuthenticationError(535, "bad credentials"), False, "permanent"),
        (aiosmtplib.SMTPAuthenticationError(454, "temporary auth failure"), False, "transient"),
        # The network and the server's pace.
        (ConnectionRefusedError(111, "Connection refused"), False, "transient"),
        (aiosmtplib.SMTPConnectError("cannot connect"), False, "transient"),
        (aiosmtplib.SMTPServerDisconnected("gone"), True, "transient"),
        (aiosmtplib.SMTPReadTimeoutError("timed out"), False, "transient"),
        (aiosmtplib.SMTPReadTimeoutError("timed out"), True, "maybe delivered"),
        # What no later attempt changes.
        (aiosmtplib.SMTPNotSupported("SMTPUTF8 is not supported"), False, "permanent"),
        (aiosmtplib.SMTPException("STARTTLS extension not supported"), False, "permanent"),
        (email.errors.NonASCIILocalPartDefect("local-part has non-ASCII"), False, "permanent"),
        (UnicodeEncodeError("ascii", "zoë", 2, 3, "no"), False, "permanent"),
        (ValueError("'zoe' is not an e-mail address"), False, "permanent"),
        # Not a mail failure at all: not for the mail rule to decide.
        (StorageFull("SQLite: database or disk is full"), False, None),
        (RuntimeError("bug"), False, None),
    ],
)
def test_failure_classification(error: BaseException, in_data: bool, outcome: str | None) -> None:
    failure = classify(error, in_data=in_data, data_timeout=60.0)
    if outcome is None:
        assert failure is None
        return
    assert failure is not None
    assert failure.transient == (outcome != "permanent")
    assert ("may have been delivered" in str(failure)) == (outcome == "maybe delivered")


# -- a slow final acknowledgement (RFC 5321 4.5.3.2.6) ----------------------------------------


async def test_a_slow_acknowledgement_within_data_timeout_is_one_delivery(server: Server) -> None:
    server.recorder.data_delay = 1.5  # longer than timeout, shorter than data_timeout
    accepted = []

    async def note() -> None:
        accepted.append(True)

    await SmtpSender(config(server.port, timeout=0.5, data_timeout=5.0)).send(invitation(), note)
    assert len(server.recorder.envelopes) == 1
    assert accepted == [True]


async def test_an_acknowledgement_past_data_timeout_may_have_delivered(server: Server) -> None:
    server.recorder.data_delay = 1.0
    with pytest.raises(MailDeliveryError) as caught:
        await SmtpSender(config(server.port, timeout=5.0, data_timeout=0.3)).send(invitation())
    assert caught.value.transient
    assert "may have been delivered" in str(caught.value)
    assert len(server.recorder.envelopes) == 1


async def test_done_is_recorded_before_the_goodbye(server: Server) -> None:
    """``accepted`` runs on the server's acknowledgement, not after QUIT: a
    crash while QUIT is answered must not leave the message looking unsent."""
    server.recorder.hold_quit_for = ZOE.email
    accepted = asyncio.Event()

    async def note() -> None:
        accepted.set()

    sending = asyncio.create_task(SmtpSender(config(server.port)).send(invitation(), note))
    await server.recorder.wait_held("quit")
    assert accepted.is_set()
    server.recorder.release()
    await asyncio.wait_for(sending, 10)
