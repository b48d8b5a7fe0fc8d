"""Shared fixtures: the real app from ``create_app`` over a test YAML and a real
store (a SQLite file, or a PostgreSQL database where ``tests.backends`` runs
a suite on both), served on loopback and called with aiohttp's HTTP client."""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient

from gateway.app import create_app
from gateway.core.ports import MirrorRepository
from gateway.settings import Settings, load_settings
from gateway.web.auth import hash_password
from tests import backends
from tests.backends import Backend, Store, Stores, Template, make_template, open_stores, storage_url
from tests.browser import screenshots
from tests.net import free_port
from tests.pgserver import (
    PostgresServer,
    postgres_server,  # noqa: F401 - the fixture, for [postgres] runs
)

AppClient = TestClient[web.Request, web.Application]

API_TOKEN = "test-api-token-0123456789abcdef"
READER_TOKEN = "test-reader-token-0123456789abcdef"
ADMIN_PASSWORD = "admin-secret-pw"
READER_PASSWORD = "reader-secret-pw"

# A loopback port with no SMTP server behind it (closed right after the pick).
_NO_SMTP_PORT = free_port()

# Mail to a port where nobody listens: invitations are queued (and their
# sending retried in the background) like in a real deployment.
MAIL_SECTION = f"""\
mail:
  smtp_host: 127.0.0.1
  smtp_port: {_NO_SMTP_PORT}
  security: none
  from_address: bookings@gateway.test
"""

# Hashing is slow on purpose; do it once per test session.
_ADMIN_HASH = hash_password(ADMIN_PASSWORD)
_READER_HASH = hash_password(READER_PASSWORD)


def settings_yaml(
    db_path: Store | Path | str, *, mail: bool = True, server: str = "", extra: str = ""
) -> str:
    """The test settings on ``db_path``: a store, a SQLite file or a URL.
    ``server``: more lines for the server section, each indented by two
    spaces; ``extra``: more top-level sections."""
    mail_section = MAIL_SECTION if mail else ""
    return f"""\
server:
  host: 127.0.0.1
  port: 0
  base_url: http://gateway.test
{server}\
storage:
  url: {storage_url(db_path)}
defaults:
  timezone: UTC
users:
  - name: admin
    password_hash: "{_ADMIN_HASH}"
    access: {{"*": read-write}}
    admin: true
  - name: reader
    password_hash: "{_READER_HASH}"
    access: {{anna: read}}
api_tokens:
  - name: frontend
    token: {API_TOKEN}
  - name: reader-token
    token: {READER_TOKEN}
    access: {{anna: read}}
{mail_section}resources:
  - id: anna
    name: Anna Schmidt
    email: anna@example.com
    timezone: Europe/Berlin
    feed_tokens:
      - anna-feed-token-0123456789abcdef
      - anna-old-token-0123456789abcdefgh
  - id: room
    name: Room 1
    email: room1@example.com
  - id: bob
    name: Bob Jones
    email: bob@example.com
    timezone: America/New_York
    feed_tokens: [bob-feed-token-0123456789abcdef]
{extra}"""


def basic(user: str, password: str) -> dict[str, str]:
    token = base64.b64encode(f"{user}:{password}".encode()).decode()
    return {"Authorization": f"Basic {token}"}


def pytest_configure(config: pytest.Config) -> None:
    backends.configure(config)
    screenshots.note_start(config)


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    screenshots.summarize(terminalreporter)  # where tests/browser put them


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    backends.parametrize(metafunc)


@pytest.fixture
def backend(request: pytest.FixtureRequest) -> Backend:
    """``sqlite``, or each backend in turn where ``tests.backends`` says so."""
    chosen: Backend = getattr(request, "param", "sqlite")
    return chosen


@pytest.fixture(scope="session")
def postgres_template(postgres_server: PostgresServer) -> Template:  # noqa: F811
    """A migrated database, copied for each [postgres] test's store."""
    return make_template(postgres_server)


@pytest.fixture
def stores(request: pytest.FixtureRequest, backend: Backend, tmp_path: Path) -> Iterator[Stores]:
    """Fresh stores on this test's backend (``stores.new(name)``)."""
    yield from open_stores(request, backend, tmp_path)


@pytest.fixture
def db_path(tmp_path: Path, backend: Backend) -> Path:
    """The SQLite file of ``store``, for tests that read it directly."""
    if backend != "sqlite":
        pytest.fail("this test reads the SQLite file: use `store` (tests.backends) or sqlite_only")
    return tmp_path / "gateway.sqlite3"


@pytest.fixture
def store(request: pytest.FixtureRequest, stores: Stores) -> Store:
    """The store of the test's gateway (``config_file``, ``client``, ``repo``):
    on SQLite the file ``db_path`` names (a module may move it)."""
    if stores.backend == "sqlite":
        return Store.sqlite(request.getfixturevalue("db_path"))
    return stores.new()


@pytest.fixture
async def repo(store: Store) -> AsyncIterator[MirrorRepository]:
    """The real repository on ``store``, closed after the test."""
    repository = await store.open()
    yield repository
    await repository.close()


@pytest.fixture
def config_file(tmp_path: Path, store: Store) -> Path:
    path = tmp_path / "gateway.yaml"
    path.write_text(settings_yaml(store.url), encoding="utf-8")
    return path


@pytest.fixture
def settings(config_file: Path) -> Settings:
    return load_settings(config_file)


@pytest.fixture
def app(settings: Settings) -> web.Application:
    return create_app(settings)


@pytest.fixture
async def client(
    app: web.Application,
    aiohttp_client: Callable[[web.Application], Awaitable[AppClient]],
) -> AppClient:
    # ``app`` (and so the store) first: fixtures end in reverse order, so the
    # client and its app stop before the store's database is dropped.
    return await aiohttp_client(app)


ClientWith = Callable[..., Awaitable[AppClient]]


@pytest.fixture
def client_with(
    tmp_path: Path,
    stores: Stores,
    aiohttp_client: Callable[[web.Application], Awaitable[AppClient]],
) -> ClientWith:
    """``await client_with(server, extra=..., mail=...)``: a client of the app
    over the test settings with these more lines (``settings_yaml``), on a
    database of its own per call."""
    made = 0

    async def make(server: str = "", *, extra: str = "", mail: bool = True) -> AppClient:
        nonlocal made
        made += 1
        config = tmp_path / f"with-{made}.yaml"
        yaml = settings_yaml(stores.new(f"with-{made}").url, mail=mail, server=server, extra=extra)
        config.write_text(yaml, encoding="utf-8")
        return await aiohttp_client(create_app(load_settings(config)))

    return make


@pytest.fixture
def api_headers() -> dict[str, str]:
    return {"Authorization": f"Bearer {API_TOKEN}"}


@pytest.fixture
def reader_headers() -> dict[str, str]:
    return {"Authorization": f"Bearer {READER_TOKEN}"}


@pytest.fixture
def admin_basic() -> dict[str, str]:
    return basic("admin", ADMIN_PASSWORD)
