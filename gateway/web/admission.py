"""Admission of heavy requests: a bounded number run, a bounded queue waits,
the rest are turned away at once.

A whole-calendar listing or a report reads, filters and serializes every
object of a calendar; a thousand of them at once used to share the event loop
with everything else, so that each took minutes and /healthz and the booking
API stopped answering. Here such work runs at most ``server.heavy_requests``
at a time; up to ``server.heavy_queue`` more wait their turn, first come first
served, for at most ``server.heavy_queue_timeout`` seconds. Beyond that the
answer is 503 with ``Retry-After`` (RFC 9110 15.6.4, 10.2.3): a CalDAV client
retries later, where a request left waiting would only time out.

What counts as heavy is decided in one place, :func:`weigh`. Light requests
(``/healthz``, the booking API, one object's GET/PUT/DELETE, OPTIONS, PROPFIND
Depth 0) never pass through the gate, so they never queue behind heavy ones.

The gate sits after authentication (``admitted``, called by the CalDAV
sub-application's handler, and inside the feed handler once the token is
checked): a client without credentials is refused before it can take a slot
or a place in the queue, so it cannot lock real users out of their
calendars.

This module does not decide how a request is served, does not bound the time
a request may run once admitted (a streamed answer cuts off a client that
stops reading: ``caldav_backend.dav.multistatus``), and does not limit light
requests.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections import deque
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from enum import Enum

from aiohttp import web
from aiohttp.typedefs import Handler

from gateway.settings import ServerSettings

from .observability import Metrics

# Where the CalDAV tree is mounted and where its calendars live (mirrors
# ``caldav_backend.caldav.names``, which this layer may not import; a test
# checks that they agree).
DAV_PREFIX = "/dav/"
CALENDARS_SEGMENT = "calendars"

# Bounds of the Retry-After estimate, in seconds.
MIN_RETRY_AFTER = 1
MAX_RETRY_AFTER = 60
# What a heavy request is assumed to take before any has finished.
INITIAL_MEAN_SECONDS = 1.0
# Weight of the newest duration in the running mean (exponential smoothing).
_SMOOTHING = 0.2

# nginx's code for "the client closed the connection before the answer":
# logged and counted for a queued request whose client left while it waited.
CLIENT_CLOSED = 499


class Weight(Enum):
    LIGHT = "light"
    HEAVY = "heavy"


def weigh(method: str, path: str, depth: str | None) -> Weight:
    """Whether a request is heavy, from its method, its raw path (without
    the query) and its Depth header (None when absent).

    Heavy: every REPORT under the CalDAV tree (calendar-query, multiget,
    free-busy, sync-collection each may read a whole calendar), every POST
    there (a free-busy request to the schedule outbox reads the busy time
    of each resource it names, RFC 6638 5), and a
    PROPFIND of a calendar with a Depth other than 0 (RFC 4918 10.2: it lists
    every member). A missing Depth is 0 here (the PROPFIND handler's default);
    a malformed one is answered 400 at once, so it is light.

    Light: everything else, including PROPFIND Depth 1 of the home or a
    principal (a handful of entries) and the ICS feed request: a feed is
    served from its cache or answered 304 cheaply, and only its render is
    heavy, admitted by ``gateway.front.feeds`` itself."""
    if not path.startswith(DAV_PREFIX):
        return Weight.LIGHT
    verb = method.upper()
    if verb in ("REPORT", "POST"):
        return Weight.HEAVY
    if verb != "PROPFIND" or (depth or "0").strip().lower() not in ("1", "infinity"):
        return Weight.LIGHT
    segments = path[len(DAV_PREFIX) :].split("/")
    if segments[-1] == "":
        segments.pop()  # a trailing slash
    is_calendar = len(segments) == 2 and segments[0] == CALENDARS_SEGMENT and segments[1] != ""
    return Weight.HEAVY if is_calendar else Weight.LIGHT


def retry_after(waiting: int, running: int, mean_seconds: float) -> int:
    """Seconds to suggest in ``Retry-After``: about the time the work ahead
    of a newcomer takes to drain (everything waiting, shared by the slots),
    within [MIN_RETRY_AFTER, MAX_RETRY_AFTER]."""
    slots = max(running, 1)
    estimate = math.ceil((waiting + 1) * mean_seconds / slots)
    return max(MIN_RETRY_AFTER, min(MAX_RETRY_AFTER, estimate))


class Refused(Exception):
    """No slot: the queue was full, or the wait reached its bound."""

    def __init__(self, reason: str, retry_after: int) -> None:
        super().__init__(reason)
        self.reason = reason
        self.retry_after = retry_after


class AdmissionGate:
    """At most ``limit`` holders at once; up to ``queue`` more wait, first in
    first out, each for at most ``max_wait`` seconds.

    A finished holder hands its slot straight to the oldest waiter, so a
    newcomer can never overtake the queue."""

    def __init__(
        self,
        limit: int,
        queue: int,
        max_wait: float,
        metrics: Metrics,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if limit < 1 or queue < 0 or max_wait <= 0:
            raise ValueError("limit >= 1, queue >= 0 and max_wait > 0")
        self.limit = limit
        self.queue = queue
        self.max_wait = max_wait
        self._metrics = metrics
        self._clock = clock
        self._running = 0
        self._waiters: deque[asyncio.Future[None]] = deque()
        self._mean = INITIAL_MEAN_SECONDS

    @classmethod
    def from_settings(cls, server: ServerSettings, metrics: Metrics) -> AdmissionGate:
        return cls(server.heavy_requests, server.heavy_queue, server.heavy_queue_timeout, metrics)

    @property
    def running(self) -> int:
        return self._running

    @property
    def waiting(self) -> int:
        return sum(1 for w in self._waiters if not w.done())

    @asynccontextmanager
    async def admit(self) -> AsyncIterator[None]:
        """Hold a slot for the body of the ``async with``; raises
        :class:`Refused` when there is none to be had."""
        await self._acquire()
        started = self._clock()
        try:
            yield
        finally:
            elapsed = self._clock() - started
            self._mean += _SMOOTHING * (elapsed - self._mean)
            self._release()

    def _refuse(self, reason: str) -> Refused:
        self._metrics.heavy.labels("refused").inc()
        return Refused(reason, retry_after(self.waiting, self._running, self._mean))

    async def _acquire(self) -> None:
        if self._running < self.limit and not self.waiting:
            self._running += 1
            self._admitted()
            return
        if self.waiting >= self.queue:
            raise self._refuse("full")
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.append(waiter)
        self._metrics.heavy.labels("queued").inc()
        self._publish()
        try:
            async with asyncio.timeout(self.max_wait):
                await waiter
        except BaseException as error:
            if waiter.done() and not waiter.cancelled():
                # Handed a slot just as the wait ended: pass it on.
                self._release()
            else:
                waiter.cancel()
                self._waiters.remove(waiter)
                self._publish()
            if isinstance(error, TimeoutError):
                raise self._refuse("timeout") from None
            raise
        self._admitted()

    def note_abandoned(self) -> None:
        """A request admitted after its client had gone (it gives its slot back)."""
        self._metrics.heavy.labels("abandoned").inc()

    def _admitted(self) -> None:
        self._metrics.heavy.labels("admitted").inc()
        self._publish()

    def _release(self) -> None:
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)  # the slot changes hands; running stays
                self._publish()
                return
        self._running -= 1
        self._publish()

    def _publish(self) -> None:
        self._metrics.heavy_running.set(self._running)
        self._metrics.heavy_waiting.set(self.waiting)


ADMISSION = web.AppKey("admission", AdmissionGate)


def _unavailable(refused: Refused) -> web.HTTPServiceUnavailable:
    why = "too many" if refused.reason == "full" else "waited too long behind other"
    return web.HTTPServiceUnavailable(
        text=(
            f"the server is busy ({why} calendar listings and reports); "
            f"try again in {refused.retry_after} s\n"
        ),
        headers={"Retry-After": str(refused.retry_after)},
    )


@asynccontextmanager
async def heavy_work(request: web.Request) -> AsyncIterator[None]:
    """Hold a slot of the application's gate; 503 with Retry-After if none."""
    try:
        async with request.config_dict[ADMISSION].admit():
            yield
    except Refused as refused:
        raise _unavailable(refused) from None


def _client_gone(request: web.Request) -> bool:
    transport = request.transport
    return transport is None or transport.is_closing()


async def admitted(request: web.Request, handler: Handler) -> web.StreamResponse:
    """``handler``'s answer to ``request``: at once for a light request; for
    a heavy one inside a slot, held until the handler returns (a streamed
    answer is written by then)."""
    weight = weigh(request.method, request.rel_url.raw_path, request.headers.get("Depth"))
    if weight is Weight.LIGHT:
        return await handler(request)
    # The body first (bounded by the server's size limit and body deadline):
    # a slot is for work, not for waiting on a slow upload.
    await request.read()
    async with heavy_work(request):
        if _client_gone(request):
            # It left while queued: no point building an answer nobody reads.
            request.config_dict[ADMISSION].note_abandoned()
            return web.Response(status=CLIENT_CLOSED, reason="Client Closed Request")
        return await handler(request)
