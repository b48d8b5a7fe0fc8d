"""Password guessing (issue 12, item 5), as clients see it: wrong passwords
are answered with 429 and Retry-After before any hash is computed, per client
address and per user name; the queue of checks is bounded (503) and fair, so a
real user signing in from another address during an attack, or a client
already signed in, is not kept waiting; the log names the attacker, never the
password.

Client addresses come from binding the client socket to another loopback
address (127.0.0.0/8 is all local on Linux)."""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import threading
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import aiohttp
import pytest
from yarl import URL

from gateway.web import auth as auth_module
from gateway.web import check_queue
from gateway.web.observability import JsonFormatter
from tests.conftest import (
    ADMIN_PASSWORD,
    READER_PASSWORD,
    AppClient,
    ClientWith,
    basic,
    settings_yaml,
)
from tests.net import from_address
from tests.serving import serving

RESOURCES = "/api/v1/resources"
BOUND = 30.0  # no single wait in these tests may take longer


async def propfind(
    http: aiohttp.ClientSession | AppClient, url: str | URL, headers: dict[str, str]
) -> aiohttp.ClientResponse:
    return await http.request("PROPFIND", url, headers={**headers, "Depth": "0"})


@pytest.fixture
def make_client(client_with: ClientWith) -> Callable[[str], Awaitable[AppClient]]:
    """The app over the test settings plus an ``auth`` section."""

    async def make(auth: str) -> AppClient:
        return await client_with(mail=False, extra=f"auth:\n{auth}")

    return make


async def test_wrong_passwords_from_one_address_get_429_without_a_hash(
    make_client: Callable[[str], Awaitable[AppClient]], checked: list[str]
) -> None:
    client = await make_client("  max_failures_per_address: 4\n")
    for n in range(4):
        answer = await client.get(RESOURCES, headers=basic("admin", f"guess-{n}"))
        assert answer.status == 401
        assert answer.headers["WWW-Authenticate"].startswith("Basic")
    assert len(checked) == 4

    # The fifth guess, and even the right password of another user, from this
    # address: refused before any hash is computed, by both front ends.
    answer = await client.get(RESOURCES, headers=basic("admin", "guess-4"))
    assert answer.status == 429
    assert 1 <= int(answer.headers["Retry-After"]) <= 30
    assert answer.content_type == "application/problem+json"
    problem = await answer.json()
    assert problem["status"] == 429
    assert "too many wrong passwords from this address" in problem["detail"]
    answer = await propfind(client, "/dav/", basic("reader", READER_PASSWORD))
    assert answer.status == 429
    assert 1 <= int(answer.headers["Retry-After"]) <= 30
    assert "too many wrong passwords from this address" in await answer.text()
    assert len(checked) == 4

    # Another address is not concerned.
    async with from_address("127.0.0.2") as http:
        answer = await http.get(client.make_url(RESOURCES), headers=basic("admin", ADMIN_PASSWORD))
        assert answer.status == 200


async def test_a_user_name_under_attack_from_many_addresses_is_locked_for_new_sign_ins_only(
    make_client: Callable[[str], Awaitable[AppClient]], checked: list[str]
) -> None:
    client = await make_client("  max_failures_per_user: 5\n")
    # The admin's calendar client signed in before the attack.
    async with from_address("127.0.0.50") as admins_phone:
        assert (
            await propfind(admins_phone, client.make_url("/dav/"), basic("admin", ADMIN_PASSWORD))
        ).status == 207
        # One guess at each name from each of five addresses.
        for n in range(5):
            async with from_address(f"127.0.0.{10 + n}") as attacker:
                for name in ("admin", "reader"):
                    answer = await attacker.get(
                        client.make_url(RESOURCES), headers=basic(name, f"guess-{n}")
                    )
                    assert answer.status == 401
        assert len(checked) == 1 + 10

        # A new sign-in as reader, even with the right password and from a
        # new address, waits for the lockout to end ...
        async with from_address("127.0.0.60") as readers_laptop:
            answer = await readers_laptop.get(
                client.make_url(RESOURCES), headers=basic("reader", READER_PASSWORD)
            )
            assert answer.status == 429
            assert 1 <= int(answer.headers["Retry-After"]) <= 30
            assert "too many wrong passwords for this user name" in (await answer.json())["detail"]
        # ... while the admin, signed in before, keeps working.
        for _ in range(3):
            assert (
                await propfind(
                    admins_phone, client.make_url("/dav/"), basic("admin", ADMIN_PASSWORD)
                )
            ).status == 207
        assert len(checked) == 1 + 10


