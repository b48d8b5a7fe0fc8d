"""Deadlines and caps for every HTTP connection (slowloris, lying bodies, fd exhaustion).

aiohttp's ``RequestHandler`` parses request heads and hands the handler a body
stream; it closes a connection that stays idle for ``keepalive_timeout``, but
it has no deadline for a head trickled byte by byte, none for a body that
never ends, no early refusal of a declared body that is too large, and no cap
on connections, so a few hundred silent sockets used to take every file
descriptor. This module adds those around aiohttp's own protocol, without
touching routing or handlers:

- ``server.head_timeout``: a new connection must deliver a complete request
  head within it; on a kept-alive connection, counted from the first byte of
  the next head (the idle time before it is ``keepalive_timeout``'s, as in
  nginx's client_header_timeout / keepalive_timeout). Past it: 408 and close
  (RFC 9110 15.5.9), or a plain close if the client sent nothing.
- ``server.body_timeout``: the whole body must arrive within it, counted from
  the end of the head. Past it, the handler's ``request.read()`` raises 408
  and the connection is closed after the answer.
- ``server.max_body_bytes``: a ``Content-Length`` above it gets 413 before a
  byte of the body is read, on every route (aiohttp itself refuses only after
  reading that much).
- ``server.max_connections`` / ``max_connections_per_address``: counted per
  connection (connection_made/connection_lost), across app generations. At
  the total cap the connection idle the longest (no request in progress) is
  closed to make room, so idle sockets cannot lock real clients out; only
  when every connection is working is the new one refused, with a minimal
  503. Beyond the per-address cap the new connection is refused.

An answer that closes the connection while the client may still be sending
is followed by a staged close (RFC 9112 9.6): the answer, then our half of
the connection, then reading and dropping what comes for a short grace
before closing, so the client reads the answer instead of a reset.

It does not rate-limit requests, look at X-Forwarded-For (behind a reverse
proxy every connection comes from the proxy: cap there, see README.md), or
decide anything about requests once their head and body have arrived.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import logging
import re
import time
from collections import Counter, OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from aiohttp import web
from aiohttp.abc import AbstractStreamWriter
from aiohttp.http_parser import RawRequestMessage
from aiohttp.streams import StreamReader
from aiohttp.web_protocol import RequestHandler

from gateway.settings import ServerSettings

log = logging.getLogger("calgateway.connections")

# How long a closing connection keeps reading (and dropping) what the client
# still sends after our answer, so that closing does not reset the answer away.
CLOSE_GRACE = 2.0
# The listening sockets' accept queue. asyncio accepts up to this many
# connections per wake-up before the caps can close any: they are part of the
# file descriptors kept in reserve below.
LISTEN_BACKLOG = 128
# File descriptors kept for everything but client connections: the database
# (SQLite writer and readers with their -wal/-shm files), SMTP and IMAP, the
# Google client's connection pool, the listening sockets, stdio, the event
# loop; plus one accept batch of connections that are about to be refused.
FILES_RESERVED = 128 + LISTEN_BACKLOG
# Refusals and cut connections are logged as one summary line at most this often.
LOG_EVERY = 10.0


def _raw_answer(status: str, text: str, *, extra: str = "") -> bytes:
    """A whole HTTP/1.1 answer that closes the connection, for moments when
    no request object exists (a late head, a refused connection)."""
    body = (text + "\r\n").encode()
    return (
        f"HTTP/1.1 {status}\r\nContent-Type: text/plain; charset=utf-8\r\n"
        f"Content-Length: {len(body)}\r\n{extra}Connection: close\r\n\r\n"
    ).encode() + body


_HEAD_LATE = _raw_answer(
    "408 Request Timeout", "the request head did not arrive within head_timeout"
)
_MADE_ROOM = _raw_answer(
    "408 Request Timeout", "idle connection closed to make room for another client"
)
_LEAVING = _raw_answer(
    "503 Service Unavailable",
    "the server is reloading or stopping: send the request again",
    extra="Retry-After: 1\r\n",
)
_REFUSED = _raw_answer(
    "503 Service Unavailable", "too many connections", extra="Retry-After: 5\r\n"
)


# --------------------------------------------------------------------------- decisions


@dataclass(frozen=True, slots=True)
class Limits:
    """What a generation's settings say about its connections."""

    head_timeout: float
    body_timeout: float
    keepalive_timeout: float
    max_body_bytes: int
    max_import_bytes: int

    @classmethod
    def of(cls, server: ServerSettings) -> Limits:
        return cls(
            head_timeout=server.head_timeout,
            body_timeout=server.body_timeout,
            keepalive_timeout=server.keepalive_timeout,
            max_body_bytes=server.max_body_bytes,
            max_import_bytes=server.max_import_bytes,
        )

    def body_limit(self, path: str) -> tuple[int, str]:
        """The largest body a request to ``path`` may send, and the setting
        that says so: a calendar file for the import API is a whole export."""
        if IMPORT_PATH.fullmatch(path):
            return self.max_import_bytes, "server.max_import_bytes"
        return self.max_body_bytes, "server.max_body_bytes"


