"""Authenticator: password hashes (argon2, bcrypt), tokens, the verification cache."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import threading

import bcrypt
import pytest
from argon2 import PasswordHasher, extract_parameters

from gateway.web import auth as auth_module
from gateway.web.auth import Authenticator, _digest, _Token, _User, hash_password


def basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


async def test_argon2_and_bcrypt_users_authenticate() -> None:
    users = [
        _User("argon", hash_password("pw-argon-1"), {"*": "read"}),
        _User("crypt", bcrypt.hashpw(b"pw-bcrypt-1", bcrypt.gensalt(4)).decode(), {"a": "read"}),
    ]
    auth = Authenticator(users, [])
    argon = await auth.authenticate(basic("argon", "pw-argon-1"))
    assert argon is not None and argon.can_read("anything") and not argon.can_write("x")
    crypt = await auth.authenticate(basic("crypt", "pw-bcrypt-1"))
    assert crypt is not None and crypt.can_read("a") and not crypt.can_read("b")
    assert await auth.authenticate(basic("crypt", "pw-argon-1")) is None
    assert await auth.authenticate(basic("ghost", "pw-argon-1")) is None


async def test_cache_remembers_only_the_exact_credentials_for_a_while() -> None:
    clock = FakeClock()
    auth = Authenticator(
        [_User("u", hash_password("right-pw"), {"*": "read-write"})], [], clock=clock
    )
    assert await auth.authenticate(basic("u", "right-pw")) is not None
    assert await auth.authenticate(basic("u", "wrong-pw")) is None  # no cache hit for others
    clock.now += 301
    assert await auth.authenticate(basic("u", "right-pw")) is not None


async def test_tokens_and_grants() -> None:
    auth = Authenticator([], [_Token("t", _digest("tok-" + "x" * 30), {"anna": "read-write"})])
    principal = await auth.authenticate("Bearer tok-" + "x" * 30)
    assert principal is not None and principal.key == "token:t"
    assert principal.can_write("anna") and not principal.can_read("bob")
    assert await auth.authenticate("Bearer tok-" + "y" * 30) is None
    assert await auth.authenticate(None) is None


async def test_concurrent_first_sign_ins_share_one_password_check(checked: list[str]) -> None:
    calls = checked
    auth = Authenticator([_User("u", hash_password("right-pw"), {"*": "read"})], [])
    results = await asyncio.gather(*(auth.authenticate(basic("u", "right-pw")) for _ in range(8)))
    assert all(r is not None and r.name == "u" for r in results)
    wrong = await asyncio.gather(*(auth.authenticate(basic("u", "wrong-pw")) for _ in range(4)))
    assert wrong == [None] * 4
    assert calls == ["right-pw", "wrong-pw"]
    # A later wrong attempt is checked again, not answered from the shared one.
    assert await auth.authenticate(basic("u", "wrong-pw")) is None
    assert calls == ["right-pw", "wrong-pw", "wrong-pw"]


async def test_credentials_in_use_stay_trusted_idle_ones_are_checked_again(
    checked: list[str],
) -> None:
    calls = checked
    clock = FakeClock()
    auth = Authenticator([_User("u", hash_password("right-pw"), {"*": "read"})], [], clock=clock)
    for minute in (0, 4, 8, 12):  # a client syncing every four minutes
        clock.now = minute * 60.0
        assert await auth.authenticate(basic("u", "right-pw")) is not None
    assert calls == ["right-pw"]
    clock.now += 301  # then idle for more than five minutes
    assert await auth.authenticate(basic("u", "right-pw")) is not None
    assert calls == ["right-pw", "right-pw"]


async def test_password_checks_run_at_most_two_at_a_time(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """An argon2 check takes tens of MiB (19 for new hashes, 64 for older
    ones): a burst of sign-ins with different passwords must not run them
    all at once."""
    loop = asyncio.get_running_loop()
    reached = {n: asyncio.Event() for n in (1, 2, 3)}  # n checks running at once
    inside = 0
    lock = threading.Lock()
    release = threading.Event()

    def slow(password_hash: str, password: str) -> bool:
        nonlocal inside
        with lock:
            inside += 1
            if inside in reached:
                loop.call_soon_threadsafe(reached[inside].set)
        release.wait(timeout=10)
        with lock:
            inside -= 1
        return False

    monkeypatch.setattr(auth_module, "verify_password", slow)
    auth = Authenticator([_User("u", hash_password("right-pw"), {"*": "read"})], [])
    # From six addresses: one address has at most one check running at once.
    burst = [
        asyncio.ensure_future(auth.authenticate(basic("u", f"guess-{n}"), address=f"10.0.0.{n}"))
        for n in range(6)
    ]
    async with asyncio.timeout(10):
        await reached[2].wait()
    # A third would start at once if nothing held it back; give it a moment.
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(0.2):
            await reached[3].wait()
    release.set()
    assert await asyncio.gather(*burst) == [None] * 6
    assert not reached[3].is_set()
    assert auth_module.MAX_PARALLEL_CHECKS == 2


@pytest.mark.parametrize(
    "stored",
    [
        PasswordHasher(time_cost=2, memory_cost=1024, parallelism=1).hash("right-pw"),
        bcrypt.hashpw(b"right-pw", bcrypt.gensalt(5)).decode(),
    ],
    ids=["argon2", "bcrypt"],
)
async def test_an_unknown_name_costs_what_a_wrong_password_costs(
    monkeypatch: pytest.MonkeyPatch, stored: str
) -> None:
    """Response times must not reveal which names exist: a wrong name is
    checked the same way as a wrong password for a known name, against a
    hash of the same kind and cost as the configured users'."""
    seen: list[str] = []
    real = auth_module.verify_password

    def spying(password_hash: str, password: str) -> bool:
        seen.append(password_hash)
        return real(password_hash, password)

    monkeypatch.setattr(auth_module, "verify_password", spying)
    auth = Authenticator([_User("u", stored, {"*": "read"})], [])
    assert await auth.authenticate(basic("ghost", "some-pw")) is None
    assert await auth.authenticate(basic("u", "wrong-pw")) is None
    dummy, real_hash = seen
    assert real_hash == stored and dummy != stored
    if stored.startswith("$argon2"):
        assert extract_parameters(dummy) == extract_parameters(stored)
    else:
        assert dummy.split("$")[2] == stored.split("$")[2] == "05"
