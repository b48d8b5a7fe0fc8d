"""The loop that keeps every connected resource in sync with Google.

A resource is synced when a push notification names it, right after it is
connected, and otherwise every ``poll_interval`` (notifications can be lost;
Calendar API "Push notifications" says to expect that). Before syncing, its
watch channel is opened or renewed. Failures are sorted: a refused refresh
token marks the resource "warning: reconnect needed" (and waits for the
person), the daily quota pauses it, anything passing is retried at the next
round. One resource's trouble never stops the others.

A booking that needs a fresh look at Google (``gateway.core.freshness``)
asks for ``sync_unless_fresh``: the same sync, run at once, unless one
finished within the freshness meanwhile.

Several replicas on one database: a sync runs only in the store's sync
turn for the calendar (``MirrorStore.sync_turn``: a PostgreSQL
advisory lock), so one replica syncs a calendar at a time. A push
notification reaches whichever replica the proxy picks; when another
replica is syncing that calendar, the request is kept and tried again
every ``BUSY_RETRY`` seconds until this replica gets the turn and syncs
itself (the running sync may have listed Google before the change the
notification announces). A due poll that finds the calendar busy just
counts as done: the other replica is syncing it.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from datetime import datetime, timedelta

from gateway.core.freshness import Look, LookOutcome
from gateway.core.imports import StaleImport
from gateway.core.mirror import Connection, ConnectionStatus, Direction, LogKind, WarningReason
from gateway.core.mirror_admin import MirrorAdmin
from gateway.core.ports import MirrorStore
from gateway.core.rounds import run_rounds

from .channels import ChannelKeeper, WatchVerdict, refusal_advice, watch_verdict
from .errors import (
    CalendarGone,
    GoogleError,
    GoogleRequestError,
    GoogleUnavailable,
    QuotaExceeded,
    ReconnectNeeded,
)
from .sync import CalendarSync, SyncOutcome
from .tokens import TokenKeyMismatch

log = logging.getLogger("calgateway.google")

_RECONNECT = "the Google calendar needs to be connected again (reconnect needed)"
BUSY = "another replica is syncing this Google calendar now"
# Seconds between tries for a requested sync another replica holds up.
BUSY_RETRY = 0.25


class SyncWorker:
    def __init__(
        self,
        repository: MirrorStore,
        admin: MirrorAdmin,
        sync: CalendarSync,
        channels: ChannelKeeper | None,
        *,
        poll_interval: float,
        quota_pause: timedelta,
        clock: Callable[[], datetime],
        concurrency: int = 2,
    ) -> None:
        self._repo = repository
        self._admin = admin
        self._sync = sync
        self._channels = channels
        self._poll = timedelta(seconds=poll_interval)
        self._quota_pause = quota_pause
        self._clock = clock
        self._slots = asyncio.Semaphore(concurrency)
        self._requested: set[str] = set()
        self._held_up: set[str] = set()  # requested, another replica syncing (logged)
        self._wake = asyncio.Event()
        self._last_try: dict[str, datetime] = {}
        self._locks: dict[str, asyncio.Lock] = {}
        self._finished: dict[str, int] = {}
        self._finished_changed = asyncio.Condition()

    def request_sync(self, resource_id: str) -> None:
        """Sync this resource soon (a notification came, it was connected)."""
        self._requested.add(resource_id)
        self._wake.set()

    async def run(self) -> None:
        await run_rounds(
            self.run_once, self._wake, self._next_wait, log=log, failure="google sync round failed"
        )

    async def _next_wait(self) -> float:
        if self._requested:
            return BUSY_RETRY  # requests held up by another replica's sync
        if not self._last_try:
            return self._poll.total_seconds()
        earliest = min(self._last_try.values()) + self._poll
        until = (earliest - self._clock()).total_seconds()
        return max(0.05, min(self._poll.total_seconds(), until))

    def _lock(self, resource_id: str) -> asyncio.Lock:
        return self._locks.setdefault(resource_id, asyncio.Lock())

    async def run_once(self) -> list[str]:
        """Sync every resource that is due; returns their ids."""
        requested, self._requested = self._requested, set()
        now = self._clock()
        due: list[Connection] = []
        for connection in await self._repo.connections():
            if not connection.connected:
                continue
            if self._lock(connection.resource_id).locked():
                # Syncing now, here: that sync may have listed Google before
                # the change a notification announced, so the request is
                # kept for when it ends (not dropped until the next poll).
                if connection.resource_id in requested:
                    self._requested.add(connection.resource_id)
                continue
            if self._admin.policy(connection.resource_id).direction is Direction.OFF:
                continue
            last = self._last_try.get(connection.resource_id)
            if connection.resource_id in requested or last is None or now - last >= self._poll:
                due.append(connection)
        results = await asyncio.gather(*(self._turn(c.resource_id) for c in due))
        for connection, result in zip(due, results, strict=True):
            resource_id = connection.resource_id
            if result == BUSY and resource_id in requested:
                if resource_id not in self._held_up:
                    log.info(
                        "google sync held up: another replica is syncing this calendar",
                        extra={"resource": resource_id},
                    )
                self._held_up.add(resource_id)
                self._requested.add(resource_id)  # again after BUSY_RETRY
            else:
                self._held_up.discard(resource_id)
        return [c.resource_id for c in due]

    def finished(self, resource_id: str) -> int:
        """How many syncs of the resource have finished (for waiting on one)."""
        return self._finished.get(resource_id, 0)

    async def wait_finished(self, resource_id: str, count: int) -> None:
        """Until ``finished(resource_id)`` reaches ``count``; bound it with a timeout."""
        async with self._finished_changed:
            await self._finished_changed.wait_for(lambda: self.finished(resource_id) >= count)

    async def sync_now(self, resource_id: str) -> SyncOutcome | None:
        """Sync one resource now (after a sync of it that is under way)."""
        return await self._one(resource_id)

    async def sync_unless_fresh(self, resource_id: str, within: timedelta) -> Look:
        """For a booking (``gateway.core.freshness``): sync the resource now,
        unless a sync finished less than ``within`` ago (one that ran while
        this waited for the resource's lock counts). Takes no concurrency
        slot: a booking is waiting, and routine syncs of other calendars
        (a first import of thousands of events) must not hold it up; bookings
        of one resource share one call of this (``google_bridge.freshness``)."""
        async with self._lock(resource_id):
            while True:
                connection = await self._repo.get_connection(resource_id)
                if connection is not None and connection.last_sync_at is not None:
                    age = self._clock() - connection.last_sync_at
                    if timedelta(0) <= age <= within:
                        return Look(LookOutcome.SYNCED)
                result = await self._attempt(resource_id)
                if result != BUSY:
                    break
                # Another replica is syncing: its sync may well be the fresh
                # look. The guard's deadline bounds this wait.
                await asyncio.sleep(BUSY_RETRY)
        if isinstance(result, str):
            return Look(LookOutcome.FAILED, result)
        return Look(LookOutcome.SYNCED)

    async def _one(self, resource_id: str) -> SyncOutcome | None:
        result = await self._turn(resource_id)
        return None if isinstance(result, str) else result

    async def _turn(self, resource_id: str) -> SyncOutcome | str:
        async with self._lock(resource_id), self._slots:
            return await self._attempt(resource_id)

    async def _attempt(self, resource_id: str) -> SyncOutcome | str:
        """One sync of a resource, under its lock: its outcome, or why there
        was none (a sentence; ``BUSY`` when another replica has the turn)."""
        async with self._repo.sync_turn(resource_id) as mine:
            now = self._clock()
            self._last_try[resource_id] = now
            if not mine:
                return BUSY
            # Read under the turn: a sync that just ran, here or in another
            # replica, moved the sync token.
            connection = await self._repo.get_connection(resource_id)
            return await self._attempt_turn(resource_id, connection, now)

    async def _attempt_turn(
        self, resource_id: str, connection: Connection | None, now: datetime
    ) -> SyncOutcome | str:
        if connection is None or not connection.connected:
            return "the Google calendar is not connected"
        if connection.warning is WarningReason.RECONNECT:
            # Only the person can fix it; the log says so.
            return _RECONNECT
        if connection.paused_until is not None and connection.paused_until > now:
            return f"Google calls are paused until {connection.paused_until:%Y-%m-%d %H:%M} UTC"
        try:
            return await self._sync_one(connection)
        finally:
            async with self._finished_changed:
                self._finished[resource_id] = self.finished(resource_id) + 1
                self._finished_changed.notify_all()

    async def _open_channel(self, connection: Connection) -> Connection:
        """Push notifications are a speed-up: if Google will not open a
        channel, polling carries on alone. A refusal (an http:// base_url,
        say) is written to the sync log once, with what to do, and Google is
        asked again only after the keeper's backoff (``watch_verdict``)."""
        assert self._channels is not None
        if not self._channels.due(connection):
            return connection
        try:
            return await self._channels.ensure(connection)
        except (GoogleError, TokenKeyMismatch) as exc:
            verdict = watch_verdict(exc)
            if verdict is WatchVerdict.REFUSED:
                assert isinstance(exc, GoogleRequestError)
                await self._channel_refused(connection.resource_id, exc)
            elif verdict is WatchVerdict.PASSING:
                log.info(
                    "google watch failed, trying again at the next round",
                    extra={"resource": connection.resource_id, "error": str(exc)},
                )
            # WatchVerdict.SYNC: the sync right after meets the same error.
            return connection

    async def _channel_refused(self, resource_id: str, error: GoogleRequestError) -> None:
        assert self._channels is not None
        refusal = self._channels.refused(resource_id, error)
        hours = round((refusal.retry_at - self._clock()).total_seconds() / 3600)
        if not refusal.first:
            log.info(
                "google refused push notifications again",
                extra={"resource": resource_id, "reason": refusal.reason, "retry_in_h": hours},
            )
            return
        address = self._channels.address
        log.warning(
            "google refused push notifications; polling instead",
            extra={"resource": resource_id, "reason": refusal.reason, "address": address},
        )
        await self._admin.note(
            resource_id,
            LogKind.WARNING,
            f"Google refused push notifications: {refusal.message.rstrip('.')}. "
            f"{refusal_advice(refusal.reason, address)}. Until then changes made in Google "
            f"arrive by polling every {self._poll.total_seconds():.0f} seconds, and the "
            f"gateway asks Google again in {hours} hours.",
        )

    async def _sync_one(self, connection: Connection) -> SyncOutcome | str:
        resource_id = connection.resource_id
        if self._channels is not None:
            connection = await self._open_channel(connection)
        try:
            outcome = await self._sync.run(connection)
        except (ReconnectNeeded, TokenKeyMismatch) as exc:
            await self._admin.warn(resource_id, WarningReason.RECONNECT, str(exc))
            return _RECONNECT
        except QuotaExceeded as exc:
            until = self._clock() + self._quota_pause
            await self._admin.warn(resource_id, WarningReason.QUOTA, str(exc), until)
            return "Google's daily quota is used up"
        except CalendarGone as exc:
            await self._admin.warn(resource_id, WarningReason.CALENDAR_GONE, str(exc))
            return "the Google calendar is gone"
        except StaleImport:
            self.request_sync(resource_id)  # reconnected meanwhile: sync the new one
            return "the Google calendar was connected again meanwhile"
        except (GoogleUnavailable, GoogleRequestError, GoogleError) as exc:
            log.warning(
                "google sync failed, retrying later",
                extra={"resource": resource_id, "error": str(exc)},
            )
            return "Google could not be reached"
        if connection.warning in (WarningReason.QUOTA, WarningReason.CALENDAR_GONE):
            await self._admin.clear_warning(resource_id, connection.warning)
        if connection.status is ConnectionStatus.IMPORTING:
            log.info(
                "google import finished",
                extra={"resource": resource_id, "events": outcome.events, "pages": outcome.pages},
            )
        return outcome
