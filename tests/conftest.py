"""Shared fixtures: the real app from ``create_app`` over a test YAML and a real
SQLite file, served on loopback and called with aiohttp's HTTP client."""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient

from gateway.app import create_app
from gateway.settings import Settings, load_settings
from gateway.store import SqliteRepository, open_sqlite_repository
from gateway.web.auth import hash_password
from tests.net import free_port

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


def settings_yaml(db_path: Path, *, mail: bool = True, server: str = "", extra: str = "") -> str:
    """The test settings. ``server``: more lines for the server section, each
    indented by two spaces; ``extra``: more top-level sections."""
    mail_section = MAIL_SECTION if mail else ""
    return f"""\
server:
  host: 127.0.0.1
  port: 0
  base_url: http://gateway.test
{server}\
storage:
  url: sqlite:///{db_path}
defaults:
  timezone: UTC
users:
  - name: admin
    password_hash: "{_ADMIN_HASH}"
    access: {{"*": read-write}}
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


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "gateway.sqlite3"


@pytest.fixture
async def repo(db_path: Path) -> AsyncIterator[SqliteRepository]:
    """The real SQLite repository on ``db_path``, closed after the test."""
    repository = await open_sqlite_repository(db_path)
    yield repository
    await repository.close()


@pytest.fixture
def config_file(tmp_path: Path, db_path: Path) -> Path:
    path = tmp_path / "gateway.yaml"
    path.write_text(settings_yaml(db_path), encoding="utf-8")
    return path


@pytest.fixture
def settings(config_file: Path) -> Settings:
    return load_settings(config_file)


@pytest.fixture
def app(settings: Settings) -> web.Application:
    return create_app(settings)


@pytest.fixture
async def client(
    aiohttp_client: Callable[[web.Application], Awaitable[AppClient]],
    app: web.Application,
) -> AppClient:
    return await aiohttp_client(app)


ClientWith = Callable[..., Awaitable[AppClient]]


@pytest.fixture
def client_with(
    tmp_path: Path, aiohttp_client: Callable[[web.Application], Awaitable[AppClient]]
) -> ClientWith:
    """``await client_with(server, extra=..., mail=...)``: a client of the app
    over the test settings with these more lines (``settings_yaml``), on a
    database of its own per call."""
    made = 0

    async def make(server: str = "", *, extra: str = "", mail: bool = True) -> AppClient:
        nonlocal made
        made += 1
        config = tmp_path / f"with-{made}.yaml"
        yaml = settings_yaml(
            tmp_path / f"with-{made}.sqlite3", mail=mail, server=server, extra=extra
        )
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
