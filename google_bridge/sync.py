"""Google -> gateway: incremental sync of one resource's calendar.

Calendar API "Synchronize resources efficiently": a full ``events.list``
yields a ``nextSyncToken`` on its last page; later lists with that token
return only what changed, deleted events included. 410 ``fullSyncRequired``
means the token is gone: start a full sync, which ends by removing the busy
blocks of events Google no longer has (so nothing is duplicated or kept).

Each page is planned (``plan``) and committed in one transaction; the sync
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
    BusyBlock,
    Connection,
    EventLink,
    ImportBatch,
    LinkKind,
    LogKind,
    SeriesExpansion,
    SyncLogEntry,
    google_event_id,
)
from gateway.core.mirror_admin import MirrorAdmin
from gateway.core.ports import CalendarCodec, MirrorRepository
from gateway.core.service import BookingService

from .client import GoogleCalendar
from .errors import SyncTokenExpired
from .mapping import busy_block
from .plan import OwnEvent, PagePlan, own_booking_id, plan_page, plan_push, vanished
from .push import guests_with_copies
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
            plan = await self._plan(connection, items, zone, listed)
            expansions = [
                await self._expand(refresh, connection, master, zone) for master in plan.expand
            ]
            events = outcome.events + len(items)
            if seen is not None:
                seen |= plan.seen
            batch = ImportBatch(
                resource_id=connection.resource_id,
                upserts=tuple(plan.upserts),
                removals=tuple(plan.removals),
                series=tuple(expansions),
                series_removals=tuple(plan.series_removals),
                repush=tuple(plan.repush),
                responses=tuple(plan.responses),
                notes=tuple(plan.notes),
                echo_etags=tuple(plan.echo_etags),
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
        items: list[dict[str, Any]],
        zone: str,
        listed: set[str] | None,
    ) -> PagePlan:
        """``listed``: on the last page of a full listing, every event id
        Google listed (then our own events it did not list are planned as
        deleted in Google, ``vanished``)."""
        resource_id = connection.resource_id
        links = {link.event_id: link for link in await self._repo.links(resource_id)}
        own: dict[str, OwnEvent] = {}
        met = items if listed is None else [*items, *vanished(links, listed)]
        for booking_id in _own_ids(met, links):
            obj = await self._repo.get_by_id(booking_id)
            if obj is None:
                own[booking_id] = OwnEvent(None, None)
                continue
            if obj.resource_id != resource_id:
                own[booking_id] = OwnEvent(None, None, foreign=True)
                continue
            # What we would write now, by the pusher's own rule (``plan_push``):
            # a Google event still showing it is our write coming back.
            policy = self._admin.policy(resource_id)
            would_write = plan_push(
                obj.booking,
                links.get(google_event_id(booking_id)),
                policy,
                recurrence=self._codec.recurrence(obj),
                guests_with_copies=frozenset(
                    await guests_with_copies(self._repo, policy, obj.booking)
                ),
                force=True,
            )
            own[booking_id] = OwnEvent(obj.booking, would_write.body)
        now = self._clock()
        return plan_page(
            items,
            resource_id=resource_id,
            calendar_zone=zone,
            links=links,
            own=own,
            window_start=now - self._horizon.past,
            now=now,
            import_foreign=self._admin.policy(resource_id).direction.pulls,
            listed=listed,
        )

    async def _expand(
        self,
        refresh: str,
        connection: Connection,
        master: Mapping[str, Any],
        zone: str,
    ) -> SeriesExpansion:
        now = self._clock()
        start, until = now - self._horizon.past, now + self._horizon.future
        series_id = str(master["id"])
        instances, own_zone = await self._google.instances(
            refresh, connection.calendar_id, series_id, start, until
        )
        zone = own_zone or zone
        blocks: list[BusyBlock] = []
        for instance in instances:
            block = busy_block(instance, zone, series_id)
            if block is not None:
                blocks.append(block)
        return SeriesExpansion(series_id, str(master.get("etag", "")), tuple(blocks), until)

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
        expansions = []
        for link in stale:
            master = {"id": link.event_id, "etag": link.etag}
            expansions.append(await self._expand(refresh, connection, master, "UTC"))
        try:
            await self._bookings.apply_import(
                ImportBatch(
                    resource_id=connection.resource_id,
                    series=tuple(expansions),
                    notes=(
                        SyncLogEntry(
                            connection.resource_id,
                            LogKind.INFO,
                            f"import horizon moved on for {len(expansions)} recurring events",
                            now,
                        ),
                    ),
                ),
                connection.calendar_id,
            )
        except StaleImport:
            return


def _own_ids(items: list[dict[str, Any]], links: Mapping[str, EventLink]) -> set[str]:
    return {b for b in (own_booking_id(event, links) for event in items) if b is not None}
