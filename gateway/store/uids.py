"""UIDs unique across the gateway, in the store (schema version 5).

``refuse_foreign_uid`` is the check every write of a new object makes in its
own transaction, so that no calendar can take the UID of another calendar's
object (an attendee's reply names its event by UID alone, RFC 5546 3.2.3);
the unique index ``objects_by_uid`` backs it up in the database. Both
backends' ``save`` read the objects holding the UID in the same statement
as those holding the booking id, and decide here.
``warn_shared_uids`` logs, at each start, the copies of one UID that older
versions let in and migration 0005 kept (it deletes nobody's data).

Not here: which of such copies a reply goes to (``gateway.core.answers``).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from pathlib import Path
from typing import Any, Protocol

import aiosqlite

from gateway.core.errors import UidConflict

log = logging.getLogger("calgateway.store")


class Row(Protocol):
    """A row of either backend, read by column name."""

    def __getitem__(self, key: str, /) -> Any: ...


def refuse_foreign_uid(rows: Iterable[Row], resource_id: str, uid: str) -> None:
    """Raise ``UidConflict`` when a collection other than ``resource_id``
    holds an object with ``uid``: the first stored of them. ``rows``: every
    object with ``uid`` (others too, if need be), with their ``id``,
    ``resource_id``, ``uid`` and ``href``."""
    foreign = [row for row in rows if row["uid"] == uid and row["resource_id"] != resource_id]
    if foreign:
        first = min(foreign, key=lambda row: int(row["id"]))
        raise UidConflict(uid, first["href"], resource_id=first["resource_id"])


def holding_this(rows: Iterable[Row], resource_id: str, uid: str, booking_id: str) -> list[Row]:
    """Of the rows ``save`` read (every object with the booking id or the
    UID), those that are the object being saved or stand in its place: the
    booking id anywhere, or the UID in the same collection."""
    return [
        row
        for row in rows
        if row["booking_id"] == booking_id
        or (row["resource_id"] == resource_id and row["uid"] == uid)
    ]


async def warn_shared_uids(conn: aiosqlite.Connection, path: Path) -> int:
    """Log each UID that objects of several collections still share; returns
    how many UIDs that is. Reads only the marked objects (a partial index)."""
    rows = list(
        await conn.execute_fetchall(
            "SELECT o.uid, group_concat(o.resource_id || '/' || o.href, ', ') AS objects "
            "FROM (SELECT DISTINCT uid FROM objects WHERE uid_shared = 1) AS s "
            "CROSS JOIN objects AS o ON o.uid = s.uid GROUP BY o.uid ORDER BY o.uid"
        )
    )
    for row in rows:
        log.warning(
            "UID shared by objects of several calendars (stored before UIDs were unique); "
            "attendees' replies to it are applied only when their ORGANIZER tells the "
            "objects apart: delete the copy that should not be there",
            extra={"database": str(path), "uid": row[0], "objects": row[1]},
        )
    return len(rows)
