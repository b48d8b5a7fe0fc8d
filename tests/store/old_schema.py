"""The objects table as older schema versions left it, for tests that write
a database at an old version and then let the store migrate it."""

from __future__ import annotations

from gateway.store.rows import OBJECT_COLUMNS

# The object columns added after version 4 (0002 added href), by the
# migration that added them.
_ADDED_IN = {"schedule_tag": 9, "ics_size": 10}


def object_columns_at(version: int) -> tuple[str, ...]:
    """The columns of ``OBJECT_COLUMNS`` a version-``version`` database has
    (version 4 or later)."""
    return tuple(c for c in OBJECT_COLUMNS if _ADDED_IN.get(c, 0) <= version)


def insert_objects_sql(version: int, *, postgres: bool = False) -> str:
    """An INSERT of one object into a version-``version`` objects table, its
    values named after the columns (``encode_object`` makes them): ``:name``
    for SQLite, ``%(name)s`` for PostgreSQL."""
    columns = object_columns_at(version)
    marks = (f"%({c})s" if postgres else f":{c}" for c in columns)
    return f"INSERT INTO objects ({', '.join(columns)}) VALUES ({', '.join(marks)})"
