"""The services built from the settings for every process that needs
them: the server (``gateway.app``) and the admin commands (``gateway.cli``),
which open the same SQLite file while the server runs.

Both must build ``BookingService`` and ``MirrorAdmin`` the same way (same
resources, same policies and limits, same public URL in the invitation
links), so the recipe lives here once.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from datetime import timedelta
from urllib.parse import urlsplit

from gateway.core.admin_actions import AdminActions, AdminStore
from gateway.core.clock import Clock, utc_now
from gateway.core.mirror import Details, Direction, InvitePath, MirrorPolicy
from gateway.core.mirror_admin import MirrorAdmin
from gateway.core.model import Resource
from gateway.core.ports import MirrorRepository, MirrorStore
from gateway.core.service import BookingService
from gateway.ical import ICalCodec
from gateway.ical.limits import RecurrenceLimits
from gateway.settings import Settings, StorageSettings
from gateway.store import open_sqlite_repository

# Used only when Google is not configured, where no invitation can be made:
# MirrorAdmin still needs a value.
_FALLBACK_INVITE_TTL = timedelta(hours=72)


def domain_resources(settings: Settings) -> dict[str, Resource]:
    return {
        r.id: Resource(id=r.id, name=r.name, email=r.email, timezone=r.timezone)
        for r in settings.resources
    }


def mirror_policies(settings: Settings) -> dict[str, MirrorPolicy]:
    """Each resource's direction and detail level (its own ``google:`` over
    the section's defaults; "off" for all without a ``google`` section)."""
    policies = {}
    for r in settings.resources:
        direction, details = settings.mirror_mode(r.id)
        policies[r.id] = MirrorPolicy(
            Direction(direction), Details(details), InvitePath(settings.invitation_path(r.id))
        )
    return policies


def recurrence_limits(settings: Settings) -> RecurrenceLimits:
    """The ``limits`` settings as the iCalendar code takes them."""
    limits = settings.limits
    return RecurrenceLimits(
        max_instances=limits.max_instances,
        max_sub_daily_occurrences=limits.max_sub_daily_occurrences,
        max_overrides=limits.max_overrides,
        max_expansion_steps=limits.max_expansion_steps,
        expansion_seconds=limits.expansion_seconds,
    )


def build_booking_service(
    settings: Settings,
    repository: MirrorRepository,
    *,
    resources: Mapping[str, Resource] | None = None,
    policies: Mapping[str, MirrorPolicy] | None = None,
    clock: Clock = utc_now,
) -> BookingService:
    """The booking service of the server, and of ``calgateway import``
    beside it: the same checks and the same Google policy either way."""
    return BookingService(
        repository,
        ICalCodec(limits=recurrence_limits(settings)),
        domain_resources(settings) if resources is None else resources,
        uid_domain=urlsplit(settings.server.public_url).hostname or "calgateway",
        mirror=mirror_policies(settings) if policies is None else policies,
        invitations=settings.mail is not None,
        implicit_scheduling={r.id: settings.implicit_scheduling(r.id) for r in settings.resources},
        organizer_address=settings.mail.from_address if settings.mail is not None else None,
        accept_invitations={r.id: settings.accept_invitations(r.id) for r in settings.resources},
        clock=clock,
    )


def build_mirror_admin(
    settings: Settings,
    repository: MirrorStore,
    *,
    resources: Mapping[str, Resource] | None = None,
    policies: Mapping[str, MirrorPolicy] | None = None,
    clock: Clock = utc_now,
) -> MirrorAdmin:
    """``resources`` and ``policies`` may be passed by a caller that already
    made them (the server shares them with the BookingService)."""
    google = settings.google
    return MirrorAdmin(
        repository,
        domain_resources(settings) if resources is None else resources,
        mirror_policies(settings) if policies is None else policies,
        public_url=settings.server.public_url,
        invite_ttl=timedelta(hours=google.invite_ttl_hours) if google else _FALLBACK_INVITE_TTL,
        mail_enabled=settings.mail is not None,
        enabled=google is not None,
        clock=clock,
    )


def build_admin_actions(
    settings: Settings,
    repository: AdminStore,
    *,
    resources: Mapping[str, Resource] | None = None,
    clock: Clock = utc_now,
) -> AdminActions:
    """The admin's actions of the server (console, API) and of the CLI."""
    return AdminActions(
        repository,
        domain_resources(settings) if resources is None else resources,
        invitations=settings.mail is not None,
        clock=clock,
    )


class StorageSecretMissing(Exception):
    """storage.password_env or storage.password_file names nothing usable."""


def storage_password(storage: StorageSettings) -> str | None:
    """The PostgreSQL password the settings point to, read now (so that a
    rotated secret is used at the next start); None when none is named."""
    if storage.password_env is not None:
        value = os.environ.get(storage.password_env)
        if not value:
            raise StorageSecretMissing(
                f"storage.password_env names {storage.password_env!r}, which is not set "
                "in the environment (or is empty)"
            )
        return value
    path = storage.password_path
    if path is not None:
        try:
            value = path.read_text(encoding="utf-8").rstrip("\r\n")
        except OSError as exc:
            raise StorageSecretMissing(
                f"storage.password_file {path} cannot be read: {exc.strerror}"
            ) from None
        if not value:
            raise StorageSecretMissing(f"storage.password_file {path} is empty")
        return value
    return None


async def open_repository(settings: Settings) -> MirrorRepository:
    """The store ``storage.url`` names, migrated and open: the embedded
    SQLite file, or a PostgreSQL database (imported only then, like the
    Google libraries)."""
    storage = settings.storage
    if storage.backend == "sqlite":
        return await open_sqlite_repository(storage.sqlite_path)
    from gateway.store.postgres import open_postgres_repository

    return await open_postgres_repository(storage.url, password=storage_password(storage))


@asynccontextmanager
async def open_admin_actions(settings: Settings) -> AsyncIterator[AdminActions]:
    """AdminActions over its own connection to the settings' database,
    closed on exit (for ``calgateway outbox`` and ``bookings``). An item it
    makes due is run by the server's outbox worker at its next poll."""
    repository = await open_repository(settings)
    try:
        yield build_admin_actions(settings, repository)
    finally:
        await repository.close()


@asynccontextmanager
async def open_mirror_admin(settings: Settings) -> AsyncIterator[MirrorAdmin]:
    """A MirrorAdmin over its own connection to the settings' database,
    closed on exit. SQLite in WAL mode lets this run beside the server;
    outbox items it queues (e-mails, channel stops) are run by the server's
    outbox worker, which polls for items other processes queued."""
    repository = await open_repository(settings)
    try:
        yield build_mirror_admin(settings, repository)
    finally:
        await repository.close()
