"""The Google connection's life cycle: invite, consent, connect, warn,
disconnect, and what the admin sees of it (status and sync log).

Status per resource (DESIGN.md; ``ConnectionStatus``):
not invited -> invited (link sent, awaiting consent) -> importing (first
full import, with a count) -> synced; warning (reconnect needed, quota) and
disabled (taken over by another resource, disconnected) on the side.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import assert_never

from .clock import utc_now as _utc_now
from .errors import GatewayError, NotFound
from .mirror import (
    Connection,
    ConnectionStatus,
    Invite,
    LinkKind,
    LogKind,
    MirrorPolicy,
    Notice,
    SyncLogEntry,
    WarningReason,
    stop_channel_effect,
)
from .model import OutboxEffect, Resource
from .outbox_payloads import GoogleRemovePayload, MailPayload
from .ports import MirrorStore, MirrorTransaction


class InviteProblem(StrEnum):
    """Why an invitation link cannot be used: what the connect pages word
    (``google_bridge.web``), in the resource's language."""

    UNKNOWN = "unknown"
    USED = "used"
    EXPIRED = "expired"
    RESOURCE_GONE = "resource_gone"
    UNFINISHED = "unfinished"  # the calendar was chosen before Google's consent


class InviteInvalid(GatewayError):
    """An invitation link that cannot be used (unknown, expired, used).

    ``problem`` says which; ``resource_id`` names the invitation's resource
    when the link was one of ours (its pages speak the resource's language)."""

    def __init__(
        self,
        message: str,
        problem: InviteProblem = InviteProblem.UNKNOWN,
        resource_id: str | None = None,
    ) -> None:
        super().__init__(message)
        self.problem = problem
        self.resource_id = resource_id


class MirrorDisabled(GatewayError):
    """Google is not configured, or the resource's direction is "off"."""


@dataclass(frozen=True, slots=True)
class IssuedInvite:
    resource_id: str
    url: str
    expires: datetime
    mailed: bool


@dataclass(frozen=True, slots=True)
class ResourceStatus:
    resource_id: str
    policy: MirrorPolicy
    connection: Connection
    pending_pushes: int = 0

    @property
    def summary(self) -> str:
        c = self.connection
        if self.policy.direction.value == "off":
            return "off (direction off in the settings)"
        text = c.status.value.replace("_", " ")
        if c.status is ConnectionStatus.IMPORTING:
            text += f" ({c.imported} events so far)"
        if c.status is ConnectionStatus.WARNING and c.warning is not None:
            text += f": {c.warning.value.replace('_', ' ')}. {self.warning_message}"
        if c.status is ConnectionStatus.DISABLED and c.warning_text:
            text += f" ({c.warning_text})"
        return text

    @property
    def warning_message(self) -> str | None:
        """The connection's warning as the admin reads it, or None."""
        c = self.connection
        if c.warning is None:
            return None
        return warning_sentence(self.resource_id, c.warning, c.paused_until)


def warning_sentence(resource_id: str, reason: WarningReason, paused_until: datetime | None) -> str:
    """What happened and what to do, in words, for each warning (pure).

    Built from the reason, not from the error text: that text is Google's
    or a library's (a token refusal's repr once reached the admin), and it
    goes to the sync log as the details instead."""
    invite = f"calgateway google invite {resource_id}"
    if reason is WarningReason.RECONNECT:
        return (
            "The gateway can no longer use its access to this Google calendar: the person "
            "removed it or changed their password, the access expired, or google.token_keys "
            "lost the key it was stored with. Changes wait in the queue; send a new "
            f"invitation with {invite} and have the person connect again."
        )
    if reason is WarningReason.QUOTA:
        until = (
            f"until {paused_until.astimezone(UTC):%Y-%m-%d %H:%M} UTC"
            if paused_until is not None
            else "for a while"
        )
        return (
            "Google's daily Calendar API quota of this Google Cloud project is used up. "
            f"Syncing pauses {until} and then resumes by itself, nothing is lost; if this "
            "happens often, ask Google for a higher quota or raise google.poll_interval."
        )
    if reason is WarningReason.CALENDAR_GONE:
        return (
            "The connected Google calendar was deleted, or it is no longer shared with the "
            "connected account. Nothing is synced with it any more; send a new invitation "
            f"with {invite} and choose another calendar."
        )
    assert_never(reason)


@dataclass(frozen=True, slots=True)
class Takeover:
    """What connecting a calendar did: which resource lost the account."""

    connection: Connection
    previous_resource: str | None


