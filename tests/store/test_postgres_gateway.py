"""The gateway on ``storage.url: postgresql://...``: the whole app (API,
CalDAV, feeds) and ``calgateway migrate`` on a real PostgreSQL server
(``tests.pgserver``), and the password from an environment variable or a
file, never from the URL."""

from __future__ import annotations

import os
import subprocess
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from aiohttp.test_utils import TestClient, TestServer

from gateway.app import create_app
from gateway.settings import load_settings
from tests.caldav.dav import event, put, request
from tests.conftest import API_TOKEN, AppClient, settings_yaml
from tests.pgserver import (  # noqa: F401 - fixtures
    postgres_server,
    postgres_url,
    require_postgres,
)
from tests.serving import COMMAND, REPO

require_postgres()

AUTH = {"Authorization": f"Bearer {API_TOKEN}"}


def postgres_yaml(tmp_path: Path, url: str, extra: str = "") -> Path:
    """The shared test settings with the store on PostgreSQL."""
    text = settings_yaml(tmp_path / "unused.sqlite3")
    start = text.index("storage:\n")
    end = text.index("\n", text.index("  url:", start)) + 1
    config = tmp_path / "gateway.yaml"
    config.write_text(text[:start] + f"storage:\n  url: {url}\n{extra}" + text[end:])
    return config


@pytest.fixture
async def pg_client(tmp_path: Path, postgres_url: str) -> AsyncIterator[AppClient]:  # noqa: F811
    settings = load_settings(postgres_yaml(tmp_path, postgres_url))
    client: AppClient = TestClient(TestServer(create_app(settings)))
    await client.start_server()
    try:
        yield client
    finally:
        await client.close()


async def test_bookings_calendars_and_feeds_on_postgresql(
    pg_client: AppClient, tmp_path: Path
) -> None:
    start = datetime(2026, 12, 14, 9, tzinfo=UTC)
    made = await pg_client.post(
        "/api/v1/bookings",
        json={
            "resource": "anna",
            "title": "Haircut",
            "start": start.isoformat(),
            "end": (start + timedelta(hours=1)).isoformat(),
        },
        headers=AUTH,
    )
    assert made.status == 201, await made.text()
    booking = await made.json()
    # The database, not a process, refuses the double booking.
    clash = await pg_client.post(
        "/api/v1/bookings",
        json={
            "resource": "anna",
            "title": "Other",
            "start": (start + timedelta(minutes=30)).isoformat(),
            "end": (start + timedelta(hours=2)).isoformat(),
        },
        headers=AUTH,
    )
    assert clash.status == 409

    stored = await put(
        pg_client, "/dav/calendars/anna/c.ics", event("c", "20261215T090000Z", "20261215T100000Z")
    )
    assert stored.status == 201
    got = await request(pg_client, "GET", "/dav/calendars/anna/c.ics")
    assert got.status == 200 and b"UID:c" in got.body
    listing = await request(pg_client, "PROPFIND", "/dav/calendars/anna/", headers={"Depth": "1"})
    assert len(listing.hrefs()) == 3  # the calendar, the booking, the CalDAV object
    feed = await pg_client.get("/feeds/anna.ics?token=anna-feed-token-0123456789abcdef")
    assert (await feed.text()).count("BEGIN:VEVENT") == 2
    assert booking["uid"] in await feed.text()
    healthy = await pg_client.get("/healthz")
    assert healthy.status == 200, await healthy.text()


def calgateway(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*COMMAND, *args],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=REPO,
        env={**os.environ, **(env or {})},
        check=False,
    )


def test_migrate_brings_an_empty_database_up_and_names_a_missing_secret(
    tmp_path: Path,
    postgres_url: str,  # noqa: F811
) -> None:
    config = postgres_yaml(tmp_path, postgres_url)
    done = calgateway("migrate", "--config", str(config))
    assert done.returncode == 0, done.stderr
    assert "the schema is up to date" in done.stdout
    assert "postgresql://127.0.0.1" in done.stdout
    again = calgateway("migrate", "--config", str(config))
    assert again.returncode == 0

    # The password comes from the variable the settings name; unset, the
    # command says which one, and nothing else happens.
    secret = postgres_yaml(tmp_path, postgres_url, extra="  password_env: GW_PG_PASSWORD\n")
    missing = calgateway("migrate", "--config", str(secret), env={"GW_PG_PASSWORD": ""})
    assert missing.returncode == 2
    assert "GW_PG_PASSWORD" in missing.stderr and "not set" in missing.stderr
    given = calgateway("migrate", "--config", str(secret), env={"GW_PG_PASSWORD": "any"})
    assert given.returncode == 0, given.stderr  # the test server trusts loopback

    file_config = postgres_yaml(tmp_path, postgres_url, extra="  password_file: pg.secret\n")
    unreadable = calgateway("migrate", "--config", str(file_config))
    assert unreadable.returncode == 2
    assert "pg.secret" in unreadable.stderr and "cannot be read" in unreadable.stderr
    (tmp_path / "pg.secret").write_text("any\n")
    assert calgateway("migrate", "--config", str(file_config)).returncode == 0
