"""Which store a test's gateway runs on: SQLite, PostgreSQL, or both.

Issue 14: the suites that go through the store run on both backends, so
that one behaviour is proven twice. The switch is here, once:

* ``BOTH_BACKENDS`` names the folders and modules whose tests run twice,
  with the ids ``[sqlite]`` and ``[postgres]``. A test runs twice when it
  uses the store (asks for ``store``, ``stores``, ``repo`` or ``client``,
  directly or through another fixture); pure tests in those folders run
  once. Everywhere else the store is SQLite.
* ``sqlite_only("why")`` keeps one test on SQLite, saying why (it reads
  the SQLite file in a way PostgreSQL has no twin of: WAL, a torn file,
  SQLite's own page cap as a full disk).
* ``CALGATEWAY_TEST_BACKENDS=sqlite`` (or ``postgres``) runs one backend
  only, for a quick local round; CI runs both.

A ``Store`` is where one gateway keeps its data: its ``storage.url``, a
way to open its repository, and a row reader (``rows``/``write``) for the
tests that prove what was or was not written, so that ``tests.dbcheck``
looks the same way at either backend. The tables and columns are the
same on both (``gateway.store.rows`` encodes the values for both), so one
SQL text, written with ``?`` placeholders, serves both.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import os
import sqlite3
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import psycopg
import pytest
from psycopg.rows import dict_row

from gateway.core.ports import MirrorRepository
from gateway.store import open_sqlite_repository
from tests.pgserver import PostgresServer

Backend = Literal["sqlite", "postgres"]
Execute = Callable[..., list[dict[str, Any]]]
BACKENDS: tuple[Backend, ...] = ("sqlite", "postgres")

# Relative to tests/: the suites that go through the store (issue 14, item 2).
BOTH_BACKENDS = (
    "api/",
    "caldav/",
    "console/",
    "core/",
    "google/",
    "invitations/",
    "mail/",
    "test_feeds.py",
)

SQLITE_ONLY = "sqlite_only"
_ENV = "CALGATEWAY_TEST_BACKENDS"
_TESTS = Path(__file__).resolve().parent


def sqlite_only(why: str) -> pytest.MarkDecorator:
    """Keep a test on SQLite in a folder that runs on both; ``why`` says
    what it needs that only the SQLite file has."""
    return pytest.mark.sqlite_only(why)


def chosen_backends() -> tuple[Backend, ...]:
    """Both, unless ``CALGATEWAY_TEST_BACKENDS`` names one."""
    named = os.environ.get(_ENV, "").strip()
    if not named:
        return BACKENDS
    picked = tuple(b for b in BACKENDS if b in {n.strip() for n in named.split(",")})
    if not picked:
        raise pytest.UsageError(f"{_ENV}={named!r}: name sqlite, postgres or both")
    return picked


def configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", f"{SQLITE_ONLY}(why): run on SQLite only, in a folder that runs on both"
    )


def parametrize(metafunc: pytest.Metafunc) -> None:
    """Run a store-going test of ``BOTH_BACKENDS`` once per backend."""
    if "backend" not in metafunc.fixturenames:
        return
    where = Path(str(metafunc.definition.path)).resolve()
    relative = where.relative_to(_TESTS).as_posix() if where.is_relative_to(_TESTS) else ""
    if not relative.startswith(BOTH_BACKENDS):
        return
    if metafunc.definition.get_closest_marker(SQLITE_ONLY) is not None:
        return
    metafunc.parametrize("backend", chosen_backends(), indirect=True)


@dataclass(frozen=True)
class Store:
    """One gateway's data: a SQLite file or a PostgreSQL database."""

    backend: Backend
    url: str
    sqlite_path: Path | None = None

    @classmethod
    def sqlite(cls, path: Path) -> Store:
        return cls("sqlite", f"sqlite:///{path}", path)

    async def open(self) -> MirrorRepository:
        """The repository on this store (migrated), as the server opens it."""
        if self.sqlite_path is not None:
            return await open_sqlite_repository(self.sqlite_path)
        from gateway.store.postgres import open_postgres_repository

        return await open_postgres_repository(self.url)

    def rows(self, sql: str, params: tuple[object, ...] = ()) -> list[dict[str, Any]]:
        """The rows of one SELECT (``?`` placeholders), read behind the
        store's back on a connection of its own: committed data only."""
        if self.sqlite_path is not None:
            with contextlib.closing(sqlite3.connect(self.sqlite_path)) as conn:
                conn.row_factory = sqlite3.Row
                return [dict(r) for r in conn.execute(sql, params).fetchall()]
        with psycopg.connect(self.url, autocommit=True, row_factory=dict_row) as pg:
            return pg.execute(_pg_sql(sql), params).fetchall()

    def write(self, sql: str, params: tuple[object, ...] = ()) -> None:
        """One statement (``?`` placeholders) committed on its own, as a
        hand edit, an old version or a restore could leave the data."""
        with self.writing() as execute:
            execute(sql, params)

    @contextlib.contextmanager
    def writing(self) -> Iterator[Execute]:
        """One write transaction behind the store's back: ``execute(sql,
        params)`` runs a statement (``?`` placeholders) and returns its rows;
        committed at the end, rolled back on an error. On SQLite it begins
        with BEGIN IMMEDIATE, waiting for the server's write lock (in WAL
        mode a read turned write would fail at once if the server wrote
        meanwhile). Off the event loop (``asyncio.to_thread``) when a server
        runs in this loop: it could not let go of the lock while the loop is
        blocked here."""
        if self.sqlite_path is not None:
            lite = sqlite3.connect(self.sqlite_path, timeout=10, isolation_level=None)
            lite.row_factory = sqlite3.Row
            try:
                lite.execute("BEGIN IMMEDIATE")
                try:
                    yield lambda sql, params=(): [dict(r) for r in lite.execute(sql, params)]
                except BaseException:
                    lite.execute("ROLLBACK")
                    raise
                lite.execute("COMMIT")
            finally:
                lite.close()
            return
        with (
            psycopg.connect(self.url, row_factory=dict_row) as pg,
            pg.transaction(),
        ):

            def execute(sql: str, params: tuple[object, ...] = ()) -> list[dict[str, Any]]:
                cursor = pg.execute(_pg_sql(sql), params)
                return cursor.fetchall() if cursor.description is not None else []

            yield execute


