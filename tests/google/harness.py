"""The gateway with Google configured, against the fake Google on loopback.

Everything is real: ``create_app`` over a YAML file and a store (SQLite or
PostgreSQL, ``tests.backends``), the server on a loopback port (so Google's
push notifications reach it), the real google-api-python-client talking to
``fake_google`` over HTTP, a real SMTP server for the e-mails, and a
browser-like client (cookies, redirects) for the consent flow. Background
workers run as in production; tests call ``settle()`` to wait (bounded)
until the outbox and a sync have run.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import aiohttp
from aiohttp import web
from aiohttp.test_utils import TestServer

from fake_google.calendar import FakeGoogle
from gateway.app import create_app
from gateway.core.mirror import ConnectionStatus
from gateway.core.model import Origin
from gateway.settings import Settings, load_settings
from gateway.web.keys import BOOKINGS, MIRROR_ADMIN, OUTBOX, REPOSITORY
from google_bridge import GOOGLE_BRIDGE
from google_bridge.tokens import new_key
from tests.backends import Store, storage_url
from tests.conftest import _ADMIN_HASH, API_TOKEN
from tests.net import LOOPBACK, free_port
from tests.smtp import Recorder

SETTLE_TIMEOUT = 60.0
BERLIN = ZoneInfo("Europe/Berlin")


def at(day: int, hour: int, minute: int = 0) -> datetime:
    """Berlin wall-clock time ``day`` days from today: the bridge imports a
    window around *now*, so test data moves with the calendar (hours 6-22
    stay clear of the DST switches at night)."""
    today = datetime.now(BERLIN).replace(hour=hour, minute=minute, second=0, microsecond=0)
    return today + timedelta(days=day)


def gtime(start: datetime, end: datetime) -> dict[str, Any]:
    """Start and end as Google Calendar's UI writes them: wall time and zone."""
    zone = str(start.tzinfo)
    return {
        "start": {"dateTime": start.replace(tzinfo=None).isoformat(), "timeZone": zone},
        "end": {"dateTime": end.replace(tzinfo=None).isoformat(), "timeZone": zone},
    }


RESOURCES = """\
  - id: anna
    name: Anna Schmidt
    email: anna@example.com
    timezone: Europe/Berlin
    feed_tokens: [anna-feed-token-0123456789abcdef]
  - id: bob
    name: Bob Jones
    email: bob@example.com
    google: {details: anonymous}
  - id: room
    name: Room 1
    email: room1@example.com
    google: {direction: from_google}
  - id: carl
    name: Carl Berg
    email: carl@example.com
    google: {direction: to_google}
  - id: dora
    name: Dora Lind
    email: dora@example.com
    google: {direction: "off"}
"""


def settings_yaml(
    store: Store | Path | str,
    port: int,
    fake: FakeGoogle,
    smtp_port: int,
    *,
    key: str,
    extra: str = "",
    resources: str = RESOURCES,
    google: str = "",
    server: str = "",
) -> str:
    """``google`` and ``server`` add lines to their sections (two-space indented)."""
    return f"""\
server:
  host: {LOOPBACK}
  port: {port}
  base_url: http://{LOOPBACK}:{port}
{server}storage:
  url: {storage_url(store)}
defaults:
  timezone: Europe/Berlin
users:
  - name: admin
    password_hash: "{_ADMIN_HASH}"
    access: {{"*": read-write}}
    admin: true  # the console's admin (tests/browser)
api_tokens:
  - name: frontend
    token: {API_TOKEN}
outbox:
  poll_interval: 5
  initial_retry_delay: 0.01
  max_retry_delay: 0.05
mail:
  smtp_host: {LOOPBACK}
  smtp_port: {smtp_port}
  security: none
  from_address: bookings@gateway.test
  from_name: Gateway Bookings
google:
  client_id: {fake.client_id}
  client_secret: {fake.client_secret}
  token_keys: [{key}]  # one key, or several separated by commas
  api_endpoint: {fake.api_endpoint}
  auth_uri: {fake.auth_uri}
  token_uri: {fake.token_uri}
  poll_interval: 3600
  import_horizon_days: 120
  quota_pause: 600
  retry: {{attempts: 3, initial_delay: 0.001, max_delay: 0.005}}
{google}{extra}resources:
{resources}"""


