"""``/healthz``: is this server able to do its job right now?

Ready means the database answers AND takes a write: a server whose disk is
full still answers every read, so a check that only reads would call it
healthy while every booking fails (issue 12, item 8). The write is the
store's ``check_writable`` (a committed probe that needs a few free pages
and gives them back in the same commit, so the file does not grow).

The answer also carries the outbox's state: items pending, of those marked
"sending" (in flight, or left so by a crash), and items closed as failed for
good (a refused address: the admin looks at their last_error).

``storage_full_middleware`` answers a full disk met by any other page (the
RSVP pages, the Google webhook, the feeds) with 503 and Retry-After instead
of a bare 500; the API and CalDAV answer it in their own formats first.

This module only reads and reports; it does not log a full disk (the store
does, once: ``gateway.store.full``) nor change any state.
"""

from __future__ import annotations

import asyncio
import logging

from aiohttp import web
from aiohttp.typedefs import Handler

from gateway.core.errors import StorageFull
from gateway.core.ports import StoreHealth

from .keys import REPOSITORY

log = logging.getLogger("calgateway")

# The probe waits for the writer like any write; a writer busy for longer
# than this is not a failure of the server, and the answer must not hang.
WRITE_CHECK_TIMEOUT_S = 2.0


class WriteCheck:
    """The write probe, shared: callers that come while one runs wait for its
    outcome instead of starting their own. A monitor polling /healthz from
    many places (or an attacker) then costs the database writer at most one
    probe at a time, and booking writes are not starved behind probes."""

    def __init__(self) -> None:
        self._running: asyncio.Future[str] | None = None

    async def storage(self, repository: StoreHealth) -> str:
        """ "ok", or why the write was not checked; raises ``StorageFull``."""
        running = self._running
        if running is None:
            running = asyncio.ensure_future(self._probe(repository))
            self._running = running
            running.add_done_callback(self._done)
        return await asyncio.shield(running)

    def _done(self, finished: asyncio.Future[str]) -> None:
        self._running = None
        if not finished.cancelled():
            finished.exception()  # retrieved: its callers may all be gone

    @staticmethod
    async def _probe(repository: StoreHealth) -> str:
        try:
            await asyncio.wait_for(repository.check_writable(), WRITE_CHECK_TIMEOUT_S)
        except TimeoutError:
            return "not checked: the database writer stayed busy"
        return "ok"


WRITE_CHECK = web.AppKey("write_check", WriteCheck)


async def healthz(request: web.Request) -> web.Response:
    """200 when the database answers and takes a write; 503 naming what is
    wrong otherwise ("storage full", or the database error)."""
    repository = request.app[REPOSITORY]
    try:
        counts = await repository.outbox_counts()
        storage = await request.app[WRITE_CHECK].storage(repository)
    except StorageFull as full:
        return web.json_response(
            {"status": "error", "database": "ok", "storage": "full", "detail": full.message},
            status=503,
        )
    except Exception as exc:  # any other database failure means "not ready"
        log.warning("health check failed", exc_info=exc)
        return web.json_response({"status": "error", "database": str(exc)}, status=503)
    return web.json_response(
        {
            "status": "ok",
            "database": "ok",
            "storage": storage,
            "outbox_pending": counts["pending"],
            "outbox_sending": counts["sending"],
            "outbox_failed": counts["failed"],
        }
    )


@web.middleware
async def storage_full_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except StorageFull as full:
        # RFC 9110 15.6.4: a temporary condition; Retry-After says when to
        # come back.
        return web.Response(
            status=503,
            text=full.message + "\n",
            headers={"Retry-After": str(full.retry_after)},
        )
