"""Storage: the aiosqlite repository behind ``gateway.core.ports.Repository``."""

from __future__ import annotations

from .schema import SchemaError, SchemaTooNewError
from .sqlite import SqliteRepository, SqliteTransaction, open_sqlite_repository

__all__ = [
    "SchemaError",
    "SchemaTooNewError",
    "SqliteRepository",
    "SqliteTransaction",
    "open_sqlite_repository",
]
