"""Read the gateway's SQLite file directly, to prove what was (not) written."""

from __future__ import annotations

import sqlite3
from pathlib import Path

TABLES = ("objects", "changes", "outbox", "idempotency_keys", "tombstones")


def row_counts(db_path: Path) -> dict[str, int]:
    with sqlite3.connect(db_path) as conn:
        counts = {t: conn.execute(f"SELECT count(*) FROM {t}").fetchone()[0] for t in TABLES}
        counts["revision"] = conn.execute(
            "SELECT coalesce(sum(revision), 0) FROM collections"
        ).fetchone()[0]
    return counts


def outbox_rows(db_path: Path) -> list[tuple[str, str, str]]:
    with sqlite3.connect(db_path) as conn:
        return conn.execute("SELECT kind, booking_id, payload FROM outbox ORDER BY id").fetchall()


def tamper_object(db_path: Path, uid: str, old: str, new: str) -> str:
    """Replace ``old`` by ``new`` in the stored text and title of the object
    ``uid`` behind the gateway's back (as an old version, a restore or a
    hand edit could leave it); returns the new text."""
    with sqlite3.connect(db_path) as conn:
        row = conn.execute("SELECT ics, title FROM objects WHERE uid = ?", (uid,)).fetchone()
        ics, title = row
        assert old in ics, f"{old!r} is not in the object {uid!r}"
        changed = ics.replace(old, new)
        conn.execute(
            "UPDATE objects SET ics = ?, title = ? WHERE uid = ?",
            (changed, title.replace(old, new), uid),
        )
    return str(changed)