@dataclass(frozen=True, slots=True)
class Caps:
    """Connections open at once: in all, and from one address (0: no cap)."""

    total: int
    per_address: int


class Admission(enum.Enum):
    ADMIT = "admit"
    EVICT_IDLE = "evict an idle connection, then admit"
    REFUSE_ADDRESS = "refuse: the address has its share"
    REFUSE_TOTAL = "refuse: every connection is working"


def admission(caps: Caps, *, open_total: int, open_from_address: int, idle: int) -> Admission:
    """What to do with a new connection, given those open now."""
    if caps.per_address and open_from_address >= caps.per_address:
        return Admission.REFUSE_ADDRESS
    if open_total < caps.total:
        return Admission.ADMIT
    return Admission.EVICT_IDLE if idle else Admission.REFUSE_TOTAL


def connection_cap(max_connections: int, file_limit: int) -> int:
    """The connections that fit in the open-file limit beside ``FILES_RESERVED``."""
    return max(1, min(max_connections, file_limit - FILES_RESERVED))


# The import API's route (``gateway.front.api``, which this layer may not import;
# a test checks that they agree).
IMPORT_PATH = re.compile(r"/api/v1/resources/[^/]+/import")


def oversized(content_length: int | None, max_body_bytes: int) -> bool:
    """A declared body larger than the limit (chunked bodies are counted as read)."""
    return content_length is not None and content_length > max_body_bytes


def raise_file_limit() -> int:
    """Raise the soft RLIMIT_NOFILE to the hard limit where allowed; return
    the soft limit in force afterwards."""
    try:
        import resource
    except ImportError:  # pragma: no cover - not POSIX
        return 1 << 20
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY:
        return 1 << 20
    target = hard if hard != resource.RLIM_INFINITY else 1 << 20
    if target > soft:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
        except (ValueError, OSError):  # not allowed here (macOS caps at OPEN_MAX)
            return soft
        return target
    return soft


# --------------------------------------------------------------------------- the table


class ConnectionTable:
    """Every open connection of the process, for the caps: one table shared
    by all app generations (file descriptors are the process's)."""

    def __init__(self, caps: Caps, *, clock: Callable[[], float] = time.monotonic) -> None:
        self.caps = caps
        self._address: dict[GuardedRequestHandler, str] = {}
        self._by_address: Counter[str] = Counter()
        # Connections with no request in progress, the longest idle first.
        self._idle: OrderedDict[GuardedRequestHandler, None] = OrderedDict()
        self._clock = clock
        self._events: Counter[str] = Counter()
        self._next_log = 0.0

    @property
    def open(self) -> int:
        return len(self._address)

    def admit(self, conn: GuardedRequestHandler, address: str) -> bool:
        decision = admission(
            self.caps,
            open_total=len(self._address),
            open_from_address=self._by_address[address],
            idle=len(self._idle),
        )
        if decision is Admission.REFUSE_ADDRESS:
            self.note("refused: per-address cap")
            return False
        if decision is Admission.REFUSE_TOTAL:
            self.note("refused: total cap")
            return False
        if decision is Admission.EVICT_IDLE:
            victim, _ = self._idle.popitem(last=False)
            self.release(victim)
            victim.evict()
            self.note("idle closed for a new connection")
        self._address[conn] = address
        self._by_address[address] += 1
        self._idle[conn] = None
        return True

    def release(self, conn: GuardedRequestHandler) -> None:
        address = self._address.pop(conn, None)
        if address is None:
            return
        self._idle.pop(conn, None)
        self._by_address[address] -= 1
        if not self._by_address[address]:
            del self._by_address[address]

    def working(self, conn: GuardedRequestHandler) -> None:
        self._idle.pop(conn, None)

    def resting(self, conn: GuardedRequestHandler) -> None:
        if conn in self._address:
            self._idle[conn] = None
            self._idle.move_to_end(conn)

    def note(self, event: str) -> None:
        """Count a refusal or a cut; log the counts at most every LOG_EVERY s."""
        self._events[event] += 1
        now = self._clock()
        if now >= self._next_log:
            log.warning(
                "connections refused or cut",
                extra={"events": dict(self._events), "open": len(self._address)},
            )
            self._events.clear()
            self._next_log = now + LOG_EVERY


