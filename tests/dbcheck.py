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