async def test_refused_sign_ins_are_logged_without_the_password(
    make_client: Callable[[str], Awaitable[AppClient]], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    client = await make_client("  max_failures_per_address: 2\n")
    secret = "Tr0ub4dor&3-secret"
    for _ in range(4):
        await client.get(RESOURCES, headers=basic("admin", secret))
        await propfind(client, "/dav/", basic("admin", secret))
    lines = [JsonFormatter().format(record) for record in caplog.records]
    encoded = base64.b64encode(f"admin:{secret}".encode()).decode()
    assert not [line for line in lines if secret in line or encoded in line]
    [locked] = [json.loads(line) for line in lines if "sign-in locked out" in line]
    assert locked["address"] == "127.0.0.1"
    assert locked["user"] == "admin"
    assert locked["failures"] == 2
    assert locked["lockout_seconds"] == 30.0
    assert [json.loads(line) for line in lines if '"sign-in refused"' in line]


async def test_a_full_queue_of_checks_answers_503_or_429_at_once(
    make_client: Callable[[str], Awaitable[AppClient]], monkeypatch: pytest.MonkeyPatch
) -> None:
    client = await make_client("  check_queue: 1\n")
    loop = asyncio.get_running_loop()
    running = asyncio.Event()
    release = threading.Event()
    queued = asyncio.Event()

    def slow(password_hash: str, password: str) -> bool:
        loop.call_soon_threadsafe(running.set)
        release.wait(timeout=BOUND)
        return False

    real_submit = check_queue.CheckQueue.submit

    def submit(
        self: check_queue.CheckQueue[object],
        address: str,
        name: str,
        job: Callable[[], Awaitable[object]],
    ) -> asyncio.Future[object]:
        future = real_submit(self, address, name, job)
        loop.call_soon(queued.set)
        return future

    monkeypatch.setattr(auth_module, "verify_password", slow)
    monkeypatch.setattr(check_queue.CheckQueue, "submit", submit)
    try:
        first = asyncio.ensure_future(client.get(RESOURCES, headers=basic("admin", "g1")))
        await asyncio.wait_for(running.wait(), BOUND)
        queued.clear()
        second = asyncio.ensure_future(client.get(RESOURCES, headers=basic("admin", "g2")))
        await asyncio.wait_for(queued.wait(), BOUND)  # the one place is taken

        # From elsewhere: the server is busy.
        async with from_address("127.0.0.2") as other:
            answer = await other.get(client.make_url(RESOURCES), headers=basic("reader", "x"))
            assert answer.status == 503
            assert answer.headers["Retry-After"] == "1"
            assert answer.content_type == "application/problem+json"
            answer = await propfind(other, client.make_url("/dav/"), basic("reader", "x"))
            assert answer.status == 503
            assert answer.headers["Retry-After"] == "1"
        # From the address that holds the place: it sends too many.
        answer = await client.get(RESOURCES, headers=basic("admin", "g3"))
        assert answer.status == 429
        assert answer.headers["Retry-After"] == "1"
    finally:
        release.set()
    assert (await asyncio.wait_for(first, BOUND)).status == 401
    assert (await asyncio.wait_for(second, BOUND)).status == 401


ATTACK = 200
FAIR_SIGN_IN = 2.0  # seconds a first sign-in from elsewhere may take during the attack


async def test_a_real_user_signs_in_from_elsewhere_during_an_attack(tmp_path: Path) -> None:
    """Against a real ``calgateway serve``: 200 parallel wrong passwords from
    127.0.0.1; the admin's first sign-in from 127.0.0.2 meanwhile completes
    within two seconds, and the attacker got exactly its 10 guesses."""
    config = tmp_path / "gateway.yaml"
    config.write_text(
        settings_yaml(
            tmp_path / "db.sqlite3",
            mail=False,
            # This test is about password checks: no connection cap in the way.
            server="  max_connections_per_address: 0\n",
        ),
        encoding="utf-8",
    )
    async with serving(config) as server, from_address("127.0.0.1") as attacker:
        url = f"{server.url}{RESOURCES}"
        answered = asyncio.Event()

        async def guess(n: int) -> int:
            async with attacker.get(url, headers=basic("admin", f"guess-{n}")) as answer:
                answered.set()
                return answer.status

        attack = [asyncio.ensure_future(guess(n)) for n in range(ATTACK)]
        await asyncio.wait_for(answered.wait(), BOUND)  # the attack is under way
        async with from_address("127.0.0.2") as user:
            started = time.monotonic()
            answer = await asyncio.wait_for(
                user.get(url, headers=basic("admin", ADMIN_PASSWORD)), BOUND
            )
            took = time.monotonic() - started
            assert answer.status == 200
        statuses = await asyncio.wait_for(asyncio.gather(*attack), BOUND)
        assert took < FAIR_SIGN_IN, f"first sign-in took {took:.2f} s during the attack"
        assert statuses.count(401) == 10  # max_failures_per_address
        assert set(statuses) <= {401, 429, 503}
        assert statuses.count(429) > 0
        locked = await server.wait_for_log(lambda e: e.get("msg") == "sign-in locked out")
        assert locked["address"] == "127.0.0.1"
        assert not [e for e in server.entries if "guess-" in json.dumps(e)]