# --------------------------------------------------------------------------- one generation


class BodyTimeout(web.HTTPRequestTimeout):
    """Raised by ``request.read()`` when the body is late (server.body_timeout)."""


class ConnectionGuard:
    """The protocol factory of one app generation: aiohttp's request handler
    with this module's deadlines, counted in the process's table.

    ``install`` wraps the aiohttp server's request factory (to know when a
    request starts) and request handler (to refuse a declared body that is too
    large before any route runs)."""

    def __init__(
        self,
        server: web.Server,
        limits: Limits,
        table: ConnectionTable,
        **handler_options: Any,
    ) -> None:
        self.server = server
        self.limits = limits
        self.table = table
        self.connections: set[GuardedRequestHandler] = set()
        self._empty = asyncio.Event()
        self._empty.set()
        self._options = handler_options
        self._install()

    def __call__(self) -> GuardedRequestHandler:
        return GuardedRequestHandler(
            self.server,
            loop=asyncio.get_running_loop(),
            guard=self,
            keepalive_timeout=self.limits.keepalive_timeout,
            **self._options,
        )

    def _install(self) -> None:
        make_request = self.server.request_factory
        handle = self.server.request_handler
        limits = self.limits

        def request_factory(
            message: RawRequestMessage,
            payload: StreamReader,
            protocol: RequestHandler,
            writer: AbstractStreamWriter,
            task: asyncio.Task[None],
        ) -> web.BaseRequest:
            if isinstance(protocol, GuardedRequestHandler):
                protocol.request_started(payload)
            return make_request(message, payload, protocol, writer, task)

        async def request_handler(request: web.BaseRequest) -> web.StreamResponse:
            limit, setting = limits.body_limit(request.path)
            if oversized(request.content_length, limit):
                self.table.note("refused: body too large")
                return _too_large(request.content_length or 0, limit, setting)
            return await handle(request)

        self.server.request_factory = request_factory
        self.server.request_handler = request_handler

    def opened(self, conn: GuardedRequestHandler) -> None:
        self.connections.add(conn)
        self._empty.clear()

    def closed(self, conn: GuardedRequestHandler) -> None:
        self.connections.discard(conn)
        if not self.connections:
            self._empty.set()

    async def drain(self, within: float) -> int:
        """Close idle connections now and the others after their current
        answer; wait up to ``within`` seconds for all to close. Returns how
        many are still open (the caller's shutdown cancels them)."""
        for conn in list(self.connections):
            conn.retire()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._empty.wait(), within)
        return len(self.connections)


def _too_large(length: int, limit: int, setting: str) -> web.Response:
    # RFC 9457 problem details: the API's format, and plain enough for any client.
    response = web.json_response(
        {
            "type": "about:blank",
            "title": "Request too large",
            "status": 413,
            "detail": (
                f"the body is {length} bytes; this server takes at most {limit} ({setting})"
            ),
        },
        status=413,
        content_type="application/problem+json",
    )
    response.force_close()
    return response


