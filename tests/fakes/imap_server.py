"""A small IMAP4rev1 server (RFC 3501) on asyncio, for tests of the gateway's
mailbox poller through the real ``imaplib``.

It speaks enough of the protocol for a mail client that reads and files
messages: CAPABILITY, STARTTLS (when given a TLS context), LOGIN, SELECT,
EXAMINE, STATUS, SEARCH / UID SEARCH (ALL, SEEN, UNSEEN, DELETED,
UNDELETED), FETCH / UID FETCH (UID, FLAGS, RFC822.SIZE, BODY[], BODY.PEEK[],
RFC822), STORE / UID STORE ([+-]FLAGS[.SILENT]), COPY / UID COPY, EXPUNGE,
UID EXPUNGE (with ``uidplus``, RFC 4315), CLOSE, NOOP, LOGOUT. Responses are
CRLF-terminated; message bodies go out as literals; every tagged response is
OK, NO or BAD as RFC 3501 7.1 says.

Test controls: ``deliver(folder, raw)``, ``create_folder(name)``,
``messages(folder)`` (UIDs, bytes and flags), ``fail_next_login``,
``disconnect_on`` (drop the connection when a command arrives) and
``commands`` (what clients sent, passwords left out)::

    async with FakeImapServer({"user": "secret"}) as server:
        server.deliver("INBOX", raw)
        ... ImapConfig("127.0.0.1", server.port, "none", "user", "secret") ...
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import ssl
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from types import TracebackType

__all__ = ["FakeImapServer", "StoredMessage"]

HOST = "127.0.0.1"
SEEN = "\\Seen"
DELETED = "\\Deleted"
SYSTEM_FLAGS = ("\\Answered", "\\Flagged", DELETED, SEEN, "\\Draft")
STOP_TIMEOUT = 5.0  # seconds for connection handlers to finish on stop

_LITERAL = re.compile(rb"\{(\d+)(\+?)\}\r\n$")  # at the end of a line: data follows
_INLINE_LITERAL = re.compile(rb"\{(\d+)\+?\}\r\n")
Token = str | list["Token"]


@dataclass(frozen=True)
class StoredMessage:
    """A message as a test sees it."""

    uid: int
    raw: bytes
    flags: frozenset[str]


@dataclass
class _Message:
    uid: int
    raw: bytes
    flags: set[str] = field(default_factory=set)


@dataclass
class _Folder:
    uidvalidity: int
    uidnext: int = 1
    messages: list[_Message] = field(default_factory=list)

    def add(self, raw: bytes, flags: Iterable[str] = ()) -> int:
        uid = self.uidnext
        self.uidnext += 1
        self.messages.append(_Message(uid, raw, set(flags)))
        return uid


class _Disconnect(Exception):
    """End the connection (LOGOUT, ``disconnect_on``, end of input)."""


class _Bad(Exception):
    """Answer the command with BAD."""


class FakeImapServer:
    """An IMAP server on 127.0.0.1 and a free port (``port``, known once
    started). ``users`` maps user names to passwords. ``tls``: a server-side
    context; with ``implicit_tls`` the whole connection is TLS (port 993
    style), otherwise STARTTLS is offered. ``uidplus`` announces RFC 4315 and
    accepts UID EXPUNGE."""

    def __init__(
        self,
        users: Mapping[str, str] | None = None,
        *,
        tls: ssl.SSLContext | None = None,
        implicit_tls: bool = False,
        uidplus: bool = False,
    ) -> None:
        if implicit_tls and tls is None:
            raise ValueError("implicit_tls needs a TLS context")
        self.users = dict(users if users is not None else {"gateway": "secret"})
        self.tls = tls
        self.implicit_tls = implicit_tls
        self.uidplus = uidplus
        # The next LOGIN answers NO whatever the credentials: True for
        # "NO [UNAVAILABLE] ..." (RFC 5530, a server that will be back), or
        # the whole text after "NO ".
        self.fail_next_login: bool | str = False
        # The next command with this name ("LOGIN", "UID FETCH", "UID STORE"...)
        # makes the server close the connection without an answer.
        self.disconnect_on: str | None = None
        # Every command line received, in order, LOGIN arguments masked.
        self.commands: list[str] = []
        self.port = 0
        self._folders: dict[str, _Folder] = {}
        self._next_uidvalidity = 1
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self._tasks: set[asyncio.Task[None]] = set()
        self.create_folder("INBOX")

    # -- test controls -------------------------------------------------------------

    def create_folder(self, name: str) -> None:
        """A folder (as named on the wire: modified UTF-7 for non-ASCII)."""
        name = _folder_key(name)
        if name not in self._folders:
            self._folders[name] = _Folder(uidvalidity=self._next_uidvalidity)
            self._next_uidvalidity += 1

    def deliver(self, folder: str, raw: bytes, flags: Iterable[str] = ()) -> int:
        """Put a message in ``folder`` (created if needed); returns its UID."""
        self.create_folder(folder)
        return self._folders[_folder_key(folder)].add(raw, flags)

    def messages(self, folder: str) -> list[StoredMessage]:
        """The messages of ``folder`` in mailbox order ([] if there is no such folder)."""
        stored = self._folders.get(_folder_key(folder))
        if stored is None:
            return []
        return [StoredMessage(m.uid, m.raw, frozenset(m.flags)) for m in stored.messages]

    def folders(self) -> list[str]:
        return sorted(self._folders)

    # -- lifecycle -----------------------------------------------------------------

    async def start(self) -> None:
        self._server = await asyncio.start_server(
            self._serve, HOST, 0, ssl=self.tls if self.implicit_tls else None
        )
        self.port = int(self._server.sockets[0].getsockname()[1])

    async def stop(self) -> None:
        """Stop listening and drop every connection; afterwards connecting to
        ``port`` is refused."""
        if self._server is None:
            return
        self._server.close()
        for writer in list(self._writers):
            writer.close()
        if self._tasks:
            await asyncio.wait(self._tasks, timeout=STOP_TIMEOUT)
        await self._server.wait_closed()
        self._server = None

    async def __aenter__(self) -> FakeImapServer:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

    # -- connections ---------------------------------------------------------------

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        self._writers.add(writer)
        session = _Session(self, reader, writer)
        try:
            await session.run()
        except (_Disconnect, OSError, asyncio.IncompleteReadError):
            pass  # the client left, or the server is stopping
        finally:
            self._writers.discard(writer)
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()
            self._tasks.discard(task)


class _Session:
    """One client connection and its state (RFC 3501 3)."""

    def __init__(
        self, server: FakeImapServer, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        self.server = server
        self.reader = reader
        self.writer = writer
        self.user: str | None = None
        self.selected: _Folder | None = None
        self.readonly = False
        self.tls_active = server.implicit_tls

    # -- reading and writing ---------------------------------------------------------

    async def run(self) -> None:
        await self.send(f"* OK [CAPABILITY {self.capabilities()}] fake IMAP4rev1 ready")
        while True:
            line = await self.read_command()
            tag, _, rest = line.partition(b" ")
            tag_text = tag.decode("ascii", "replace")
            if not tag or not rest:
                await self.send(f"{tag_text or '*'} BAD missing command")
                continue
            try:
                tokens = _parse(rest)
                if not tokens or not isinstance(tokens[0], str):
                    raise _Bad("missing command")
                await self.dispatch(tag_text, tokens)
            except _Bad as exc:
                await self.send(f"{tag_text} BAD {exc}")

    async def read_command(self) -> bytes:
        """One command with its literals (RFC 3501 4.3, 7.5: "+" asks for a
        synchronizing literal), without the final CRLF."""
        data = b""
        while True:
            line = await self.reader.readline()
            if not line:
                raise _Disconnect
            data += line
            match = _LITERAL.search(line)
            if match is None:
                return data.rstrip(b"\r\n")
            if not match.group(2):
                await self.send("+ go ahead")
            data += await self.reader.readexactly(int(match.group(1)))

    async def send(self, *lines: str | bytes) -> None:
        for line in lines:
            self.writer.write((line.encode("utf-8") if isinstance(line, str) else line) + b"\r\n")
        await self.writer.drain()

    def capabilities(self) -> str:
        caps = ["IMAP4rev1"]
        if self.server.tls is not None and not self.tls_active:
            caps.append("STARTTLS")
        if self.server.uidplus:
            caps.append("UIDPLUS")
        return " ".join(caps)

    # -- commands --------------------------------------------------------------------

    async def dispatch(self, tag: str, tokens: list[Token]) -> None:
        name = _atom(tokens[0]).upper()
        args = tokens[1:]
        uid = name == "UID"
        if uid:
            if not args:
                raise _Bad("UID needs a command")
            name = _atom(args[0]).upper()
            args = args[1:]
        full_name = f"UID {name}" if uid else name
        self.server.commands.append(
            f"{full_name} ***" if name == "LOGIN" else " ".join([full_name, *map(_show, args)])
        )
        if self.server.disconnect_on is not None and self.server.disconnect_on.upper() == full_name:
            self.server.disconnect_on = None
            raise _Disconnect

        if name == "CAPABILITY":
            await self.send(f"* CAPABILITY {self.capabilities()}", f"{tag} OK CAPABILITY done")
        elif name == "NOOP":
            await self.send(f"{tag} OK NOOP done")
        elif name == "LOGOUT":
            await self.send("* BYE fake IMAP signing off", f"{tag} OK LOGOUT done")
            raise _Disconnect
        elif name == "STARTTLS":
            await self.starttls(tag)
        elif name == "LOGIN":
            await self.login(tag, args)
        elif self.user is None:
            await self.send(f"{tag} BAD {full_name} needs authentication first")
        elif name in ("SELECT", "EXAMINE"):
            await self.select(tag, args, readonly=name == "EXAMINE")
        elif name == "STATUS":
            await self.status(tag, args)
        elif self.selected is None:
            await self.send(f"{tag} BAD {full_name} needs a selected mailbox")
        elif name == "SEARCH":
            await self.search(tag, args, uid)
        elif name == "FETCH":
            await self.fetch(tag, args, uid)
        elif name == "STORE":
            await self.store(tag, args, uid)
        elif name == "COPY":
            await self.copy(tag, args, uid)
        elif name == "EXPUNGE":
            await self.expunge(tag, args, uid)
        elif name == "CLOSE" and not uid:
            if not self.readonly:
                self.remove_deleted(self.selected, None)
            self.selected = None
            await self.send(f"{tag} OK CLOSE done")
        else:
            raise _Bad(f"unknown command {full_name}")

    async def starttls(self, tag: str) -> None:
        # RFC 3501 6.2.1: only before authentication, only if offered.
        if self.server.tls is None or self.tls_active or self.user is not None:
            raise _Bad("STARTTLS not available")
        await self.send(f"{tag} OK begin TLS negotiation now")
        await self.writer.start_tls(self.server.tls)
        self.tls_active = True

    async def login(self, tag: str, args: list[Token]) -> None:
        if self.user is not None:
            raise _Bad("already authenticated")
        if len(args) != 2:
            raise _Bad("LOGIN needs a user name and a password")
        user, password = _atom(args[0]), _atom(args[1])
        failure = self.server.fail_next_login
        if failure:
            self.server.fail_next_login = False
            text = failure if isinstance(failure, str) else "[UNAVAILABLE] try again later"
            await self.send(f"{tag} NO {text}")
        elif self.server.users.get(user) != password:
            await self.send(f"{tag} NO [AUTHENTICATIONFAILED] invalid credentials")
        else:
            self.user = user
            await self.send(f"{tag} OK [CAPABILITY {self.capabilities()}] logged in")

    async def select(self, tag: str, args: list[Token], *, readonly: bool) -> None:
        if len(args) != 1:
            raise _Bad("one mailbox name expected")
        self.selected = None  # RFC 3501 6.3.1: a failed SELECT leaves none selected
        folder = self.server._folders.get(_folder_key(_atom(args[0])))
        if folder is None:
            await self.send(f"{tag} NO [NONEXISTENT] no such mailbox")
            return
        self.selected, self.readonly = folder, readonly
        unseen = [i for i, m in enumerate(folder.messages, 1) if SEEN not in m.flags]
        await self.send(
            f"* {len(folder.messages)} EXISTS",
            "* 0 RECENT",
            f"* FLAGS ({' '.join(SYSTEM_FLAGS)})",
            f"* OK [PERMANENTFLAGS ({' '.join(SYSTEM_FLAGS)})] flags",
            f"* OK [UIDVALIDITY {folder.uidvalidity}] UIDs valid",
            f"* OK [UIDNEXT {folder.uidnext}] next UID",
            *([f"* OK [UNSEEN {unseen[0]}] first unseen"] if unseen else []),
            f"{tag} OK [{'READ-ONLY' if readonly else 'READ-WRITE'}] done",
        )

    async def status(self, tag: str, args: list[Token]) -> None:
        if len(args) != 2 or not isinstance(args[1], list):
            raise _Bad("STATUS mailbox (items)")
        name = _atom(args[0])
        folder = self.server._folders.get(_folder_key(name))
        if folder is None:
            await self.send(f"{tag} NO [NONEXISTENT] no such mailbox")
            return
        values = {
            "MESSAGES": len(folder.messages),
            "RECENT": 0,
            "UIDNEXT": folder.uidnext,
            "UIDVALIDITY": folder.uidvalidity,
            "UNSEEN": sum(SEEN not in m.flags for m in folder.messages),
        }
        items = []
        for item in args[1]:
            key = _atom(item).upper()
            if key not in values:
                raise _Bad(f"unknown STATUS item {key}")
            items.append(f"{key} {values[key]}")
        await self.send(f"* STATUS {_quote(name)} ({' '.join(items)})", f"{tag} OK STATUS done")

    async def search(self, tag: str, args: list[Token], uid: bool) -> None:
        folder = self.folder()
        tests = []
        for arg in args:
            key = _atom(arg).upper()
            if key == "ALL":
                continue
            if key not in ("SEEN", "UNSEEN", "DELETED", "UNDELETED"):
                raise _Bad(f"unsupported search key {key}")
            tests.append(key)
        hits = []
        for number, message in enumerate(folder.messages, 1):
            if all(_search_matches(test, message) for test in tests):
                hits.append(message.uid if uid else number)
        await self.send(" ".join(["* SEARCH", *map(str, hits)]), f"{tag} OK SEARCH done")

    async def fetch(self, tag: str, args: list[Token], uid: bool) -> None:
        if len(args) != 2:
            raise _Bad("FETCH sequence-set items")
        listed = args[1] if isinstance(args[1], list) else [args[1]]
        items = [_atom(i).upper() for i in listed]
        known = {"UID", "FLAGS", "RFC822.SIZE", "BODY[]", "BODY.PEEK[]", "RFC822"}
        if not items or any(i not in known for i in items):
            raise _Bad("unsupported FETCH item")
        for number, message in self.matching(_atom(args[0]), uid):
            out: list[bytes] = []
            if uid or "UID" in items:  # RFC 3501 6.4.8: UID FETCH always reports the UID
                out.append(f"UID {message.uid}".encode())
            if "RFC822.SIZE" in items:
                out.append(f"RFC822.SIZE {len(message.raw)}".encode())
            for item in items:
                if item in ("BODY[]", "BODY.PEEK[]", "RFC822"):
                    name = "RFC822" if item == "RFC822" else "BODY[]"
                    out.append(f"{name} {{{len(message.raw)}}}\r\n".encode() + message.raw)
            # RFC 3501 6.4.5: BODY[] (not .PEEK) sets \Seen, and the change is reported.
            setting_seen = any(i in ("BODY[]", "RFC822") for i in items)
            if setting_seen and not self.readonly and SEEN not in message.flags:
                message.flags.add(SEEN)
                items = [*items, "FLAGS"] if "FLAGS" not in items else items
            if "FLAGS" in items:
                out.append(f"FLAGS ({' '.join(sorted(message.flags))})".encode())
            await self.send(f"* {number} FETCH (".encode() + b" ".join(out) + b")")
        await self.send(f"{tag} OK FETCH done")

    async def store(self, tag: str, args: list[Token], uid: bool) -> None:
        if len(args) != 3:
            raise _Bad("STORE sequence-set item flags")
        if self.readonly:
            await self.send(f"{tag} NO mailbox is read-only")
            return
        item = _atom(args[1]).upper()
        silent = item.endswith(".SILENT")
        item = item.removesuffix(".SILENT")
        if item not in ("FLAGS", "+FLAGS", "-FLAGS"):
            raise _Bad(f"unsupported STORE item {item}")
        flags = {_flag(f) for f in (args[2] if isinstance(args[2], list) else [args[2]])}
        for number, message in self.matching(_atom(args[0]), uid):
            if item == "FLAGS":
                message.flags = set(flags)
            elif item == "+FLAGS":
                message.flags |= flags
            else:
                message.flags -= flags
            if not silent:
                uid_item = f"UID {message.uid} " if uid else ""
                flag_list = " ".join(sorted(message.flags))
                await self.send(f"* {number} FETCH ({uid_item}FLAGS ({flag_list}))")
        await self.send(f"{tag} OK STORE done")

    async def copy(self, tag: str, args: list[Token], uid: bool) -> None:
        if len(args) != 2:
            raise _Bad("COPY sequence-set mailbox")
        target = self.server._folders.get(_folder_key(_atom(args[1])))
        if target is None:
            # RFC 3501 6.4.7: a hint that CREATE would help.
            await self.send(f"{tag} NO [TRYCREATE] no such mailbox")
            return
        pairs = [(m.uid, target.add(m.raw, m.flags)) for _, m in self.matching(_atom(args[0]), uid)]
        code = ""
        if self.server.uidplus and pairs:  # RFC 4315 3: COPYUID
            old = ",".join(str(a) for a, _ in pairs)
            new = ",".join(str(b) for _, b in pairs)
            code = f"[COPYUID {target.uidvalidity} {old} {new}] "
        await self.send(f"{tag} OK {code}COPY done")

    async def expunge(self, tag: str, args: list[Token], uid: bool) -> None:
        if self.readonly:
            await self.send(f"{tag} NO mailbox is read-only")
            return
        if uid:
            if not self.server.uidplus or len(args) != 1:
                raise _Bad("UID EXPUNGE needs UIDPLUS and a UID set")
            only = {m.uid for _, m in self.matching(_atom(args[0]), True)}
        elif args:
            raise _Bad("EXPUNGE takes no arguments")
        else:
            only = None
        removed = self.remove_deleted(self.folder(), only)
        # RFC 3501 7.4.1: each EXPUNGE renumbers the messages after it, so
        # report from the highest number down, where no report shifts another.
        await self.send(*(f"* {n} EXPUNGE" for n in reversed(removed)), f"{tag} OK EXPUNGE done")

    # -- helpers ---------------------------------------------------------------------

    def folder(self) -> _Folder:
        assert self.selected is not None
        return self.selected

    @staticmethod
    def remove_deleted(folder: _Folder, only: set[int] | None) -> list[int]:
        """Remove \\Deleted messages (those in ``only``, if given); returns
        their former sequence numbers, ascending."""
        removed = [
            number
            for number, m in enumerate(folder.messages, 1)
            if DELETED in m.flags and (only is None or m.uid in only)
        ]
        gone = set(removed)
        folder.messages = [m for n, m in enumerate(folder.messages, 1) if n not in gone]
        return removed

    def matching(self, sequence_set: str, uid: bool) -> list[tuple[int, _Message]]:
        """The messages a sequence set (RFC 3501 9, "sequence-set") names,
        as (sequence number, message), in mailbox order."""
        messages = self.folder().messages
        # "*" is the largest number in use (RFC 3501 9, seq-number).
        uids = [m.uid for m in messages] if uid else list(range(1, len(messages) + 1))
        largest = uids[-1] if uids else 0
        ranges = []
        for piece in sequence_set.split(","):
            low_text, _, high_text = piece.partition(":")
            try:
                low = largest if low_text == "*" else int(low_text)
                high = low if not high_text else largest if high_text == "*" else int(high_text)
            except ValueError as exc:
                raise _Bad(f"bad sequence set {sequence_set!r}") from exc
            ranges.append((min(low, high), max(low, high)))
        found = []
        for number, message in enumerate(messages, 1):
            key = message.uid if uid else number
            if any(low <= key <= high for low, high in ranges):
                found.append((number, message))
        return found


# -- parsing ---------------------------------------------------------------------------


def _parse(data: bytes) -> list[Token]:
    """Atoms, quoted strings and literals as str, parenthesized lists as
    lists (RFC 3501 4). Brackets inside an atom are kept whole, so
    ``BODY.PEEK[HEADER.FIELDS (FROM)]`` is one token."""
    tokens, end = _parse_list(data, 0, nested=False)
    if end != len(data):
        raise _Bad("unbalanced parentheses")
    return tokens


def _parse_list(data: bytes, i: int, *, nested: bool) -> tuple[list[Token], int]:
    tokens: list[Token] = []
    while i < len(data):
        char = data[i : i + 1]
        if char == b" ":
            i += 1
        elif char == b"(":
            sub, i = _parse_list(data, i + 1, nested=True)
            tokens.append(sub)
        elif char == b")":
            if not nested:
                raise _Bad("unbalanced parentheses")
            return tokens, i + 1
        elif char == b'"':
            text, i = _parse_quoted(data, i + 1)
            tokens.append(text)
        elif char == b"{":
            match = _INLINE_LITERAL.match(data, i)
            if match is None:
                raise _Bad("bad literal")
            start = match.end()
            end = start + int(match.group(1))
            tokens.append(data[start:end].decode("utf-8", "surrogateescape"))
            i = end
        else:
            start, depth = i, 0
            while i < len(data):
                char = data[i : i + 1]
                if char == b"[":
                    depth += 1
                elif char == b"]":
                    depth -= 1
                elif depth == 0 and char in (b" ", b"(", b")", b'"'):
                    break
                i += 1
            tokens.append(data[start:i].decode("utf-8", "surrogateescape"))
    if nested:
        raise _Bad("unbalanced parentheses")
    return tokens, i


def _parse_quoted(data: bytes, i: int) -> tuple[str, int]:
    out = bytearray()
    while i < len(data):
        char = data[i : i + 1]
        if char == b"\\" and i + 1 < len(data):
            out += data[i + 1 : i + 2]
            i += 2
        elif char == b'"':
            return out.decode("utf-8", "surrogateescape"), i + 1
        else:
            out += char
            i += 1
    raise _Bad("unterminated quoted string")


def _atom(token: Token) -> str:
    if not isinstance(token, str):
        raise _Bad("a list where an atom was expected")
    return token


def _flag(token: Token) -> str:
    flag = _atom(token)
    system = {f.upper(): f for f in SYSTEM_FLAGS}
    # RFC 3501 2.3.2: system flags are case-insensitive.
    return system.get(flag.upper(), flag)


def _show(token: Token) -> str:
    if isinstance(token, list):
        return "(" + " ".join(_show(t) for t in token) + ")"
    return token


def _quote(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _folder_key(name: str) -> str:
    # RFC 3501 5.1: INBOX is case-insensitive.
    return "INBOX" if name.upper() == "INBOX" else name


def _search_matches(test: str, message: _Message) -> bool:
    if test == "SEEN":
        return SEEN in message.flags
    if test == "UNSEEN":
        return SEEN not in message.flags
    if test == "DELETED":
        return DELETED in message.flags
    return DELETED not in message.flags  # UNDELETED
