"""The Google bridge's parts, built once from the settings."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

import aiohttp

from gateway.core.clock import utc_now as _utc_now
from gateway.core.mirror import GOOGLE_PUSH, GOOGLE_REMOVE, GOOGLE_STOP_CHANNEL
from gateway.core.mirror_admin import MirrorAdmin
from gateway.core.outbox import Handler
from gateway.core.ports import CalendarCodec, MirrorRepository
from gateway.core.service import BookingService
from gateway.settings import GoogleSettings

from .channels import ChannelKeeper
from .client import GoogleCalendar, OAuthClient, RetryPolicy
from .freshness import WorkerFreshness
from .invites import GoogleInvitePath
from .push import GooglePusher
from .sync import CalendarSync, Horizon
from .tokens import TokenVault
from .worker import SyncWorker

NOTIFY_PATH = "/google/notify"
CALLBACK_PATH = "/google/callback"


@dataclass(frozen=True, slots=True)
class GoogleBridge:
    settings: GoogleSettings
    public_url: str
    oauth: OAuthClient
    vault: TokenVault
    google: GoogleCalendar
    admin: MirrorAdmin
    bookings: BookingService
    pusher: GooglePusher
    sync: CalendarSync
    worker: SyncWorker
    session: aiohttp.ClientSession
    invite_path: GoogleInvitePath
    freshness: WorkerFreshness

    @property
    def redirect_uri(self) -> str:
        return self.public_url + CALLBACK_PATH

    def outbox_handlers(self) -> dict[str, Handler]:
        return {
            GOOGLE_PUSH: self.pusher.push,
            GOOGLE_REMOVE: self.pusher.remove,
            GOOGLE_STOP_CHANNEL: self.pusher.stop_channel,
        }


def build_bridge(
    settings: GoogleSettings,
    *,
    public_url: str,
    repository: MirrorRepository,
    codec: CalendarCodec,
    bookings: BookingService,
    admin: MirrorAdmin,
    session: aiohttp.ClientSession,
    resource_names: Mapping[str, str] | None = None,
    organizer_address: str = "",
    clock: Callable[[], datetime] = _utc_now,
) -> GoogleBridge:
    oauth = OAuthClient(
        client_id=settings.client_id,
        client_secret=settings.client_secret.get_secret_value(),
        token_uri=settings.token_uri,
    )
    vault = TokenVault([key.get_secret_value() for key in settings.token_keys])
    google = GoogleCalendar(
        settings.api_endpoint,
        oauth,
        retry=RetryPolicy(
            attempts=settings.retry.attempts,
            initial_delay=settings.retry.initial_delay,
            max_delay=settings.retry.max_delay,
        ),
        timeout=settings.request_timeout,
    )
    quota_pause = timedelta(seconds=settings.quota_pause)
    pusher = GooglePusher(
        repository,
        codec,
        admin,
        google,
        vault,
        quota_pause=quota_pause,
        clock=clock,
        resource_names=resource_names,
        organizer_address=organizer_address,
    )
    horizon = Horizon(
        past=timedelta(days=settings.import_past_days),
        future=timedelta(days=settings.import_horizon_days),
    )
    sync = CalendarSync(repository, bookings, admin, google, vault, horizon, clock, codec)
    channels = None
    if settings.push_notifications:
        channels = ChannelKeeper(
            repository,
            google,
            vault,
            address=public_url + NOTIFY_PATH,
            ttl=settings.channel_ttl,
            renew_before=timedelta(seconds=settings.channel_renew_before),
            clock=clock,
        )
    worker = SyncWorker(
        repository,
        admin,
        sync,
        channels,
        poll_interval=settings.poll_interval,
        quota_pause=quota_pause,
        clock=clock,
    )
    return GoogleBridge(
        settings=settings,
        public_url=public_url,
        oauth=oauth,
        vault=vault,
        google=google,
        admin=admin,
        bookings=bookings,
        pusher=pusher,
        sync=sync,
        worker=worker,
        session=session,
        invite_path=GoogleInvitePath(repository, admin),
        freshness=WorkerFreshness(worker),
    )
