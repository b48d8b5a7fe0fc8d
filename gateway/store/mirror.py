"""The Google mirror's tables (migration 0003): connections, invitations,
event links and the sync log, as mixins over a read or write connection."""

from __future__ import annotations

import sqlite3
from datetime import datetime
from typing import Any

from gateway.core.mirror import (
    Channel,
    Connection,
    ConnectionStatus,
    Details,
    EventLink,
    Invite,
    LinkKind,
    LogKind,
    SyncLogEntry,
    WarningReason,
)

from .rows import Params, from_utc_text, utc_text


def _time(value: datetime | None) -> str | None:
    return None if value is None else utc_text(value)


def _from_time(text: str | None) -> datetime | None:
    return None if text is None else from_utc_text(text)


def _decode_connection(row: sqlite3.Row) -> Connection:
    channel = None
    if row["channel_id"] is not None:
        channel = Channel(
            id=row["channel_id"],
            token=row["channel_token"],
            resource_id=row["channel_resource"],
            expires=from_utc_text(row["channel_expires"]),
        )
    return Connection(
        resource_id=row["resource_id"],
        status=ConnectionStatus(row["status"]),
        account=row["account"],
        calendar_id=row["calendar_id"],
        calendar_name=row["calendar_name"],
        refresh_token=bytes(row["refresh_token"]),
        sync_token=row["sync_token"],
        imported=row["imported"],
        warning=WarningReason(row["warning"]) if row["warning"] else None,
        warning_text=row["warning_text"],
        paused_until=_from_time(row["paused_until"]),
        channel=channel,
        connected_at=_from_time(row["connected_at"]),
        last_sync_at=_from_time(row["last_sync_at"]),
    )


def _encode_connection(c: Connection) -> dict[str, Any]:
    return {
        "resource_id": c.resource_id,
        "status": c.status.value,
        "account": c.account,
        "calendar_id": c.calendar_id,
        "calendar_name": c.calendar_name,
        "refresh_token": c.refresh_token,
        "sync_token": c.sync_token,
        "imported": c.imported,
        "warning": c.warning.value if c.warning else None,
        "warning_text": c.warning_text,
        "paused_until": _time(c.paused_until),
        "channel_id": c.channel.id if c.channel else None,
        "channel_token": c.channel.token if c.channel else None,
        "channel_resource": c.channel.resource_id if c.channel else None,
        "channel_expires": _time(c.channel.expires) if c.channel else None,
        "connected_at": _time(c.connected_at),
        "last_sync_at": _time(c.last_sync_at),
    }


def _encode_link(link: EventLink) -> tuple[Any, ...]:
    """google_events columns resource_id, event_id, kind, booking_id, etag,
    details, digest, series_id, expanded_until (both backends)."""
    return (
        link.resource_id,
        link.event_id,
        link.kind.value,
        link.booking_id,
        link.etag,
        link.details.value,
        link.digest,
        link.series_id,
        _time(link.expanded_until),
    )


def _encode_invite(invite: Invite) -> tuple[Any, ...]:
    """google_invites columns token_hash, resource_id, created_at, expires_at,
    state, code_verifier, account, refresh_token, used_at (both backends)."""
    return (
        invite.token_hash,
        invite.resource_id,
        utc_text(invite.created),
        utc_text(invite.expires),
        invite.state,
        invite.code_verifier,
        invite.account,
        invite.refresh_token,
        _time(invite.used),
    )


def _encode_log(entry: SyncLogEntry) -> tuple[Any, ...]:
    """sync_log columns resource_id, at, kind, message, booking_id, event_id."""
    return (
        entry.resource_id,
        utc_text(entry.at),
        entry.kind.value,
        entry.message,
        entry.booking_id,
        entry.event_id,
    )


def _decode_link(row: sqlite3.Row) -> EventLink:
    return EventLink(
        resource_id=row["resource_id"],
        event_id=row["event_id"],
        kind=LinkKind(row["kind"]),
        booking_id=row["booking_id"],
        etag=row["etag"],
        details=Details(row["details"]),
        digest=row["digest"],
        series_id=row["series_id"],
        expanded_until=_from_time(row["expanded_until"]),
    )


def _decode_invite(row: sqlite3.Row) -> Invite:
    return Invite(
        token_hash=row["token_hash"],
        resource_id=row["resource_id"],
        created=from_utc_text(row["created_at"]),
        expires=from_utc_text(row["expires_at"]),
        state=row["state"],
        code_verifier=row["code_verifier"],
        account=row["account"],
        refresh_token=bytes(row["refresh_token"]),
        used=_from_time(row["used_at"]),
    )


def _decode_log(row: sqlite3.Row) -> SyncLogEntry:
    return SyncLogEntry(
        id=row["id"],
        resource_id=row["resource_id"],
        kind=LogKind(row["kind"]),
        message=row["message"],
        at=from_utc_text(row["at"]),
        booking_id=row["booking_id"],
        event_id=row["event_id"],
    )


_CONNECTION_COLUMNS = tuple(_encode_connection(Connection("", ConnectionStatus.INVITED)))
_UPSERT_CONNECTION = (
    f"INSERT INTO google_connections ({', '.join(_CONNECTION_COLUMNS)}) "  # noqa: S608
    f"VALUES ({', '.join(':' + c for c in _CONNECTION_COLUMNS)}) "
    "ON CONFLICT (resource_id) DO UPDATE SET "
    + ", ".join(f"{c} = excluded.{c}" for c in _CONNECTION_COLUMNS if c != "resource_id")
)


