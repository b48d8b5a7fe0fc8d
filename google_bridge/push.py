"""Gateway -> Google: the outbox handlers, executing ``reconcile``'s plan
for the booking an item is about.

A push brings one booking's Google event in line with the booking as it is
*now* (not as it was when queued), so pushes may repeat or arrive out of
order without harm: an unchanged event is not written again (digest), a
cancelled or deleted booking deletes its event, and the event id is derived
from the booking id, so a retried insert meets itself (409) instead of making
a duplicate. Updates carry the etag we last saw (If-Match); on 412 the event
is re-read and written again, because the gateway's booking is the truth.

While the connection needs a reconnect or is paused for quota, items are
deferred, not failed and never dropped: they drain once it works again.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any

from gateway.core.mirror import (
    Connection,
    EventLink,
    InvitePath,
    LogKind,
    MirrorPolicy,
    SyncLogEntry,
    WarningReason,
    google_event_id,
)
from gateway.core.mirror_admin import MirrorAdmin
from gateway.core.model import Booking, CalendarObject, OutboxItem
from gateway.core.outbox import Deferred, payload_as
from gateway.core.outbox_payloads import GooglePushPayload, GoogleRemovePayload, StopChannelPayload
from gateway.core.ports import CalendarCodec, MirrorRepository

from .client import DuplicateEvent, EtagMismatch, EventMissing, GoogleCalendar
from .errors import CalendarGone, GoogleUnavailable, QuotaExceeded, ReconnectNeeded
from .mapping import copy_body, keep_answers
from .reconcile import Booked, GoogleView, GoogleWrite, Scope, reconcile
from .tokens import TokenKeyMismatch, TokenVault

log = logging.getLogger("calgateway.google")

# How often a deferred item looks again while a reconnect is awaited; a
# reconnect also releases them at once.
RECONNECT_RECHECK = timedelta(minutes=15)
# Reads and writes of one update before it is left to the outbox's retry.
_READ_WRITE_TRIES = 3


class GooglePusher:
    def __init__(
        self,
        repository: MirrorRepository,
        codec: CalendarCodec,
        admin: MirrorAdmin,
        google: GoogleCalendar,
        vault: TokenVault,
        *,
        quota_pause: timedelta,
        clock: Callable[[], datetime],
        resource_names: Mapping[str, str] | None = None,
        organizer_address: str = "",
    ) -> None:
        self._repo = repository
        self._codec = codec
        self._admin = admin
        self._google = google
        self._vault = vault
        self._quota_pause = quota_pause
        self._clock = clock
        self._resource_names = dict(resource_names or {})
        self._organizer_address = organizer_address

    def _admin_resource_name(self, resource_id: str) -> str:
        return self._resource_names.get(resource_id, resource_id)

    async def usable(self, connection: Connection | None) -> Connection | None:
        """The connection if pushing may go ahead now; None if there is
        nothing to push to; raises ``Deferred`` while it is stuck."""
        if connection is None or not connection.connected:
            return None
        now = self._clock()
        if connection.warning is WarningReason.RECONNECT:
            raise Deferred(now + RECONNECT_RECHECK, "waiting for a Google reconnect")
        if connection.paused_until is not None and connection.paused_until > now:
            raise Deferred(connection.paused_until, "paused: Google quota exceeded")
        return connection

    @contextlib.asynccontextmanager
    async def _deferred_on_refusal(self, connection: Connection) -> AsyncIterator[None]:
        """Google refusing a connection's writes (access gone, quota used up,
        calendar gone): the admin is warned and the outbox item waits
        (``Deferred``), never failed nor dropped."""
        try:
            yield
        except (ReconnectNeeded, TokenKeyMismatch) as exc:
            await self._admin.warn(connection.resource_id, WarningReason.RECONNECT, str(exc))
            raise Deferred(self._clock() + RECONNECT_RECHECK, "reconnect needed") from exc
        except QuotaExceeded as exc:
            until = self._clock() + self._quota_pause
            await self._admin.warn(connection.resource_id, WarningReason.QUOTA, str(exc), until)
            raise Deferred(until, "Google quota exceeded") from exc
        except CalendarGone as exc:
            await self._admin.warn(connection.resource_id, WarningReason.CALENDAR_GONE, str(exc))
            raise Deferred(self._clock() + RECONNECT_RECHECK, "calendar gone") from exc

    async def push(self, item: OutboxItem) -> None:
        effect = item.effect
        force = payload_as(item, GooglePushPayload).force
        connection = await self.usable(await self._repo.get_connection(effect.resource_id))
        if connection is None:
            return  # not connected: connecting later exports what is current then
        async with self._deferred_on_refusal(connection):
            await self._push(connection, effect.booking_id, force)
        if connection.warning is WarningReason.QUOTA:
            await self._admin.clear_warning(connection.resource_id, WarningReason.QUOTA)

    async def _push(self, connection: Connection, booking_id: str, force: bool) -> None:
        """Execute ``reconcile``'s plan for the booking as it is now (nothing
        seen of Google: ``force`` says an earlier sync saw its copy changed)."""
        resource_id = connection.resource_id
        refresh = self._vault.open(connection.refresh_token)
        event_id = google_event_id(booking_id)
        link = await self._repo.get_link(resource_id, event_id)
        obj = await self._repo.get_by_id(booking_id)
        policy = self._admin.policy(resource_id)
        now = self._clock()
        plan = reconcile(
            {event_id: link} if link is not None else {},
            {
                booking_id: await booked(self._repo, self._codec, policy, obj)
                if obj is not None
                else Booked(None)
            },
            GoogleView(differs=frozenset({booking_id}) if force else frozenset()),
            Scope(resource_id, policy, now, now),
        )
        if plan.copy_to_guests and obj is not None:
            await self._copy_to_guests(obj.booking)
        # Google e-mails the guests itself when the resource invites that way.
        updates = "all" if policy.guests_in_google else "none"
        for delete in plan.deletes:
            await self._delete(connection, refresh, delete.event_id, delete.booking_id, updates)
        for write in plan.writes:
            status = plan.status[write.event_id]
            assert status is not None and obj is not None
            event = await self._write(connection, refresh, write, link, updates)
            async with self._repo.transaction() as tx:
                await tx.save_link(replace(status, etag=str(event.get("etag", ""))))
                await tx.log(
                    _mirrored(resource_id, obj, "written to Google", event_id, self._clock())
                )

    async def _write(
        self,
        connection: Connection,
        refresh: str,
        write: GoogleWrite,
        link: EventLink | None,
        updates: str,
    ) -> dict[str, Any]:
        calendar = connection.calendar_id
        event_id, body = write.event_id, write.body

        async def insert() -> dict[str, Any]:
            return await self._google.insert_event(refresh, calendar, body, send_updates=updates)

        if link is None:
            try:
                return await insert()
            except DuplicateEvent:
                pass  # an earlier try got through (or the event was deleted there)
        elif not write.fresh_read and not body.get("attendees"):
            # Nothing of a guest's in it: a blind update with the etag we know.
            try:
                return await self._google.update_event(
                    refresh,
                    calendar,
                    event_id,
                    body,
                    if_match=link.etag or None,
                    send_updates=updates,
                )
            except EventMissing:
                return await insert()
            except EtagMismatch:
                pass  # changed in Google since we last saw it: re-read, ours wins
        # Events: update replaces the whole event ("perform a get followed by
        # an update using etags"): read Google's copy, keep the guests'
        # answers it holds, and write with its etag; a 412 means it changed
        # again meanwhile (a guest answering right now): read again.
        for _ in range(_READ_WRITE_TRIES):
            try:
                current = await self._google.get_event(refresh, calendar, event_id)
            except EventMissing:
                return await insert()
            try:
                return await self._google.update_event(
                    refresh,
                    calendar,
                    event_id,
                    keep_answers(body, current),
                    if_match=str(current.get("etag", "")) or None,
                    send_updates=updates,
                )
            except EtagMismatch:
                continue
        raise GoogleUnavailable(
            f"event {event_id} changed in Google during {_READ_WRITE_TRIES} tries to update it"
        )

    async def _copy_to_guests(self, booking: Booking) -> set[str]:
        """Bookers whose own Google calendar is connected here (a colleague
        booking a room) get a copy imported into it, with the booking's UID
        as iCalUID so that every later import updates the same copy. Not
        marked as our event: in the colleague's own mirror it is their busy
        time like any other appointment. Returns the (lower-case) addresses
        that have their copy. The copy carries no answer back: it is the
        guest's own event, with no one to reply to."""
        copied: set[str] = set()
        for attendee in booking.attendees:
            guest = await _own_calendar(self._repo, booking, attendee.email)
            if guest is None:
                continue
            organizer = self._admin_resource_name(booking.resource_id)
            await self._google.import_event(
                self._vault.open(guest.refresh_token),
                guest.calendar_id,
                copy_body(booking, organizer, self._organizer_address),
            )
            copied.add(attendee.email.lower())
        return copied

    async def _delete(
        self,
        connection: Connection,
        refresh: str,
        event_id: str,
        booking_id: str,
        updates: str,
    ) -> None:
        try:
            await self._google.delete_event(
                refresh, connection.calendar_id, event_id, send_updates=updates
            )
            deleted = True
        except EventMissing:  # 404/410: already gone (or never written), as wanted
            deleted = False
        async with self._repo.transaction() as tx:
            await tx.delete_link(connection.resource_id, event_id)
            if deleted:
                await tx.log(
                    replace(
                        _mirrored(
                            connection.resource_id,
                            None,
                            "deleted in Google",
                            event_id,
                            self._clock(),
                        ),
                        booking_id=booking_id,
                    )
                )

    async def remove(self, item: OutboxItem) -> None:
        """Delete an event another resource wrote into a calendar this one
        took over (``MirrorAdmin._hand_over``), with this one's access. No
        e-mail to its guests: the booking is not cancelled, it is only no
        longer mirrored there."""
        effect = item.effect
        payload = payload_as(item, GoogleRemovePayload)
        connection = await self.usable(await self._repo.get_connection(effect.resource_id))
        if connection is None:
            return  # disconnected again: nothing may be written with its access
        calendar, event_id = payload.calendar_id, payload.event_id
        async with self._deferred_on_refusal(connection):
            with contextlib.suppress(EventMissing):  # gone already, as wanted
                await self._google.delete_event(
                    self._vault.open(connection.refresh_token),
                    calendar,
                    event_id,
                    send_updates="none",
                )

    async def stop_channel(self, item: OutboxItem) -> None:
        payload = payload_as(item, StopChannelPayload)
        try:
            refresh = self._vault.open(payload.refresh_token.encode("ascii"))
            await self._google.stop_channel(refresh, payload.channel_id, payload.channel_resource)
        except (ReconnectNeeded, TokenKeyMismatch):
            # Without access the channel cannot be stopped; it expires on its
            # own and its notifications are ignored (unknown channel).
            log.info("channel left to expire", extra={"channel": payload.channel_id})


