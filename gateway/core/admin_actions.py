"""What an admin may do to the gateway's queued side effects and bookings:
list the outbox, run an item again now, give one up, send a booking's
invitation again; and the server secret console sessions are signed with.

One service for every face: the admin console (``gateway.front.console``),
the JSON API (``gateway.front.api``) and ``calgateway`` (``gateway.cli``)
call these methods and add no rule of their own. Each action is logged
(logger ``calgateway.admin``) with who did it (``by``).

The store's part is the ``OutboxAdmin`` port (``gateway.core.ports``); what an
item *is*, in words, is the pure ``describe`` (``gateway.core.outbox_words``).
Nothing here runs an effect: a retried item is made due now and the outbox
worker runs it. The callbacks given to ``on_queued`` (the in-process
worker's ``wake``) are called after each such write, so a running server
takes the item at once; written by another process (the CLI), a server's
worker sees it at its next poll, ``outbox.poll_interval`` seconds at most.

For console sessions: ``session_key()`` is a 32-byte secret created once per
database and kept there, so every replica signs cookies with the same key and
a restart signs nobody out.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Literal, Protocol

from .clock import utc_now
from .effects import Invite
from .errors import GatewayError, NotFound
from .model import BookingStatus, PartStat, Resource
from .outbox_payloads import InviteAction
from .outbox_words import BookingGlance, describe
from .ports import OutboxAdmin, OutboxRecord, ReadPort, Transactions

log = logging.getLogger("calgateway.admin")

OutboxState = Literal["pending", "failed"]
"""What ``outbox`` lists: items not done yet, or items closed as failed."""

SESSION_KEY_NAME = "console-session"
"""The name of the server secret console session cookies are signed with."""


@dataclass(frozen=True, slots=True)
class OutboxEntry:
    """One outbox item as an admin sees it."""

    id: int
    kind: str  # the effect kind as stored
    description: str  # what the item is, in words (``outbox_words.describe``)
    resource_id: str
    booking_id: str | None  # None: the item belongs to no booking
    # "sending": its effect was started and has not reported back (it is
    # running now, or a crash cut it off and it will run again).
    state: Literal["pending", "sending", "failed"]
    attempts: int
    last_error: str | None
    created: datetime
    next_attempt: datetime | None  # pending only; None: due now
    failed_at: datetime | None  # failed only


class ActionRefused(GatewayError):
    """The action does not apply to the item or booking as it is now (an item
    already done, a cancelled booking, invitations switched off). Front ends
    answer 409 with ``message``."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class AdminStore(OutboxAdmin, ReadPort, Transactions, Protocol):
    """What the admin actions need of the store."""


def entry_of(record: OutboxRecord, glance: BookingGlance | None) -> OutboxEntry:
    """The admin's view of a stored item (``glance``: its booking, if any)."""
    if record.failed_at is not None:
        state: Literal["pending", "sending", "failed"] = "failed"
    elif record.sending:
        state = "sending"
    else:
        state = "pending"
    effect = record.effect
    return OutboxEntry(
        id=record.id,
        kind=effect.kind,
        description=describe(effect.payload, glance),
        resource_id=effect.resource_id,
        booking_id=effect.booking_id or None,
        state=state,
        attempts=record.attempts,
        last_error=record.last_error,
        created=record.created,
        next_attempt=record.next_attempt if state != "failed" else None,
        failed_at=record.failed_at,
    )


