"""Google -> gateway: incremental sync of one resource's calendar.

Calendar API "Synchronize resources efficiently": a full ``events.list``
yields a ``nextSyncToken`` on its last page; later lists with that token
return only what changed, deleted events included. 410 ``fullSyncRequired``
means the token is gone: start a full sync, which ends by removing the busy
blocks of events Google no longer has (so nothing is duplicated or kept).

Each page is decided by ``reconcile`` (recurring events it asks to expand by
``reconcile_series``), and the gateway half of the plan committed in one
transaction (writes back to Google go to the outbox in the same
transaction: the pusher executes them); the sync
token is stored with the last page. A crash between fetching a page and
committing it leaves the old token in place, and the next run fetches the
same changes again; applying them twice changes nothing.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from gateway.core.imports import StaleImport
from gateway.core.mirror import (
    Connection,
    EventLink,
    ImportBatch,
    LinkKind,
    LogKind,
    SyncLogEntry,
)
from gateway.core.mirror_admin import MirrorAdmin
from gateway.core.ports import CalendarCodec, MirrorRepository
from gateway.core.service import BookingService

from .client import GoogleCalendar
from .errors import SyncTokenExpired
from .push import booked
from .reconcile import (
    Booked,
    GoogleView,
    Plan,
    Scope,
    own_booking_id,
    reconcile,
    reconcile_series,
    vanished,
)
from .tokens import TokenVault

log = logging.getLogger("calgateway.google")

# Re-expand a series when less than this remains of its expanded horizon.
_HORIZON_SLACK = timedelta(days=7)


@dataclass(frozen=True, slots=True)
class Horizon:
    past: timedelta
    future: timedelta


@dataclass(frozen=True, slots=True)
class SyncOutcome:
    pages: int = 0
    events: int = 0
    full: bool = False


class CalendarSync:
    def __init__(
        self,
        repository: MirrorRepository,
        bookings: BookingService,
        admin: MirrorAdmin,
        google: GoogleCalendar,
        vault: TokenVault,
        horizon: Horizon,
        clock: Callable[[], datetime],
        codec: CalendarCodec,
    ) -> None:
        self._repo = repository
        self._bookings = bookings
        self._admin = admin
        self._google = google
        self._vault = vault
        self._horizon = horizon
        self._clock = clock
        self._codec = codec

    async def run(self, connection: Connection) -> SyncOutcome:
        """Fetch and apply every change since the stored sync token (or
        everything, when there is none). Raises the client's errors
        (``ReconnectNeeded``, ``QuotaExceeded``, ``GoogleUnavailable``,
        ``CalendarGone``) for the worker to act on."""
        refresh = self._vault.open(connection.refresh_token)
        resource_id = connection.resource_id
        sync_token = connection.sync_token or None
        outcome = SyncOutcome(full=sync_token is None)
        seen: set[str] | None = None if sync_token else set()
        page_token: str | None = None
        while True:
            try:
                answer = await self._google.list_events(
                    refresh, connection.calendar_id, sync_token=sync_token, page_token=page_token
                )
            except SyncTokenExpired:
                if sync_token is None:
                    raise  # a full list cannot expire; do not loop
                await self._admin.note(
                    connection.resource_id,
                    LogKind.INFO,
                    "Google asked for a full sync (410 fullSyncRequired); re-importing",
                )
                sync_token, page_token, seen = None, None, set()
                outcome = SyncOutcome(full=True)
                continue
            items: list[dict[str, Any]] = list(answer.get("items", []))
            zone = str(answer.get("timeZone") or "UTC")
            next_page = answer.get("nextPageToken")
            listed = None
            if seen is not None and not next_page:
                # The last page of a full listing: everything Google has is known.
                listed = seen | {str(event.get("id", "")) for event in items}
            links = {link.event_id: link for link in await self._repo.links(resource_id)}
            plan = await self._plan(connection, links, items, zone, listed)
            for master in plan.expand:
                _merge(plan, await self._expand(refresh, connection, master, zone, links))
            events = outcome.events + len(items)
            if seen is not None:
                seen |= plan.seen
            batch = _gateway_half(
                plan,
                resource_id,
                seen=frozenset(seen) if seen is not None else None,
                sync_token="" if next_page else str(answer.get("nextSyncToken") or ""),
                imported=events,
            )
            result = await self._bookings.apply_import(batch, connection.calendar_id)
            outcome = SyncOutcome(outcome.pages + 1, events, outcome.full)
            if result.created or result.updated or result.removed:
                log.info(
                    "google changes imported",
                    extra={
                        "resource": connection.resource_id,
                        "created": result.created,
                        "updated": result.updated,
                        "removed": result.removed,
                        "conflicts": result.conflicts,
                    },
                )
            if not next_page:
                break
            page_token = str(next_page)
        await self._roll_horizon(refresh, connection)
        return outcome

    async def _plan(
        self,
        connection: Connection,
        links: dict[str, EventLink],
        items: list[dict[str, Any]],
        zone: str,
        listed: set[str] | None,
    ) -> Plan:
        """Gather what ``reconcile`` needs for a page (the saved status, our
        bookings met on it) and ask it. ``listed``: on the last page of a
        full listing, every event id Google listed."""
        resource_id = connection.resource_id
        complete = frozenset(listed) if listed is not None else None
        met = items if complete is None else [*items, *vanished(links, complete)]
        policy = self._admin.policy(resource_id)
        bookings: dict[str, Booked] = {}
        for booking_id in _own_ids(met, links):
            obj = await self._repo.get_by_id(booking_id)
            if obj is None:
                bookings[booking_id] = Booked(None)
            elif obj.resource_id != resource_id:
                bookings[booking_id] = Booked(None, foreign=True)
            else:
                bookings[booking_id] = await booked(self._repo, self._codec, policy, obj)
        now = self._clock()
        return reconcile(
            links,
            bookings,
            GoogleView(items, zone, complete),
            Scope(resource_id, policy, now - self._horizon.past, now),
        )

    async def _expand(
        self,
        refresh: str,
        connection: Connection,
        master: Mapping[str, Any],
        zone: str,
        links: Mapping[str, EventLink],
    ) -> Plan:
        now = self._clock()
        start, until = now - self._horizon.past, now + self._horizon.future
        instances, own_zone = await self._google.instances(
            refresh, connection.calendar_id, str(master["id"]), start, until
        )
        return reconcile_series(
            connection.resource_id, master, instances, own_zone or zone, until, links
        )

    async def _roll_horizon(self, refresh: str, connection: Connection) -> None:
        """Series expanded long ago reach the end of their horizon: expand
        them again so that the next weeks stay blocked."""
        now = self._clock()
        stale = [
            link
            for link in await self._repo.links(connection.resource_id, LinkKind.SERIES)
            if link.expanded_until is None
            or link.expanded_until - now < self._horizon.future - _HORIZON_SLACK
        ]
        if not stale:
            return
        links = {link.event_id: link for link in await self._repo.links(connection.resource_id)}
        plan = Plan()
        for link in stale:
            master = {"id": link.event_id, "etag": link.etag}
            _merge(plan, await self._expand(refresh, connection, master, "UTC", links))
        plan.notes.append(
            SyncLogEntry(
                connection.resource_id,
                LogKind.INFO,
                f"import horizon moved on for {len(stale)} recurring events",
                now,
            )
        )
        try:
            await self._bookings.apply_import(
                _gateway_half(plan, connection.resource_id), connection.calendar_id
            )
        except StaleImport:
            return


def _merge(plan: Plan, series: Plan) -> None:
    """Add a series' plan to the page's."""
    plan.upserts += series.upserts
    plan.removals += [e for e in series.removals if e not in plan.removals]
    plan.status.update(series.status)


def _gateway_half(
    plan: Plan,
    resource_id: str,
    *,
    seen: frozenset[str] | None = None,
    sync_token: str = "",
    imported: int = 0,
) -> ImportBatch:
    """The part of a plan committed in the gateway's transaction. Writes to
    Google go to the outbox there (``repush``): the pusher executes them
    with the booking as it is then, Google's copy known to differ."""
    return ImportBatch(
        resource_id=resource_id,
        upserts=tuple(plan.upserts),
        removals=tuple(plan.removals),
        repush=tuple([w.booking_id for w in plan.writes] + [d.booking_id for d in plan.deletes]),
        responses=tuple(plan.responses),
        notes=tuple(plan.notes),
        status=tuple(plan.status.items()),
        seen=seen,
        sync_token=sync_token,
        imported=imported,
    )


def _own_ids(items: list[dict[str, Any]], links: Mapping[str, EventLink]) -> set[str]:
    return {b for b in (own_booking_id(event, links) for event in items) if b is not None}
