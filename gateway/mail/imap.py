"""The gateway's mailbox, polled over IMAP (RFC 3501) for bookers' answers.

Invitations go out from the gateway's own address, so the attendees' iTIP
REPLYs (RFC 5546, sent as iMIP, RFC 6047) come back to that mailbox.
``ImapInbox.poll`` hands every unseen message to a coroutine and marks it
only once that coroutine has returned.

The standard library's ``imaplib`` is blocking; each call runs in a worker
thread (``asyncio.to_thread``), one call at a time, on a connection opened for
the poll and closed after it. Messages are addressed by UID (RFC 3501 2.3.1.1)
so that nothing else changing the mailbox meanwhile (another client, an
expunge) can make the gateway mark the wrong message. UIDs are only used
within one connection, so UIDVALIDITY changes do not matter.
"""

from __future__ import annotations

import asyncio
import base64
import imaplib
import logging
import re
import ssl
import threading
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from typing import Any, Literal

log = logging.getLogger(__name__)

Security = Literal["tls", "starttls", "none"]

# RFC 5530 3 response codes after which the same command may well succeed
# later; any other NO to LOGIN or SELECT is a configuration problem.
_TRANSIENT_CODES = frozenset({"UNAVAILABLE", "INUSE", "LIMIT", "SERVERBUG"})
_RESPONSE_CODE = re.compile(rb"\[([A-Z0-9-]+)")
_UID = re.compile(rb"\bUID (\d+)", re.IGNORECASE)
_BODY = re.compile(rb"\bBODY\[\]", re.IGNORECASE)


