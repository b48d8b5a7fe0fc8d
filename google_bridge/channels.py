"""Push notifications: one ``events.watch`` channel per connected calendar.

Calendar API "Push notifications": a channel delivers a POST to our address
whenever the calendar changes, until it expires (at most a week); there is
no automatic renewal, so a new channel is opened before the old one runs
out, and the old one is stopped. Notifications carry no data: they only say
"sync now", and polling still runs because deliveries can be lost.
"""

from __future__ import annotations

import logging
import secrets
import uuid
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta

from gateway.core.mirror import Channel, Connection, stop_channel_effect
from gateway.core.ports import MirrorRepository

from .client import GoogleCalendar
from .tokens import TokenVault

log = logging.getLogger("calgateway.google")


class ChannelKeeper:
    def __init__(
        self,
        repository: MirrorRepository,
        google: GoogleCalendar,
        vault: TokenVault,
        *,
        address: str,
        ttl: int,
        renew_before: timedelta,
        clock: Callable[[], datetime],
    ) -> None:
        self._repo = repository
        self._google = google
        self._vault = vault
        self._address = address
        self._ttl = ttl
        self._renew_before = renew_before
        self._clock = clock

    def due(self, connection: Connection) -> bool:
        channel = connection.channel
        return channel is None or channel.expires - self._clock() <= self._renew_before

    async def ensure(self, connection: Connection) -> Connection:
        """Open a channel if there is none or it expires soon; the replaced
        channel is stopped (queued, so a failure does not lose the stop)."""
        if not self.due(connection):
            return connection
        refresh = self._vault.open(connection.refresh_token)
        channel_id = uuid.uuid4().hex
        token = secrets.token_urlsafe(24)
        answer = await self._google.watch(
            refresh,
            connection.calendar_id,
            channel_id=channel_id,
            token=token,
            address=self._address,
            ttl=self._ttl,
        )
        expires_ms = int(answer.get("expiration") or 0)
        expires = (
            datetime.fromtimestamp(expires_ms / 1000, UTC)
            if expires_ms
            else self._clock() + timedelta(seconds=self._ttl)
        )
        channel = Channel(channel_id, token, str(answer.get("resourceId", "")), expires)
        async with self._repo.transaction() as tx:
            current = await tx.get_connection(connection.resource_id)
            if current is None or current.calendar_id != connection.calendar_id:
                # Reconnected meanwhile: this channel watches the wrong calendar.
                await tx.enqueue(
                    stop_channel_effect(connection.resource_id, channel, connection.refresh_token)
                )
                return connection
            if current.channel is not None:
                await tx.enqueue(
                    stop_channel_effect(
                        connection.resource_id, current.channel, current.refresh_token
                    )
                )
            updated = replace(current, channel=channel)
            await tx.save_connection(updated)
        log.info(
            "google watch channel opened",
            extra={"resource": connection.resource_id, "expires": expires.isoformat()},
        )
        return updated