class AdminActions:
    """The admin's actions on the outbox and on invitations (module docstring)."""

    def __init__(
        self,
        store: AdminStore,
        resources: Mapping[str, Resource],
        *,
        invitations: bool,
        clock: Callable[[], datetime] = utc_now,
    ) -> None:
        self._store = store
        self._resources = resources
        self._invitations = invitations
        self._clock = clock
        self._queued: list[Callable[[], None]] = []
        self._session_key: bytes | None = None

    def on_queued(self, callback: Callable[[], None]) -> None:
        """Call ``callback`` after an action made an item due (the server's
        outbox worker's ``wake``)."""
        self._queued.append(callback)

    def _notify_queued(self) -> None:
        for callback in self._queued:
            callback()

    async def session_key(self) -> bytes:
        """The 32-byte key console session cookies are signed with: the same
        on every replica and across restarts (kept in the database)."""
        return await self._store.server_secret(SESSION_KEY_NAME)

    async def outbox(
        self,
        state: OutboxState | None = None,
        limit: int = 100,
        *,
        resource_ids: Collection[str] | None = None,
    ) -> list[OutboxEntry]:
        """Items not done (``pending``, oldest first) or closed as failed
        (``failed``, newest first); both when ``state`` is None (undone first).
        ``resource_ids``: only those of these resources (what the caller may
        act on); None: all."""
        records = await self._store.outbox_records(state, limit, resource_ids)
        glances: dict[str, BookingGlance | None] = {}
        entries = []
        for record in records:
            booking_id = record.effect.booking_id
            if booking_id and booking_id not in glances:
                glances[booking_id] = await self._glance(booking_id)
            entries.append(entry_of(record, glances.get(booking_id)))
        return entries

    async def outbox_entry(self, item_id: int) -> OutboxEntry:
        """One item that is not done or failed; ``NotFound`` otherwise (a
        done item is not kept for the admin)."""
        record = await self._store.outbox_record(item_id)
        if record is None or (record.done and record.failed_at is None):
            raise NotFound("outbox item", str(item_id))
        return await self._entry(record)

    async def outbox_resource(self, item_id: int) -> str:
        """The resource an item belongs to, done or not (``NotFound``): what a
        front end checks the caller's access against before acting on it."""
        record = await self._store.outbox_record(item_id)
        if record is None:
            raise NotFound("outbox item", str(item_id))
        return record.effect.resource_id

    async def retry_outbox_now(self, item_id: int, by: str) -> OutboxEntry:
        """Run the item at once: a pending one is made due now (its lease, if
        a worker is running it right now, is kept); a failed one is reopened
        and due now, its attempts and last error kept. A done item cannot be
        run again (``ActionRefused``)."""
        record = await self._store.outbox_record(item_id)
        if record is None:
            raise NotFound("outbox item", str(item_id))
        if record.done and record.failed_at is None:
            raise ActionRefused(f"outbox item {item_id} is done already; there is nothing to retry")
        reopened = await self._store.reopen_outbox(item_id, self._clock())
        if reopened is None:
            # Done meanwhile by a worker: the same answer as above.
            raise ActionRefused(f"outbox item {item_id} is done already; there is nothing to retry")
        log.info(
            "admin: outbox item retried now",
            extra={
                "by": by,
                "item": item_id,
                "kind": record.effect.kind,
                "was": "failed" if record.failed_at is not None else "pending",
            },
        )
        self._notify_queued()
        return await self._entry(reopened)

    async def give_up_outbox(self, item_id: int, by: str) -> OutboxEntry:
        """Close a pending item as failed for good, reason "given up by
        <by>": it never runs. Refused for an item done or failed already, and
        for one whose effect was started and has not reported back (it may be
        happening right now)."""
        record = await self._store.outbox_record(item_id)
        if record is None:
            raise NotFound("outbox item", str(item_id))
        refusal = _give_up_refusal(record)
        if refusal is not None:
            raise ActionRefused(refusal)
        closed = await self._store.give_up_outbox(item_id, f"given up by {by}")
        if closed is None:
            now = await self._store.outbox_record(item_id)
            raise ActionRefused(
                (_give_up_refusal(now) if now is not None else None)
                or f"outbox item {item_id} changed meanwhile; look again"
            )
        log.info(
            "admin: outbox item given up",
            extra={"by": by, "item": item_id, "kind": record.effect.kind},
        )
        return await self._entry(closed)

    async def resend_invitation(self, booking_id: str, by: str) -> tuple[str, ...]:
        """Queue the booking's invitation again, at its current SEQUENCE, to
        every attendee who has not declined (one item each, as a change
        queues them); returns their addresses. ``NotFound`` for an unknown
        booking; ``ActionRefused`` when invitations are off, the booking is
        cancelled, or nobody is left to invite.

        The message is the same invitation as before (same UID and SEQUENCE,
        RFC 5546 2.1.5; the same Message-ID, ``gateway.mail.imip``), so a
        calendar client folds it into the one it has, and one that lost it
        gets it again."""
        if not self._invitations:
            raise ActionRefused(
                "invitations are off (no mail settings): the gateway sends no invitations"
            )
        async with self._store.transaction() as tx:
            obj = await tx.get_by_id(booking_id)
            if obj is None:
                raise NotFound("booking", booking_id)
            booking = obj.booking
            if booking.status is BookingStatus.CANCELLED:
                raise ActionRefused(f"booking {booking_id!r} is cancelled: there is no invitation")
            invited = [a for a in booking.attendees if a.partstat is not PartStat.DECLINED]
            if not booking.attendees:
                raise ActionRefused(f"booking {booking_id!r} has no attendee to invite")
            if not invited:
                raise ActionRefused(f"every attendee of booking {booking_id!r} has declined")
            for attendee in invited:
                resend = Invite(
                    booking.resource_id,
                    booking.id,
                    attendee.email,
                    InviteAction.RESENT,
                    booking.sequence,
                    by=by,
                )
                await tx.enqueue(resend.outbox())
        log.info(
            "admin: invitation queued again",
            extra={
                "by": by,
                "booking": booking_id,
                "sequence": booking.sequence,
                "attendees": [a.email for a in invited],
            },
        )
        self._notify_queued()
        return tuple(a.email for a in invited)

    async def _entry(self, record: OutboxRecord) -> OutboxEntry:
        booking_id = record.effect.booking_id
        return entry_of(record, await self._glance(booking_id) if booking_id else None)

    async def _glance(self, booking_id: str) -> BookingGlance | None:
        obj = await self._store.get_by_id(booking_id)
        if obj is None:
            return None
        return BookingGlance.of(obj.booking)


def _give_up_refusal(record: OutboxRecord) -> str | None:
    """Why a pending item may not be given up now (None: it may)."""
    if record.failed_at is not None:
        return f"outbox item {record.id} has failed already"
    if record.done:
        return f"outbox item {record.id} is done already"
    if record.sending:
        return (
            f"outbox item {record.id} is being sent right now (or was cut off while sending "
            "and will run again); it may have happened already, so it cannot be given up"
        )
    return None
