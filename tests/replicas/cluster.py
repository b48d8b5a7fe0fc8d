"""Several real ``calgateway serve`` processes on one PostgreSQL database.

    config = replica_config(tmp_path, settings_yaml(...), postgres_url)
    async with running_cluster(config, 3) as cluster:
        cluster.url(0), cluster.url(1), ...
        await cluster.kill(1)      # SIGKILL, like a crashed container
        await cluster.start(1)     # the same replica again (a new port)

Every replica reads the same settings file (``replica_config``): the store is
``postgresql://`` with the password from ``storage.password_env`` (the test
server trusts loopback, so the value only has to be there), and the server's
port and public address come from the environment (``${CALGATEWAY_PORT}``),
one free loopback port per replica, so each replica also hands out its own
address for OAuth callbacks and push notifications. A replica counts as
ready when it logged "listening" and ``/healthz`` answers 200 (the store
open, migrated and taking writes). Every wait is bounded; leaving the
``running_cluster`` block stops every replica still running (SIGTERM, then
SIGKILL after ``tests.serving.STOP_TIMEOUT``).

Usable outside pytest (bench/): nothing here needs a fixture.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import signal
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp

from fake_google.calendar import FakeGoogle
from tests.net import LOOPBACK, free_port
from tests.serving import Served, serving

PASSWORD_ENV = "CALGATEWAY_TEST_PG_PASSWORD"
PORT_ENV = "CALGATEWAY_PORT"
READY_TIMEOUT = 30.0
KILL_TIMEOUT = 10.0

_STORAGE = re.compile(r"^storage:\n(?:  .*\n)*", re.MULTILINE)
_SERVER_PORT = re.compile(r"^(  port: ).*$", re.MULTILINE)
_SERVER_BASE = re.compile(r"^(  base_url: ).*$", re.MULTILINE)


def replica_config(tmp_path: Path, settings_yaml: str, postgres_url: str) -> Path:
    """One settings file for every replica: ``settings_yaml`` (the tests'
    usual YAML, whatever its storage section said) with the store on
    ``postgres_url`` and each replica's port and address from its
    environment."""
    text, found = _STORAGE.subn(
        f"storage:\n  url: {postgres_url}\n  password_env: {PASSWORD_ENV}\n", settings_yaml, 1
    )
    if not found:
        raise ValueError("the settings have no storage section to replace")
    text = _SERVER_PORT.sub(rf"\g<1>${{{PORT_ENV}}}", text, 1)
    text = _SERVER_BASE.sub(rf"\g<1>http://{LOOPBACK}:${{{PORT_ENV}}}", text, 1)
    config = tmp_path / "replicas.yaml"
    config.write_text(text, encoding="utf-8")
    return config


@dataclass
class Replica:
    index: int
    served: Served | None = None
    starts: int = 0
    _stack: contextlib.AsyncExitStack = field(default_factory=contextlib.AsyncExitStack)

    @property
    def running(self) -> bool:
        return self.served is not None and self.served.process.returncode is None


@dataclass
class Cluster:
    config: Path
    replicas: list[Replica]
    env: Mapping[str, str]
    http: aiohttp.ClientSession

    def served(self, index: int) -> Served:
        served = self.replicas[index].served
        if served is None:
            raise AssertionError(f"replica {index} is not running")
        return served

    def url(self, index: int) -> str:
        return self.served(index).url

    @property
    def urls(self) -> list[str]:
        """The addresses of the replicas running now."""
        return [r.served.url for r in self.replicas if r.served is not None and r.running]

    async def start(self, index: int) -> Served:
        """Start replica ``index`` (again) on a fresh free port; returns once
        it is ready (bounded by READY_TIMEOUT)."""
        replica = self.replicas[index]
        if replica.running:
            raise AssertionError(f"replica {index} is already running")
        await replica._stack.aclose()
        replica._stack = contextlib.AsyncExitStack()
        port = free_port()
        env = {**os.environ, **self.env, PORT_ENV: str(port)}
        served = await replica._stack.enter_async_context(serving(self.config, env=env))
        replica.served = served
        replica.starts += 1
        await wait_healthy(self.http, served.url)
        return served

    async def kill(self, index: int) -> None:
        """SIGKILL: no shutdown, no lease released, connections just drop."""
        served = self.served(index)
        served.signal(signal.SIGKILL)
        await asyncio.wait_for(served.process.wait(), KILL_TIMEOUT)

    async def stop(self, index: int) -> None:
        """A clean stop (SIGTERM), as at an upgrade."""
        replica = self.replicas[index]
        await replica._stack.aclose()

    async def stop_all(self) -> None:
        await asyncio.gather(*(r._stack.aclose() for r in self.replicas))

    def replica_of(self, owner: int) -> int:
        """Which replica holds the outbox lease identity ``owner`` (its
        ``outbox.leased_by``), from the line each logs at start."""
        for replica in self.replicas:
            if replica.served is None:
                continue
            for entry in replica.served.entries:
                if entry.get("msg") == "replica identity taken" and entry.get("replica") == owner:
                    return replica.index
        raise AssertionError(f"no replica logged the identity {owner}")

    async def connect_google(
        self, index: int, resource: str, fake: FakeGoogle, account: str, api_token: str
    ) -> None:
        """The Google consent flow through replica ``index``, as a browser
        (cookies, redirects) and the admin (an invitation from the API) do
        it: ``resource`` ends up connected to ``account``'s main calendar."""
        url = self.url(index)
        auth = {"Authorization": f"Bearer {api_token}"}
        async with self.http.post(
            f"{url}/api/v1/resources/{resource}/google/invite", headers=auth
        ) as issued:
            assert issued.status == 201, await issued.text()
            invite = (await issued.json())["url"]
        if account not in fake.store.accounts:
            fake.add_account(account, time_zone="Europe/Berlin")
        fake.consent_as(account)
        jar = aiohttp.CookieJar(unsafe=True)  # cookies for 127.0.0.1, like a browser
        async with aiohttp.ClientSession(cookie_jar=jar) as browser:
            async with browser.get(invite) as page:
                text = await page.text()
                assert page.status == 200, text
            state = re.search(r'name="state" value="([^"]+)"', text)
            assert state is not None, text
            async with browser.post(
                f"{url}/google/choose", data={"state": state[1], "calendar_id": account}
            ) as chosen:
                assert chosen.status == 200, await chosen.text()