class GuardedRequestHandler(RequestHandler):
    """aiohttp's HTTP/1.1 protocol with head and body deadlines, counted in
    the connection table. "Busy" runs from the parsed head to the end of the
    answer; in between the connection is idle (and evictable)."""

    __slots__ = (
        "_admitted",
        "_body_handle",
        "_body_late",
        "_busy",
        "_close_handle",
        "_dropping",
        "_gone",
        "_guard",
        "_head_bytes",
        "_head_handle",
        "_next_head_early",
        "_payload",
        "_retiring",
    )

    def __init__(self, manager: web.Server, *, guard: ConnectionGuard, **kwargs: Any) -> None:
        super().__init__(manager, **kwargs)
        self._guard = guard
        self._admitted = False
        self._busy = False
        self._head_handle: asyncio.TimerHandle | None = None
        self._head_bytes = False  # bytes of a head arrived since the head timer was armed
        self._next_head_early = False  # the next head began before this answer ended
        self._payload: StreamReader | None = None
        self._body_handle: asyncio.TimerHandle | None = None
        self._body_late = False
        self._retiring = False
        self._dropping = False  # closing in stages: what arrives is dropped
        self._close_handle: asyncio.TimerHandle | None = None
        self._gone = asyncio.Event()

    # -- the transport's calls

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        peer = transport.get_extra_info("peername")
        address = str(peer[0]) if isinstance(peer, tuple) and peer else "-"
        if not self._guard.table.admit(self, address):
            if isinstance(transport, asyncio.WriteTransport):
                transport.write(_REFUSED)
            transport.close()
            return
        self._admitted = True
        self._guard.opened(self)
        super().connection_made(transport)
        self._arm_head()

    def connection_lost(self, exc: BaseException | None) -> None:
        if not self._admitted:
            return
        for handle in (self._head_handle, self._body_handle, self._close_handle):
            if handle is not None:
                handle.cancel()
        self._guard.table.release(self)
        self._guard.closed(self)
        self._gone.set()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self._dropping:
            return
        # aiohttp calls data_received(b"") itself to reparse what it buffered
        # (_resume_reading_if_drained): no bytes came, so no head began.
        # Bytes that come after an answer while the request's body is still
        # open are the rest of that body (aiohttp reads and drops it), not
        # the next head. Either way no head deadline, or an idle keep-alive
        # client would get a 408 it reads as the answer to its next request.
        if data:
            body_open = self._payload is not None and not self._payload.is_eof()
            if not self._busy and not body_open:
                if self._head_handle is None:
                    self._arm_head()
                self._head_bytes = True
            elif self._busy and not body_open:
                self._next_head_early = True  # pipelined: the body is complete already
        super().data_received(data)

    # -- the request's life

    def request_started(self, payload: StreamReader) -> None:
        """A head was parsed and its request is about to be handled."""
        self._busy = True
        self._guard.table.working(self)
        if self._head_handle is not None:
            self._head_handle.cancel()
            self._head_handle = None
        self._head_bytes = False
        self._next_head_early = False
        self._body_late = False
        self._payload = payload
        if not payload.is_eof():
            self._body_handle = self._loop.call_later(
                self._guard.limits.body_timeout, self._body_expired
            )
            payload.on_eof(self._body_complete)

    async def finish_response(
        self, request: web.BaseRequest, resp: web.StreamResponse, start_time: float | None
    ) -> tuple[web.StreamResponse, bool]:
        if self._body_late or self._retiring:
            resp.force_close()
        result = await super().finish_response(request, resp, start_time)
        self._body_complete()
        self._busy = False
        unread = not request.content.is_eof()
        answered = result[0]
        if self.transport is not None and (self._body_late or (unread and not answered.keep_alive)):
            await self._close_in_stages()
            return result
        self._guard.table.resting(self)
        if self._next_head_early:
            self._arm_head()
            self._head_bytes = True
        return result

    def _body_complete(self) -> None:
        if self._body_handle is not None:
            self._body_handle.cancel()
            self._body_handle = None

    def _body_expired(self) -> None:
        self._body_handle = None
        payload = self._payload
        if payload is None or payload.is_eof():
            return
        self._body_late = True
        self._guard.table.note("cut: body_timeout")
        limit = self._guard.limits.body_timeout
        # The handler waiting in request.read() gets the 408 now.
        payload.set_exception(
            BodyTimeout(text=f"the request body did not arrive within {limit:g} s (body_timeout)")
        )

    # -- heads

    def _arm_head(self) -> None:
        self._head_bytes = False
        self._head_handle = self._loop.call_later(
            self._guard.limits.head_timeout, self._head_expired
        )

    def _head_expired(self) -> None:
        self._head_handle = None
        if self._busy or self.transport is None:
            return
        self._guard.table.note("cut: head_timeout")
        self._end_idle(_HEAD_LATE)

    # -- closing

    def evict(self) -> None:
        """Close this idle connection to make room. At once, without the grace
        of a staged close: the table no longer counts it, so its descriptor
        must go now, or a flood of newcomers could hold many uncounted ones."""
        if self._head_bytes and self.transport is not None:
            self.transport.write(_MADE_ROOM)
        self.force_close()

    def retire(self) -> None:
        """Its generation is stopping: close now if idle, else after the answer."""
        if self._busy:
            self._retiring = True
        else:
            self._end_idle(_LEAVING)

    def _end_idle(self, answer: bytes) -> None:
        """Close an idle connection: with ``answer`` in stages if part of a
        head came (the client waits for an answer), else at once."""
        if self._head_bytes and self.transport is not None:
            self.transport.write(answer)
            self._start_dropping()
            self._close_handle = self._loop.call_later(CLOSE_GRACE, self.force_close)
        else:
            self.force_close()

    async def _close_in_stages(self) -> None:
        self._start_dropping()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._gone.wait(), CLOSE_GRACE)
        self.force_close()

    def _start_dropping(self) -> None:
        self._dropping = True
        transport = self.transport
        if transport is not None and transport.can_write_eof():
            transport.write_eof()
