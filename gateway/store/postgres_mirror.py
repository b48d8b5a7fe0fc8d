"""The Google mirror's tables on PostgreSQL, as mixins over a connection.

The SQL of ``mirror`` in PostgreSQL's dialect (``%s`` placeholders, bytea
literals); the values, and the code turning rows into domain values and
back, are ``mirror``'s own, so both backends store the same thing.
"""

from __future__ import annotations

import sqlite3
from datetime import datetime
from typing import Any, cast

from psycopg.rows import DictRow

from gateway.core.mirror import Connection, EventLink, Invite, LinkKind, SyncLogEntry

from .mirror import (
    _CONNECTION_COLUMNS,
    _decode_connection,
    _decode_invite,
    _decode_link,
    _decode_log,
    _encode_connection,
    _encode_invite,
    _encode_link,
    _encode_log,
)
from .rows import Params, utc_text


def _row(row: DictRow) -> sqlite3.Row:
    # mirror's decoders are annotated with sqlite3.Row but only read columns
    # by name, which a psycopg dict row offers as well (rows.Row).
    return cast(sqlite3.Row, row)


_UPSERT_CONNECTION = (
    f"INSERT INTO google_connections ({', '.join(_CONNECTION_COLUMNS)}) "  # noqa: S608
    f"VALUES ({', '.join(f'%({c})s' for c in _CONNECTION_COLUMNS)}) "
    "ON CONFLICT (resource_id) DO UPDATE SET "
    + ", ".join(f"{c} = excluded.{c}" for c in _CONNECTION_COLUMNS if c != "resource_id")
)


class PgMirrorReadsMixin:
    """``MirrorReads`` over the connection ``_query`` uses."""

    async def _query(self, sql: str, params: Params = ()) -> list[DictRow]:
        raise NotImplementedError

    async def get_connection(self, resource_id: str) -> Connection | None:
        rows = await self._query(
            "SELECT * FROM google_connections WHERE resource_id = %s", (resource_id,)
        )
        return _decode_connection(_row(rows[0])) if rows else None

    async def connections(self) -> list[Connection]:
        rows = await self._query("SELECT * FROM google_connections ORDER BY resource_id")
        return [_decode_connection(_row(row)) for row in rows]

    async def connection_by_channel(self, channel_id: str) -> Connection | None:
        rows = await self._query(
            "SELECT * FROM google_connections WHERE channel_id = %s", (channel_id,)
        )
        return _decode_connection(_row(rows[0])) if rows else None

    async def connection_by_account(self, account: str) -> Connection | None:
        rows = await self._query(
            "SELECT * FROM google_connections WHERE account = %s "
            "AND status IN ('importing', 'synced', 'warning')",
            (account,),
        )
        return _decode_connection(_row(rows[0])) if rows else None

    async def get_link(self, resource_id: str, event_id: str) -> EventLink | None:
        rows = await self._query(
            "SELECT * FROM google_events WHERE resource_id = %s AND event_id = %s",
            (resource_id, event_id),
        )
        return _decode_link(_row(rows[0])) if rows else None

    async def links(
        self, resource_id: str, kind: LinkKind | None = None, series_id: str | None = None
    ) -> list[EventLink]:
        sql = "SELECT * FROM google_events WHERE resource_id = %s"
        params: list[Any] = [resource_id]
        if kind is not None:
            sql += " AND kind = %s"
            params.append(kind.value)
        if series_id is not None:
            sql += " AND series_id = %s"
            params.append(series_id)
        rows = await self._query(sql + " ORDER BY event_id", tuple(params))
        return [_decode_link(_row(row)) for row in rows]

    async def get_invite(self, token_hash: str) -> Invite | None:
        rows = await self._query(
            "SELECT * FROM google_invites WHERE token_hash = %s", (token_hash,)
        )
        return _decode_invite(_row(rows[0])) if rows else None

    async def invite_by_state(self, state: str) -> Invite | None:
        if not state:
            return None
        rows = await self._query("SELECT * FROM google_invites WHERE state = %s", (state,))
        return _decode_invite(_row(rows[0])) if rows else None

    async def sync_log(
        self, resource_id: str, limit: int = 100, before: int | None = None
    ) -> list[SyncLogEntry]:
        rows = await self._query(
            "SELECT * FROM sync_log WHERE resource_id = %s AND id < %s ORDER BY id DESC LIMIT %s",
            (resource_id, before if before is not None else 2**62, limit),
        )
        return [_decode_log(_row(row)) for row in rows]


class PgMirrorWritesMixin(PgMirrorReadsMixin):
    """The mirror's writes, for the transaction class."""

    async def save_connection(self, connection: Connection) -> None:
        await self._query(_UPSERT_CONNECTION, _encode_connection(connection))

    async def save_link(self, link: EventLink) -> None:
        await self._query(
            "INSERT INTO google_events (resource_id, event_id, kind, booking_id, etag, details, "
            "digest, series_id, expanded_until) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s) "
            "ON CONFLICT (resource_id, event_id) DO UPDATE SET kind = excluded.kind, "
            "booking_id = excluded.booking_id, etag = excluded.etag, details = excluded.details, "
            "digest = excluded.digest, series_id = excluded.series_id, "
            "expanded_until = excluded.expanded_until",
            _encode_link(link),
        )

    async def delete_link(self, resource_id: str, event_id: str) -> None:
        await self._query(
            "DELETE FROM google_events WHERE resource_id = %s AND event_id = %s",
            (resource_id, event_id),
        )

    async def save_invite(self, invite: Invite) -> None:
        await self._query(
            "INSERT INTO google_invites (token_hash, resource_id, created_at, expires_at, state, "
            "code_verifier, account, refresh_token, used_at) "
            "VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s) "
            "ON CONFLICT (token_hash) DO UPDATE SET state = excluded.state, "
            "code_verifier = excluded.code_verifier, account = excluded.account, "
            "refresh_token = excluded.refresh_token, used_at = excluded.used_at",
            _encode_invite(invite),
        )

    async def log(self, entry: SyncLogEntry) -> None:
        await self._query(
            "INSERT INTO sync_log (resource_id, at, kind, message, booking_id, event_id) "
            "VALUES (%s, %s, %s, %s, %s, %s)",
            _encode_log(entry),
        )

    async def revoke_invites(self, resource_id: str, at: datetime) -> None:
        await self._query(
            "UPDATE google_invites SET used_at = %s, refresh_token = '\\x'::bytea "
            "WHERE resource_id = %s AND used_at IS NULL",
            (utc_text(at), resource_id),
        )

    async def release_outbox(self, resource_id: str) -> None:
        await self._query(
            "UPDATE outbox SET next_attempt_at = NULL WHERE resource_id = %s AND done_at IS NULL",
            (resource_id,),
        )
