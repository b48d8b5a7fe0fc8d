"""Push notifications: one ``events.watch`` channel per connected calendar.

Calendar API "Push notifications": a channel delivers a POST to our address
whenever the calendar changes, until it expires (at most a week); there is
no automatic renewal, so a new channel is opened before the old one runs
out, and the old one is stopped. Notifications carry no data: they only say
"sync now", and polling still runs because deliveries can be lost.

Google opens a channel only to a public ``https://`` address with a valid
certificate (the guide's "Create notification channels": the receiving URL
must be HTTPS; an ``http://`` address is answered 400
``push.webhookUrlNotHttps``, an address on an unverified domain
``push.webhookUrlUnauthorized``). Such a refusal repeats on every try until
the address or the Google project changes, so ``watch_verdict`` sorts
refusals from passing failures, and a refused resource is asked again only
after ``refusal_backoff`` (a day, doubling, at most a week) or when the
settings change (a reload builds a new keeper, and so forgets refusals).
Polling carries on meanwhile. Refusals are kept in memory, not in the
database: a restart or a reload tries once more, which is what an admin
who just fixed the address expects.

This module does not decide what the admin is told (``SyncWorker`` logs the
first refusal) and does not sync.
"""

from __future__ import annotations

import logging
import secrets
import uuid
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from enum import StrEnum

from gateway.core.mirror import Channel, Connection, stop_channel_effect
from gateway.core.ports import MirrorStore

from .client import GoogleCalendar
from .errors import CalendarGone, GoogleRequestError, QuotaExceeded, ReconnectNeeded
from .tokens import TokenKeyMismatch, TokenVault

log = logging.getLogger("calgateway.google")

FIRST_BACKOFF = timedelta(hours=24)
MAX_BACKOFF = timedelta(days=7)


class WatchVerdict(StrEnum):
    """What a failed ``events.watch`` means for the next try."""

    REFUSED = "refused"  # Google will refuse again until something changes: back off
    PASSING = "passing"  # rate limit, 5xx, network: try again at the next round
    SYNC = "sync"  # the credentials or the calendar: the sync meets it and says so


def watch_verdict(error: BaseException) -> WatchVerdict:
    """How to treat a failed ``events.watch`` (pure; tested as a table).

    Google has already answered the request itself with a 4xx that no retry
    changes (``GoogleRequestError``: the client retried 429, 5xx and rate
    limits before giving up with ``GoogleUnavailable``), so that is a refusal;
    ``push.*`` reasons are refusals whatever their status (Google has answered
    ``push.webhookUrlUnauthorized`` with 401 and 403). A refused refresh
    token, a used-up quota or a gone calendar are the connection's trouble,
    not the channel's: the sync right after meets them and warns."""
    if isinstance(error, (ReconnectNeeded, TokenKeyMismatch, QuotaExceeded, CalendarGone)):
        return WatchVerdict.SYNC
    if isinstance(error, GoogleRequestError):
        return WatchVerdict.REFUSED
    return WatchVerdict.PASSING


def refusal_backoff(refusals: int) -> timedelta:
    """How long to wait before asking again after ``refusals`` refusals in a
    row: a day, doubling, at most a week (pure)."""
    doubled = FIRST_BACKOFF * (1 << max(0, min(refusals - 1, 16)))
    return min(doubled, MAX_BACKOFF)


@dataclass(frozen=True, slots=True)
class WatchRefusal:
    """Google refused a resource's channel ``refusals`` times in a row."""

    reason: str  # Google's reason code, e.g. push.webhookUrlNotHttps
    message: str  # Google's words
    refusals: int
    retry_at: datetime

    @property
    def first(self) -> bool:
        """The first refusal, or one for another reason than the last: the
        one the admin is told about."""
        return self.refusals == 1


def refusal_advice(reason: str, address: str) -> str:
    """What the admin can do about a refusal (pure)."""
    if reason == "push.webhookUrlNotHttps":
        return (
            f"Google sends push notifications only to an https:// address with a valid "
            f"certificate, and {address} is not one: set server.base_url to the public "
            "https:// address of the gateway, or set google.push_notifications to false"
        )
    if reason == "push.webhookUrlUnauthorized":
        return (
            f"Google does not accept {address} as a push address of this Google Cloud "
            "project: check that server.base_url is the gateway's public address and that "
            "its domain is verified for the project, or set google.push_notifications to false"
        )
    return (
        f"check that server.base_url gives the gateway's public https:// address {address}, "
        "or set google.push_notifications to false"
    )


class ChannelKeeper:
    def __init__(
        self,
        repository: MirrorStore,
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
        self._refused: dict[str, WatchRefusal] = {}

    @property
    def address(self) -> str:
        return self._address

    def due(self, connection: Connection) -> bool:
        """Whether to ask Google for a channel now: there is none or it
        expires soon, and Google did not refuse this resource lately."""
        refusal = self._refused.get(connection.resource_id)
        if refusal is not None and self._clock() < refusal.retry_at:
            return False
        channel = connection.channel
        return channel is None or channel.expires - self._clock() <= self._renew_before

    def refused(self, resource_id: str, error: GoogleRequestError) -> WatchRefusal:
        """Record that Google refused the resource's channel; the next try
        waits ``refusal_backoff``. Returns the record."""
        before = self._refused.get(resource_id)
        count = before.refusals + 1 if before is not None and before.reason == error.reason else 1
        refusal = WatchRefusal(
            error.reason, error.message, count, self._clock() + refusal_backoff(count)
        )
        self._refused[resource_id] = refusal
        return refusal

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
        self._refused.pop(connection.resource_id, None)
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