class MirrorReadsMixin:
    """``MirrorReads`` over the connection ``_query`` uses."""

    async def _query(self, sql: str, params: Params = ()) -> list[sqlite3.Row]:
        raise NotImplementedError

    async def _point_query(self, sql: str, params: Params) -> list[sqlite3.Row]:
        # One indexed row: the repository may answer it on the loop's thread.
        return await self._query(sql, params)

    async def get_connection(self, resource_id: str) -> Connection | None:
        rows = await self._query(
            "SELECT * FROM google_connections WHERE resource_id = ?", (resource_id,)
        )
        return _decode_connection(rows[0]) if rows else None

    async def connections(self) -> list[Connection]:
        rows = await self._query("SELECT * FROM google_connections ORDER BY resource_id")
        return [_decode_connection(row) for row in rows]

    async def connection_by_channel(self, channel_id: str) -> Connection | None:
        rows = await self._query(
            "SELECT * FROM google_connections WHERE channel_id = ?", (channel_id,)
        )
        return _decode_connection(rows[0]) if rows else None

    async def connection_by_account(self, account: str) -> Connection | None:
        rows = await self._query(
            "SELECT * FROM google_connections WHERE account = ? "
            "AND status IN ('importing', 'synced', 'warning')",
            (account,),
        )
        return _decode_connection(rows[0]) if rows else None

    async def get_link(self, resource_id: str, event_id: str) -> EventLink | None:
        # By primary key; asked on every CalDAV delete and update of a
        # resource that does not push (``BookingService._effect_policy``).
        rows = await self._point_query(
            "SELECT * FROM google_events WHERE resource_id = ? AND event_id = ?",
            (resource_id, event_id),
        )
        return _decode_link(rows[0]) if rows else None

    async def links(
        self, resource_id: str, kind: LinkKind | None = None, series_id: str | None = None
    ) -> list[EventLink]:
        sql = "SELECT * FROM google_events WHERE resource_id = ?"
        params: list[Any] = [resource_id]
        if kind is not None:
            sql += " AND kind = ?"
            params.append(kind.value)
        if series_id is not None:
            sql += " AND series_id = ?"
            params.append(series_id)
        rows = await self._query(sql + " ORDER BY event_id", tuple(params))
        return [_decode_link(row) for row in rows]

    async def get_invite(self, token_hash: str) -> Invite | None:
        rows = await self._query("SELECT * FROM google_invites WHERE token_hash = ?", (token_hash,))
        return _decode_invite(rows[0]) if rows else None

    async def invite_by_state(self, state: str) -> Invite | None:
        if not state:
            return None
        rows = await self._query("SELECT * FROM google_invites WHERE state = ?", (state,))
        return _decode_invite(rows[0]) if rows else None

    async def sync_log(
        self, resource_id: str, limit: int = 100, before: int | None = None
    ) -> list[SyncLogEntry]:
        rows = await self._query(
            "SELECT * FROM sync_log WHERE resource_id = ? AND id < ? ORDER BY id DESC LIMIT ?",
            (resource_id, before if before is not None else 2**62, limit),
        )
        return [_decode_log(row) for row in rows]


class MirrorWritesMixin(MirrorReadsMixin):
    """The mirror's writes, for the transaction class."""

    async def save_connection(self, connection: Connection) -> None:
        await self._query(_UPSERT_CONNECTION, _encode_connection(connection))

    async def save_link(self, link: EventLink) -> None:
        await self._query(
            "INSERT INTO google_events (resource_id, event_id, kind, booking_id, etag, details, "
            "digest, series_id, expanded_until) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) "
            "ON CONFLICT (resource_id, event_id) DO UPDATE SET kind = excluded.kind, "
            "booking_id = excluded.booking_id, etag = excluded.etag, details = excluded.details, "
            "digest = excluded.digest, series_id = excluded.series_id, "
            "expanded_until = excluded.expanded_until",
            _encode_link(link),
        )

    async def delete_link(self, resource_id: str, event_id: str) -> None:
        await self._query(
            "DELETE FROM google_events WHERE resource_id = ? AND event_id = ?",
            (resource_id, event_id),
        )

    async def save_invite(self, invite: Invite) -> None:
        await self._query(
            "INSERT INTO google_invites (token_hash, resource_id, created_at, expires_at, state, "
            "code_verifier, account, refresh_token, used_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) "
            "ON CONFLICT (token_hash) DO UPDATE SET state = excluded.state, "
            "code_verifier = excluded.code_verifier, account = excluded.account, "
            "refresh_token = excluded.refresh_token, used_at = excluded.used_at",
            _encode_invite(invite),
        )

    async def log(self, entry: SyncLogEntry) -> None:
        await self._query(
            "INSERT INTO sync_log (resource_id, at, kind, message, booking_id, event_id) "
            "VALUES (?, ?, ?, ?, ?, ?)",
            _encode_log(entry),
        )

    async def revoke_invites(self, resource_id: str, at: datetime) -> None:
        await self._query(
            "UPDATE google_invites SET used_at = ?, refresh_token = x'' "
            "WHERE resource_id = ? AND used_at IS NULL",
            (utc_text(at), resource_id),
        )

    async def release_outbox(self, resource_id: str) -> None:
        await self._query(
            "UPDATE outbox SET next_attempt_at = NULL WHERE resource_id = ? AND done_at IS NULL",
            (resource_id,),
        )