@dataclass(frozen=True, slots=True)
class ImapConfig:
    """Where the gateway's mailbox is.

    ``security``: "tls" (implicit TLS, port 993, RFC 8314), "starttls" (port
    143 upgraded with STARTTLS, RFC 3501 6.2.1, refused if the server does not
    offer it) or "none" (plain; only for a server on the same host).
    ``folder`` is polled; with ``processed_folder`` each handled message is
    moved there, otherwise it stays and is flagged ``\\Seen``. Folder names
    may be any Unicode (sent in modified UTF-7, RFC 3501 5.1.3).
    ``timeout`` (seconds) bounds every network operation. ``tls_context``
    replaces the default verifying context (a private CA, tests)."""

    host: str
    port: int
    security: Security
    username: str
    password: str = field(repr=False)
    folder: str = "INBOX"
    processed_folder: str | None = None
    timeout: float = 30.0
    tls_context: ssl.SSLContext | None = field(default=None, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.security not in ("tls", "starttls", "none"):
            raise ValueError(f"security must be tls, starttls or none, not {self.security!r}")
        if not 0 < self.port < 65536:
            raise ValueError(f"port {self.port} is out of range")
        if self.timeout <= 0:
            raise ValueError("timeout must be positive")
        if not self.folder:
            raise ValueError("folder must not be empty")
        if self.processed_folder is not None and (
            not self.processed_folder
            or _canonical_folder(self.processed_folder) == _canonical_folder(self.folder)
        ):
            raise ValueError("processed_folder must name another, non-empty folder")


class InboxError(Exception):
    """Polling the mailbox failed. ``transient``: the next poll may succeed
    (connection refused, dropped or timed out, server busy); otherwise the
    configuration needs fixing (login refused, no such folder, no STARTTLS)."""

    def __init__(self, message: str, *, transient: bool) -> None:
        super().__init__(message)
        self.transient = transient


class ImapInbox:
    """The mailbox of ``config``; ``poll`` it periodically."""

    def __init__(self, config: ImapConfig) -> None:
        self.config = config
        # Overlapping polls would hand the same messages over twice.
        self._polling = asyncio.Lock()

    async def poll(self, handle: Callable[[bytes], Awaitable[None]]) -> int:
        """Hand each unseen message of the folder, in arrival (UID) order, to
        ``handle`` as the raw bytes of the whole message, and return how many
        were handled.

        Delivery is **at least once**: a message is flagged ``\\Seen`` (or
        moved to ``processed_folder``) only after ``handle`` returned. If
        ``handle`` raises, the error is logged, the message stays unseen and
        is handed over again at the next poll (the others go on); if the
        connection fails between ``handle`` and the flag, the message comes
        again too. ``handle`` must therefore be idempotent, and should return
        normally for mail it can never use (not a reply, unreadable), or that
        mail comes back at every poll.

        Fetching uses ``BODY.PEEK[]``, which leaves ``\\Seen`` alone (RFC 3501
        6.4.5). Raises ``InboxError`` when the server cannot be reached, the
        login is refused, a folder is missing or the connection breaks;
        messages already marked stay marked. Concurrent calls run one after
        the other."""
        async with self._polling:
            return await self._poll(handle)

    async def _poll(self, handle: Callable[[bytes], Awaitable[None]]) -> int:
        session = _Session(self.config)
        handled = 0
        try:
            await asyncio.to_thread(session.open)
            for uid in await asyncio.to_thread(session.unseen):
                raw = await asyncio.to_thread(session.fetch, uid)
                if raw is None:  # expunged by someone else since the search
                    continue
                try:
                    await handle(raw)
                except Exception:
                    log.exception(
                        "handling message UID %d in %s failed; it stays unseen for the next poll",
                        uid,
                        self.config.folder,
                    )
                    continue
                await asyncio.to_thread(session.mark_handled, uid)
                handled += 1
        finally:
            # Waits for a call still running in a worker thread (a cancelled
            # poll), which ``timeout`` bounds, then logs out.
            await asyncio.to_thread(session.close)
        return handled


class _Session:
    """One IMAP connection. Its methods block and run in worker threads; the
    lock keeps two of them (the closing one after a cancelled poll, say) from
    talking over each other on the socket."""

    def __init__(self, config: ImapConfig) -> None:
        self._config = config
        self._lock = threading.Lock()
        self._conn: imaplib.IMAP4 | None = None
        self._uidplus = False

    def open(self) -> None:
        """Connect, secure, log in and select the folder."""
        config = self._config
        with self._lock:
            where = f"{config.host}:{config.port}"
            with _errors(f"cannot reach the IMAP server {where}", transient=True):
                # imaplib's own default contexts do not verify certificates:
                # always pass a verifying one.
                context = config.tls_context or ssl.create_default_context()
                if config.security == "tls":
                    conn: imaplib.IMAP4 = imaplib.IMAP4_SSL(
                        config.host, config.port, ssl_context=context, timeout=config.timeout
                    )
                else:
                    conn = imaplib.IMAP4(config.host, config.port, timeout=config.timeout)
                self._conn = conn
                if config.security == "starttls":
                    if "STARTTLS" not in conn.capabilities:
                        raise InboxError(
                            f"the IMAP server {where} does not offer STARTTLS", transient=False
                        )
                    conn.starttls(ssl_context=context)
            self._uidplus = "UIDPLUS" in conn.capabilities
            if conn.state == "NONAUTH":  # not PREAUTH (RFC 3501 7.1.4)
                self._login(conn, where)
            if config.processed_folder is not None:
                self._check_folder(conn, config.processed_folder)
            with _errors(f"cannot open folder {config.folder!r}", transient=True):
                try:
                    typ, data = conn.select(_mailbox(config.folder))
                except imaplib.IMAP4.readonly as exc:
                    raise InboxError(
                        f"folder {config.folder!r} is read-only: cannot flag messages",
                        transient=False,
                    ) from exc
            if typ != "OK":
                raise InboxError(
                    f"cannot open folder {config.folder!r}: {_text(data)}",
                    transient=_transient(data),
                )

    def unseen(self) -> list[int]:
        """UIDs of the unseen messages, lowest first. Messages flagged
        ``\\Deleted`` (handled and copied to ``processed_folder`` by a poll
        interrupted before its EXPUNGE, or deleted by a person) are skipped."""
        with self._lock, _errors("searching the folder failed", transient=True):
            typ, data = self._connection().uid("SEARCH", "UNSEEN", "UNDELETED")
            _expect_ok(typ, data, "UID SEARCH")
            uids = {
                int(n)
                for line in data
                if isinstance(line, bytes)
                for n in line.split()
                if n.isdigit()
            }
            return sorted(uids)

    def fetch(self, uid: int) -> bytes | None:
        """The whole message (RFC 3501 6.4.5 ``BODY.PEEK[]``), or None if it
        is gone."""
        with self._lock, _errors(f"fetching message UID {uid} failed", transient=True):
            typ, data = self._connection().uid("FETCH", str(uid), "(BODY.PEEK[])")
            _expect_ok(typ, data, "UID FETCH")
            # Literals come as (prefix, bytes) pairs; other untagged FETCH
            # responses (flag changes the server reports on the way) may be
            # mixed in. RFC 3501 6.4.8: a UID FETCH response carries the UID.
            bodies = [
                (item[0], item[1])
                for item in data
                if isinstance(item, tuple) and len(item) == 2 and _BODY.search(item[0])
            ]
            for prefix, body in bodies:
                match = _UID.search(prefix)
                if match and int(match.group(1)) == uid:
                    return bytes(body)
            if len(bodies) == 1 and not _UID.search(bodies[0][0]):
                return bytes(bodies[0][1])
            return None

    def mark_handled(self, uid: int) -> None:
        """Flag the message ``\\Seen``; with a processed folder, also move it
        there: UID COPY, ``\\Deleted``, EXPUNGE (RFC 3501 6.4.7, 6.4.6, 6.4.3),
        limited to this message with UID EXPUNGE when the server offers
        UIDPLUS (RFC 4315 2.1). Without UIDPLUS, EXPUNGE also removes other
        messages someone flagged ``\\Deleted`` in the folder, as any IMAP
        client's expunge would."""
        config = self._config
        with self._lock, _errors(f"flagging message UID {uid} failed", transient=True):
            conn = self._connection()
            # Seen first: should the move fail, the message is not handled again.
            typ, data = conn.uid("STORE", str(uid), "+FLAGS.SILENT", r"(\Seen)")
            _expect_ok(typ, data, "UID STORE")
            if config.processed_folder is None:
                return
            typ, data = conn.uid("COPY", str(uid), _mailbox(config.processed_folder))
            if typ != "OK":
                raise InboxError(
                    f"cannot copy message UID {uid} to {config.processed_folder!r}: {_text(data)}",
                    transient=_transient(data),
                )
            typ, data = conn.uid("STORE", str(uid), "+FLAGS.SILENT", r"(\Deleted)")
            _expect_ok(typ, data, "UID STORE")
            if self._uidplus:
                typ, data = conn.uid("EXPUNGE", str(uid))
            else:
                typ, data = conn.expunge()
            _expect_ok(typ, data, "EXPUNGE")

    def close(self) -> None:
        """LOGOUT (RFC 3501 6.1.3) and close the socket; never raises. No
        CLOSE: it would expunge silently (RFC 3501 6.4.2)."""
        with self._lock:
            conn, self._conn = self._conn, None
            if conn is None:
                return
            try:
                conn.logout()
            except (OSError, imaplib.IMAP4.error) as exc:
                log.debug("IMAP logout failed: %s", exc)
                with suppress(OSError):
                    conn.shutdown()

    # -- helpers ------------------------------------------------------------------------

    def _connection(self) -> imaplib.IMAP4:
        if self._conn is None:
            raise InboxError("the IMAP connection is closed", transient=True)
        return self._conn

    def _login(self, conn: imaplib.IMAP4, where: str) -> None:
        if "LOGINDISABLED" in conn.capabilities:
            # RFC 3501 6.2.3: the server refuses LOGIN on this connection,
            # typically until TLS is on.
            raise InboxError(
                f"the IMAP server {where} refuses LOGIN here (LOGINDISABLED); use tls or starttls",
                transient=False,
            )
        try:
            conn.login(self._config.username, self._config.password)
        except imaplib.IMAP4.abort as exc:  # connection trouble, BYE
            raise InboxError(f"IMAP login to {where} failed: {exc}", transient=True) from exc
        except imaplib.IMAP4.error as exc:  # NO (or BAD) to LOGIN
            detail = str(exc)
            raise InboxError(
                f"IMAP login to {where} as {self._config.username!r} refused: {detail}",
                transient=_transient([detail.encode("utf-8", "replace")]),
            ) from exc
        except UnicodeEncodeError as exc:  # imaplib sends LOGIN in ASCII only
            raise InboxError(
                "the IMAP user name and password must be ASCII", transient=False
            ) from exc
        except OSError as exc:
            raise InboxError(f"IMAP login to {where} failed: {exc}", transient=True) from exc

    def _check_folder(self, conn: imaplib.IMAP4, folder: str) -> None:
        """Refuse to start when the processed folder is missing, before any
        message is handled (RFC 3501 6.3.10 STATUS)."""
        with _errors(f"cannot check folder {folder!r}", transient=True):
            typ, data = conn.status(_mailbox(folder), "(UIDNEXT)")
        if typ != "OK":
            raise InboxError(
                f"processed folder {folder!r} is not usable: {_text(data)}",
                transient=_transient(data),
            )


@contextmanager
def _errors(what: str, *, transient: bool) -> Iterator[None]:
    """Turn imaplib's and the socket's exceptions into ``InboxError``."""
    try:
        yield
    except InboxError:
        raise
    except imaplib.IMAP4.abort as exc:  # dropped connection, BYE, garbage
        raise InboxError(f"{what}: {exc}", transient=True) from exc
    except imaplib.IMAP4.error as exc:  # BAD, unexpected answers
        raise InboxError(f"{what}: {exc}", transient=transient) from exc
    except OSError as exc:  # refused, reset, timed out, TLS handshake
        raise InboxError(f"{what}: {exc}", transient=True) from exc


def _expect_ok(typ: str, data: list[Any], command: str) -> None:
    if typ != "OK":
        # A NO in the middle of a poll: the server's trouble, try again later.
        raise InboxError(f"{command} answered {typ}: {_text(data)}", transient=True)


def _transient(data: list[Any]) -> bool:
    """Whether a NO carries a response code saying "try later" (RFC 5530)."""
    for item in data:
        if isinstance(item, bytes):
            match = _RESPONSE_CODE.search(item)
            if match:
                return match.group(1).decode("ascii") in _TRANSIENT_CODES
    return False


def _text(data: list[Any]) -> str:
    return " ".join(
        item.decode("utf-8", "replace") for item in data if isinstance(item, bytes)
    ).strip()


def _canonical_folder(name: str) -> str:
    # RFC 3501 5.1: INBOX is case-insensitive, every other name is not.
    return "INBOX" if name.upper() == "INBOX" else name


def _mailbox(name: str) -> str:
    """A mailbox name as an IMAP quoted string (RFC 3501 4.3; imaplib sends
    arguments as given), non-ASCII in modified UTF-7 (RFC 3501 5.1.3)."""
    encoded = _modified_utf7(_canonical_folder(name))
    return '"' + encoded.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _modified_utf7(name: str) -> str:
    """RFC 3501 5.1.3: printable ASCII stands for itself ("&" as "&-"); runs
    of other characters are UTF-16BE in modified base64 ("," for "/", no
    padding) between "&" and "-"."""
    out: list[str] = []
    run: list[str] = []

    def flush() -> None:
        if run:
            data = "".join(run).encode("utf-16-be")
            out.append("&" + base64.b64encode(data).decode("ascii").rstrip("=").replace("/", ","))
            out.append("-")
            run.clear()

    for char in name:
        if "\x20" <= char <= "\x7e":
            flush()
            out.append("&-" if char == "&" else char)
        else:
            run.append(char)
    flush()
    return "".join(out)