def _pg_sql(sql: str) -> bytes:
    # psycopg's placeholder is %s, and a literal % would have to be doubled:
    # refuse one rather than guess.
    assert "%" not in sql, f"no % in a backend-neutral statement: {sql}"
    return sql.replace("?", "%s").encode()


@dataclass(frozen=True)
class Template:
    """A PostgreSQL database the gateway's migrations were applied to, once
    per session: a test's database is a copy of it (``CREATE DATABASE ...
    TEMPLATE``), about half the time of migrating each one afresh. What a
    gateway sees is the same as its second start on a database; the first
    start (migrating an empty database) is tests/store's subject."""

    server: PostgresServer
    name: str

    def copy(self) -> str:
        database = f"{self.name}_{next(_COPIES)}"
        with psycopg.connect(self.server.url(), autocommit=True) as pg:
            pg.execute(f'CREATE DATABASE "{database}" TEMPLATE "{self.name}"'.encode())
        return database


_COPIES = itertools.count(1)


def make_template(server: PostgresServer) -> Template:
    """The ``postgres_template`` fixture's body."""
    name = server.create_database()

    async def migrate() -> None:
        repository = await Store("postgres", server.url(name)).open()
        await repository.close()

    asyncio.run(migrate())
    return Template(server, name)


@dataclass
class Stores:
    """Fresh, empty stores on one backend, for one test (``stores.new()``)."""

    backend: Backend
    folder: Path
    template: Template | None
    _names: list[str] = field(default_factory=list)
    _databases: list[str] = field(default_factory=list)

    def new(self, name: str = "gateway") -> Store:
        """A new, empty store; ``name`` (unique within the test) names the
        SQLite file in the test's folder (``name.sqlite3``). To start a
        gateway again on the same data, pass it the same ``Store``."""
        assert name not in self._names, f"a second store named {name!r}"
        self._names.append(name)
        if self.template is None:
            return Store.sqlite(self.folder / f"{name}.sqlite3")
        database = self.template.copy()
        self._databases.append(database)
        return Store("postgres", self.template.server.url(database))

    def close(self) -> None:
        if self.template is not None:
            for database in self._databases:
                with contextlib.suppress(psycopg.Error):
                    self.template.server.drop_database(database)


def open_stores(request: pytest.FixtureRequest, backend: Backend, folder: Path) -> Iterator[Stores]:
    """The ``stores`` fixture's body: PostgreSQL is started (once per
    session) only when a test asks for it."""
    template = request.getfixturevalue("postgres_template") if backend == "postgres" else None
    made = Stores(backend, folder, template)
    try:
        yield made
    finally:
        made.close()


def storage_url(db: Store | Path | str) -> str:
    """``storage.url`` for a store, a SQLite file (a path) or a URL."""
    if isinstance(db, Store):
        return db.url
    return db if isinstance(db, str) else f"sqlite:///{db}"