def hash_invite_token(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


class MirrorAdmin:
    def __init__(
        self,
        repository: MirrorStore,
        resources: Mapping[str, Resource],
        policies: Mapping[str, MirrorPolicy],
        *,
        public_url: str,
        invite_ttl: timedelta,
        mail_enabled: bool,
        enabled: bool,
        clock: Callable[[], datetime] = _utc_now,
    ) -> None:
        self._repo = repository
        self._resources = dict(resources)
        self._policies = dict(policies)
        self._public_url = public_url.rstrip("/")
        self._invite_ttl = invite_ttl
        self._mail_enabled = mail_enabled
        self._enabled = enabled
        self._clock = clock
        self._queued: list[Callable[[], None]] = []

    def on_queued(self, callback: Callable[[], None]) -> None:
        """Call ``callback`` after a change queued outbox items (mails, channel stops)."""
        self._queued.append(callback)

    def _notify_queued(self) -> None:
        for callback in self._queued:
            callback()

    @property
    def enabled(self) -> bool:
        return self._enabled

    def _resource(self, resource_id: str) -> Resource:
        try:
            return self._resources[resource_id]
        except KeyError:
            raise NotFound("resource", resource_id) from None

    def policy(self, resource_id: str) -> MirrorPolicy:
        return self._policies.get(resource_id, MirrorPolicy())

    # -- what the admin sees ---------------------------------------------------

    async def status(self, resource_id: str) -> ResourceStatus:
        self._resource(resource_id)
        connection = await self._repo.get_connection(resource_id)
        return ResourceStatus(
            resource_id,
            self.policy(resource_id),
            connection or Connection(resource_id, ConnectionStatus.NOT_INVITED),
        )

    async def statuses(self) -> list[ResourceStatus]:
        return [await self.status(resource_id) for resource_id in self._resources]

    async def connection_by_channel(self, channel_id: str) -> Connection | None:
        return await self._repo.connection_by_channel(channel_id)

    async def log(
        self, resource_id: str, limit: int = 100, before: int | None = None
    ) -> list[SyncLogEntry]:
        self._resource(resource_id)
        return await self._repo.sync_log(resource_id, limit, before)

    # -- invitations -----------------------------------------------------------

    async def invite(self, resource_id: str) -> IssuedInvite:
        """A one-time connect link for the resource, mailed to its address when
        mail is configured. A connected resource may be invited again (to
        reconnect); its connection stays until the new consent completes."""
        resource = self._resource(resource_id)
        if not self._enabled:
            raise MirrorDisabled("Google is not configured (no google section in the settings)")
        if not self.policy(resource_id).direction.pushes and not (
            self.policy(resource_id).direction.pulls
        ):
            raise MirrorDisabled(f"resource {resource_id!r} has google direction off")
        token = secrets.token_urlsafe(32)
        now = self._clock()
        expires = now + self._invite_ttl
        url = f"{self._public_url}/google/connect/{token}"
        async with self._repo.transaction() as tx:
            await tx.save_invite(Invite(hash_invite_token(token), resource_id, now, expires))
            connection = await tx.get_connection(resource_id)
            if connection is None or connection.status in (
                ConnectionStatus.NOT_INVITED,
                ConnectionStatus.DISABLED,
            ):
                await tx.save_connection(
                    replace(
                        connection or Connection(resource_id, ConnectionStatus.INVITED),
                        status=ConnectionStatus.INVITED,
                    )
                )
            await tx.log(
                SyncLogEntry(resource_id, LogKind.INFO, "invitation to connect Google created", now)
            )
            if self._mail_enabled:
                await tx.enqueue(
                    _mail(
                        resource,
                        Notice.GOOGLE_INVITE,
                        url=url,
                        expires=expires.isoformat(),
                        zone=resource.timezone,
                    )
                )
        self._notify_queued()
        return IssuedInvite(resource_id, url, expires, self._mail_enabled)

    async def open_invite(self, token: str) -> Invite:
        invite = await self._repo.get_invite(hash_invite_token(token))
        return self._usable(invite)

    def _usable(self, invite: Invite | None) -> Invite:
        if invite is None:
            raise InviteInvalid("this link is not valid; ask for a new invitation")
        if invite.used is not None:
            raise InviteInvalid(
                "this link was already used; ask for a new invitation",
                InviteProblem.USED,
                invite.resource_id,
            )
        if invite.expires <= self._clock():
            raise InviteInvalid(
                "this link has expired; ask for a new invitation",
                InviteProblem.EXPIRED,
                invite.resource_id,
            )
        if invite.resource_id not in self._resources:
            raise InviteInvalid(
                "the resource of this link no longer exists", InviteProblem.RESOURCE_GONE
            )
        return invite

    async def begin_consent(self, invite: Invite, state: str, code_verifier: str) -> None:
        async with self._repo.transaction() as tx:
            await tx.save_invite(replace(invite, state=state, code_verifier=code_verifier))

    async def invite_for_state(self, state: str) -> Invite:
        return self._usable(await self._repo.invite_by_state(state))

    async def consented(self, invite: Invite, account: str, refresh_token: bytes) -> Invite:
        """Google said yes: keep the account and its (encrypted) token on the
        invitation until the person picks a calendar. The PKCE verifier is
        spent and forgotten."""
        updated = replace(invite, account=account, refresh_token=refresh_token, code_verifier="")
        async with self._repo.transaction() as tx:
            await tx.save_invite(updated)
        return updated

    async def connect(self, invite: Invite, calendar_id: str, calendar_name: str) -> Takeover:
        """Connect the invitation's resource to the chosen calendar, in one
        transaction: the invitation is spent, the account is taken from any
        other resource that had it (one calendar per Google account), that
        resource's push channel is queued for stopping, and the confirmation
        e-mail is queued."""
        resource = self._resource(invite.resource_id)
        now = self._clock()
        async with self._repo.transaction() as tx:
            fresh = self._usable(await tx.get_invite(invite.token_hash))
            if not fresh.account or not fresh.refresh_token:
                raise InviteInvalid(
                    "consent is not finished; open the invitation link again",
                    InviteProblem.UNFINISHED,
                    fresh.resource_id,
                )
            previous = await tx.connection_by_account(fresh.account)
            taken_from = None
            if previous is not None and previous.resource_id != resource.id:
                taken_from = previous.resource_id
                await self._disable(
                    tx,
                    previous,
                    f"its Google account {fresh.account} was connected to resource "
                    f"{resource.id!r} instead",
                )
                await self._hand_over(tx, previous, resource)
            current = await tx.get_connection(resource.id)
            if current is not None and current.channel is not None:
                await _stop_channel_later(tx, current)
            same_calendar = current is not None and current.calendar_id == calendar_id
            connection = Connection(
                resource_id=resource.id,
                status=ConnectionStatus.IMPORTING,
                account=fresh.account,
                calendar_id=calendar_id,
                calendar_name=calendar_name,
                refresh_token=fresh.refresh_token,
                # A reconnect to the same calendar keeps its place in the sync.
                sync_token=current.sync_token if same_calendar and current else "",
                connected_at=now,
            )
            if same_calendar and current is not None and current.sync_token:
                connection = replace(connection, status=ConnectionStatus.SYNCED)
            await tx.save_connection(connection)
            # Pushes that waited for a reconnect go now.
            await tx.release_outbox(resource.id)
            await tx.save_invite(replace(fresh, used=now, refresh_token=b""))
            message = f"connected to Google calendar {calendar_name!r} of {fresh.account}"
            if taken_from:
                message += f" (taken over from resource {taken_from!r})"
            await tx.log(SyncLogEntry(resource.id, LogKind.INFO, message, now))
            if self._mail_enabled:
                await tx.enqueue(
                    _mail(
                        resource,
                        Notice.GOOGLE_CONNECTED,
                        calendar=calendar_name,
                        account=fresh.account,
                        taken_from=taken_from or "",
                    )
                )
        self._notify_queued()
        return Takeover(connection, taken_from)

    async def _hand_over(
        self, tx: MirrorTransaction, previous: Connection, taker: Resource
    ) -> None:
        """The account's calendar now belongs to ``taker``: the events the
        previous resource wrote there would never be updated again (its
        bookings stay in the gateway), so they are removed with the taker's
        access, and the previous resource's owner is told. Until each is
        removed, the taker's sync sees it as any other event: busy time."""
        old = self._resource(previous.resource_id)
        removed = 0
        for link in await tx.links(old.id, LinkKind.PUSHED):
            await tx.enqueue(
                OutboxEffect(
                    taker.id,
                    link.booking_id,
                    GoogleRemovePayload(previous.calendar_id, link.event_id),
                )
            )
            await tx.delete_link(old.id, link.event_id)
            removed += 1
        calendar = previous.calendar_name or previous.calendar_id
        await tx.log(
            SyncLogEntry(
                old.id,
                LogKind.WARNING,
                f"the Google calendar {calendar!r} of {previous.account} now belongs to "
                f"resource {taker.id!r}; {removed} events of this resource are being removed "
                "from it (the bookings stay here)",
                self._clock(),
            )
        )
        if self._mail_enabled:
            await tx.enqueue(
                _mail(
                    old,
                    Notice.GOOGLE_TAKEN_OVER,
                    account=previous.account,
                    taker=f"{taker.name} ({taker.id})",
                    calendar=calendar,
                    removed=str(removed),
                )
            )

    async def _disable(self, tx: MirrorTransaction, connection: Connection, why: str) -> None:
        if connection.channel is not None:
            await _stop_channel_later(tx, connection)
        # A link handed out before must not quietly connect it again.
        await tx.revoke_invites(connection.resource_id, self._clock())
        await tx.save_connection(
            replace(
                connection,
                status=ConnectionStatus.DISABLED,
                refresh_token=b"",
                sync_token="",
                channel=None,
                warning=None,
                warning_text=why,
            )
        )
        await tx.log(
            SyncLogEntry(
                connection.resource_id, LogKind.WARNING, f"disconnected: {why}", self._clock()
            )
        )

    async def disconnect(self, resource_id: str, why: str = "by the admin") -> None:
        self._resource(resource_id)
        async with self._repo.transaction() as tx:
            connection = await tx.get_connection(resource_id)
            if connection is None or connection.status is ConnectionStatus.DISABLED:
                return
            await self._disable(tx, connection, why)
        self._notify_queued()

    # -- warnings raised by the bridge ------------------------------------------

    async def warn(
        self,
        resource_id: str,
        reason: WarningReason,
        text: str,
        paused_until: datetime | None = None,
    ) -> None:
        """Mark the connection stuck (logged once per new reason)."""
        async with self._repo.transaction() as tx:
            connection = await tx.get_connection(resource_id)
            if connection is None or not connection.connected:
                return
            if connection.warning is not reason:
                sentence = warning_sentence(resource_id, reason, paused_until)
                detail = f" Details: {text.rstrip('.')}." if text else ""
                await tx.log(
                    SyncLogEntry(
                        resource_id,
                        LogKind.WARNING,
                        f"{reason.value.replace('_', ' ')}: {sentence}{detail}",
                        self._clock(),
                    )
                )
            await tx.save_connection(
                replace(
                    connection,
                    status=ConnectionStatus.WARNING,
                    warning=reason,
                    warning_text=text,
                    paused_until=paused_until,
                )
            )

    async def rotate_tokens(self, rotate: Callable[[bytes], bytes]) -> int:
        """Re-encrypt every stored refresh token with ``rotate`` (the vault's
        first key), so an old key can be dropped; returns how many."""
        rotated = 0
        async with self._repo.transaction() as tx:
            for connection in await tx.connections():
                if connection.refresh_token:
                    sealed = rotate(connection.refresh_token)
                    await tx.save_connection(replace(connection, refresh_token=sealed))
                    rotated += 1
        return rotated

    async def clear_warning(self, resource_id: str, reason: WarningReason) -> None:
        """A call worked again: a quota pause is over."""
        async with self._repo.transaction() as tx:
            connection = await tx.get_connection(resource_id)
            if connection is None or connection.warning is not reason:
                return
            await tx.save_connection(
                replace(
                    connection,
                    status=ConnectionStatus.SYNCED
                    if connection.sync_token
                    else ConnectionStatus.IMPORTING,
                    warning=None,
                    warning_text="",
                    paused_until=None,
                )
            )
            await tx.log(
                SyncLogEntry(resource_id, LogKind.INFO, f"{reason.value} resolved", self._clock())
            )

    async def note(
        self,
        resource_id: str,
        kind: LogKind,
        message: str,
        booking_id: str = "",
        event_id: str = "",
    ) -> None:
        async with self._repo.transaction() as tx:
            await tx.log(
                SyncLogEntry(resource_id, kind, message, self._clock(), booking_id, event_id)
            )


async def _stop_channel_later(tx: MirrorTransaction, connection: Connection) -> None:
    assert connection.channel is not None
    await tx.enqueue(
        stop_channel_effect(connection.resource_id, connection.channel, connection.refresh_token)
    )


def _mail(resource: Resource, notice: Notice, **values: str) -> OutboxEffect:
    """A notice to the resource's owner; ``gateway.mail`` words it, in the
    resource's language, when it is sent."""
    return OutboxEffect(
        resource.id,
        "",
        MailPayload(to=resource.email, to_name=resource.name, notice=notice.value, values=values),
    )
