"""The mailbox poller through the real ``imaplib`` against the fake IMAP
server on loopback: at-least-once hand-over, flags, moving to a processed
folder, TLS, and how failures are classified."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from typing import Any

import pytest

from gateway.core.model import PartStat
from gateway.ical import parse_reply
from gateway.mail.imap import ImapConfig, ImapInbox, InboxError
from gateway.mail.inbound import itip_parts, sender_of
from tests.fakes.imap_server import DELETED, SEEN, FakeImapServer
from tests.mail import ORGANIZER
from tests.tls import Certificate, make_certificate

HOST = "127.0.0.1"
USER = ORGANIZER
PASSWORD = "imap-s3cret"
WAIT = 5.0  # seconds: the bound of every wait in these tests


def mail(n: int, partstat: str = "ACCEPTED") -> bytes:
    """A small iMIP reply, numbered so tests can tell messages apart."""
    calendar = (
        "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//test//EN\r\nMETHOD:REPLY\r\n"
        f"BEGIN:VEVENT\r\nUID:booking-{n}@gateway.test\r\nDTSTAMP:20261105T120000Z\r\n"
        f"ATTENDEE;PARTSTAT={partstat}:mailto:zoe@example.com\r\n"
        "END:VEVENT\r\nEND:VCALENDAR\r\n"
    )
    return (
        f"From: Zoe <Zoe@Example.com>\r\nTo: {ORGANIZER}\r\nSubject: Reply {n}\r\n"
        f"Message-ID: <reply-{n}@example.com>\r\nMIME-Version: 1.0\r\n"
        "Content-Type: text/calendar; method=REPLY; charset=utf-8\r\n\r\n" + calendar
    ).encode()


class Handler:
    """Records what it is handed; raises for messages containing ``fail_on``."""

    def __init__(self, fail_on: bytes | None = None) -> None:
        self.received: list[bytes] = []
        self.fail_on = fail_on

    async def __call__(self, raw: bytes) -> None:
        self.received.append(raw)
        if self.fail_on is not None and self.fail_on in raw:
            raise RuntimeError("the booking service is unhappy")


@pytest.fixture
async def server() -> AsyncIterator[FakeImapServer]:
    async with FakeImapServer({USER: PASSWORD}) as fake:
        yield fake


def inbox(port: int, **changes: Any) -> ImapInbox:
    values: dict[str, Any] = {
        "host": HOST,
        "port": port,
        "security": "none",
        "username": USER,
        "password": PASSWORD,
        "timeout": WAIT,
    }
    values.update(changes)
    return ImapInbox(ImapConfig(**values))


def flags(server: FakeImapServer, folder: str = "INBOX") -> list[frozenset[str]]:
    return [m.flags for m in server.messages(folder)]


# -- hand-over ----------------------------------------------------------------------------


async def test_handled_messages_become_seen_and_are_not_handled_twice(
    server: FakeImapServer,
) -> None:
    server.deliver("INBOX", mail(1))
    server.deliver("INBOX", mail(2), flags=[SEEN])  # read by a person already
    server.deliver("INBOX", mail(3))
    handler = Handler()
    poller = inbox(server.port)

    assert await poller.poll(handler) == 2
    assert handler.received == [mail(1), mail(3)]  # whole messages, in arrival order
    assert flags(server) == [{SEEN}, {SEEN}, {SEEN}]

    assert await poller.poll(handler) == 0
    assert len(handler.received) == 2
    # Fetched without setting \Seen (BODY.PEEK, RFC 3501 6.4.5), by UID.
    fetches = [c for c in server.commands if "FETCH" in c]
    assert fetches == ["UID FETCH 1 (BODY.PEEK[])", "UID FETCH 3 (BODY.PEEK[])"]
    assert server.commands[-1] == "LOGOUT"


async def test_message_is_marked_only_after_the_handler_returned(
    server: FakeImapServer,
) -> None:
    server.deliver("INBOX", mail(1))
    during: list[frozenset[str]] = []

    async def handle(raw: bytes) -> None:
        during.extend(flags(server))

    assert await inbox(server.port).poll(handle) == 1
    assert during == [frozenset()]
    assert flags(server) == [{SEEN}]


async def test_failing_handler_leaves_its_message_for_the_next_poll(
    server: FakeImapServer, caplog: pytest.LogCaptureFixture
) -> None:
    for n in (1, 2, 3):
        server.deliver("INBOX", mail(n))
    poller = inbox(server.port)
    caplog.set_level(logging.ERROR, logger="gateway.mail.imap")

    assert await poller.poll(Handler(fail_on=b"Reply 2")) == 2
    assert flags(server) == [{SEEN}, set(), {SEEN}]
    assert "UID 2" in caplog.text and "stays unseen" in caplog.text

    retry = Handler()
    assert await poller.poll(retry) == 1
    assert retry.received == [mail(2)]
    assert flags(server) == [{SEEN}, {SEEN}, {SEEN}]


async def test_replies_reach_the_booking_service_readable(server: FakeImapServer) -> None:
    server.deliver("INBOX", mail(7, "DECLINED"))
    answers: list[tuple[str, str, PartStat]] = []

    async def handle(raw: bytes) -> None:
        for text in itip_parts(raw):
            reply = parse_reply(text)
            answers.append((sender_of(raw), reply.uid, reply.partstat))

    await inbox(server.port).poll(handle)
    assert answers == [("zoe@example.com", "booking-7@gateway.test", PartStat.DECLINED)]


async def test_concurrent_polls_hand_each_message_over_once(server: FakeImapServer) -> None:
    for n in range(5):
        server.deliver("INBOX", mail(n))
    poller = inbox(server.port)
    handler = Handler()
    counts = await asyncio.wait_for(
        asyncio.gather(poller.poll(handler), poller.poll(handler)), WAIT
    )
    assert sorted(counts) == [0, 5]
    assert handler.received == [mail(n) for n in range(5)]


async def test_cancelled_poll_logs_out_and_leaves_the_message_unseen(
    server: FakeImapServer,
) -> None:
    server.deliver("INBOX", mail(1))
    started = asyncio.Event()

    async def stuck(raw: bytes) -> None:
        started.set()
        await asyncio.Event().wait()

    task = asyncio.create_task(inbox(server.port).poll(stuck))
    await asyncio.wait_for(started.wait(), WAIT)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await asyncio.wait_for(task, WAIT)
    assert flags(server) == [set()]
    assert server.commands[-1] == "LOGOUT"


async def test_other_folder(server: FakeImapServer) -> None:
    server.deliver("INBOX", mail(1))
    server.deliver("Replies", mail(2))
    handler = Handler()
    assert await inbox(server.port, folder="Replies").poll(handler) == 1
    assert handler.received == [mail(2)]
    assert flags(server) == [set()]


# -- processed folder -------------------------------------------------------------------


async def test_processed_folder_receives_handled_messages(server: FakeImapServer) -> None:
    server.create_folder("Processed")
    server.deliver("INBOX", mail(1))
    server.deliver("INBOX", mail(2))
    poller = inbox(server.port, processed_folder="Processed")

    assert await poller.poll(Handler(fail_on=b"Reply 2")) == 1
    assert [m.raw for m in server.messages("INBOX")] == [mail(2)]
    assert [(m.raw, m.flags) for m in server.messages("Processed")] == [
        (mail(1), frozenset({SEEN}))
    ]

    assert await poller.poll(Handler()) == 1
    assert server.messages("INBOX") == []
    assert [m.raw for m in server.messages("Processed")] == [mail(1), mail(2)]
    assert "EXPUNGE" in server.commands  # no UIDPLUS here: the plain EXPUNGE


async def test_processed_folder_with_uidplus_expunges_only_the_handled_message() -> None:
    async with FakeImapServer({USER: PASSWORD}, uidplus=True) as server:
        server.create_folder("Processed")
        # Deleted in a mail client but not expunged yet: not ours to expunge.
        server.deliver("INBOX", mail(1), flags=[SEEN, DELETED])
        server.deliver("INBOX", mail(2))
        assert await inbox(server.port, processed_folder="Processed").poll(Handler()) == 1
        assert [m.raw for m in server.messages("INBOX")] == [mail(1)]
        assert [m.raw for m in server.messages("Processed")] == [mail(2)]
        assert "UID EXPUNGE 2" in server.commands


async def test_non_ascii_folder_names_go_in_modified_utf7(server: FakeImapServer) -> None:
    # RFC 3501 5.1.3's own example.
    server.create_folder("~peter/mail/&U,BTFw-/&ZeVnLIqe-")
    server.create_folder("Erledigt & Gelöscht")  # as someone might name it in the settings
    server.create_folder("Erledigt &- Gel&APY-scht")
    server.deliver("INBOX", mail(1))
    server.deliver("INBOX", mail(2))
    await inbox(server.port, processed_folder="~peter/mail/台北/日本語").poll(
        Handler(fail_on=b"Reply 2")
    )
    assert [m.raw for m in server.messages("~peter/mail/&U,BTFw-/&ZeVnLIqe-")] == [mail(1)]
    await inbox(server.port, processed_folder="Erledigt & Gelöscht").poll(Handler())
    assert [m.raw for m in server.messages("Erledigt &- Gel&APY-scht")] == [mail(2)]
    assert server.messages("Erledigt & Gelöscht") == []


async def test_missing_processed_folder_is_refused_before_handling(
    server: FakeImapServer,
) -> None:
    server.deliver("INBOX", mail(1))
    handler = Handler()
    with pytest.raises(InboxError) as caught:
        await inbox(server.port, processed_folder="Nowhere").poll(handler)
    assert not caught.value.transient
    assert "Nowhere" in str(caught.value)
    assert handler.received == []
    assert flags(server) == [set()]


# -- failures -------------------------------------------------------------------------------


async def test_wrong_password_is_permanent(server: FakeImapServer) -> None:
    server.deliver("INBOX", mail(1))
    handler = Handler()
    with pytest.raises(InboxError) as caught:
        await inbox(server.port, password="wrong").poll(handler)
    assert not caught.value.transient
    assert "AUTHENTICATIONFAILED" in str(caught.value)
    assert "wrong" not in str(caught.value)
    assert handler.received == []


async def test_login_unavailable_for_now_is_transient(server: FakeImapServer) -> None:
    server.deliver("INBOX", mail(1))
    server.fail_next_login = True  # NO [UNAVAILABLE] (RFC 5530)
    poller = inbox(server.port)
    with pytest.raises(InboxError) as caught:
        await poller.poll(Handler())
    assert caught.value.transient
    assert await poller.poll(Handler()) == 1


async def test_missing_folder_is_permanent(server: FakeImapServer) -> None:
    with pytest.raises(InboxError) as caught:
        await inbox(server.port, folder="Nope").poll(Handler())
    assert not caught.value.transient
    assert "Nope" in str(caught.value)


async def test_server_gone_is_transient() -> None:
    async with FakeImapServer({USER: PASSWORD}) as server:
        port = server.port
    with pytest.raises(InboxError) as caught:
        await inbox(port).poll(Handler())
    assert caught.value.transient


async def test_connection_dropped_mid_poll_is_transient_and_redelivers(
    server: FakeImapServer,
) -> None:
    server.deliver("INBOX", mail(1))
    server.disconnect_on = "UID STORE"  # after the handler ran, before the flag
    handler = Handler()
    poller = inbox(server.port)
    with pytest.raises(InboxError) as caught:
        await poller.poll(handler)
    assert caught.value.transient
    assert flags(server) == [set()]
    # At least once: the next poll hands the same message over again.
    assert await poller.poll(handler) == 1
    assert handler.received == [mail(1), mail(1)]
    assert flags(server) == [{SEEN}]


@pytest.fixture
async def silent_server() -> AsyncIterator[int]:
    """Accepts connections and never says a word."""

    async def hold(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read()
        writer.close()

    listener = await asyncio.start_server(hold, HOST, 0)
    port: int = listener.sockets[0].getsockname()[1]
    yield port
    listener.close()
    await listener.wait_closed()


async def test_timeout_is_transient(silent_server: int) -> None:
    with pytest.raises(InboxError) as caught:
        await asyncio.wait_for(inbox(silent_server, timeout=0.2).poll(Handler()), WAIT)
    assert caught.value.transient


# -- TLS ------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> Certificate:
    return make_certificate(tmp_path_factory.mktemp("imap-tls"))


async def test_implicit_tls(certificate: Certificate) -> None:
    async with FakeImapServer(
        {USER: PASSWORD}, tls=certificate.server_context, implicit_tls=True
    ) as server:
        server.deliver("INBOX", mail(1))
        poller = inbox(server.port, security="tls", tls_context=certificate.client_context)
        assert await poller.poll(Handler()) == 1


async def test_starttls(certificate: Certificate) -> None:
    async with FakeImapServer({USER: PASSWORD}, tls=certificate.server_context) as server:
        server.deliver("INBOX", mail(1))
        poller = inbox(server.port, security="starttls", tls_context=certificate.client_context)
        assert await poller.poll(Handler()) == 1
        assert server.commands.index("STARTTLS") < server.commands.index("LOGIN ***")


async def test_untrusted_certificate_is_refused(certificate: Certificate) -> None:
    # imaplib's own default contexts do not verify; the inbox's default does.
    async with FakeImapServer(
        {USER: PASSWORD}, tls=certificate.server_context, implicit_tls=True
    ) as server:
        server.deliver("INBOX", mail(1))
        handler = Handler()
        with pytest.raises(InboxError) as caught:
            await inbox(server.port, security="tls").poll(handler)
        assert "CERTIFICATE_VERIFY_FAILED" in str(caught.value)
        assert handler.received == []


async def test_starttls_not_offered_is_permanent(server: FakeImapServer) -> None:
    with pytest.raises(InboxError) as caught:
        await inbox(server.port, security="starttls").poll(Handler())
    assert not caught.value.transient
    assert "LOGIN ***" not in server.commands  # no password sent in the clear


# -- configuration --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "changes",
    [
        {"security": "ssl"},
        {"port": 0},
        {"timeout": 0},
        {"folder": ""},
        {"processed_folder": ""},
        {"processed_folder": "inbox"},
        {"folder": "Replies", "processed_folder": "Replies"},
    ],
)
def test_config_is_checked(changes: dict[str, Any]) -> None:
    values: dict[str, Any] = {
        "host": HOST,
        "port": 993,
        "security": "tls",
        "username": USER,
        "password": PASSWORD,
    }
    with pytest.raises(ValueError):
        ImapConfig(**(values | changes))


def test_password_stays_out_of_repr() -> None:
    config = ImapConfig(HOST, 993, "tls", USER, PASSWORD)
    assert PASSWORD not in repr(config)
    assert (config.folder, config.processed_folder, config.timeout) == ("INBOX", None, 30.0)
