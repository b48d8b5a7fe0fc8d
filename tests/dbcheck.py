"""Read the gateway's store directly, to prove what was (not) written: the
same questions on SQLite and on PostgreSQL (``tests.backends.Store``; a
path is a SQLite file)."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from tests.backends import Store

TABLES = ("objects", "changes", "outbox", "idempotency_keys", "tombstones")


def _store(db: Store | Path) -> Store:
    return db if isinstance(db, Store) else Store.sqlite(db)


def row_counts(db: Store | Path) -> dict[str, int]:
    store = _store(db)
    counts = {t: int(store.rows(f"SELECT count(*) AS n FROM {t}")[0]["n"]) for t in TABLES}
    # PostgreSQL's sum of BIGINTs is a numeric: int() makes both backends alike.
    (total,) = store.rows("SELECT coalesce(sum(revision), 0) AS n FROM collections")
    counts["revision"] = int(total["n"])
    return counts


def tuples(store: Store, sql: str, params: tuple[object, ...] = ()) -> list[tuple[Any, ...]]:
    """The rows of one SELECT as tuples, in the order of its columns."""
    return [tuple(r.values()) for r in store.rows(sql, params)]


def outbox_rows(db: Store | Path) -> list[tuple[str, str, str]]:
    store = _store(db)
    return [
        (r["kind"], r["booking_id"], r["payload"])
        for r in store.rows("SELECT kind, booking_id, payload FROM outbox ORDER BY id")
    ]


def outbox_row(store: Store, item_id: int) -> dict[str, Any]:
    """Every column of one outbox item, as stored."""
    found = store.rows("SELECT * FROM outbox WHERE id = ?", (item_id,))
    assert found, f"no outbox item {item_id}"
    return found[0]


async def write_directly(store: Store, sql: str, params: tuple[object, ...] = ()) -> None:
    """One statement in a write transaction of its own (``Store.writing``),
    off the event loop: a server in this loop may hold the write lock."""
    await asyncio.to_thread(store.write, sql, params)


def tamper_object(store: Store, uid: str, old: str, new: str) -> str:
    """Replace ``old`` by ``new`` in the stored text and title of the object
    ``uid`` behind the gateway's back (as an old version, a restore or a
    hand edit could leave it); returns the new text."""
    (row,) = store.rows("SELECT ics, title FROM objects WHERE uid = ?", (uid,))
    ics, title = str(row["ics"]), str(row["title"])
    assert old in ics, f"{old!r} is not in the object {uid!r}"
    changed = ics.replace(old, new)
    store.write(
        "UPDATE objects SET ics = ?, title = ? WHERE uid = ?",
        (changed, title.replace(old, new), uid),
    )
    return changed
