"""Push notifications of the fake: watch channels and webhook deliveries.

Semantics: "Push notifications" (https://developers.google.com/calendar/api/guides/push).
A channel gets a ``sync`` message right after it is created and an ``exists`` message
after each change of the watched calendar's events. Messages are POSTs with an empty
body and these headers: X-Goog-Channel-ID, X-Goog-Channel-Token (only when the channel
has a token), X-Goog-Channel-Expiration (human-readable), X-Goog-Resource-ID,
X-Goog-Resource-URI, X-Goog-Resource-State and X-Goog-Message-Number.

Deliveries run in one background task, in order, so they never block or fail an API
call; every attempt is recorded with the status the receiver answered.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from dataclasses import dataclass, field
from email.utils import formatdate
from typing import Any
from urllib.parse import urlsplit

import aiohttp

from fake_google.errors import GoogleApiError, invalid, required

DEFAULT_TTL = 604800  # seconds; the default and maximum lifetime the fake grants
DELIVERY_TIMEOUT = 5.0
PROJECT_NUMBER = "123456789012"  # appears in Google's "channel not found" message
USER_AGENT = "APIs-Google; (+https://developers.google.com/webmasters/APIs-Google.html)"


def now_ms() -> int:
    return int(time.time() * 1000)


@dataclass
class Channel:
    id: str
    resource_id: str
    resource_uri: str
    address: str
    token: str | None
    expiration_ms: int
    calendar_id: str
    account: str
    params: dict[str, str] = field(default_factory=dict)
    message_number: int = 0
    stopped: bool = False

    @property
    def active(self) -> bool:
        return not self.stopped and now_ms() < self.expiration_ms

    def to_json(self) -> dict[str, str]:
        body = {
            "kind": "api#channel",
            "id": self.id,
            "resourceId": self.resource_id,
            "resourceUri": self.resource_uri,
            "expiration": str(self.expiration_ms),  # int64 as a string, per discovery
        }
        if self.token is not None:
            body["token"] = self.token
        return body

    def headers(self, state: str, number: int) -> dict[str, str]:
        headers = {"X-Goog-Channel-ID": self.id}
        if self.token is not None:
            headers["X-Goog-Channel-Token"] = self.token
        headers["X-Goog-Channel-Expiration"] = formatdate(self.expiration_ms / 1000, usegmt=True)
        headers["X-Goog-Resource-ID"] = self.resource_id
        headers["X-Goog-Resource-URI"] = self.resource_uri
        headers["X-Goog-Resource-State"] = state
        headers["X-Goog-Message-Number"] = str(number)
        return headers


@dataclass
class Delivery:
    """One notification: sent (``status`` or ``error``) or lost (``dropped``)."""

    channel_id: str
    state: str
    message_number: int
    headers: dict[str, str]
    address: str
    status: int | None = None
    error: str | None = None
    dropped: bool = False
    done: bool = False


class Notifier:
    def __init__(self) -> None:
        self.all_channels: dict[str, Channel] = {}
        self.deliveries: list[Delivery] = []
        self.drop = False
        self.allow_http = False  # Google refuses http:// addresses; see watch()
        self._queue: asyncio.Queue[tuple[Channel, Delivery]] = asyncio.Queue()
        self._session: aiohttp.ClientSession | None = None
        self._worker: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self._session = aiohttp.ClientSession(
            timeout=aiohttp.ClientTimeout(total=DELIVERY_TIMEOUT),
            headers={"User-Agent": USER_AGENT},
        )
        self._worker = asyncio.create_task(self._run(), name="fake-google-push")

    async def close(self) -> None:
        if self._worker is not None:
            self._worker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._worker
        if self._session is not None:
            await self._session.close()

    @property
    def channels(self) -> dict[str, Channel]:
        return {cid: ch for cid, ch in self.all_channels.items() if ch.active}

    def changed(self, calendar_id: str) -> None:
        for channel in self.channels.values():
            if channel.calendar_id == calendar_id:
                self._enqueue(channel, "exists")

    def watch(
        self,
        body: dict[str, Any],
        *,
        calendar_id: str,
        resource_id: str,
        resource_uri: str,
        account: str,
    ) -> Channel:
        """events.watch: validate the Channel body, open the channel, queue ``sync``."""
        channel_id = body.get("id")
        if not isinstance(channel_id, str) or not channel_id:
            raise required("Missing channel id.")
        if len(channel_id) > 64:  # "Maximum length: 64 characters."
            raise invalid("Channel id must be at most 64 characters.")
        if body.get("type") not in ("web_hook", "webhook"):
            raise invalid(f"Invalid channel type: {body.get('type')}")
        address = body.get("address")
        parts = urlsplit(address) if isinstance(address, str) else None
        if parts is None or parts.scheme not in ("http", "https") or not parts.netloc:
            raise invalid(f"Invalid channel address: {address}")
        if parts.scheme != "https" and not self.allow_http:
            # "Push notifications": the receiving URL must use HTTPS with a valid
            # certificate. Google answers 400 push.webhookUrlNotHttps; tests whose
            # receiver listens on loopback HTTP opt out with allow_http.
            raise GoogleApiError(400, "push.webhookUrlNotHttps", "WebHook callback must be HTTPS")
        if channel_id in self.channels:
            raise GoogleApiError(400, "channelIdNotUnique", "Channel id not unique")
        params = body.get("params") or {}
        if not isinstance(params, dict):
            raise invalid("Invalid value for params")
        try:
            ttl = int(params.get("ttl", DEFAULT_TTL))
        except (TypeError, ValueError):
            ttl = -1
        if ttl < 0:
            raise invalid("Invalid value for params.ttl")
        expiration = now_ms() + min(ttl, DEFAULT_TTL) * 1000
        if body.get("expiration") not in (None, ""):
            try:  # a requested expiration shortens the channel, never lengthens it
                expiration = min(expiration, int(str(body["expiration"])))
            except ValueError:
                raise invalid("Invalid value for expiration") from None
        token = body.get("token")
        channel = Channel(
            id=channel_id,
            resource_id=resource_id,
            resource_uri=resource_uri,
            address=str(address),
            token=str(token) if token is not None else None,
            expiration_ms=expiration,
            calendar_id=calendar_id,
            account=account,
            params={str(k): str(v) for k, v in params.items()},
        )
        self.all_channels[channel.id] = channel
        self._enqueue(channel, "sync")  # "a sync message ... when a channel is created"
        return channel

    def stop(self, body: dict[str, Any], account: str) -> None:
        """channels.stop: the channel must match id, resourceId and its creator."""
        channel_id, resource_id = body.get("id"), body.get("resourceId")
        if not isinstance(channel_id, str) or not isinstance(resource_id, str):
            raise required("Missing channel id or resourceId.")
        channel = self.all_channels.get(channel_id)
        if (
            channel is None
            or not channel.active
            or channel.resource_id != resource_id
            or channel.account != account
        ):
            raise GoogleApiError(
                404, "notFound", f"Channel '{channel_id}' not found for project '{PROJECT_NUMBER}'"
            )
        channel.stopped = True

    def _enqueue(self, channel: Channel, state: str) -> None:
        # The number counts messages Google sent, lost ones included: a receiver sees
        # a gap when a push is dropped.
        channel.message_number += 1
        delivery = Delivery(
            channel.id,
            state,
            channel.message_number,
            channel.headers(state, channel.message_number),
            channel.address,
        )
        self.deliveries.append(delivery)
        if self.drop:
            delivery.dropped = delivery.done = True
            return
        self._queue.put_nowait((channel, delivery))

    async def _run(self) -> None:
        while True:
            channel, delivery = await self._queue.get()
            try:
                await self._deliver(channel, delivery)
            finally:
                delivery.done = True
                self._queue.task_done()

    async def _deliver(self, channel: Channel, delivery: Delivery) -> None:
        if not channel.active:  # stopped or expired while queued: nothing is sent
            delivery.error = "channel closed"
            return
        assert self._session is not None
        try:
            async with self._session.post(
                delivery.address, headers=delivery.headers, data=b""
            ) as response:
                await response.read()
                delivery.status = response.status
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            delivery.error = f"{type(exc).__name__}: {exc}"

    async def settled(self, max_wait: float) -> None:
        async with asyncio.timeout(max_wait):
            await self._queue.join()