async def eventually(
    check: Callable[[], Awaitable[bool]], what: str, within: float = READY_TIMEOUT
) -> None:
    """Until ``check()`` holds, polling, for at most ``within`` seconds (for
    what another process does: the database is the only thing to watch)."""
    try:
        async with asyncio.timeout(within):
            while not await check():  # noqa: ASYNC110 - polls another process, bounded
                await asyncio.sleep(0.02)
    except TimeoutError:
        raise AssertionError(f"no {what} within {within} s") from None


async def wait_healthy(
    http: aiohttp.ClientSession, url: str, within: float = READY_TIMEOUT
) -> None:
    """Until ``/healthz`` answers 200 (bounded)."""
    last = "no answer"
    try:
        async with asyncio.timeout(within):
            while True:
                try:
                    async with http.get(f"{url}/healthz") as response:
                        if response.status == 200:
                            return
                        last = f"{response.status} {await response.text()}"
                except aiohttp.ClientError as exc:
                    last = repr(exc)
                await asyncio.sleep(0.05)  # a poll interval, not a wait for timing
    except TimeoutError:
        raise AssertionError(f"{url}/healthz did not answer 200 in {within} s: {last}") from None


@contextlib.asynccontextmanager
async def running_cluster(
    config: Path, count: int, *, env: Mapping[str, str] | None = None
) -> AsyncIterator[Cluster]:
    """``count`` replicas on ``config``, started together; all stopped on exit."""
    connector = aiohttp.TCPConnector(limit=0)
    async with aiohttp.ClientSession(
        connector=connector, timeout=aiohttp.ClientTimeout(total=60)
    ) as http:
        cluster = Cluster(
            config=config,
            replicas=[Replica(i) for i in range(count)],
            env={PASSWORD_ENV: "unused-the-test-server-trusts-loopback", **(env or {})},
            http=http,
        )
        try:
            await asyncio.gather(*(cluster.start(i) for i in range(count)))
            yield cluster
        finally:
            await cluster.stop_all()
