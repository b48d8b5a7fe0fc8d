"""Draining the outbox: run each queued side effect until it succeeds.

Effects (push to Google, send an e-mail) were committed in the same
transaction as the change that caused them, so they survive a crash; this
worker runs them after the fact. An item is done only when its handler
returns; a failure is retried with jittered exponential backoff, for as long
as it takes (nothing is ever dropped: the admin sees stuck items in
``/healthz``, ``/metrics`` and the sync log). A handler that must wait for
something (a reconnect, a quota pause) raises ``Deferred``, which re-queues
the item without counting a failed attempt.

Items are claimed with a lease, so a second worker on the same database
(another process) does not run them at the same time, and the store hands
out only the oldest undone item of each booking, so items of one booking run
one at a time and in order, retries included: a failed invitation is not
overtaken by the cancellation queued after it.

Effects that cannot be taken back and must not happen twice unnoticed (an
e-mail) go through ``OutboxJournal`` (``gateway.core.ports``, as is the
``OutboxStore`` the worker drains): the handler marks the item "sending"
in a commit of its own right before it starts, and marks it done in a commit
of its own right after the other side acknowledged (before hanging up). A
crash (kill -9, power loss) between the two leaves the item marked: the
effect may or may not have happened, and nobody can ask the mail server
which. Such an item is run again when its lease is voided at the next start
(or runs out) and arrives with ``maybe_done`` set; it is logged as a
warning and counted. Running it again is the choice made here, rather than
holding it for an admin, because the window is milliseconds wide while a
held invitation leaves a booker without word until a person acts: a lost
confirmation costs a booking, a duplicate costs a glance. The duplicate is
recognisable: a message keeps its Message-ID on every attempt (derived from
the booking, attendee, SEQUENCE and method, or from the outbox item), so
mail stores and calendar clients can fold it into the first (RFC 5322
3.6.4; RFC 5546 2.1.5: the same UID and SEQUENCE is the same invitation).

A permanent failure (``PermanentFailure``: a 5yz reply, an address the
server or the message format refuses) closes the item as failed with its
reason, one log line, and is never retried; ``/healthz`` counts such items.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, TypeVar

from .clock import utc_now as _utc_now
from .model import OutboxItem
from .outbox_payloads import Payload, UnreadablePayload
from .ports import OutboxStore
from .rounds import run_rounds

P = TypeVar("P", bound=Payload)

log = logging.getLogger("calgateway.outbox")

Handler = Callable[[OutboxItem], Awaitable[None]]


class Deferred(Exception):
    """Raised by a handler: not now, try again at ``until`` (not a failure)."""

    def __init__(self, until: datetime, reason: str) -> None:
        super().__init__(reason)
        self.until = until
        self.reason = reason


class PermanentFailure(Exception):
    """Raised by a handler when retrying cannot help (a recipient address the
    mail server refuses). The item is closed as failed with the reason kept."""


def payload_as(item: OutboxItem, payload_type: type[P]) -> P:
    """The item's payload, which must be of ``payload_type``: a handler is
    registered for one kind, and the kind follows from the payload's type,
    so anything else is a wiring mistake, failed for good rather than retried."""
    payload = item.effect.payload
    if not isinstance(payload, payload_type):
        raise PermanentFailure(
            f"a {item.effect.kind!r} item reached the handler for {payload_type.__name__}"
        )
    return payload


@dataclass(frozen=True, slots=True)
class Backoff:
    """Delay before retry n (n = failed attempts so far, from 0): exponential,
    capped, with "equal jitter" (half fixed, half random) so that many items
    failing together do not come back together."""

    initial: float
    maximum: float

    def delay(self, attempts: int, rng: random.Random) -> timedelta:
        ceiling = min(self.maximum, self.initial * 2 ** min(attempts, 32))
        return timedelta(seconds=ceiling / 2 + rng.uniform(0, ceiling / 2))


async def _keep(write: Coroutine[Any, Any, None]) -> None:
    """Run an outbox bookkeeping write to its end even when the worker is
    cancelled meanwhile (the store's close waits for it): cancelled half-way,
    its transaction would roll back and leave the item leased."""
    await asyncio.shield(asyncio.ensure_future(write))


class OutboxWorker:
    def __init__(
        self,
        store: OutboxStore,
        handlers: Mapping[str, Handler],
        *,
        backoff: Backoff,
        poll_interval: float,
        batch_size: int = 50,
        concurrency: int = 4,
        lease: timedelta = timedelta(minutes=5),
        clock: Callable[[], datetime] = _utc_now,
        rng: random.Random | None = None,
    ) -> None:
        self._store = store
        self._handlers = dict(handlers)
        self._backoff = backoff
        self._poll_interval = poll_interval
        self._batch_size = batch_size
        self._slots = asyncio.Semaphore(concurrency)
        self._lease = lease
        self._clock = clock
        self._rng = rng or random.Random()  # noqa: S311 - jitter, not secrecy
        self._wake = asyncio.Event()
        self._inflight = 0
        self._quiet = asyncio.Condition()
        self._closing = False
        self.processed = 0
        self.failures = 0
        self.maybe_done = 0  # items run again after a run that may have done them

    def wake(self) -> None:
        """Something was queued: look now instead of at the next poll."""
        self._wake.set()

    async def run_once(self) -> int:
        """Run every item due now (in batches); returns how many were handled."""
        handled = 0
        while not self._closing:
            # In flight from before the claim: once claimed (leased), an item
            # is not due for anyone else, so a ``settle`` looking between the
            # claim and the start of the item would take it for done.
            async with self._counted():
                items = await self._store.claim_outbox(self._clock(), self._batch_size, self._lease)
                if not items:
                    return handled
                # At most one item per booking comes back (the store keeps
                # their order), so the items of a batch may all run at once.
                await asyncio.gather(*(self._run_slotted(item) for item in items))
            handled += len(items)
        return handled

    @contextlib.asynccontextmanager
    async def _counted(self) -> AsyncIterator[None]:
        async with self._quiet:
            self._inflight += 1
        try:
            yield
        finally:
            async with self._quiet:
                self._inflight -= 1
                self._quiet.notify_all()

    async def finish_in_flight(self, within: float) -> None:
        """Before a stop (shutdown, settings reload): claim nothing more and
        let the items in flight end, for up to ``within`` seconds. An item cut
        off mid-way (an e-mail the server may have taken) can only be run
        again, so every item that ends on its own is one duplicate fewer; what
        is still running after ``within`` is cancelled by the stop as before."""
        self._closing = True
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(within), self._quiet:
                await self._quiet.wait_for(lambda: self._inflight == 0)

    async def _run_slotted(self, item: OutboxItem) -> None:
        async with self._slots:
            await self._run(item)

    async def settle(self) -> None:
        """Run until nothing is due now and nothing is in flight (items
        retried or deferred to a later time stay queued). For callers that
        must see effects done, like the tests and the admin commands; bound
        it with a timeout."""
        while True:
            await self.run_once()
            async with self._quiet:
                await self._quiet.wait_for(lambda: self._inflight == 0)
            due = await self._store.next_outbox_due()
            if due is None or due > self._clock():
                return

    async def _run(self, item: OutboxItem) -> None:
        handler = self._handlers.get(item.effect.kind)
        now = self._clock()
        if item.maybe_done:
            self.maybe_done += 1
            log.warning(
                "outbox item may have been done before the last stop; running it again",
                extra={"item": item.id, "kind": item.effect.kind},
            )
        try:
            payload = item.effect.payload
            if isinstance(payload, UnreadablePayload):
                # Retrying cannot make it readable (gateway.store.outbox_codec).
                raise PermanentFailure(f"the stored record cannot be read: {payload.problem}")
            if handler is None:
                raise LookupError(f"no handler for outbox items of kind {item.effect.kind!r}")
            await handler(item)
        except Deferred as deferred:
            await _keep(self._store.defer_outbox(item.id, deferred.until, deferred.reason))
            return
        except PermanentFailure as failure:
            log.error(
                "outbox item failed for good",
                extra={"item": item.id, "kind": item.effect.kind, "error": str(failure)},
            )
            await _keep(self._store.fail_outbox(item.id, f"failed for good: {failure}"))
            self.failures += 1
            return
        except asyncio.CancelledError:
            # Stopping (shutdown): give the item back at once instead of
            # leaving it leased, so the next start runs it without waiting
            # for the lease. The effect may have happened; effects are
            # idempotent or carry stable ids (DESIGN.md).
            await _keep(self._store.defer_outbox(item.id, now, "interrupted by shutdown"))
            raise
        except Exception as exc:  # any failure of an effect is retried later
            self.failures += 1
            delay = self._backoff.delay(item.attempts, self._rng)
            log.warning(
                "outbox item failed, will retry",
                extra={
                    "item": item.id,
                    "kind": item.effect.kind,
                    "attempt": item.attempts + 1,
                    "retry_in_s": round(delay.total_seconds(), 3),
                    "error": f"{type(exc).__name__}: {exc}",
                },
            )
            error = f"{type(exc).__name__}: {exc}"
            await _keep(self._store.retry_outbox(item.id, error, now + delay))
            return
        # Once the effect happened, its record must land even if the worker
        # is being stopped right now: a lost "done" means doing it twice.
        await _keep(self._store.complete_outbox(item.id))
        self.processed += 1

    async def run(self) -> None:
        """Until cancelled: run what is due, then sleep until the next item
        falls due, a ``wake()``, or ``poll_interval`` (another process may
        queue items this one is not told about).

        It starts by voiding the leases of items claimed before: they belong
        to this server's previous life (a crash, or a stop in the middle of
        a claim) and are due again now rather than when the lease runs out.
        One server runs the outbox of a SQLite file, so no live worker loses
        an item this way; on PostgreSQL, where replicas share the outbox,
        only the leases of replicas that are gone are voided (the store
        knows its live lease holders)."""
        try:
            released = await self._store.release_leases()
        except Exception:  # the database may be briefly unavailable
            log.exception("could not release old outbox leases")
        else:
            if released:
                log.info("outbox items of a previous run released", extra={"items": released})
        await run_rounds(
            self.run_once, self._wake, self._next_wait, log=log, failure="outbox pass failed"
        )

    async def _next_wait(self) -> float:
        due = await self._next_due()
        if due is None:
            return self._poll_interval
        return max(0.0, min(self._poll_interval, (due - self._clock()).total_seconds()))

    async def _next_due(self) -> datetime | None:
        try:
            return await self._store.next_outbox_due()
        except asyncio.CancelledError:
            raise
        except Exception:
            return None