async def _own_calendar(repo: MirrorRepository, booking: Booking, email: str) -> Connection | None:
    """The connected Google calendar of a booking's guest (a colleague), if any."""
    guest = await repo.connection_by_account(email.lower())
    if guest is None or not guest.connected or guest.resource_id == booking.resource_id:
        return None
    return guest


async def booked(
    repo: MirrorRepository, codec: CalendarCodec, policy: MirrorPolicy, obj: CalendarObject
) -> Booked:
    """A stored booking as ``reconcile`` needs it (for the pusher and the sync)."""
    return Booked(
        obj.booking,
        recurrence=tuple(codec.recurrence(obj)),
        guests_with_copies=frozenset(await guests_with_copies(repo, policy, obj.booking)),
    )


async def guests_with_copies(
    repo: MirrorRepository, policy: MirrorPolicy, booking: Booking
) -> set[str]:
    """The guests (lower-case addresses) who get an imported copy of the
    booking and so are not listed on its Google event: the one rule of what
    the event's guest list is, for the pusher and for the sync's echo check."""
    if policy.invitations is not InvitePath.GOOGLE_IMPORT:
        return set()
    return {
        a.email.lower()
        for a in booking.attendees
        if await _own_calendar(repo, booking, a.email) is not None
    }


def _mirrored(
    resource_id: str, obj: CalendarObject | None, what: str, event_id: str, at: datetime
) -> SyncLogEntry:
    title = f"{obj.booking.title!r} " if obj is not None else ""
    return SyncLogEntry(
        resource_id,
        LogKind.MIRRORED,
        f"booking {title}{what}",
        at,
        booking_id=obj.booking.id if obj is not None else "",
        event_id=event_id,
    )
