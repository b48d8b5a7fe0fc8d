"""The fresh look at Google before a booking (``gateway.core.freshness``),
done with the sync worker.

Concurrent bookings of one resource share one look: the first starts the
sync as a task of its own, the others await the same task, each for at most
the deadline. A booking that gives up waiting does not stop the sync: it
goes on in the background, and the next booking finds the busy time fresh.
Whether to look and what a failed look means is decided in the core; this
module only runs the sync and measures the wait.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from datetime import timedelta

from gateway.core.freshness import Look, LookOutcome

from .worker import SyncWorker

log = logging.getLogger("calgateway.google")


class WorkerFreshness:
    """``BusyTimeFreshness`` over ``SyncWorker.sync_unless_fresh``."""

    def __init__(self, worker: SyncWorker) -> None:
        self._worker = worker
        self._in_flight: dict[str, asyncio.Task[Look]] = {}

    async def refresh(self, resource_id: str, *, max_age: timedelta, deadline: timedelta) -> Look:
        task = self._in_flight.get(resource_id)
        if task is None:
            task = asyncio.create_task(self._look(resource_id, max_age))
            self._in_flight[resource_id] = task
            task.add_done_callback(lambda done: self._forget(resource_id, done))
        try:
            async with asyncio.timeout(deadline.total_seconds()):
                # shield: a booking that stops waiting leaves the sync running.
                return await asyncio.shield(task)
        except TimeoutError:
            seconds = deadline.total_seconds()
            return Look(LookOutcome.TIMED_OUT, f"Google did not answer within {seconds:g} s")

    async def _look(self, resource_id: str, max_age: timedelta) -> Look:
        try:
            return await self._worker.sync_unless_fresh(resource_id, max_age)
        except Exception:
            # A bug or a database error: the booking's own transaction will
            # meet a database error again; the policy decides the rest.
            log.exception("fresh look at google failed", extra={"resource": resource_id})
            return Look(LookOutcome.FAILED, "the sync failed unexpectedly (see the server log)")

    def _forget(self, resource_id: str, done: asyncio.Task[Look]) -> None:
        if self._in_flight.get(resource_id) is done:
            del self._in_flight[resource_id]

    async def close(self) -> None:
        """Stop syncs still running for bookings that gave up waiting (at
        shutdown, before the database closes)."""
        tasks = list(self._in_flight.values())
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