@dataclass
class Gateway:
    """One running gateway process (in this event loop) on a fixed port."""

    fake: FakeGoogle
    mail: Recorder
    store: Store
    config: Path
    port: int
    settings: Settings
    server: TestServer
    http: aiohttp.ClientSession
    calendars: dict[str, str] = field(default_factory=dict)  # resource -> Google calendar

    @property
    def app(self) -> web.Application:
        return self.server.app

    @property
    def url(self) -> str:
        return f"http://{LOOPBACK}:{self.port}"

    @property
    def bookings(self) -> Any:
        return self.app[BOOKINGS]

    @property
    def repo(self) -> Any:
        return self.app[REPOSITORY]

    @property
    def admin(self) -> Any:
        return self.app[MIRROR_ADMIN]

    @property
    def bridge(self) -> Any:
        return self.app[GOOGLE_BRIDGE]

    # -- HTTP -----------------------------------------------------------------------

    async def api(
        self, method: str, path: str, body: Any = None, *, expect: int | None = None
    ) -> Any:
        async with self.http.request(
            method,
            f"{self.url}/api/v1{path}",
            json=body,
            headers={"Authorization": f"Bearer {API_TOKEN}"},
        ) as response:
            data = await response.json(content_type=None) if response.status != 204 else None
            if expect is not None:
                assert response.status == expect, (response.status, data)
            return data

    async def book(
        self, resource: str, start: datetime, end: datetime, title: str, **extra: Any
    ) -> Any:
        body = {
            "resource": resource,
            "start": start.isoformat(),
            "end": end.isoformat(),
            "title": title,
            **extra,
        }
        return await self.api("POST", "/bookings", body, expect=201)

    # -- the consent flow, as a browser does it --------------------------------------

    async def invite_url(self, resource: str) -> str:
        issued = await self.admin.invite(resource)
        return str(issued.url)

    async def consent(self, resource: str, account: str) -> str:
        """Open a fresh invitation link, let the fake Google consent as
        ``account``; returns the calendar-choice page."""
        self.fake.consent_as(account)
        async with self.http.get(await self.invite_url(resource)) as page:
            text = await page.text()
            assert page.status == 200, text
            return text

    async def choose(self, page: str, calendar_id: str) -> str:
        state = re.search(r'name="state" value="([^"]+)"', page)
        assert state is not None, page
        async with self.http.post(
            f"{self.url}/google/choose", data={"state": state[1], "calendar_id": calendar_id}
        ) as response:
            text = await response.text()
            assert response.status == 200, text
            return text

    async def connect(self, resource: str, account: str, calendar_id: str | None = None) -> str:
        """The whole flow; the calendar is the account's main one unless named."""
        if account not in self.fake.store.accounts:
            self.fake.add_account(account, time_zone="Europe/Berlin")
        page = await self.consent(resource, account)
        chosen = calendar_id or account
        done = await self.choose(page, chosen)
        self.calendars[resource] = chosen
        await self.settle()
        return done

    # -- waiting -----------------------------------------------------------------------

    async def settle(self, rounds: int = 20) -> None:
        """Drain the outbox and sync every connected resource until a round
        changes nothing (bounded by SETTLE_TIMEOUT)."""
        outbox = self.app[OUTBOX]
        async with asyncio.timeout(SETTLE_TIMEOUT):
            for _ in range(rounds):
                await outbox.settle()
                before = await self.fingerprint()
                for connection in await self.repo.connections():
                    if connection.connected:
                        await self.bridge.worker.sync_now(connection.resource_id)
                await outbox.settle()
                if await self.fingerprint() == before:
                    return
        raise AssertionError("the gateway and Google did not settle")

    async def fingerprint(self) -> tuple[Any, ...]:
        revisions = [await self.repo.revision(r.id) for r in self.settings.resources]
        return (*revisions, await self.repo.pending_outbox(), self.fake_writes())

    def fake_writes(self) -> int:
        return sum(self.fake.write_count(c) for c in set(self.calendars.values()))

    # -- what the gateway holds ------------------------------------------------------

    async def busy_blocks(self, resource: str) -> list[Any]:
        objects = await self.repo.list_objects(resource)
        return [o for o in objects if o.booking.origin is Origin.GOOGLE]

    async def status(self, resource: str) -> ConnectionStatus:
        return (await self.admin.status(resource)).connection.status


@asynccontextmanager
async def running_gateway(
    tmp_path: Path,
    store: Store,
    fake: FakeGoogle,
    mail: tuple[Recorder, int],
    *,
    extra: str = "",
    key: str | None = None,
    port: int | None = None,
    resources: str = RESOURCES,
    google: str = "",
    server: str = "",
) -> AsyncIterator[Gateway]:
    """Start the gateway on ``store``; a second call with the same store
    (and key) starts it again on the same data, like a restart after a crash."""
    recorder, smtp_port = mail
    port = port or free_port()
    key = key or new_key()
    config = tmp_path / "gateway.yaml"
    config.write_text(
        settings_yaml(
            store,
            port,
            fake,
            smtp_port,
            key=key,
            extra=extra,
            resources=resources,
            google=google,
            server=server,
        ),
        encoding="utf-8",
    )
    settings = load_settings(config)
    served = TestServer(create_app(settings), host=LOOPBACK, port=port)
    await served.start_server()
    jar = aiohttp.CookieJar(unsafe=True)  # cookies for 127.0.0.1, like a browser
    http = aiohttp.ClientSession(cookie_jar=jar, timeout=aiohttp.ClientTimeout(total=30))
    try:
        yield Gateway(fake, recorder, store, config, port, settings, served, http)
    finally:
        await http.close()
        await served.close()
